//! Where a field is in a scenario's text, for errors found after parsing.
//!
//! serde gives a parsed scenario no positions, so an error found while resolving it (a config
//! Kafka refuses, say) knows its field path (`clients[2].configs["session.timeout.ms"]`) but not
//! its line. This module reads the RON text again, just far enough to follow that path: a small
//! tokenizer (strings, raw strings, chars, comments, identifiers, punctuation) and a walk that
//! skips whole values. It never fails loudly: a path it cannot follow gives the position of the
//! deepest part it found, or none.

/// One step of a path into a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A struct field: `clients`, `configs`.
    Field(String),
    /// An element of a list: `[2]`.
    Index(usize),
    /// A map key written as a string: `"session.timeout.ms"`.
    Key(String),
}

/// A path from the top of the file.
pub type Path = Vec<Step>;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Punct(char),
    /// A number, a char literal, or anything else that is one value.
    Atom,
}

/// 1-based (line, column) of each token.
type Spanned = (Token, (usize, usize));

fn tokenize(text: &str) -> Vec<Spanned> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    // Advance over `n` chars, keeping line and column.
    let advance = |i: &mut usize, line: &mut usize, col: &mut usize, n: usize| {
        for _ in 0..n {
            if *i >= chars.len() {
                return;
            }
            if chars[*i] == '\n' {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let at = (line, col);
        if c.is_whitespace() {
            advance(&mut i, &mut line, &mut col, 1);
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                advance(&mut i, &mut line, &mut col, 1);
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            // RON block comments nest.
            let mut depth = 0usize;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    advance(&mut i, &mut line, &mut col, 2);
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    advance(&mut i, &mut line, &mut col, 2);
                    if depth == 0 {
                        break;
                    }
                } else {
                    advance(&mut i, &mut line, &mut col, 1);
                }
            }
        } else if c == '"' {
            let mut value = String::new();
            advance(&mut i, &mut line, &mut col, 1);
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    value.push(chars[i + 1]);
                    advance(&mut i, &mut line, &mut col, 2);
                } else {
                    value.push(chars[i]);
                    advance(&mut i, &mut line, &mut col, 1);
                }
            }
            advance(&mut i, &mut line, &mut col, 1);
            tokens.push((Token::Str(value), at));
        } else if c == 'r' && matches!(chars.get(i + 1), Some('"') | Some('#')) {
            // A raw string: r"..." or r#"..."#.
            let mut hashes = 0;
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                advance(&mut i, &mut line, &mut col, 1);
                tokens.push((Token::Ident("r".into()), at));
                continue;
            }
            let opening = j + 1 - i;
            advance(&mut i, &mut line, &mut col, opening);
            let mut value = String::new();
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                    advance(&mut i, &mut line, &mut col, 1 + hashes);
                    break;
                }
                value.push(chars[i]);
                advance(&mut i, &mut line, &mut col, 1);
            }
            tokens.push((Token::Str(value), at));
        } else if c == '\'' {
            advance(&mut i, &mut line, &mut col, 1);
            while i < chars.len() && chars[i] != '\'' {
                let step = if chars[i] == '\\' { 2 } else { 1 };
                advance(&mut i, &mut line, &mut col, step);
            }
            advance(&mut i, &mut line, &mut col, 1);
            tokens.push((Token::Atom, at));
        } else if c.is_alphabetic() || c == '_' {
            let mut word = String::new();
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                word.push(chars[i]);
                advance(&mut i, &mut line, &mut col, 1);
            }
            tokens.push((Token::Ident(word), at));
        } else if "()[]{}:,".contains(c) {
            advance(&mut i, &mut line, &mut col, 1);
            tokens.push((Token::Punct(c), at));
        } else {
            // A number (with sign, point, exponent) or a stray character: one atom.
            let ends_atom = |i: usize| {
                i >= chars.len()
                    || chars[i].is_whitespace()
                    || "()[]{}:,\"'".contains(chars[i])
                    || (chars[i] == '/' && matches!(chars.get(i + 1), Some('/') | Some('*')))
            };
            while !ends_atom(i) {
                advance(&mut i, &mut line, &mut col, 1);
            }
            tokens.push((Token::Atom, at));
        }
    }
    tokens
}

