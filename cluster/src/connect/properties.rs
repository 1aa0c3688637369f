//! Java's `.properties` syntax, as `java.util.Properties.load` reads it: how connector
//! configurations are written for `connect-standalone` (and what people paste from docs).
//!
//! - A line is `key=value`, `key: value` or `key value`: the key ends at the first `=`, `:` or
//!   whitespace not escaped with `\`; whitespace around the separator is skipped, and one `=` or
//!   `:` after whitespace is the separator too (`key = value`). The value runs to the end of the
//!   line, trailing spaces included.
//! - A line whose first non-blank character is `#` or `!` is a comment; blank lines are skipped.
//! - A line ending in an odd number of backslashes continues on the next line, whose leading
//!   whitespace is dropped (`a=1,\` then `   2` is `a=1,2`).
//! - In keys and values, `\t \n \r \f` are escapes, `\uXXXX` is a UTF-16 code unit, and `\`
//!   before any other character is that character (`\=`, `\:`, `\ `, `\\`).
//! - A key given twice keeps its last value.
//!
//! One difference: `Properties.load(InputStream)` reads ISO-8859-1; ksim reads text (UTF-8).

use std::collections::BTreeMap;
use std::fmt;

/// One `key=value` of a file, with the line it starts on (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// A syntax error (only a malformed `\uXXXX` escape is one), at a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertiesError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Every entry of the text, in file order (repeated keys included).
pub fn parse(text: &str) -> Result<Vec<Entry>, PropertiesError> {
    let mut entries = Vec::new();
    for (line, logical) in logical_lines(text) {
        entries.push(split_entry(&logical, line)?);
    }
    Ok(entries)
}

/// The settings of the text: each key's last value.
pub fn to_map(entries: &[Entry]) -> BTreeMap<String, String> {
    entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect()
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// `Properties.LineReader`: logical lines (continuations joined, comments and blank lines
/// dropped), each with the number of the line it starts on. The text keeps its escapes.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    // Natural lines end at \n, \r or \r\n.
    let mut natural: Vec<&str> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(i) => {
                natural.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                natural.push(rest);
                rest = "";
            }
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < natural.len() {
        let start = i;
        let first = natural[i].trim_start_matches(is_blank);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut piece = first;
        loop {
            let trailing = piece.chars().rev().take_while(|c| *c == '\\').count();
            if trailing % 2 == 0 {
                logical.push_str(piece);
                break;
            }
            logical.push_str(&piece[..piece.len() - 1]);
            if i >= natural.len() {
                break;
            }
            piece = natural[i].trim_start_matches(is_blank);
            i += 1;
        }
        out.push((start + 1, logical));
    }
    out
}

