//! Java's `java.util.regex` as RegexRouter and TopicNameMatches use it, on the `regex` crate.
//!
//! What Kafka calls:
//! - `Pattern.compile(regex)`, at configure time (RegexValidator reports "Invalid regex: ...");
//! - `matcher(topic).matches()`: the *whole* topic must match (`my-prefix-.*` does not match
//!   `x-my-prefix-foo`), done here with the pattern wrapped in `\A(?:...)\z`;
//! - `matcher.replaceFirst(replacement)` (RegexRouter): the first match found by `find()` (not
//!   necessarily the whole topic: `(.*?)` finds the empty string at 0) is replaced, with `$n`,
//!   `${name}` and `\x` in the replacement as `Matcher.appendReplacement` reads them.
//!
//! Where Java's syntax differs from the `regex` crate's: no backreferences (`\1`), lookaround
//! (`(?=`, `(?<=`), possessive quantifiers (`a*+`) or atomic groups; those fail to compile here,
//! with the crate's message (Java's `PatternSyntaxException` words it differently). Java's `.`
//! also excludes `\r`, `\u0085`, `\u2028` and `\u2029`, which no topic name contains. `\Q...\E`
//! quoting is translated to escaped text.

use super::error::RecordError;
use regex::Regex;

/// A compiled Java pattern.
#[derive(Clone, Debug)]
pub struct JavaPattern {
    whole: Regex,
    find: Regex,
}

impl JavaPattern {
    /// `Pattern.compile(source)`; `Err` holds the reason it does not compile.
    pub fn compile(source: &str) -> Result<JavaPattern, String> {
        let translated = translate_quotes(source);
        let find = Regex::new(&translated).map_err(|e| one_line(&e.to_string()))?;
        let whole = Regex::new(&format!(r"\A(?:{translated})\z")).map_err(|e| one_line(&e.to_string()))?;
        Ok(JavaPattern { whole, find })
    }

    /// `matcher(text).matches()`.
    pub fn matches(&self, text: &str) -> bool {
        self.whole.is_match(text)
    }

    /// `matcher(text).replaceFirst(replacement)`.
    pub fn replace_first(&self, text: &str, replacement: &str) -> Result<String, RecordError> {
        let Some(caps) = self.find.captures(text) else { return Ok(text.to_string()) };
        let whole = caps.get(0).expect("group 0 is the match");
        let mut out = String::with_capacity(text.len() + replacement.len());
        out.push_str(&text[..whole.start()]);
        expand(&self.find, &caps, replacement, &mut out)?;
        out.push_str(&text[whole.end()..]);
        Ok(out)
    }
}

/// The regex crate's errors span several lines (the pattern, a caret, the reason).
fn one_line(message: &str) -> String {
    message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Java's `\Q...\E` (quote everything between) as escaped text.
fn translate_quotes(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Q') => {
                let mut quoted = String::new();
                while let Some(q) = chars.next() {
                    if q == '\\' && chars.peek() == Some(&'E') {
                        chars.next();
                        break;
                    }
                    quoted.push(q);
                }
                out.push_str(&regex::escape(&quoted));
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `Matcher.appendReplacement`'s reading of a replacement string: `\x` is a literal `x`; `$n`
/// takes as many digits as still name a group; `${name}` a named group.
fn expand(regex: &Regex, caps: &regex::Captures, replacement: &str, out: &mut String) -> Result<(), RecordError> {
    let group_count = regex.captures_len() - 1;
    let chars: Vec<char> = replacement.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                i += 1;
                let Some(&c) = chars.get(i) else {
                    return Err(RecordError::illegal_argument("character to be escaped is missing"));
                };
                out.push(c);
                i += 1;
            }
            '$' => {
                i += 1;
                let Some(&next) = chars.get(i) else {
                    return Err(RecordError::illegal_argument("Illegal group reference: group index is missing"));
                };
                if next == '{' {
                    let end = chars[i + 1..].iter().position(|c| *c == '}').map(|p| i + 1 + p);
                    let Some(end) = end else {
                        return Err(RecordError::illegal_argument("named capturing group is missing trailing '}'"));
                    };
                    let name: String = chars[i + 1..end].iter().collect();
                    if name.is_empty() {
                        return Err(RecordError::illegal_argument("named capturing group has 0 length name"));
                    }
                    if !regex.capture_names().any(|n| n == Some(name.as_str())) {
                        return Err(RecordError::illegal_argument(format!("No group with name {{{name}}}")));
                    }
                    out.push_str(caps.name(&name).map_or("", |m| m.as_str()));
                    i = end + 1;
                } else {
                    let Some(first) = next.to_digit(10) else {
                        return Err(RecordError::illegal_argument("Illegal group reference"));
                    };
                    let mut group = first as usize;
                    if group > group_count {
                        return Err(RecordError::index_out_of_bounds(format!("No group {group}")));
                    }
                    i += 1;
                    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                        let longer = group * 10 + d as usize;
                        if longer > group_count {
                            break;
                        }
                        group = longer;
                        i += 1;
                    }
                    out.push_str(caps.get(group).map_or("", |m| m.as_str()));
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_is_a_whole_match_and_replace_first_finds_the_first() {
        let p = JavaPattern::compile("my-prefix-.*").unwrap();
        assert!(p.matches("my-prefix-foo"));
        assert!(!p.matches("x-my-prefix-foo"));
        let lazy = JavaPattern::compile("(.*?)").unwrap();
        assert!(lazy.matches("abc"));
        assert_eq!(lazy.replace_first("abc", "x-$1").unwrap(), "x-abc");
        let alt = JavaPattern::compile("a|ab").unwrap();
        assert!(alt.matches("ab"), "matches() backtracks into the second alternative");
    }

    #[test]
    fn replacement_references_read_as_java_reads_them() {
        let p = JavaPattern::compile("(a)(b)(?<tail>c)").unwrap();
        assert_eq!(p.replace_first("abc", "$2$1${tail}\\$$10").unwrap(), "bac$a0");
        assert_eq!(p.replace_first("abc", "$4").unwrap_err().to_string(), "IndexOutOfBoundsException: No group 4");
        assert_eq!(
            p.replace_first("abc", "x$").unwrap_err().to_string(),
            "IllegalArgumentException: Illegal group reference: group index is missing"
        );
        let quoted = JavaPattern::compile(r"\Qa.b\E-(.*)").unwrap();
        assert!(quoted.matches("a.b-x"));
        assert!(!quoted.matches("axb-x"));
        assert!(JavaPattern::compile("[").is_err());
    }
}
