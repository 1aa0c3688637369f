//! How a transform reads its settings: Kafka's `ConfigDef` (`clients/.../common/config/ConfigDef.java`)
//! cut down to the types transforms use (STRING, LIST, BOOLEAN), with its parsing rules and its
//! error messages word for word.
//!
//! - `ConfigDef.parseType`: a STRING is trimmed; a LIST is the trimmed text split on
//!   `\s*,\s*` (empty text is the empty list; `a,,b` keeps the empty item); a BOOLEAN is
//!   `true`/`false` in any case.
//! - `ConfigDef.parseValue`: a key with no default that is not set is "Missing required
//!   configuration ..."; then the key's validator sees the parsed value.
//! - `ConfigException(name, value, message)` reads "Invalid value V for configuration N: M", V in
//!   Java's `toString` (`[a, b]` for a list).

use std::collections::BTreeMap;
use std::fmt;

/// Kafka's `org.apache.kafka.common.config.ConfigException`: a configuration Kafka refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigException {
    pub message: String,
}

impl ConfigException {
    /// `new ConfigException(message)`.
    pub fn new(message: impl Into<String>) -> ConfigException {
        ConfigException { message: message.into() }
    }

    /// `new ConfigException(name, value, message)`.
    pub fn invalid(name: &str, value: &str, message: &str) -> ConfigException {
        ConfigException { message: format!("Invalid value {value} for configuration {name}: {message}") }
    }
}

impl fmt::Display for ConfigException {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Raw settings, key to text, as a `.properties` file gives them.
pub type Props = BTreeMap<String, String>;

/// `AbstractConfig.originalsWithPrefix(prefix)`: the settings under `prefix`, prefix removed.
pub fn with_prefix(props: &Props, prefix: &str) -> Props {
    props.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|rest| (rest.to_string(), v.clone()))).collect()
}

/// A `ConfigDef.Type` transforms use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    String,
    List,
    Boolean,
}

/// A key's default: `NO_DEFAULT_VALUE` (required), `null`, or a value.
#[derive(Clone, Copy, Debug)]
pub enum Default {
    Required,
    Null,
    EmptyList,
    Boolean(bool),
    String(&'static str),
}

/// A parsed setting.
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed {
    Null,
    String(String),
    List(Vec<String>),
    Boolean(bool),
}

impl Parsed {
    /// `String.valueOf(parsed)`, as `ConfigException` prints it.
    pub fn java_to_string(&self) -> String {
        match self {
            Parsed::Null => "null".into(),
            Parsed::String(s) => s.clone(),
            Parsed::List(items) => format!("[{}]", items.join(", ")),
            Parsed::Boolean(b) => b.to_string(),
        }
    }
}

/// A `ConfigDef.Validator`: the key's (display) name and its parsed value.
pub type Validator = fn(&str, &Parsed) -> Result<(), ConfigException>;

/// One `ConfigDef.define(...)`.
#[derive(Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub ty: Type,
    pub default: Default,
    pub validator: Option<Validator>,
}

impl Key {
    pub const fn new(name: &'static str, ty: Type, default: Default) -> Key {
        Key { name, ty, default, validator: None }
    }

    pub const fn validated(name: &'static str, ty: Type, default: Default, validator: Validator) -> Key {
        Key { name, ty, default, validator: Some(validator) }
    }
}

/// The settings a `ConfigDef` parsed, by key name.
#[derive(Clone, Debug, Default)]
pub struct Values {
    values: BTreeMap<&'static str, Parsed>,
}

impl Values {
    /// `getString`: `None` for null.
    pub fn string(&self, name: &str) -> Option<String> {
        match self.values.get(name) {
            Some(Parsed::String(s)) => Some(s.clone()),
            Some(Parsed::Null) => None,
            other => panic!("config key {name} is not a STRING: {other:?}"),
        }
    }

    /// `getList`.
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.values.get(name) {
            Some(Parsed::List(items)) => items.clone(),
            Some(Parsed::Null) => Vec::new(),
            other => panic!("config key {name} is not a LIST: {other:?}"),
        }
    }

    /// `getBoolean`.
    pub fn boolean(&self, name: &str) -> bool {
        match self.values.get(name) {
            Some(Parsed::Boolean(b)) => *b,
            other => panic!("config key {name} is not a BOOLEAN: {other:?}"),
        }
    }
}