/// `Properties.load0`: split a logical line into key and value, then unescape both.
fn split_entry(logical: &str, line: usize) -> Result<Entry, PropertiesError> {
    let chars: Vec<char> = logical.chars().collect();
    let mut key_len = 0;
    let mut value_start = chars.len();
    let mut has_separator = false;
    let mut preceding_backslash = false;
    while key_len < chars.len() {
        let c = chars[key_len];
        if c == '\\' {
            preceding_backslash = !preceding_backslash;
        } else if (c == '=' || c == ':') && !preceding_backslash {
            value_start = key_len + 1;
            has_separator = true;
            break;
        } else if is_blank(c) && !preceding_backslash {
            value_start = key_len + 1;
            break;
        } else {
            preceding_backslash = false;
        }
        key_len += 1;
    }
    while value_start < chars.len() {
        let c = chars[value_start];
        if !is_blank(c) {
            if !has_separator && (c == '=' || c == ':') {
                has_separator = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    let key: String = chars[..key_len].iter().collect();
    let value: String = chars[value_start.min(chars.len())..].iter().collect();
    Ok(Entry { key: unescape(&key, line)?, value: unescape(&value, line)?, line })
}

/// `Properties.loadConvert`.
fn unescape(text: &str, line: usize) -> Result<String, PropertiesError> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    let mut pending_high: Option<u16> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush_surrogate(&mut pending_high, line)?;
            out.push(c);
            continue;
        }
        let Some(escaped) = chars.next() else { break };
        if escaped == 'u' {
            let hex: String = chars.by_ref().take(4).collect();
            let unit = (hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                .then(|| u16::from_str_radix(&hex, 16).ok())
                .flatten()
                .ok_or_else(|| PropertiesError { line, message: "Malformed \\uxxxx encoding.".into() })?;
            match (pending_high.take(), unit) {
                (Some(high), 0xDC00..=0xDFFF) => {
                    out.extend(char::decode_utf16([high, unit]).map(|r| r.unwrap_or('\u{fffd}')))
                }
                (Some(high), _) => return Err(lone_surrogate(high, line)),
                (None, 0xD800..=0xDBFF) => pending_high = Some(unit),
                (None, 0xDC00..=0xDFFF) => return Err(lone_surrogate(unit, line)),
                (None, _) => out.push(char::from_u32(u32::from(unit)).expect("not a surrogate")),
            }
            continue;
        }
        flush_surrogate(&mut pending_high, line)?;
        out.push(match escaped {
            't' => '\t',
            'r' => '\r',
            'n' => '\n',
            'f' => '\u{c}',
            other => other,
        });
    }
    flush_surrogate(&mut pending_high, line)?;
    Ok(out)
}

fn flush_surrogate(pending: &mut Option<u16>, line: usize) -> Result<(), PropertiesError> {
    match pending.take() {
        Some(high) => Err(lone_surrogate(high, line)),
        None => Ok(()),
    }
}

fn lone_surrogate(unit: u16, line: usize) -> PropertiesError {
    PropertiesError {
        line,
        message: format!(
            "\\u{unit:04X} is half of a UTF-16 surrogate pair without its other half; ksim keeps text as UTF-8"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, usize)> {
        parse(text).unwrap().into_iter().map(|e| (e.key, e.value, e.line)).collect()
    }

    #[test]
    fn separators_comments_and_continuations() {
        let text = "# a comment\n! another\n\nname=sink\nkey : value  \nwhite space\n  indented = x\n\
                    list=a,\\\n     b,\\\n     c\nempty\nempty2=\nkey=again\n";
        assert_eq!(
            pairs(text),
            [
                ("name".into(), "sink".into(), 4),
                ("key".into(), "value  ".into(), 5),
                ("white".into(), "space".into(), 6),
                ("indented".into(), "x".into(), 7),
                ("list".into(), "a,b,c".into(), 8),
                ("empty".into(), "".into(), 11),
                ("empty2".into(), "".into(), 12),
                ("key".into(), "again".into(), 13),
            ]
        );
        assert_eq!(to_map(&parse(text).unwrap())["key"], "again");
    }

    #[test]
    fn escapes_in_keys_and_values() {
        assert_eq!(pairs(r"a\=b\:c\ d=x\ty\n\u0041\\"), [("a=b:c d".into(), "x\ty\nA\\".into(), 1)]);
        assert_eq!(pairs("k=\\uD83D\\uDE00"), [("k".into(), "\u{1F600}".into(), 1)]);
        assert_eq!(
            pairs("a=b\r\nc=d\re=f"),
            [("a".into(), "b".into(), 1), ("c".into(), "d".into(), 2), ("e".into(), "f".into(), 3)]
        );
        // An even number of trailing backslashes is escaped backslashes, not a continuation.
        assert_eq!(pairs("a=x\\\\\nb=y"), [("a".into(), "x\\".into(), 1), ("b".into(), "y".into(), 2)]);
        // A comment line does not continue.
        assert_eq!(pairs("# c \\\nb=y"), [("b".into(), "y".into(), 2)]);
    }

    #[test]
    fn a_malformed_unicode_escape_names_its_line() {
        let err = parse("ok=1\nbad=\\u12G4\n").unwrap_err();
        assert_eq!(err, PropertiesError { line: 2, message: "Malformed \\uxxxx encoding.".into() });
    }
}
