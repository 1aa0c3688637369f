//! `java.text.SimpleDateFormat` in UTC, as TimestampRouter formats a record's timestamp
//! (`timestamp.format`, default `yyyyMMdd`; the zone is always UTC there).
//!
//! Pattern letters are runs of one ASCII letter (`yyyy`, `MM`); text in `'...'` is literal and
//! `''` is a quote; anything else is copied. Supported: `G y M L d D E u F a H k K h m s S z Z X`,
//! in the `en_US` locale. The week-based letters `Y w W` depend on the JVM's locale rules and are
//! refused as unsupported. Dates use the proleptic Gregorian calendar; Java's
//! `GregorianCalendar` switches to the Julian calendar before 15 October 1582.

/// A parsed pattern.
#[derive(Clone, Debug, PartialEq)]
pub struct DateFormat {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Literal(String),
    Field(char, usize),
}

/// Why a pattern cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternError {
    /// What Java's `SimpleDateFormat` constructor throws (`IllegalArgumentException`).
    Illegal(String),
    /// A letter Java accepts that ksim does not format.
    Unsupported(char),
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

impl DateFormat {
    /// `new SimpleDateFormat(pattern)`.
    pub fn compile(pattern: &str) -> Result<DateFormat, PatternError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                if chars.get(i + 1) == Some(&'\'') {
                    literal.push('\'');
                    i += 2;
                    continue;
                }
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(PatternError::Illegal("Unterminated quote".into())),
                        Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                            literal.push('\'');
                            j += 2;
                        }
                        Some('\'') => break,
                        Some(&q) => {
                            literal.push(q);
                            j += 1;
                        }
                    }
                }
                i = j + 1;
            } else if c.is_ascii_alphabetic() {
                let mut count = 1;
                while chars.get(i + count) == Some(&c) {
                    count += 1;
                }
                match c {
                    'G' | 'y' | 'M' | 'L' | 'd' | 'D' | 'E' | 'u' | 'F' | 'a' | 'H' | 'k' | 'K' | 'h' | 'm' | 's'
                    | 'S' | 'z' | 'Z' => {}
                    'X' if count <= 3 => {}
                    'X' => return Err(PatternError::Illegal(format!("invalid ISO 8601 format: length={count}"))),
                    'Y' | 'w' | 'W' => return Err(PatternError::Unsupported(c)),
                    _ => return Err(PatternError::Illegal(format!("Illegal pattern character '{c}'"))),
                }
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Field(c, count));
                i += count;
            } else {
                literal.push(c);
                i += 1;
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(DateFormat { parts })
    }

    /// `format(new Date(epoch_ms))` in UTC.
    pub fn format(&self, epoch_ms: i64) -> String {
        let days = epoch_ms.div_euclid(86_400_000);
        let ms_of_day = epoch_ms.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        let hour = ms_of_day / 3_600_000;
        let minute = ms_of_day / 60_000 % 60;
        let second = ms_of_day / 1000 % 60;
        let millis = ms_of_day % 1000;
        // 1970-01-01 was a Thursday; 0 = Monday.
        let weekday = (days + 3).rem_euclid(7) as usize;
        let day_of_year = days - days_from_civil(year, 1, 1) + 1;
        let mut out = String::new();
        for part in &self.parts {
            let (letter, count) = match part {
                Part::Literal(text) => {
                    out.push_str(text);
                    continue;
                }
                Part::Field(letter, count) => (*letter, *count),
            };
            let number = |n: i64| format!("{n:0count$}");
            let text = match letter {
                'G' => (if year > 0 { "AD" } else { "BC" }).to_string(),
                'y' => {
                    let year_of_era = if year > 0 { year } else { 1 - year };
                    if count == 2 {
                        format!("{:02}", year_of_era % 100)
                    } else {
                        number(year_of_era)
                    }
                }
                'M' | 'L' => match count {
                    1 | 2 => number(month),
                    3 => MONTHS[(month - 1) as usize][..3].to_string(),
                    _ => MONTHS[(month - 1) as usize].to_string(),
                },
                'd' => number(day),
                'D' => number(day_of_year),
                'E' => {
                    if count >= 4 {
                        DAYS[weekday].to_string()
                    } else {
                        DAYS[weekday][..3].to_string()
                    }
                }
                'u' => number(weekday as i64 + 1),
                'F' => number((day - 1) / 7 + 1),
                'a' => (if hour < 12 { "AM" } else { "PM" }).to_string(),
                'H' => number(hour),
                'k' => number(if hour == 0 { 24 } else { hour }),
                'K' => number(hour % 12),
                'h' => number(if hour % 12 == 0 { 12 } else { hour % 12 }),
                'm' => number(minute),
                's' => number(second),
                'S' => number(millis),
                'z' => (if count >= 4 { "Coordinated Universal Time" } else { "UTC" }).to_string(),
                'Z' => "+0000".to_string(),
                'X' => "Z".to_string(),
                other => unreachable!("compile admits no pattern letter {other}"),
            };
            out.push_str(&text);
        }
        out
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_utc_like_simple_date_format() {
        // TimestampRouterTest.defaultConfiguration: 1483425001864 is 2017-01-03T06:30:01.864Z.
        let f = |p: &str| DateFormat::compile(p).unwrap().format(1_483_425_001_864);
        assert_eq!(f("yyyyMMdd"), "20170103");
        assert_eq!(f("yyyy-MM-dd'T'HH:mm:ss.SSSX"), "2017-01-03T06:30:01.864Z");
        assert_eq!(f("EEE, d MMM yy h:mm a z"), "Tue, 3 Jan 17 6:30 AM UTC");
        assert_eq!(f("EEEE MMMM D u '''quoted''' k K Z G"), "Tuesday January 3 2 'quoted' 6 6 +0000 AD");
        assert_eq!(DateFormat::compile("yyyy").unwrap().format(-1), "1969");
        assert_eq!(DateFormat::compile("yyyyMMdd").unwrap().format(951_782_400_000), "20000229");
        assert_eq!(DateFormat::compile("yyyy-bb"), Err(PatternError::Illegal("Illegal pattern character 'b'".into())));
        assert_eq!(DateFormat::compile("'open"), Err(PatternError::Illegal("Unterminated quote".into())));
        assert_eq!(DateFormat::compile("YYYY-ww"), Err(PatternError::Unsupported('Y')));
    }
}
