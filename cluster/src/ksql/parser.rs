//! A recursive-descent parser for ksim's subset of ksqlDB's grammar (`SqlBase.g4` in
//! `ksqldb-parser`). Clause order is the grammar's: `SELECT ... FROM ... [WINDOW ...] [WHERE ...]
//! [GROUP BY ...] [HAVING ...] [EMIT CHANGES|FINAL]`, each statement ended by `;` (the grammar's
//! `singleStatement: statement ';'`). Operator precedence is the grammar's too: `OR` < `AND` <
//! `NOT` < comparison < `+ -` < `* / %` < unary minus.
//!
//! Syntax errors read as ANTLR's do in ksqlDB (`mismatched input 'FROM' expecting ...`); the list
//! of what was expected is ksim's, shorter than ANTLR's.

use super::ast::*;
use super::error::{KsqlError, Pos};
use super::lexer::{tokenize, Tok, Token};
use super::value::{SqlType, Value};

/// Statements per text, and nesting depth of expressions: bounds on the work a text can ask for.
const MAX_STATEMENTS: usize = 1000;
const MAX_DEPTH: usize = 64;

pub fn parse(text: &str) -> Result<Vec<Statement>, KsqlError> {
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, at: 0, depth: 0 };
    let mut statements = Vec::new();
    while p.peek().tok != Tok::End {
        if statements.len() == MAX_STATEMENTS {
            return Err(KsqlError::new(p.peek().pos, format!("more than {MAX_STATEMENTS} statements")));
        }
        statements.push(p.statement()?);
        p.expect_symbol(";")?;
    }
    if statements.is_empty() {
        return Err(KsqlError::new(p.peek().pos, "no statement: expected CREATE or SELECT"));
    }
    Ok(statements)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

