//! `ExtractField$Key` / `ExtractField$Value` (ExtractField.java): replace the key or value by one
//! of its fields (null when the field is absent; a null key or value stays null).
//!
//! `field.syntax.version` (KIP-821): `V1` (the default) takes `field` as one field name, dots and
//! all; `V2` reads it as a dotted path into nested maps, with backticks around a name that holds
//! dots (`` `a.b`.c ``) and `\` before a backtick that belongs to a name
//! (`field/SingleFieldPath.java`).

use crate::connect::smt::config::{ConfigException, Default, Key, Parsed, Type, Values};
use crate::connect::smt::data::Value;
use crate::connect::smt::error::RecordError;
use crate::connect::smt::transforms::require_map;

pub const CONFIG: &[Key] = &[
    Key::new("field", Type::String, Default::Required),
    Key::new("replace.null.with.default", Type::Boolean, Default::Boolean(true)),
    // FieldSyntaxVersion.appendConfigTo.
    Key::validated("field.syntax.version", Type::String, Default::String("V1"), validate_syntax_version),
];

const PURPOSE: &str = "field extraction";

/// `ConfigDef.CaseInsensitiveValidString.in("V1", "V2")`.
fn validate_syntax_version(name: &str, value: &Parsed) -> Result<(), ConfigException> {
    match value {
        Parsed::String(s) if s.eq_ignore_ascii_case("V1") || s.eq_ignore_ascii_case("V2") => Ok(()),
        other => Err(ConfigException::invalid(
            name,
            &other.java_to_string(),
            "String must be one of (case insensitive): V1, V2",
        )),
    }
}

#[derive(Clone, Debug)]
pub struct ExtractField {
    /// The path's steps: one for V1.
    steps: Vec<String>,
}

impl ExtractField {
    pub fn configure(values: &Values) -> Result<ExtractField, ConfigException> {
        let field = values.string("field").unwrap_or_default();
        let v2 = values.string("field.syntax.version").is_some_and(|v| v.eq_ignore_ascii_case("V2"));
        Ok(ExtractField { steps: if v2 { path_v2(&field)? } else { vec![field] } })
    }

    pub fn apply(&self, value: &Value) -> Result<Value, RecordError> {
        if *value == Value::Null {
            return Ok(Value::Null);
        }
        // SingleFieldPath.valueFrom(Map).
        let mut current = require_map(value, PURPOSE)?;
        let (last, path) = self.steps.split_last().expect("a field path has at least one step");
        for step in path {
            match current.get(step) {
                None | Some(Value::Null) => return Ok(Value::Null),
                Some(inner) => current = require_map(inner, "nested field access")?,
            }
        }
        Ok(current.get_or_null(last))
    }
}

/// `SingleFieldPath.buildFieldPathV2`.
fn path_v2(path: &str) -> Result<Vec<String>, ConfigException> {
    let chars: Vec<char> = path.chars().collect();
    let incomplete = |at: usize| {
        ConfigException::new(format!(
            "Incomplete backtick pair in path: [{path}], consider adding a backslash before backtick at position {at} to escape it"
        ))
    };
    let find = |from: usize, c: char| chars[from.min(chars.len())..].iter().position(|x| *x == c).map(|p| p + from);
    let mut steps = Vec::new();
    let mut idx = 0;
    while idx < chars.len() {
        if chars[idx] != '`' {
            match find(idx, '.') {
                Some(dot) => {
                    steps.push(chars[idx..dot].iter().collect());
                    idx = dot + 1;
                }
                None => {
                    steps.push(chars[idx..].iter().collect());
                    idx = chars.len();
                }
            }
            continue;
        }
        let backtick_at = idx;
        idx += 1;
        let mut field = String::new();
        let mut start = idx;
        loop {
            let Some(close) = find(idx, '`') else { return Err(incomplete(backtick_at)) };
            idx = close;
            let escaped = chars[idx - 1] == '\\';
            if idx + 1 >= chars.len() {
                if escaped {
                    return Err(incomplete(backtick_at));
                }
                field.extend(&chars[start..idx]);
                steps.push(field);
                idx += 1;
                break;
            }
            if chars[idx + 1] != '.' {
                idx += 1;
                continue;
            }
            if escaped {
                field.extend(&chars[start..idx - 1]);
                field.push('`');
                idx += 1;
                start = idx;
                continue;
            }
            field.extend(&chars[start..idx]);
            steps.push(field);
            idx += 2;
            break;
        }
    }
    if path.ends_with('.') {
        steps.push(String::new());
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_paths_split_on_dots_outside_backticks() {
        // FieldPathNotationTest-style cases.
        assert_eq!(path_v2("foo").unwrap(), ["foo"]);
        assert_eq!(path_v2("foo.bar").unwrap(), ["foo", "bar"]);
        assert_eq!(path_v2("`foo.bar`.baz").unwrap(), ["foo.bar", "baz"]);
        assert_eq!(path_v2("foo.`bar.baz`").unwrap(), ["foo", "bar.baz"]);
        assert_eq!(path_v2("foo.").unwrap(), ["foo", ""]);
        assert_eq!(path_v2("`foo\\`.bar`.x").unwrap(), ["foo`.bar", "x"]);
        assert_eq!(
            path_v2("`foo.bar").unwrap_err().message,
            "Incomplete backtick pair in path: [`foo.bar], consider adding a backslash before backtick at position 0 to escape it"
        );
    }
}
