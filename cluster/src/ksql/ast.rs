//! The statements ksim's ksqlDB subset parses, as ksqlDB's `AstBuilder` (in `ksqldb-parser`)
//! builds them: `CREATE STREAM|TABLE` with columns, `CREATE STREAM|TABLE ... AS SELECT`, and a
//! bare `SELECT` (a transient push query). Every node keeps its position for error messages.

use super::error::Pos;
use super::value::{SqlType, Value};
use std::fmt;

/// A name as written: upper-cased unless it was back-quoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub pos: Pos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Stream,
    Table,
}

impl SourceKind {
    pub fn word(self) -> &'static str {
        match self {
            SourceKind::Stream => "STREAM",
            SourceKind::Table => "TABLE",
        }
    }
}

/// `KEY` (streams) or `PRIMARY KEY` (tables) after a column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyConstraint {
    None,
    Key,
    PrimaryKey,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ColumnDef {
    pub name: Ident,
    pub ty: SqlType,
    pub key: KeyConstraint,
}

/// One `NAME=value` of a `WITH (...)` clause; the name upper-cased.
#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    pub name: Ident,
    pub value: Value,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    CreateSource { kind: SourceKind, name: Ident, columns: Vec<ColumnDef>, props: Vec<Property>, pos: Pos },
    CreateAsSelect { kind: SourceKind, name: Ident, props: Vec<Property>, query: Query, pos: Pos },
    Select { query: Query, pos: Pos },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowKind {
    Tumbling,
    Hopping,
}

/// A duration as written (`5 MINUTES`) and in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duration {
    pub ms: u64,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowClause {
    pub kind: WindowKind,
    pub size: Duration,
    pub advance: Option<Duration>,
    pub retention: Option<Duration>,
    pub grace: Option<Duration>,
    pub pos: Pos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    Changes,
    Final,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SelectItem {
    /// `*`
    All(Pos),
    Expr {
        expr: Expr,
        alias: Option<Ident>,
    },
}

/// `[LEFT [OUTER] | INNER] JOIN`: which stream rows a stream-table join emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    /// Only stream rows whose key has a table row (`KStream.join(KTable)`).
    Inner,
    /// Every stream row, the table's columns NULL where the key has no row (`KStream.leftJoin(KTable)`).
    Left,
}

/// `FROM left [AS] l JOIN right [AS] r ON l.x = r.y`: the right side and the condition.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinClause {
    pub kind: JoinKind,
    pub right: Ident,
    pub right_alias: Option<Ident>,
    /// The two sides of the `ON ... = ...` equality, as written.
    pub on: (Expr, Expr),
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub items: Vec<SelectItem>,
    pub from: Ident,
    /// `FROM orders o`: the name the query's columns may be qualified with.
    pub from_alias: Option<Ident>,
    pub join: Option<JoinClause>,
    pub window: Option<WindowClause>,
    pub where_: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub having: Option<Expr>,
    pub emit: Option<(Emit, Pos)>,
    pub pos: Pos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "OR",
            BinaryOp::And => "AND",
            BinaryOp::Eq => "=",
            BinaryOp::Ne => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Column(Ident),
    /// `source.column`, the source named by its name or its alias.
    Qualified(Ident, Ident),
    Literal(Value, Pos),
    Not(Box<Expr>, Pos),
    Neg(Box<Expr>, Pos),
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
        pos: Pos,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
        pos: Pos,
    },
    /// A function call; `COUNT(*)` has `star` and no arguments.
    Call {
        name: Ident,
        args: Vec<Expr>,
        star: bool,
    },
}

impl Expr {
    pub fn pos(&self) -> Pos {
        match self {
            Expr::Column(id) => id.pos,
            Expr::Qualified(source, _) => source.pos,
            Expr::Call { name, .. } => name.pos,
            Expr::Literal(_, pos)
            | Expr::Not(_, pos)
            | Expr::Neg(_, pos)
            | Expr::Binary { pos, .. }
            | Expr::IsNull { pos, .. } => *pos,
        }
    }

    /// The same expression, wherever it was written (`GROUP BY card_number` and
    /// `SELECT card_number` name one expression).
    pub fn same(&self, other: &Expr) -> bool {
        match (self, other) {
            (Expr::Column(a), Expr::Column(b)) => a.name == b.name,
            (Expr::Qualified(s1, c1), Expr::Qualified(s2, c2)) => s1.name == s2.name && c1.name == c2.name,
            (Expr::Literal(a, _), Expr::Literal(b, _)) => a == b,
            (Expr::Not(a, _), Expr::Not(b, _)) | (Expr::Neg(a, _), Expr::Neg(b, _)) => a.same(b),
            (Expr::Binary { op: o1, left: l1, right: r1, .. }, Expr::Binary { op: o2, left: l2, right: r2, .. }) => {
                o1 == o2 && l1.same(l2) && r1.same(r2)
            }
            (Expr::IsNull { expr: a, negated: n1, .. }, Expr::IsNull { expr: b, negated: n2, .. }) => {
                n1 == n2 && a.same(b)
            }
            (Expr::Call { name: n1, args: a1, star: s1 }, Expr::Call { name: n2, args: a2, star: s2 }) => {
                n1.name == n2.name && s1 == s2 && a1.len() == a2.len() && a1.iter().zip(a2).all(|(a, b)| a.same(b))
            }
            _ => false,
        }
    }
}

/// Expressions print as ksqlDB's `ExpressionFormatter` prints them in messages: columns by name,
/// calls as `COUNT(*)`, binary operations in parentheses.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(id) => f.write_str(&id.name),
            Expr::Qualified(source, column) => write!(f, "{}.{}", source.name, column.name),
            Expr::Literal(Value::String(s), _) => write!(f, "'{}'", s.replace('\'', "''")),
            Expr::Literal(v, _) => write!(f, "{v}"),
            Expr::Not(e, _) => write!(f, "(NOT {e})"),
            Expr::Neg(e, _) => write!(f, "-{e}"),
            Expr::Binary { op, left, right, .. } => write!(f, "({left} {} {right})", op.symbol()),
            Expr::IsNull { expr, negated, .. } => write!(f, "({expr} IS {}NULL)", if *negated { "NOT " } else { "" }),
            Expr::Call { name, args, star } => {
                write!(f, "{}(", name.name)?;
                if *star {
                    f.write_str("*")?;
                }
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}
