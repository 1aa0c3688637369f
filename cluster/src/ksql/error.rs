//! An error in the statements: where (`line:column` in the statement text, both from 1) and
//! ksqlDB's own message. ksqlDB prefixes some messages with `Line: 1, Col: 8: ` (its
//! `NodeLocation.asPrefix`); ksim gives every error its position the same way instead, once, at
//! the front: `line 1:8: SELECT column 'X' cannot be resolved.`

use std::fmt;

/// A position in the statement text; `line` and `column` count from 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KsqlError {
    pub pos: Pos,
    pub message: String,
}

impl KsqlError {
    pub fn new(pos: Pos, message: impl Into<String>) -> KsqlError {
        KsqlError { pos, message: message.into() }
    }
}

impl fmt::Display for KsqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.pos, self.message)
    }
}

impl std::error::Error for KsqlError {}
