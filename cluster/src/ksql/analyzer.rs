//! Semantic analysis: from parsed statements to sources and query plans, refusing what ksqlDB
//! refuses with ksqlDB's own messages. The checks run in ksqlDB's order for one statement:
//! the source must exist (`DataSourceExtractor`), every column must resolve
//! (`ColumnReferenceValidator` via `Analyzer`), the GROUP BY rules hold (`AggregateAnalyzer`),
//! WINDOW and EMIT FINAL fit the query (`LogicalPlanner.buildPersistentLogicalPlan`), the grouping
//! expressions are in the projection (`AggregateNode.validateKeyPresent`), and last the result
//! type matches the statement (`EngineExecutor.validateResultType`): an aggregation produces a
//! TABLE, so `CREATE STREAM ... AS SELECT ... GROUP BY` is refused.
//!
//! It also settles what ksqlDB leaves implicit: unaliased expressions are named `KSQL_COL_n`
//! (`AstSanitizer.visitSingleColumn` with `ColumnNames.columnAliasGenerator`, which skips numbers
//! the source's own columns use), a sink's topic is its name (`TopicCreateInjector`, with
//! `ksql.output.topic.name.prefix` empty by default), and the grace period when no GRACE PERIOD
//! is given: zero under EMIT FINAL (`RewrittenAnalysis.getWindowExpression`), else
//! `max(24 h - size, 0)` (`StreamAggregateBuilder.WindowedAggregator.defaultGrace`, the default of
//! Kafka Streams' `TimeWindows.of` before KIP-633 deprecated it).

use super::ast::*;
use super::error::{KsqlError, Pos};
use super::plan::*;
use super::value::{SqlType, Value};

/// 24 hours: `StreamAggregateBuilder.DEFAULT_24_HR_GRACE_PERIOD` (Streams'
/// `Windows.DEPRECATED_DEFAULT_24_HR_GRACE_PERIOD`).
pub const DEFAULT_24_HR_GRACE_PERIOD_MS: i64 = 24 * 60 * 60 * 1000;

/// Columns per source: a bound on the rows ksim allocates.
const MAX_COLUMNS: usize = 1000;
/// Hopping windows one record may fall in (size / advance): a bound on the work per record.
const MAX_WINDOWS_PER_RECORD: i64 = 10_000;

/// The sources (declared and written) and the queries, in statement order.
#[derive(Clone, Debug, PartialEq)]
pub struct Analyzed {
    pub sources: Vec<Source>,
    pub queries: Vec<QueryPlan>,
}

impl Analyzed {
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }
}

pub fn analyze(statements: &[Statement]) -> Result<Analyzed, KsqlError> {
    let mut out = Analyzed { sources: Vec::new(), queries: Vec::new() };
    for statement in statements {
        match statement {
            Statement::CreateSource { kind, name, columns, props, pos } => {
                let source = create_source(&out, *kind, name, columns, props, *pos)?;
                out.sources.push(source);
            }
            Statement::CreateAsSelect { kind, name, props, query, pos } => {
                if out.source(&name.name).is_some() {
                    return Err(already_exists(*kind, name));
                }
                let mut topic = name.name.clone();
                for prop in props {
                    match (prop.name.name.as_str(), &prop.value) {
                        ("KAFKA_TOPIC", Value::String(t)) => topic = t.clone(),
                        ("VALUE_FORMAT" | "KEY_FORMAT" | "FORMAT" | "PARTITIONS" | "REPLICAS", _) => {}
                        _ => return Err(invalid_config(&prop.name)),
                    }
                }
                let plan = analyze_query(&out, query, Some((*kind, name, topic)), *pos, out.queries.len())?;
                out.sources.push(plan.output.clone());
                out.queries.push(plan);
            }
            Statement::Select { query, pos } => {
                let plan = analyze_query(&out, query, None, *pos, out.queries.len())?;
                out.queries.push(plan);
            }
        }
    }
    Ok(out)
}

fn already_exists(kind: SourceKind, name: &Ident) -> KsqlError {
    // ksqlDB's `CreateSourceCommand` / `DdlCommandExec`: "Cannot add stream 'X': A stream with
    // the same name already exists".
    let k = kind.word().to_ascii_lowercase();
    KsqlError::new(name.pos, format!("Cannot add {k} '{}': A {k} with the same name already exists", name.name))
}

fn invalid_config(name: &Ident) -> KsqlError {
    // ksqlDB's `WithClauseProperties` / `CreateSourceProperties` validation.
    KsqlError::new(name.pos, format!("Invalid config variable(s) in the WITH clause: {}", name.name))
}

