//! What the analyzer hands the executor: sources with their schemas, and each query's plan with
//! expressions resolved to column positions and typed.

use super::ast::{BinaryOp, Emit, JoinKind, SourceKind};
use super::value::{SqlType, Value};

/// One column of a source or a sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    /// A `KEY` / `PRIMARY KEY` column (for a windowed sink: a GROUP BY column).
    pub key: bool,
}

/// A stream or table: declared by `CREATE STREAM|TABLE (...)` or written by a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    /// Key columns first, then value columns, in declared (or SELECT) order.
    pub columns: Vec<Column>,
    pub topic: String,
    /// `WITH (TIMESTAMP='col')`: the column ROWTIME is taken from.
    pub timestamp_column: Option<usize>,
    /// Written by a windowed aggregation: rows carry WINDOWSTART and WINDOWEND.
    pub windowed: bool,
    /// Index of the query that writes it; `None` for a declared source.
    pub written_by: Option<usize>,
}

impl Source {
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.key)
    }

    pub fn value_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.key)
    }
}

/// A resolved expression. `Input` indexes the input row (the source's columns); `Key`, `Agg`,
/// `WindowStart` and `WindowEnd` exist only after an aggregation.
#[derive(Clone, Debug, PartialEq)]
pub enum RExpr {
    Input(usize),
    Rowtime,
    WindowStart,
    WindowEnd,
    Key(usize),
    Agg(usize),
    Literal(Value),
    Not(Box<RExpr>),
    Neg(Box<RExpr>),
    IsNull(Box<RExpr>, bool),
    Binary(BinaryOp, Box<RExpr>, Box<RExpr>, Option<SqlType>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    /// `COUNT(*)`: every row.
    CountAll,
    /// `COUNT(x)`: rows where x is not NULL.
    Count,
    Sum,
    Min,
    Max,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AggCall {
    pub func: AggFunc,
    pub arg: Option<RExpr>,
    /// The argument's type (the result's, for SUM, MIN and MAX); BIGINT for COUNT.
    pub ty: SqlType,
}

/// A window, with the grace period and retention ksqlDB settles on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    pub size_ms: i64,
    /// Equal to `size_ms` for a tumbling window.
    pub advance_ms: i64,
    pub grace_ms: i64,
    /// How long the window store keeps a window (Streams' `WindowStoreMaterializer`: the
    /// `RETENTION` given, else size + grace).
    pub retention_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Aggregation {
    pub group_by: Vec<RExpr>,
    pub aggregates: Vec<AggCall>,
    pub window: Option<WindowSpec>,
    pub emit: Emit,
    /// Over keys, aggregates and window bounds.
    pub having: Option<RExpr>,
    /// The value columns of the sink, over keys, aggregates and window bounds, in SELECT order.
    pub values: Vec<RExpr>,
    /// For each key column of the sink (in GROUP BY order), which group-by expression it is.
    pub key_order: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum QueryKind {
    /// A stateless projection of a stream: key columns are the source's, passed through.
    Projection {
        keys: Vec<RExpr>,
        values: Vec<RExpr>,
    },
    Aggregation(Aggregation),
}

/// A stream-table join (`KStreamImpl.join(KTable)` / `leftJoin`, ksqlDB's `StreamTableJoinBuilder`):
/// each stream row looks its key up in the table as the table stands when the row is processed;
/// the row the query's expressions see is the stream's columns followed by the table's (NULL
/// where a LEFT join found no row). A table update joins nothing by itself.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinPlan {
    pub kind: JoinKind,
    /// The declared table joined.
    pub table: String,
    /// The stream's key column (the join key) in the input row.
    pub stream_key: usize,
    /// How many columns the stream contributes: the table's start there.
    pub stream_width: usize,
    /// How many columns the table contributes.
    pub table_width: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct QueryPlan {
    /// What the query writes: a sink (`POSSIBLE_FRAUD`, its topic, its columns), or for a
    /// transient `SELECT` the rows it prints (named `SELECT`, no topic).
    pub output: Source,
    /// `CREATE ... AS SELECT` (a persistent query); `false` for a transient `SELECT`.
    pub persistent: bool,
    /// The source it reads (for a join, the stream: its records drive the query).
    pub source: String,
    pub join: Option<JoinPlan>,
    pub where_: Option<RExpr>,
    pub kind: QueryKind,
}