fn mismatched(token: &Token, expecting: &str) -> KsqlError {
    KsqlError::new(token.pos, format!("mismatched input {} expecting {expecting}", token.describe()))
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at]
    }

    fn bump(&mut self) -> Token {
        let t = self.tokens[self.at].clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        t
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(w) if w == word)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.is_word(word) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_word(&mut self, word: &str) -> Result<Pos, KsqlError> {
        if self.is_word(word) {
            Ok(self.bump().pos)
        } else {
            Err(mismatched(self.peek(), &format!("'{word}'")))
        }
    }

    fn is_symbol(&self, sym: &str) -> bool {
        matches!(&self.peek().tok, Tok::Symbol(s) if *s == sym)
    }

    fn eat_symbol(&mut self, sym: &str) -> bool {
        if self.is_symbol(sym) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_symbol(&mut self, sym: &str) -> Result<Pos, KsqlError> {
        if self.is_symbol(sym) {
            Ok(self.bump().pos)
        } else {
            Err(mismatched(self.peek(), &format!("'{sym}'")))
        }
    }

    fn identifier(&mut self) -> Result<Ident, KsqlError> {
        let token = self.peek().clone();
        match token.tok {
            Tok::Word(w) if !is_reserved(&w) => {
                self.bump();
                Ok(Ident { name: w, pos: token.pos })
            }
            Tok::Quoted(w) => {
                self.bump();
                Ok(Ident { name: w, pos: token.pos })
            }
            _ => Err(mismatched(&token, "an identifier")),
        }
    }

    fn statement(&mut self) -> Result<Statement, KsqlError> {
        let pos = self.peek().pos;
        if self.is_word("SELECT") {
            return Ok(Statement::Select { query: self.query()?, pos });
        }
        if !self.eat_word("CREATE") {
            return Err(mismatched(self.peek(), "'CREATE' or 'SELECT'"));
        }
        self.eat_word("OR").then(|| self.expect_word("REPLACE")).transpose()?;
        let kind = if self.eat_word("STREAM") {
            SourceKind::Stream
        } else if self.eat_word("TABLE") {
            SourceKind::Table
        } else {
            return Err(mismatched(self.peek(), "'STREAM' or 'TABLE'"));
        };
        if self.is_word("IF") {
            self.bump();
            self.expect_word("NOT")?;
            self.expect_word("EXISTS")?;
        }
        let name = self.identifier()?;
        let columns = if self.is_symbol("(") { Some(self.column_defs()?) } else { None };
        let props = if self.eat_word("WITH") { self.properties()? } else { Vec::new() };
        if let Some(columns) = columns {
            return Ok(Statement::CreateSource { kind, name, columns, props, pos });
        }
        if self.eat_word("AS") {
            let query = self.query()?;
            return Ok(Statement::CreateAsSelect { kind, name, props, query, pos });
        }
        Err(mismatched(self.peek(), "'(' or 'AS'"))
    }

    fn column_defs(&mut self) -> Result<Vec<ColumnDef>, KsqlError> {
        self.expect_symbol("(")?;
        let mut columns = Vec::new();
        loop {
            let name = self.identifier()?;
            let type_token = self.bump();
            let ty = match &type_token.tok {
                Tok::Word(w) => SqlType::from_name(w).ok_or_else(|| {
                    KsqlError::new(
                        type_token.pos,
                        format!("Unknown type: {w} (ksim models INT, BIGINT, DOUBLE, STRING, VARCHAR and BOOLEAN)"),
                    )
                })?,
                _ => return Err(mismatched(&type_token, "a type")),
            };
            let key = if self.eat_word("PRIMARY") {
                self.expect_word("KEY")?;
                KeyConstraint::PrimaryKey
            } else if self.eat_word("KEY") {
                KeyConstraint::Key
            } else {
                KeyConstraint::None
            };
            columns.push(ColumnDef { name, ty, key });
            if !self.eat_symbol(",") {
                break;
            }
        }
        self.expect_symbol(")")?;
        Ok(columns)
    }

    fn properties(&mut self) -> Result<Vec<Property>, KsqlError> {
        self.expect_symbol("(")?;
        let mut props = Vec::new();
        loop {
            let name = self.identifier()?;
            let name = Ident { name: name.name.to_ascii_uppercase(), pos: name.pos };
            self.expect_symbol("=")?;
            let token = self.bump();
            let value = match &token.tok {
                Tok::Str(s) => Value::String(s.clone()),
                Tok::Number(n) => n.parse::<i64>().map(Value::Int).map_err(|_| mismatched(&token, "a whole number"))?,
                Tok::Word(w) if w == "TRUE" || w == "FALSE" => Value::Boolean(w == "TRUE"),
                _ => return Err(mismatched(&token, "a literal")),
            };
            props.push(Property { pos: name.pos, name, value });
            if !self.eat_symbol(",") {
                break;
            }
        }
        self.expect_symbol(")")?;
        Ok(props)
    }

    fn query(&mut self) -> Result<Query, KsqlError> {
        let pos = self.expect_word("SELECT")?;
        let mut items = Vec::new();
        loop {
            if self.is_symbol("*") {
                items.push(SelectItem::All(self.bump().pos));
            } else {
                let expr = self.expr()?;
                // `expr AS alias`, or `expr alias` (the grammar's `AS?`).
                self.eat_word("AS");
                let alias = match &self.peek().tok {
                    Tok::Word(w) if !is_reserved(w) => Some(self.identifier()?),
                    Tok::Quoted(_) => Some(self.identifier()?),
                    _ => None,
                };
                items.push(SelectItem::Expr { expr, alias });
            }
            if !self.eat_symbol(",") {
                break;
            }
        }
        self.expect_word("FROM")?;
        let from = self.identifier()?;
        let from_alias = self.alias()?;
        let join = self.join()?;
        let window = if self.eat_word("WINDOW") { Some(self.window()?) } else { None };
        let where_ = if self.eat_word("WHERE") { Some(self.expr()?) } else { None };
        let mut group_by = Vec::new();
        if self.eat_word("GROUP") {
            self.expect_word("BY")?;
            loop {
                group_by.push(self.expr()?);
                if !self.eat_symbol(",") {
                    break;
                }
            }
        }
        let having = if self.eat_word("HAVING") { Some(self.expr()?) } else { None };
        let emit = if self.is_word("EMIT") {
            let emit_pos = self.bump().pos;
            if self.eat_word("CHANGES") {
                Some((Emit::Changes, emit_pos))
            } else if self.eat_word("FINAL") {
                Some((Emit::Final, emit_pos))
            } else {
                return Err(mismatched(self.peek(), "'CHANGES' or 'FINAL'"));
            }
        } else {
            None
        };
        Ok(Query { items, from, from_alias, join, window, where_, group_by, having, emit, pos })
    }

    /// `[AS] alias` after a source name (the grammar's `aliasedRelation`).
    fn alias(&mut self) -> Result<Option<Ident>, KsqlError> {
        if self.eat_word("AS") {
            return Ok(Some(self.identifier()?));
        }
        match &self.peek().tok {
            Tok::Word(w) if !is_reserved(w) => Ok(Some(self.identifier()?)),
            Tok::Quoted(_) => Ok(Some(self.identifier()?)),
            _ => Ok(None),
        }
    }

    /// `[INNER | LEFT [OUTER]] JOIN source [AS] alias ON a = b` (the grammar's `joinRelation`
    /// with a `joinCriteria`); `WITHIN` (a stream-stream join's window) is not modeled.
    fn join(&mut self) -> Result<Option<JoinClause>, KsqlError> {
        let pos = self.peek().pos;
        let kind = if self.eat_word("LEFT") {
            self.eat_word("OUTER");
            JoinKind::Left
        } else if self.eat_word("INNER") || self.is_word("JOIN") {
            JoinKind::Inner
        } else if self.is_word("RIGHT") || self.is_word("FULL") {
            return Err(KsqlError::new(
                pos,
                "ksim models a stream-table INNER or LEFT JOIN; RIGHT and FULL OUTER joins are not modeled",
            ));
        } else {
            return Ok(None);
        };
        self.expect_word("JOIN")?;
        let right = self.identifier()?;
        let right_alias = self.alias()?;
        if self.is_word("WITHIN") {
            return Err(KsqlError::new(
                self.peek().pos,
                "ksim models stream-table joins; a stream-stream join's WITHIN window is not modeled",
            ));
        }
        self.expect_word("ON")?;
        let on = self.expr()?;
        let Expr::Binary { op: BinaryOp::Eq, left, right: other, .. } = on else {
            // ksqlDB's `AstBuilder.visitJoinRelation`: only equality conditions.
            return Err(KsqlError::new(
                on.pos(),
                format!("Unsupported join expression: {on}. Only equality conditions on columns are supported"),
            ));
        };
        Ok(Some(JoinClause { kind, right, right_alias, on: (*left, *other), pos }))
    }

    fn window(&mut self) -> Result<WindowClause, KsqlError> {
        let pos = self.peek().pos;
        let kind = if self.eat_word("TUMBLING") {
            WindowKind::Tumbling
        } else if self.eat_word("HOPPING") {
            WindowKind::Hopping
        } else if self.is_word("SESSION") {
            return Err(KsqlError::new(
                pos,
                "ksim models TUMBLING and HOPPING windows; SESSION windows are not modeled",
            ));
        } else {
            return Err(mismatched(self.peek(), "'TUMBLING' or 'HOPPING'"));
        };
        self.expect_symbol("(")?;
        self.expect_word("SIZE")?;
        let size = self.duration()?;
        let mut advance = None;
        if kind == WindowKind::Hopping {
            self.expect_symbol(",")?;
            self.expect_word("ADVANCE")?;
            self.expect_word("BY")?;
            advance = Some(self.duration()?);
        }
        let (mut retention, mut grace) = (None, None);
        while self.eat_symbol(",") {
            if retention.is_none() && grace.is_none() && self.eat_word("RETENTION") {
                retention = Some(self.duration()?);
            } else if grace.is_none() && self.eat_word("GRACE") {
                self.expect_word("PERIOD")?;
                grace = Some(self.duration()?);
            } else {
                return Err(mismatched(self.peek(), if grace.is_none() { "'RETENTION' or 'GRACE'" } else { "')'" }));
            }
        }
        self.expect_symbol(")")?;
        Ok(WindowClause { kind, size, advance, retention, grace, pos })
    }

    /// `number unit`, the grammar's `number windowUnit`: units singular or plural.
    fn duration(&mut self) -> Result<Duration, KsqlError> {
        let token = self.bump();
        let Tok::Number(n) = &token.tok else { return Err(mismatched(&token, "a number")) };
        let count: u64 = n.parse().map_err(|_| mismatched(&token, "a whole number"))?;
        let unit = self.bump();
        let ms_per = match &unit.tok {
            Tok::Word(w) => match w.trim_end_matches('S') {
                "MILLISECOND" => 1,
                "SECOND" => 1000,
                "MINUTE" => 60_000,
                "HOUR" => 3_600_000,
                "DAY" => 86_400_000,
                _ => return Err(mismatched(&unit, "a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")),
            },
            _ => return Err(mismatched(&unit, "a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")),
        };
        let ms = count
            .checked_mul(ms_per)
            .filter(|ms| *ms <= i64::MAX as u64)
            .ok_or_else(|| KsqlError::new(token.pos, format!("{n} {} is too long a duration", word_of(&unit))))?;
        Ok(Duration { ms, pos: token.pos })
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Parser) -> Result<T, KsqlError>) -> Result<T, KsqlError> {
        if self.depth >= MAX_DEPTH {
            return Err(KsqlError::new(self.peek().pos, format!("expression nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn expr(&mut self) -> Result<Expr, KsqlError> {
        self.nested(|p| p.or())
    }

    fn or(&mut self) -> Result<Expr, KsqlError> {
        let mut left = self.and()?;
        while self.is_word("OR") {
            let pos = self.bump().pos;
            let right = self.and()?;
            left = Expr::Binary { op: BinaryOp::Or, left: Box::new(left), right: Box::new(right), pos };
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, KsqlError> {
        let mut left = self.not()?;
        while self.is_word("AND") {
            let pos = self.bump().pos;
            let right = self.not()?;
            left = Expr::Binary { op: BinaryOp::And, left: Box::new(left), right: Box::new(right), pos };
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, KsqlError> {
        if self.is_word("NOT") {
            let pos = self.bump().pos;
            let inner = self.nested(|p| p.not())?;
            return Ok(Expr::Not(Box::new(inner), pos));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, KsqlError> {
        let left = self.additive()?;
        if self.is_word("IS") {
            let pos = self.bump().pos;
            let negated = self.eat_word("NOT");
            self.expect_word("NULL")?;
            return Ok(Expr::IsNull { expr: Box::new(left), negated, pos });
        }
        let op = match &self.peek().tok {
            Tok::Symbol("=") => BinaryOp::Eq,
            Tok::Symbol("<>") | Tok::Symbol("!=") => BinaryOp::Ne,
            Tok::Symbol("<") => BinaryOp::Lt,
            Tok::Symbol("<=") => BinaryOp::Le,
            Tok::Symbol(">") => BinaryOp::Gt,
            Tok::Symbol(">=") => BinaryOp::Ge,
            _ => return Ok(left),
        };
        let pos = self.bump().pos;
        let right = self.additive()?;
        Ok(Expr::Binary { op, left: Box::new(left), right: Box::new(right), pos })
    }

    fn additive(&mut self) -> Result<Expr, KsqlError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match &self.peek().tok {
                Tok::Symbol("+") => BinaryOp::Add,
                Tok::Symbol("-") => BinaryOp::Sub,
                _ => return Ok(left),
            };
            let pos = self.bump().pos;
            let right = self.multiplicative()?;
            left = Expr::Binary { op, left: Box::new(left), right: Box::new(right), pos };
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, KsqlError> {
        let mut left = self.unary()?;
        loop {
            let op = match &self.peek().tok {
                Tok::Symbol("*") => BinaryOp::Mul,
                Tok::Symbol("/") => BinaryOp::Div,
                Tok::Symbol("%") => BinaryOp::Mod,
                _ => return Ok(left),
            };
            let pos = self.bump().pos;
            let right = self.unary()?;
            left = Expr::Binary { op, left: Box::new(left), right: Box::new(right), pos };
        }
    }

    fn unary(&mut self) -> Result<Expr, KsqlError> {
        if self.is_symbol("-") {
            let pos = self.bump().pos;
            let inner = self.nested(|p| p.unary())?;
            return Ok(Expr::Neg(Box::new(inner), pos));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, KsqlError> {
        let token = self.peek().clone();
        match &token.tok {
            Tok::Symbol("(") => {
                self.bump();
                let inner = self.expr()?;
                self.expect_symbol(")")?;
                Ok(inner)
            }
            Tok::Number(n) => {
                self.bump();
                let value = if n.contains('.') {
                    Value::Double(n.parse().map_err(|_| mismatched(&token, "a number"))?)
                } else {
                    Value::Int(
                        n.parse()
                            .map_err(|_| KsqlError::new(token.pos, format!("{n} is out of range for a BIGINT")))?,
                    )
                };
                Ok(Expr::Literal(value, token.pos))
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::Literal(Value::String(s.clone()), token.pos))
            }
            Tok::Word(w) if w == "TRUE" || w == "FALSE" => {
                self.bump();
                Ok(Expr::Literal(Value::Boolean(w == "TRUE"), token.pos))
            }
            Tok::Word(w) if w == "NULL" => {
                self.bump();
                Ok(Expr::Literal(Value::Null, token.pos))
            }
            Tok::Word(_) | Tok::Quoted(_) => {
                let name = self.identifier()?;
                if self.eat_symbol(".") {
                    let column = self.identifier()?;
                    return Ok(Expr::Qualified(name, column));
                }
                if !self.is_symbol("(") {
                    return Ok(Expr::Column(name));
                }
                self.bump();
                if self.eat_symbol("*") {
                    self.expect_symbol(")")?;
                    return Ok(Expr::Call { name, args: Vec::new(), star: true });
                }
                let mut args = Vec::new();
                if !self.is_symbol(")") {
                    loop {
                        args.push(self.expr()?);
                        if !self.eat_symbol(",") {
                            break;
                        }
                    }
                }
                self.expect_symbol(")")?;
                Ok(Expr::Call { name, args, star: false })
            }
            _ => Err(mismatched(&token, "an expression")),
        }
    }
}

fn word_of(token: &Token) -> String {
    match &token.tok {
        Tok::Word(w) | Tok::Quoted(w) => w.clone(),
        _ => token.describe(),
    }
}

/// Words that end an expression or a select item, so they cannot be an unquoted alias or name.
/// (A subset of the grammar's reserved words: those this subset's clauses start with.)
fn is_reserved(word: &str) -> bool {
    matches!(
        word,
        "SELECT"
            | "FROM"
            | "WHERE"
            | "WINDOW"
            | "GROUP"
            | "BY"
            | "HAVING"
            | "EMIT"
            | "AS"
            | "AND"
            | "OR"
            | "NOT"
            | "IS"
            | "NULL"
            | "TRUE"
            | "FALSE"
            | "WITH"
            | "CREATE"
            | "JOIN"
            | "LEFT"
            | "INNER"
            | "OUTER"
            | "RIGHT"
            | "FULL"
            | "ON"
            | "WITHIN"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_talks_query_parses_with_its_window_and_having() {
        let statements = parse(
            "CREATE TABLE possible_fraud AS SELECT card_number, count(*) FROM authorization_attempts \
             WINDOW TUMBLING (SIZE 5 MINUTE) GROUP BY card_number HAVING count(*) > 3;",
        )
        .unwrap();
        let [Statement::CreateAsSelect { kind: SourceKind::Table, name, query, .. }] = statements.as_slice() else {
            panic!("{statements:?}")
        };
        assert_eq!(name.name, "POSSIBLE_FRAUD");
        assert_eq!(query.window.as_ref().unwrap().size.ms, 300_000);
        assert_eq!(query.having.as_ref().unwrap().to_string(), "(COUNT(*) > 3)");
    }

    #[test]
    fn units_are_singular_or_plural() {
        for (text, ms) in [
            ("1 SECOND", 1000),
            ("2 SECONDS", 2000),
            ("3 MILLISECONDS", 3),
            ("1 HOURS", 3_600_000),
            ("1 DAY", 86_400_000),
        ] {
            let q = format!("SELECT A, COUNT(*) FROM S WINDOW TUMBLING (SIZE {text}) GROUP BY A EMIT CHANGES;");
            let statements = parse(&q).unwrap();
            let [Statement::Select { query, .. }] = statements.as_slice() else { panic!() };
            assert_eq!(query.window.as_ref().unwrap().size.ms, ms, "{text}");
        }
    }

    #[test]
    fn a_missing_semicolon_is_a_syntax_error_at_the_end() {
        let err = parse("SELECT * FROM S EMIT CHANGES").unwrap_err();
        assert_eq!(err.to_string(), "line 1:29: mismatched input <EOF> expecting ';'");
    }

    #[test]
    fn precedence_is_the_grammars() {
        let statements = parse("SELECT A FROM S WHERE NOT A = 1 OR B > 2 AND C < 3 + 4 * 5;").unwrap();
        let [Statement::Select { query, .. }] = statements.as_slice() else { panic!() };
        assert_eq!(query.where_.as_ref().unwrap().to_string(), "((NOT (A = 1)) OR ((B > 2) AND (C < (3 + (4 * 5)))))");
    }
}