fn create_source(
    catalog: &Analyzed,
    kind: SourceKind,
    name: &Ident,
    defs: &[ColumnDef],
    props: &[Property],
    pos: Pos,
) -> Result<Source, KsqlError> {
    if catalog.source(&name.name).is_some() {
        return Err(already_exists(kind, name));
    }
    if defs.len() > MAX_COLUMNS {
        return Err(KsqlError::new(pos, format!("{} columns: ksim reads at most {MAX_COLUMNS}", defs.len())));
    }
    for def in defs {
        match (kind, def.key) {
            // `CreateTable.throwOnNonPrimaryKeys` and `CreateStream.throwOnPrimaryKeys`.
            (SourceKind::Table, KeyConstraint::Key) => {
                return Err(KsqlError::new(
                    def.name.pos,
                    format!(
                        "Column `{}` is a 'KEY' column: please use 'PRIMARY KEY' for tables.\n\
                         Tables have PRIMARY KEYs, which are unique and NON NULL.\n\
                         Streams have KEYs, which have no uniqueness or NON NULL constraints.",
                        def.name.name
                    ),
                ))
            }
            (SourceKind::Stream, KeyConstraint::PrimaryKey) => {
                return Err(KsqlError::new(
                    def.name.pos,
                    format!("Column `{}` is a 'PRIMARY KEY' column: please use 'KEY' for streams.", def.name.name),
                ))
            }
            _ => {}
        }
        if defs.iter().filter(|d| d.name.name == def.name.name).count() > 1 {
            return Err(KsqlError::new(def.name.pos, format!("Duplicate column names: {}", def.name.name)));
        }
    }
    if kind == SourceKind::Table && !defs.iter().any(|d| d.key == KeyConstraint::PrimaryKey) {
        // `CreateSourceFactory.createTableCommand`.
        return Err(KsqlError::new(pos, "Tables require a PRIMARY KEY. Please define the PRIMARY KEY."));
    }
    // Key columns first, as ksqlDB's `LogicalSchema` orders them.
    let mut columns: Vec<Column> = Vec::with_capacity(defs.len());
    for key in [true, false] {
        for def in defs.iter().filter(|d| (d.key != KeyConstraint::None) == key) {
            columns.push(Column { name: def.name.name.clone(), ty: def.ty, key });
        }
    }
    let (mut topic, mut format, mut timestamp_column) = (None, None, None);
    for prop in props {
        match (prop.name.name.as_str(), &prop.value) {
            ("KAFKA_TOPIC", Value::String(t)) => topic = Some(t.clone()),
            ("VALUE_FORMAT" | "FORMAT", Value::String(f)) => format = Some(f.clone()),
            ("KEY_FORMAT" | "PARTITIONS" | "REPLICAS", _) => {}
            ("TIMESTAMP", Value::String(col)) => {
                let upper = col.to_ascii_uppercase();
                let Some(index) = columns.iter().position(|c| c.name == upper) else {
                    // `TimestampExtractionPolicyFactory.create`.
                    return Err(KsqlError::new(
                        prop.pos,
                        format!("The TIMESTAMP column set in the WITH clause does not exist in the schema: '{upper}'"),
                    ));
                };
                if columns[index].ty != SqlType::Bigint {
                    return Err(KsqlError::new(
                        prop.pos,
                        format!(
                            "Timestamp column, `{upper}`, should be LONG(INT64), TIMESTAMP, or a String with a \
                             timestamp_format specified. (ksim models a BIGINT column of milliseconds)"
                        ),
                    ));
                }
                timestamp_column = Some(index);
            }
            _ => return Err(invalid_config(&prop.name)),
        }
    }
    let Some(topic) = topic else {
        // `CreateConfigs` declares KAFKA_TOPIC without a default: Kafka's `ConfigDef.parseValue`.
        return Err(KsqlError::new(pos, "Missing required configuration \"KAFKA_TOPIC\" which has no default value."));
    };
    if format.is_none() {
        // `CreateSourceProperties` / `SourcePropertiesUtil.getValueFormat` with no
        // `ksql.persistence.default.format.value` set.
        return Err(KsqlError::new(
            pos,
            "Statement is missing the 'VALUE_FORMAT' property from the WITH clause. Either provide one or set a \
             default via the 'ksql.persistence.default.format.value' config.",
        ));
    }
    Ok(Source { name: name.name.clone(), kind, columns, topic, timestamp_column, windowed: false, written_by: None })
}

/// Which names an expression may use, and what they resolve to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// A row of the source: WHERE, GROUP BY, a projection, an aggregate's argument.
    Input,
    /// After the aggregation: SELECT and HAVING of an aggregation.
    Aggregated { windowed: bool },
}

struct QueryCtx<'a> {
    /// The row the expressions see: the source's columns, or for a join the stream's then the
    /// table's.
    source: &'a Source,
    group_by: &'a [Expr],
    aggregates: Vec<(Expr, AggCall)>,
    /// The names each side of the row answers to (its name, its alias), and where the right
    /// side's columns start; the left side alone without a join.
    sides: Vec<(Vec<String>, std::ops::Range<usize>)>,
    /// In a join, the table's PRIMARY KEY column in the row.
    join_table_key: Option<usize>,
}

fn is_aggregate_name(name: &str) -> bool {
    matches!(name, "COUNT" | "SUM" | "MIN" | "MAX")
}

fn contains_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Call { name, args, .. } => is_aggregate_name(&name.name) || args.iter().any(contains_aggregate),
        Expr::Not(inner, _) | Expr::Neg(inner, _) | Expr::IsNull { expr: inner, .. } => contains_aggregate(inner),
        Expr::Binary { left, right, .. } => contains_aggregate(left) || contains_aggregate(right),
        Expr::Column(_) | Expr::Qualified(..) | Expr::Literal(..) => false,
    }
}

/// Column references outside aggregate calls.
fn columns_outside_aggregates<'e>(e: &'e Expr, out: &mut Vec<&'e Ident>) {
    match e {
        Expr::Column(id) | Expr::Qualified(_, id) => out.push(id),
        Expr::Call { name, args, .. } if !is_aggregate_name(&name.name) => {
            args.iter().for_each(|a| columns_outside_aggregates(a, out))
        }
        Expr::Call { .. } | Expr::Literal(..) => {}
        Expr::Not(inner, _) | Expr::Neg(inner, _) | Expr::IsNull { expr: inner, .. } => {
            columns_outside_aggregates(inner, out)
        }
        Expr::Binary { left, right, .. } => {
            columns_outside_aggregates(left, out);
            columns_outside_aggregates(right, out);
        }
    }
}