/// `ConfigDef.parse(props)`, key by key in definition order (`ConfigDef` keeps its keys in a
/// `LinkedHashMap`), so the first bad key in that order is the one reported. `prefix` is put in
/// front of every key name in messages: a connector's enriched `ConfigDef` embeds a transform's
/// keys as `transforms.<alias>.<key>`.
pub fn parse(keys: &[Key], props: &Props, prefix: &str) -> Result<Values, ConfigException> {
    let mut values = Values::default();
    for key in keys {
        let name = format!("{prefix}{}", key.name);
        let parsed = match props.get(key.name) {
            Some(raw) => parse_type(&name, raw, key.ty)?,
            None => match key.default {
                Default::Required => {
                    return Err(ConfigException::new(format!(
                        "Missing required configuration \"{name}\" which has no default value."
                    )))
                }
                Default::Null => Parsed::Null,
                Default::EmptyList => Parsed::List(Vec::new()),
                Default::Boolean(b) => Parsed::Boolean(b),
                Default::String(s) => Parsed::String(s.to_string()),
            },
        };
        if let Some(validator) = key.validator {
            validator(&name, &parsed)?;
        }
        values.values.insert(key.name, parsed);
    }
    Ok(values)
}

/// `String.trim()`: drops every char up to U+0020 at both ends.
pub fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// `ConfigDef.parseType` for a text value.
pub fn parse_type(name: &str, raw: &str, ty: Type) -> Result<Parsed, ConfigException> {
    let trimmed = java_trim(raw);
    Ok(match ty {
        Type::String => Parsed::String(trimmed.to_string()),
        Type::Boolean => {
            if trimmed.eq_ignore_ascii_case("true") {
                Parsed::Boolean(true)
            } else if trimmed.eq_ignore_ascii_case("false") {
                Parsed::Boolean(false)
            } else {
                return Err(ConfigException::invalid(name, raw, "Expected value to be either true or false"));
            }
        }
        Type::List => Parsed::List(parse_list(trimmed)),
    })
}

/// A LIST's items: `COMMA_WITH_WHITESPACE.split(trimmed, -1)`, so `a, b,` is `[a, b, ]`.
pub fn parse_list(trimmed: &str) -> Vec<String> {
    if trimmed.is_empty() {
        return Vec::new();
    }
    let java_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r');
    trimmed.split(',').map(|item| item.trim_matches(java_space).to_string()).collect()
}

/// `String.split(":")`: the pieces, trailing empty pieces removed (`"a:"` is `[a]`, `":"` is `[]`).
pub fn java_split(s: &str, separator: char) -> Vec<&str> {
    if s.is_empty() {
        return vec![""];
    }
    let mut parts: Vec<&str> = s.split(separator).collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

/// `ConfigDef.NonEmptyString`.
pub fn non_empty_string(name: &str, value: &Parsed) -> Result<(), ConfigException> {
    match value {
        Parsed::String(s) if s.is_empty() => Err(ConfigException::invalid(name, "", "String must be non-empty")),
        _ => Ok(()),
    }
}

/// `NonEmptyListValidator` (connect/transforms/util).
pub fn non_empty_list(name: &str, value: &Parsed) -> Result<(), ConfigException> {
    match value {
        Parsed::List(items) if !items.is_empty() => Ok(()),
        other => Err(ConfigException::invalid(name, &other.java_to_string(), "Empty list")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_like_config_def() {
        assert_eq!(parse_list("a, b ,c"), ["a", "b", "c"]);
        assert_eq!(parse_list("a,,b,"), ["a", "", "b", ""]);
        assert!(parse_list("").is_empty());
        assert_eq!(java_split("a:b", ':'), ["a", "b"]);
        assert_eq!(java_split("a:", ':'), ["a"]);
        assert!(java_split(":", ':').is_empty());
        assert_eq!(java_split(":b", ':'), ["", "b"]);
    }

    #[test]
    fn missing_and_invalid_settings_read_as_kafka_words_them() {
        const KEYS: &[Key] = &[
            Key::validated("fields", Type::List, Default::Required, non_empty_list),
            Key::new("flag", Type::Boolean, Default::Boolean(true)),
        ];
        let props = Props::new();
        assert_eq!(
            parse(KEYS, &props, "transforms.m.").unwrap_err().message,
            "Missing required configuration \"transforms.m.fields\" which has no default value."
        );
        let props: Props = [("fields".to_string(), " ".to_string())].into();
        assert_eq!(
            parse(KEYS, &props, "").unwrap_err().message,
            "Invalid value [] for configuration fields: Empty list"
        );
        let props: Props = [("fields".to_string(), "a".to_string()), ("flag".to_string(), "yes".to_string())].into();
        assert_eq!(
            parse(KEYS, &props, "").unwrap_err().message,
            "Invalid value yes for configuration flag: Expected value to be either true or false"
        );
    }
}