/// The index just past the value starting at `at` (an optional name, then a bracketed group, or
/// one token).
fn skip_value(tokens: &[Spanned], mut at: usize) -> usize {
    if matches!(tokens.get(at), Some((Token::Ident(_), _))) {
        at += 1;
        if !matches!(tokens.get(at), Some((Token::Punct('('), _))) {
            return at;
        }
    }
    match tokens.get(at) {
        Some((Token::Punct(open @ ('(' | '[' | '{')), _)) => {
            let _ = open;
            let mut depth = 0usize;
            while at < tokens.len() {
                match tokens[at].0 {
                    Token::Punct('(' | '[' | '{') => depth += 1,
                    Token::Punct(')' | ']' | '}') => {
                        depth -= 1;
                        if depth == 0 {
                            return at + 1;
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            at
        }
        Some(_) => at + 1,
        None => at,
    }
}

/// The index of the first token inside the group of the value at `at` (after an optional name),
/// if that value is a group opened by `open`.
fn enter(tokens: &[Spanned], mut at: usize, open: char) -> Option<usize> {
    if matches!(tokens.get(at), Some((Token::Ident(_), _))) {
        at += 1;
    }
    matches!(tokens.get(at), Some((Token::Punct(c), _)) if *c == open).then_some(at + 1)
}

/// The index of the value of entry `want` in the group starting at `at` (entries are
/// `key: value` separated by commas, up to the closing bracket).
fn entry(tokens: &[Spanned], mut at: usize, want: &Step) -> Option<usize> {
    loop {
        match tokens.get(at) {
            None | Some((Token::Punct(')' | ']' | '}'), _)) => return None,
            Some((Token::Punct(','), _)) => at += 1,
            Some((key, _)) => {
                let matched = match (key, want) {
                    (Token::Ident(name), Step::Field(f)) => name == f,
                    (Token::Str(name), Step::Key(k)) => name == k,
                    _ => false,
                };
                let key_at = at;
                at = skip_value(tokens, at);
                if !matches!(tokens.get(at), Some((Token::Punct(':'), _))) {
                    return None;
                }
                if matched {
                    return Some(key_at);
                }
                at = skip_value(tokens, at + 1);
            }
        }
    }
}

/// The index of the `n`th element of the list starting at `at`.
fn element(tokens: &[Spanned], mut at: usize, n: usize) -> Option<usize> {
    let mut index = 0;
    loop {
        match tokens.get(at) {
            None | Some((Token::Punct(']'), _)) => return None,
            Some((Token::Punct(','), _)) => at += 1,
            Some(_) => {
                if index == n {
                    return Some(at);
                }
                index += 1;
                at = skip_value(tokens, at);
            }
        }
    }
}

/// The 1-based (line, column) of the deepest step of `path` found in `text`: the key of a field
/// or map entry, the start of a list element.
pub fn locate(text: &str, path: &[Step]) -> Option<(usize, usize)> {
    let tokens = tokenize(text);
    // The top-level value: `Scenario(...)` or `(...)`.
    let mut value = 0;
    let mut found = None;
    for step in path {
        let next = match step {
            Step::Field(_) => enter(&tokens, value, '(').and_then(|inside| entry(&tokens, inside, step)),
            Step::Key(_) => enter(&tokens, value, '{').and_then(|inside| entry(&tokens, inside, step)),
            Step::Index(n) => enter(&tokens, value, '[').and_then(|inside| element(&tokens, inside, *n)),
        };
        let Some(at) = next else { break };
        found = Some(tokens[at].1);
        value = match step {
            // The value after `key:`.
            Step::Field(_) | Step::Key(_) => skip_value(&tokens, at) + 1,
            Step::Index(_) => at,
        };
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r##"// a comment with "quotes" and (brackets
Scenario(
    title: "t (not a group",
    /* a block /* nested */ comment */
    cluster: (brokers: [1, 2], configs: {"min.insync.replicas": 2}),
    clients: [
        (name: "a", app: Producer(topic: "x", records: 3), configs: {"acks": 1}),
        (name: "b", app: GroupConsumer(topics: ["x"]),
         configs: {
            "group.id": r#"g"#,
            "session.timeout.ms": 5000,
         }),
    ],
)"##;

    fn field(name: &str) -> Step {
        Step::Field(name.into())
    }

    fn key(name: &str) -> Step {
        Step::Key(name.into())
    }

    #[test]
    fn finds_fields_list_elements_and_map_keys() {
        assert_eq!(locate(TEXT, &[field("cluster"), field("configs"), key("min.insync.replicas")]), Some((5, 42)));
        assert_eq!(locate(TEXT, &[field("clients"), Step::Index(0), field("configs"), key("acks")]), Some((7, 70)));
        assert_eq!(
            locate(TEXT, &[field("clients"), Step::Index(1), field("configs"), key("session.timeout.ms")]),
            Some((11, 13))
        );
    }

    #[test]
    fn a_path_it_cannot_follow_gives_the_deepest_part_found() {
        // No such key: the configs field of the second client.
        assert_eq!(locate(TEXT, &[field("clients"), Step::Index(1), field("configs"), key("acks")]), Some((9, 10)));
        assert_eq!(locate(TEXT, &[field("clients"), Step::Index(5)]), Some((6, 5)));
        assert_eq!(locate(TEXT, &[field("nothing")]), None);
        assert_eq!(locate("", &[field("clients")]), None);
        assert_eq!(locate("((((", &[field("clients"), Step::Index(0)]), None);
    }
}