fn is_window_bound(name: &str) -> bool {
    name == "WINDOWSTART" || name == "WINDOWEND"
}

fn type_name(ty: Option<SqlType>) -> &'static str {
    ty.map_or("NULL", SqlType::name)
}

impl QueryCtx<'_> {
    /// Where a column reference (`ID`, `O.ID`) is in the row: a qualified one on its side only;
    /// an unqualified one on whichever side has it, both being ambiguous.
    fn column(&self, e: &Expr, clause: &str) -> Result<usize, KsqlError> {
        let (qualifier, id) = match e {
            Expr::Column(id) => (None, id),
            Expr::Qualified(q, id) => (Some(q), id),
            _ => unreachable!("only column references are looked up"),
        };
        let mut found = Vec::new();
        for (names, range) in &self.sides {
            if qualifier.is_some_and(|q| !names.contains(&q.name)) {
                continue;
            }
            if let Some(i) = range.clone().find(|&i| self.source.columns[i].name == id.name) {
                found.push((names.last().cloned().unwrap_or_default(), i));
            }
        }
        match found.as_slice() {
            [(_, i)] => Ok(*i),
            // `UnknownColumnException`: "SELECT column 'X' cannot be resolved."
            [] => Err(KsqlError::new(id.pos, format!("{clause} column '{e}' cannot be resolved."))),
            // ksqlDB's `ColumnReferenceValidator`: an unqualified name both sides have.
            many => Err(KsqlError::new(
                id.pos,
                format!(
                    "Column '{}' is ambiguous. Could be any of: {}",
                    id.name,
                    many.iter().map(|(side, _)| format!("{side}.{}", id.name)).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// Resolve `e` in `scope`; `clause` names the clause for ksqlDB's messages.
    fn resolve(&mut self, e: &Expr, scope: Scope, clause: &str) -> Result<(RExpr, Option<SqlType>), KsqlError> {
        if let Scope::Aggregated { .. } = scope {
            if let Some(i) = self.group_by.iter().position(|g| g.same(e)) {
                let (_, ty) = self.resolve(&self.group_by[i].clone(), Scope::Input, "GROUP BY")?;
                return Ok((RExpr::Key(i), ty));
            }
        }
        match e {
            Expr::Column(id) | Expr::Qualified(_, id) => {
                if id.name == "ROWTIME" {
                    return Ok((RExpr::Rowtime, Some(SqlType::Bigint)));
                }
                if is_window_bound(&id.name) {
                    return match scope {
                        Scope::Aggregated { windowed: true } if clause == "SELECT" => Ok((
                            if id.name == "WINDOWSTART" { RExpr::WindowStart } else { RExpr::WindowEnd },
                            Some(SqlType::Bigint),
                        )),
                        // `Analyzer` / window-bounds.json "windowed group by - aggregate window
                        // bounds in UDAF in SELECT" and "... window bounds in GROUP BY".
                        _ => Err(KsqlError::new(
                            id.pos,
                            format!(
                                "Window bounds column {} can only be used in the SELECT clause of windowed aggregations",
                                id.name
                            ),
                        )),
                    };
                }
                // After the aggregation, a column outside GROUP BY resolves here too: the
                // aggregate rules report it afterwards with ksqlDB's message.
                let i = self.column(e, clause)?;
                Ok((RExpr::Input(i), Some(self.source.columns[i].ty)))
            }
            Expr::Literal(v, _) => Ok((
                RExpr::Literal(v.clone()),
                match v {
                    Value::Null => None,
                    Value::Int(i) if i32::try_from(*i).is_ok() => Some(SqlType::Integer),
                    Value::Int(_) => Some(SqlType::Bigint),
                    Value::Double(_) => Some(SqlType::Double),
                    Value::String(_) => Some(SqlType::String),
                    Value::Boolean(_) => Some(SqlType::Boolean),
                },
            )),
            Expr::Not(inner, pos) => {
                let (r, ty) = self.resolve(inner, scope, clause)?;
                expect_boolean(ty, inner, *pos, "NOT")?;
                Ok((RExpr::Not(Box::new(r)), Some(SqlType::Boolean)))
            }
            Expr::Neg(inner, pos) => {
                let (r, ty) = self.resolve(inner, scope, clause)?;
                if ty.is_some_and(|t| !t.is_numeric()) {
                    return Err(KsqlError::new(
                        *pos,
                        format!("Unsupported arithmetic type: {} in -{inner}", type_name(ty)),
                    ));
                }
                Ok((RExpr::Neg(Box::new(r)), ty))
            }
            Expr::IsNull { expr, negated, .. } => {
                let (r, _) = self.resolve(expr, scope, clause)?;
                Ok((RExpr::IsNull(Box::new(r), *negated), Some(SqlType::Boolean)))
            }
            Expr::Binary { op, left, right, pos } => {
                let (l, lt) = self.resolve(left, scope, clause)?;
                let (r, rt) = self.resolve(right, scope, clause)?;
                let ty = binary_type(*op, (left, lt), (right, rt), *pos)?;
                Ok((RExpr::Binary(*op, Box::new(l), Box::new(r), ty), ty))
            }
            Expr::Call { name, args, star } => {
                if !is_aggregate_name(&name.name) {
                    return Err(KsqlError::new(
                        name.pos,
                        format!(
                            "ksim models the aggregate functions COUNT, SUM, MIN and MAX; {} is not modeled",
                            name.name
                        ),
                    ));
                }
                if scope == Scope::Input {
                    // An aggregate where a row is expected (WHERE, GROUP BY, inside another
                    // aggregate): ksqlDB's `Analyzer` / `AggregateAnalyzer` refuse these.
                    return Err(KsqlError::new(
                        name.pos,
                        format!("Aggregate functions can not be used in the {clause} clause: {e}"),
                    ));
                }
                if let Some(i) = self.aggregates.iter().position(|(seen, _)| seen.same(e)) {
                    let ty = match self.aggregates[i].1.func {
                        AggFunc::Count | AggFunc::CountAll => SqlType::Bigint,
                        _ => self.aggregates[i].1.ty,
                    };
                    return Ok((RExpr::Agg(i), Some(ty)));
                }
                let call = match (name.name.as_str(), *star, args.as_slice()) {
                    ("COUNT", true, []) => AggCall { func: AggFunc::CountAll, arg: None, ty: SqlType::Bigint },
                    (func, false, [arg]) => {
                        let (r, ty) = self.resolve(arg, Scope::Input, clause)?;
                        // A literal argument (`COUNT(1)`) counts every row, as ksqlDB's does.
                        let ty = ty.unwrap_or(SqlType::Bigint);
                        let func = match func {
                            "COUNT" => AggFunc::Count,
                            "SUM" => AggFunc::Sum,
                            "MIN" => AggFunc::Min,
                            _ => AggFunc::Max,
                        };
                        if func == AggFunc::Sum && !ty.is_numeric()
                            || matches!(func, AggFunc::Min | AggFunc::Max) && ty == SqlType::Boolean
                        {
                            // `UdfIndex.createNoMatchingFunctionException` (ksqlDB goes on to list
                            // the valid alternatives).
                            return Err(KsqlError::new(
                                name.pos,
                                format!(
                                    "Function '{}' does not accept parameters ({}).",
                                    name.name.to_ascii_lowercase(),
                                    ty.name()
                                ),
                            ));
                        }
                        AggCall { func, arg: Some(r), ty: if func == AggFunc::Count { SqlType::Bigint } else { ty } }
                    }
                    _ => {
                        return Err(KsqlError::new(
                            name.pos,
                            format!(
                                "{e}: {} takes one argument{}",
                                name.name,
                                if name.name == "COUNT" { " or *" } else { "" }
                            ),
                        ))
                    }
                };
                let ty = if call.func == AggFunc::Count || call.func == AggFunc::CountAll {
                    SqlType::Bigint
                } else {
                    call.ty
                };
                self.aggregates.push((e.clone(), call));
                Ok((RExpr::Agg(self.aggregates.len() - 1), Some(ty)))
            }
        }
    }
}

fn expect_boolean(ty: Option<SqlType>, e: &Expr, pos: Pos, what: &str) -> Result<(), KsqlError> {
    match ty {
        None | Some(SqlType::Boolean) => Ok(()),
        Some(other) => {
            Err(KsqlError::new(pos, format!("{what} expects a BOOLEAN operand, but {e} is {}", other.name())))
        }
    }
}

fn binary_type(
    op: BinaryOp,
    (left, lt): (&Expr, Option<SqlType>),
    (right, rt): (&Expr, Option<SqlType>),
    pos: Pos,
) -> Result<Option<SqlType>, KsqlError> {
    use BinaryOp::*;
    match op {
        Or | And => {
            expect_boolean(lt, left, pos, op.symbol())?;
            expect_boolean(rt, right, pos, op.symbol())?;
            Ok(Some(SqlType::Boolean))
        }
        Eq | Ne | Lt | Le | Gt | Ge => {
            let comparable = match (lt, rt) {
                (Some(a), Some(b)) => a == b || a.is_numeric() && b.is_numeric(),
                _ => true,
            };
            if !comparable {
                // ksqlDB's `ExpressionTypeManager.visitComparisonExpression`
                // (`ComparisonUtil.isValidComparison`).
                let name = match op {
                    Eq => "EQUAL",
                    Ne => "NOT_EQUAL",
                    Lt => "LESS_THAN",
                    Le => "LESS_THAN_OR_EQUAL",
                    Gt => "GREATER_THAN",
                    _ => "GREATER_THAN_OR_EQUAL",
                };
                return Err(KsqlError::new(
                    pos,
                    format!("Cannot compare {left} ({}) to {right} ({}) with {name}.", type_name(lt), type_name(rt)),
                ));
            }
            Ok(Some(SqlType::Boolean))
        }
        Add | Sub | Mul | Div | Mod => match (lt, rt) {
            (Some(a), Some(b)) if a.is_numeric() && b.is_numeric() => Ok(Some(a.widen(b))),
            (None, other) | (other, None) if other.is_none_or(|t| t.is_numeric()) => Ok(other),
            _ => Err(KsqlError::new(
                pos,
                format!(
                    "Error processing expression: ({left} {} {right}). Unsupported arithmetic types. {} {}",
                    op.symbol(),
                    type_name(lt),
                    type_name(rt)
                ),
            )),
        },
    }
}

/// The next `KSQL_COL_n` not used by the source's columns (`ColumnNames.columnAliasGenerator`).
struct AliasGenerator {
    used: Vec<u64>,
    next: u64,
}

impl AliasGenerator {
    fn new(source: &Source) -> AliasGenerator {
        let used = source.columns.iter().filter_map(|c| c.name.strip_prefix("KSQL_COL_")?.parse().ok()).collect();
        AliasGenerator { used, next: 0 }
    }

    fn next(&mut self) -> String {
        while self.used.contains(&self.next) {
            self.next += 1;
        }
        self.next += 1;
        format!("KSQL_COL_{}", self.next - 1)
    }
}

fn analyze_query(
    catalog: &Analyzed,
    query: &Query,
    sink: Option<(SourceKind, &Ident, String)>,
    statement_pos: Pos,
    query_index: usize,
) -> Result<QueryPlan, KsqlError> {
    let Some(source) = catalog.source(&query.from.name) else {
        // `DataSourceExtractor.Visitor.visitAliasedRelation`.
        return Err(KsqlError::new(query.from.pos, format!("{} does not exist.", query.from.name)));
    };
    if source.kind == SourceKind::Table {
        return Err(KsqlError::new(
            query.from.pos,
            format!(
                "{} is a TABLE: ksim runs queries over streams only (a table's changelog semantics are not modeled yet)",
                source.name
            ),
        ));
    }
    let left_names: Vec<String> =
        std::iter::once(source.name.clone()).chain(query.from_alias.iter().map(|a| a.name.clone())).collect();
    let mut sides = vec![(left_names, 0..source.columns.len())];
    let joined;
    let mut join_plan = None;
    let source = match &query.join {
        None => source,
        Some(join) => {
            let (row, plan, right_names) = analyze_join(catalog, source, &sides[0].0, join)?;
            sides.push((right_names, plan.stream_width..row.columns.len()));
            join_plan = Some(plan);
            joined = row;
            &joined
        }
    };
    let join_table_key = join_plan.as_ref().and_then(|plan| {
        let table = catalog.source(&plan.table)?;
        Some(plan.stream_width + table.columns.iter().position(|c| c.key)?)
    });
    let mut ctx = QueryCtx { source, group_by: &query.group_by, aggregates: Vec::new(), sides, join_table_key };
    if let Some(plan) = &join_plan {
        // The ON columns, resolved as any other reference: the stream's KEY column equals the
        // table's PRIMARY KEY.
        let join = query.join.as_ref().expect("a join plan has a clause");
        let mut on = Vec::new();
        for side in [&join.on.0, &join.on.1] {
            if !matches!(side, Expr::Column(_) | Expr::Qualified(..)) {
                return Err(KsqlError::new(
                    side.pos(),
                    format!("Unsupported join expression: {side}. ksim joins on columns only"),
                ));
            }
            on.push((ctx.column(side, "JOIN")?, side));
        }
        on.sort_by_key(|(i, _)| *i);
        let [(stream_side, stream_expr), (table_side, table_expr)] = on.as_slice() else { unreachable!("two sides") };
        if *table_side < plan.stream_width || *stream_side >= plan.stream_width {
            return Err(KsqlError::new(
                join.pos,
                format!("Invalid comparison expression '{} = {}' in join. Each side of the join comparision must contain references from exactly one source.", join.on.0, join.on.1),
            ));
        }
        let table_pk = Some(*table_side).filter(|&i| ctx.join_table_key == Some(i));
        if table_pk.is_none() {
            // ksqlDB's `JoinNode` / `PreJoinRepartitionNode`: a table cannot be repartitioned.
            let pk = catalog
                .source(&plan.table)
                .and_then(|t| t.key_columns().next())
                .map_or_else(String::new, |c| c.name.clone());
            return Err(KsqlError::new(
                table_expr.pos(),
                format!(
                    "Cannot repartition a TABLE source. If this is a join, make sure that the criteria uses the TABLE's key column {pk} instead of {table_expr}"
                ),
            ));
        }
        if *stream_side != plan.stream_key {
            // ksqlDB would rekey the stream first (`KStream.selectKey` into a `Join-repartition`
            // topic); ksim's runtime keeps a stream-table join in one sub-topology.
            return Err(KsqlError::new(
                stream_expr.pos(),
                format!(
                    "{stream_expr} is not {}'s KEY column: ksqlDB would repartition the stream by it first (a `Join-repartition` topic), which ksim does not model; join on the stream's KEY column",
                    query.from.name
                ),
            ));
        }
        let (lt, rt) = (ctx.source.columns[*stream_side].ty, ctx.source.columns[*table_side].ty);
        if lt != rt {
            // ksqlDB's `JoinNode`: "Invalid join condition: types don't match."
            return Err(KsqlError::new(
                join.pos,
                format!(
                    "Invalid join condition: types don't match. Got {stream_expr}{{{}}} = {table_expr}{{{}}}.",
                    lt.name(),
                    rt.name()
                ),
            ));
        }
    }
    let mut aliases = AliasGenerator::new(source);

    let where_ = match &query.where_ {
        Some(w) => {
            let (r, ty) = ctx.resolve(w, Scope::Input, "WHERE")?;
            if ty.is_some_and(|t| t != SqlType::Boolean) {
                // `FilterTypeValidator.validateFilterExpression`.
                return Err(KsqlError::new(
                    w.pos(),
                    format!(
                        "Type error in WHERE expression: Should evaluate to boolean but is {w} ({}) instead.",
                        type_name(ty)
                    ),
                ));
            }
            Some(r)
        }
        None => None,
    };

    let aggregated = !query.group_by.is_empty()
        || query.items.iter().any(|i| matches!(i, SelectItem::Expr { expr, .. } if contains_aggregate(expr)))
        || query.having.as_ref().is_some_and(contains_aggregate);
    let produced = if aggregated { SourceKind::Table } else { SourceKind::Stream };
    let (emit, emit_pos) = query.emit.unwrap_or((Emit::Changes, query.pos));
    if sink.is_none() && query.emit.is_none() {
        return Err(KsqlError::new(
            query.pos,
            "ksim runs push queries: add EMIT CHANGES (or EMIT FINAL) to the SELECT (a SELECT without EMIT is a \
             pull query, which reads a table's current state)",
        ));
    }
    let sink_name = sink.as_ref().map_or_else(|| "SELECT".to_string(), |(_, name, _)| name.name.clone());

    let (kind, columns) = if aggregated {
        analyze_aggregation(&mut ctx, query, &mut aliases, &sink_name, (emit, emit_pos))?
    } else {
        if let Some(window) = &query.window {
            // `LogicalPlanner.buildPersistentLogicalPlan`.
            return Err(KsqlError::new(window.pos, "WINDOW clause requires a GROUP BY clause."));
        }
        if let Some(having) = &query.having {
            return Err(KsqlError::new(having.pos(), "HAVING requires a GROUP BY clause (or an aggregate function)."));
        }
        if emit == Emit::Final {
            return Err(KsqlError::new(emit_pos, "EMIT FINAL is only supported for windowed aggregations."));
        }
        analyze_projection(&mut ctx, query, &mut aliases, &sink_name)?
    };

    // `LogicalSchema.Builder` refuses a name twice (`DuplicateColumnException`).
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].iter().any(|d| d.name == c.name) {
            return Err(KsqlError::new(
                query.pos,
                format!("Duplicate value columns found in schema: `{}` {}", c.name, c.ty.name()),
            ));
        }
    }

    let (persistent, output) = match sink {
        Some((kind_asked, name, topic)) => {
            if kind_asked != produced {
                // `EngineExecutor.validateResultType`.
                let message = if produced == SourceKind::Table {
                    "Invalid result type. Your SELECT query produces a TABLE. Please use CREATE TABLE AS SELECT statement instead."
                } else {
                    "Invalid result type. Your SELECT query produces a STREAM. Please use CREATE STREAM AS SELECT statement instead."
                };
                return Err(KsqlError::new(statement_pos, message));
            }
            (true, (name.name.clone(), topic))
        }
        None => (false, ("SELECT".to_string(), String::new())),
    };
    let windowed = matches!(&kind, QueryKind::Aggregation(a) if a.window.is_some());
    Ok(QueryPlan {
        output: Source {
            name: output.0,
            kind: produced,
            columns,
            topic: output.1,
            timestamp_column: None,
            windowed,
            written_by: Some(query_index),
        },
        persistent,
        source: source.name.clone(),
        join: join_plan,
        where_,
        kind,
    })
}

/// The row a stream-table join's expressions see, the join's plan, and the names the table's
/// side answers to. Refuses what ksim's join does not model: a table on the left, a stream on
/// the right, a table written by a query.
fn analyze_join(
    catalog: &Analyzed,
    stream: &Source,
    left_names: &[String],
    join: &JoinClause,
) -> Result<(Source, JoinPlan, Vec<String>), KsqlError> {
    let Some(table) = catalog.source(&join.right.name) else {
        return Err(KsqlError::new(join.right.pos, format!("{} does not exist.", join.right.name)));
    };
    if table.kind == SourceKind::Stream {
        return Err(KsqlError::new(
            join.right.pos,
            format!(
                "{} is a STREAM: ksim models a stream joined to a TABLE (a stream-stream join needs a WITHIN window, not modeled)",
                table.name
            ),
        ));
    }
    if table.written_by.is_some() {
        return Err(KsqlError::new(
            join.right.pos,
            format!("{} is written by a query: ksim joins a stream to a declared table (CREATE TABLE ... WITH (KAFKA_TOPIC=...))", table.name),
        ));
    }
    let right_names: Vec<String> =
        std::iter::once(table.name.clone()).chain(join.right_alias.iter().map(|a| a.name.clone())).collect();
    if right_names.iter().any(|n| left_names.contains(n)) {
        // ksqlDB's `Analyzer.visitJoin`: "Can not join 'X' to 'X': self joins are not yet supported."
        return Err(KsqlError::new(
            join.right.pos,
            format!("Can not join '{}' to '{}': self joins are not yet supported.", left_names[0], table.name),
        ));
    }
    let Some(stream_key) = stream.columns.iter().position(|c| c.key) else {
        return Err(KsqlError::new(
            join.pos,
            format!(
                "{} has no KEY column: ksqlDB would repartition it by the join expression first (a `Join-repartition` topic), which ksim does not model",
                stream.name
            ),
        ));
    };
    let mut row = stream.clone();
    row.columns.extend(table.columns.iter().map(|c| Column { key: false, ..c.clone() }));
    let plan = JoinPlan {
        kind: join.kind,
        table: table.name.clone(),
        stream_key,
        stream_width: stream.columns.len(),
        table_width: table.columns.len(),
    };
    Ok((row, plan, right_names))
}

fn analyze_projection(
    ctx: &mut QueryCtx<'_>,
    query: &Query,
    aliases: &mut AliasGenerator,
    sink_name: &str,
) -> Result<(QueryKind, Vec<Column>), KsqlError> {
    let source = ctx.source;
    let mut selected: Vec<(String, RExpr, SqlType, Option<usize>)> = Vec::new();
    for item in &query.items {
        match item {
            SelectItem::All(_) => {
                for (i, c) in source.columns.iter().enumerate() {
                    // In a join, `*` names each column after its side (ksqlDB's
                    // `ColumnNames.generatedJoinColumnAlias`: `O_ID`, `C_NAME`).
                    let name = match ctx.sides.as_slice() {
                        [_] => c.name.clone(),
                        sides => {
                            let (names, _) =
                                sides.iter().find(|(_, r)| r.contains(&i)).expect("every column has a side");
                            format!("{}_{}", names.last().expect("named"), c.name)
                        }
                    };
                    selected.push((name, RExpr::Input(i), c.ty, Some(i)));
                }
            }
            SelectItem::Expr { expr, alias } => {
                let (r, ty) = ctx.resolve(expr, Scope::Input, "SELECT")?;
                let name = match (alias, expr) {
                    (Some(a), _) => a.name.clone(),
                    (None, Expr::Column(id) | Expr::Qualified(_, id)) => id.name.clone(),
                    (None, _) => aliases.next(),
                };
                let column = match &r {
                    RExpr::Input(i) => Some(*i),
                    _ => None,
                };
                selected.push((name, r, ty.unwrap_or(SqlType::String), column));
            }
        }
    }
    // The source's key columns pass through as the sink's key: they must be selected
    // (`FinalProjectNode` / `PlanNode.throwKeysNotIncludedError`). In a stream-table join the
    // key is the join key, which the table's PRIMARY KEY column names as well as the stream's
    // KEY column (ksqlDB's `JoinNode.getKeyColumns`).
    let join_key = ctx_join(ctx);
    let join_key = |i: usize| match join_key {
        Some((stream_key, table_key)) if stream_key == i => vec![i, table_key],
        _ => vec![i],
    };
    let mut keys = Vec::new();
    let mut columns = Vec::new();
    let mut consumed = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for (i, c) in source.columns.iter().enumerate().filter(|(_, c)| c.key) {
        let same = join_key(i);
        match selected.iter().position(|s| s.3.is_some_and(|j| same.contains(&j))) {
            Some(at) => {
                consumed.push(at);
                keys.push(RExpr::Input(i));
                columns.push(Column { name: selected[at].0.clone(), ty: c.ty, key: true });
            }
            None if same.len() > 1 => missing.push(format!("{}.{}", ctx.sides[0].0.last().expect("named"), c.name)),
            None => missing.push(c.name.clone()),
        }
    }
    if !missing.is_empty() {
        let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
        let what = if ctx.sides.len() > 1 { "join expression" } else { "key column" };
        return Err(keys_missing(sink_name, what, &missing, query.pos));
    }
    let mut values = Vec::new();
    for (at, (name, r, ty, _)) in selected.into_iter().enumerate() {
        if consumed.contains(&at) {
            continue;
        }
        values.push(r);
        columns.push(Column { name, ty, key: false });
    }
    Ok((QueryKind::Projection { keys, values }, columns))
}

/// A join's key columns in the row: the stream's KEY column and the table's PRIMARY KEY column.
fn ctx_join(ctx: &QueryCtx<'_>) -> Option<(usize, usize)> {
    let (_, right) = ctx.sides.get(1)?;
    let stream_key = ctx.sides[0].1.clone().find(|&i| ctx.source.columns[i].key)?;
    let table_key = ctx.join_table_key.filter(|k| right.contains(k))?;
    Some((stream_key, table_key))
}

fn keys_missing(sink_name: &str, what: &str, missing: &[&str], pos: Pos) -> KsqlError {
    let plural = if missing.len() == 1 { "" } else { "s" };
    KsqlError::new(
        pos,
        format!(
            "Key{plural} missing from projection (ie, SELECT). \nThe query used to build `{sink_name}` must include the {what}{plural} {} in its projection (eg, SELECT {}...).",
            missing.join(" and "),
            missing.join(", ")
        ),
    )
}

fn analyze_aggregation(
    ctx: &mut QueryCtx<'_>,
    query: &Query,
    aliases: &mut AliasGenerator,
    sink_name: &str,
    (emit, emit_pos): (Emit, Pos),
) -> Result<(QueryKind, Vec<Column>), KsqlError> {
    let windowed = query.window.is_some();
    let mut group_by = Vec::new();
    for g in &query.group_by {
        let (r, _) = ctx.resolve(g, Scope::Input, "GROUP BY")?;
        group_by.push(r);
    }
    // Resolve SELECT and HAVING after the aggregation; remember the items' names and types.
    let mut items: Vec<(String, RExpr, SqlType, &Expr, Pos)> = Vec::new();
    for item in &query.items {
        match item {
            SelectItem::All(pos) => {
                return Err(KsqlError::new(
                    *pos,
                    "SELECT * is not allowed in an aggregation: name the GROUP BY columns and aggregates",
                ))
            }
            SelectItem::Expr { expr, alias } => {
                let (r, ty) = ctx.resolve(expr, Scope::Aggregated { windowed }, "SELECT")?;
                let name = match (alias, expr) {
                    (Some(a), _) => a.name.clone(),
                    (None, Expr::Column(id) | Expr::Qualified(_, id)) => id.name.clone(),
                    (None, _) => aliases.next(),
                };
                items.push((name, r, ty.unwrap_or(SqlType::String), expr, expr.pos()));
            }
        }
    }
    let having = match &query.having {
        Some(h) => {
            let (r, ty) = ctx.resolve(h, Scope::Aggregated { windowed }, "HAVING")?;
            if ty.is_some_and(|t| t != SqlType::Boolean) {
                return Err(KsqlError::new(
                    h.pos(),
                    format!(
                        "Type error in HAVING expression: Should evaluate to boolean but is {h} ({}) instead.",
                        type_name(ty)
                    ),
                ));
            }
            Some((r, h))
        }
        None => None,
    };

    // `AggregateAnalyzer.enforceAggregateRules`.
    if ctx.aggregates.is_empty() {
        return Err(KsqlError::new(
            query.pos,
            "GROUP BY requires aggregate functions in either the SELECT or HAVING clause.",
        ));
    }
    let grouped_column = |id: &Ident| {
        query.group_by.iter().any(|g| matches!(g, Expr::Column(c) | Expr::Qualified(_, c) if c.name == id.name))
    };
    let mut unmatched: Vec<String> = Vec::new();
    for (_, _, _, expr, _) in &items {
        if query.group_by.iter().any(|g| g.same(expr)) {
            continue;
        }
        let mut refs = Vec::new();
        columns_outside_aggregates(expr, &mut refs);
        for id in refs {
            if !is_window_bound(&id.name) && !grouped_column(id) && !unmatched.contains(&id.name) {
                unmatched.push(id.name.clone());
            }
        }
    }
    if !unmatched.is_empty() {
        return Err(KsqlError::new(
            query.pos,
            format!(
                "Non-aggregate SELECT expression(s) not part of GROUP BY: {}\nEither add the column(s) to the GROUP BY or remove them from the SELECT.",
                unmatched.join(", ")
            ),
        ));
    }
    if let Some((_, h)) = &having {
        let mut refs = Vec::new();
        columns_outside_aggregates(h, &mut refs);
        let outside: Vec<String> = refs.iter().filter(|id| !grouped_column(id)).map(|id| id.name.clone()).collect();
        if !outside.is_empty() {
            return Err(KsqlError::new(
                h.pos(),
                format!(
                    "Non-aggregate HAVING expression not part of GROUP BY: {}\nConsider switching the HAVING clause to a WHERE clause before the GROUP BY.",
                    outside.join(", ")
                ),
            ));
        }
    }
    if query.group_by.is_empty() {
        // `AggregateNode.validateKeyPresent`: an aggregate without GROUP BY.
        let names: Vec<String> = ctx.aggregates.iter().map(|(e, _)| e.to_string()).collect();
        return Err(KsqlError::new(
            query.pos,
            format!(
                "CREATE TABLE AS SELECT statement does not support aggregate function [{}] without a GROUP BY clause.",
                names.join(", ")
            ),
        ));
    }

    // `LogicalPlanner`: EMIT FINAL needs a window.
    if emit == Emit::Final && !windowed {
        return Err(KsqlError::new(emit_pos, "EMIT FINAL is only supported for windowed aggregations."));
    }

    // Every grouping expression must be selected: it becomes the sink's key.
    let mut key_order = Vec::new();
    let mut columns = Vec::new();
    let mut missing = Vec::new();
    let mut key_items = Vec::new();
    for (gi, g) in query.group_by.iter().enumerate() {
        match items.iter().position(|(_, _, _, e, _)| g.same(e)) {
            Some(ii) => {
                key_order.push(gi);
                key_items.push(ii);
                columns.push(Column { name: items[ii].0.clone(), ty: items[ii].2, key: true });
            }
            None => missing.push(g.to_string()),
        }
    }
    if !missing.is_empty() {
        let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
        return Err(keys_missing(sink_name, "grouping expression", &missing, query.pos));
    }
    let mut values = Vec::new();
    for (ii, (name, r, ty, _, _)) in items.into_iter().enumerate() {
        if key_items.contains(&ii) {
            continue;
        }
        values.push(r);
        columns.push(Column { name, ty, key: false });
    }

    let window = match &query.window {
        None => None,
        Some(w) => Some(window_spec(w, emit)?),
    };
    let aggregates = ctx.aggregates.drain(..).map(|(_, call)| call).collect();
    Ok((
        QueryKind::Aggregation(Aggregation {
            group_by,
            aggregates,
            window,
            emit,
            having: having.map(|(r, _)| r),
            values,
            key_order,
        }),
        columns,
    ))
}

/// The window Kafka Streams is asked for, with ksqlDB's grace period.
fn window_spec(w: &WindowClause, emit: Emit) -> Result<WindowSpec, KsqlError> {
    let size_ms = w.size.ms as i64;
    if size_ms == 0 {
        // Streams' `TimeWindows.ofSizeAndGrace`.
        return Err(KsqlError::new(w.size.pos, "Window size (sizeMs) must be larger than zero."));
    }
    let advance_ms = w.advance.as_ref().map_or(size_ms, |a| a.ms as i64);
    if advance_ms <= 0 || advance_ms > size_ms {
        // Streams' `TimeWindows.advanceBy`.
        let pos = w.advance.as_ref().map_or(w.pos, |a| a.pos);
        return Err(KsqlError::new(
            pos,
            format!("Window advancement interval should be more than zero and less than window duration which is {size_ms} ms, but given advancement interval is: {advance_ms} ms"),
        ));
    }
    let per_record = (size_ms + advance_ms - 1) / advance_ms;
    if per_record > MAX_WINDOWS_PER_RECORD {
        return Err(KsqlError::new(
            w.pos,
            format!(
                "each record would fall in {per_record} hopping windows; ksim allows at most {MAX_WINDOWS_PER_RECORD}"
            ),
        ));
    }
    let grace_ms = match (&w.grace, emit) {
        (Some(g), _) => g.ms as i64,
        (None, Emit::Final) => 0,
        (None, Emit::Changes) => (DEFAULT_24_HR_GRACE_PERIOD_MS - size_ms).max(0),
    };
    let retention_ms = match &w.retention {
        Some(r) => {
            let retention_ms = r.ms as i64;
            if size_ms.saturating_add(grace_ms) > retention_ms {
                // Streams' `WindowStoreMaterializer` (store named as ksqlDB names it).
                return Err(KsqlError::new(
                    r.pos,
                    format!(
                        "The retention period of the window store Aggregate-Aggregate-Materialize must be no smaller than its window size plus the grace period. Got size=[{size_ms}], grace=[{grace_ms}], retention=[{retention_ms}]"
                    ),
                ));
            }
            retention_ms
        }
        None => size_ms.saturating_add(grace_ms),
    };
    Ok(WindowSpec { size_ms, advance_ms, grace_ms, retention_ms })
}
