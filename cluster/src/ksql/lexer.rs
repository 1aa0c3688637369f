//! The tokens of ksqlDB's SQL (its ANTLR grammar `SqlBase.g4` in `ksqldb-parser`): identifiers
//! (unquoted ones are upper-cased, as ksqlDB's `ParserUtil.getIdentifierText` does; back-quoted
//! ones keep their case), single-quoted strings (`''` is a quote), numbers, and symbols.
//! Comments are `-- to the end of the line` and `/* ... */`, as in the grammar's
//! `SIMPLE_COMMENT` and `BRACKETED_COMMENT`. Every token carries its `line:column`.

use super::error::{KsqlError, Pos};

/// Statement text longer than this is refused before it is tokenized.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// An unquoted identifier or keyword, upper-cased.
    Word(String),
    /// A back-quoted identifier, as written.
    Quoted(String),
    Str(String),
    /// A number as written (`5`, `2.5`).
    Number(String),
    Symbol(&'static str),
    End,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

impl Token {
    /// How the token reads in an error message, as ANTLR quotes it (`'FROM'`, `<EOF>`).
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::Word(w) => format!("'{w}'"),
            Tok::Quoted(w) => format!("'`{w}`'"),
            Tok::Str(s) => format!("''{s}''"),
            Tok::Number(n) => format!("'{n}'"),
            Tok::Symbol(s) => format!("'{s}'"),
            Tok::End => "<EOF>".into(),
        }
    }
}

const SYMBOLS: [&str; 17] = ["<>", "!=", "<=", ">=", "(", ")", ",", ";", "*", "=", "<", ">", "+", "-", "/", "%", "."];

pub fn tokenize(text: &str) -> Result<Vec<Token>, KsqlError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(KsqlError::new(
            Pos { line: 1, column: 1 },
            format!("the statements are {} bytes long; ksim reads at most {MAX_TEXT_BYTES}", text.len()),
        ));
    }
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut column) = (0usize, 1u32, 1u32);
    // Advance over `n` characters, keeping line and column.
    let advance = |i: &mut usize, line: &mut u32, column: &mut u32, n: usize| {
        for _ in 0..n {
            if chars.get(*i) == Some(&'\n') {
                *line += 1;
                *column = 1;
            } else {
                *column += 1;
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, column };
        if c.is_whitespace() {
            advance(&mut i, &mut line, &mut column, 1);
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                advance(&mut i, &mut line, &mut column, 1);
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            advance(&mut i, &mut line, &mut column, 2);
            loop {
                if i >= chars.len() {
                    return Err(KsqlError::new(pos, "unterminated comment: `/*` has no `*/`"));
                }
                if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    advance(&mut i, &mut line, &mut column, 2);
                    break;
                }
                advance(&mut i, &mut line, &mut column, 1);
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '@') {
                advance(&mut i, &mut line, &mut column, 1);
            }
            let word: String = chars[start..i].iter().collect();
            tokens.push(Token { tok: Tok::Word(word.to_ascii_uppercase()), pos });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                advance(&mut i, &mut line, &mut column, 1);
            }
            if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                advance(&mut i, &mut line, &mut column, 1);
                while i < chars.len() && chars[i].is_ascii_digit() {
                    advance(&mut i, &mut line, &mut column, 1);
                }
            }
            tokens.push(Token { tok: Tok::Number(chars[start..i].iter().collect()), pos });
        } else if c == '\'' || c == '`' {
            advance(&mut i, &mut line, &mut column, 1);
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => {
                        let what = if c == '\'' { "string" } else { "quoted identifier" };
                        return Err(KsqlError::new(pos, format!("unterminated {what}: no closing {c}")));
                    }
                    Some(&q) if q == c => {
                        if chars.get(i + 1) == Some(&c) {
                            s.push(c);
                            advance(&mut i, &mut line, &mut column, 2);
                        } else {
                            advance(&mut i, &mut line, &mut column, 1);
                            break;
                        }
                    }
                    Some(&other) => {
                        s.push(other);
                        advance(&mut i, &mut line, &mut column, 1);
                    }
                }
            }
            tokens.push(Token { tok: if c == '\'' { Tok::Str(s) } else { Tok::Quoted(s) }, pos });
        } else if let Some(sym) =
            SYMBOLS.iter().find(|s| s.chars().zip(&chars[i..]).all(|(a, b)| a == *b) && chars.len() - i >= s.len())
        {
            advance(&mut i, &mut line, &mut column, sym.len());
            tokens.push(Token { tok: Tok::Symbol(sym), pos });
        } else {
            return Err(KsqlError::new(pos, format!("extraneous input '{c}'")));
        }
    }
    tokens.push(Token { tok: Tok::End, pos: Pos { line, column } });
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_upper_cased_and_positions_count_from_one() {
        let tokens = tokenize("select a,\n  `b` -- note\nFROM 'it''s' >= 2.5").unwrap();
        let toks: Vec<&Tok> = tokens.iter().map(|t| &t.tok).collect();
        assert_eq!(
            toks,
            [
                &Tok::Word("SELECT".into()),
                &Tok::Word("A".into()),
                &Tok::Symbol(","),
                &Tok::Quoted("b".into()),
                &Tok::Word("FROM".into()),
                &Tok::Str("it's".into()),
                &Tok::Symbol(">="),
                &Tok::Number("2.5".into()),
                &Tok::End
            ]
        );
        assert_eq!(tokens[3].pos, Pos { line: 2, column: 3 });
        assert_eq!(tokens[4].pos, Pos { line: 3, column: 1 });
    }

    #[test]
    fn an_unterminated_string_names_where_it_starts() {
        let err = tokenize("SELECT 'abc").unwrap_err();
        assert_eq!(err.pos, Pos { line: 1, column: 8 });
    }
}
