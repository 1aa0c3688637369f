//! One persistent (or transient) query at run time: feed it a record, get the rows it emits and
//! the windows it refused as late. It is Kafka Streams' windowed aggregation as ksqlDB builds it
//! (`StreamAggregateBuilder`), reduced to one task:
//!
//! - **Windows** come from `TimeWindows.windowsFor`: aligned to the epoch, start inclusive, end
//!   exclusive; a hopping window of size S advancing by A puts a record in every window whose
//!   start is a multiple of A within (t - S, t].
//! - **Stream time** is the largest timestamp the aggregation has seen, per task and not per key
//!   (`AbstractKStreamTimeWindowAggregateProcessor.updateObservedStreamTime`). A record that WHERE
//!   filters out, or whose GROUP BY key is NULL, never reaches the aggregation and moves nothing.
//! - **Late records**: a window is closed once `end <= stream time - grace`
//!   (`KStreamWindowAggregate.KStreamWindowAggregateProcessor.process`); a record for a closed
//!   window is dropped ("Skipping record for expired window").
//! - **EMIT CHANGES** forwards every update of an aggregate, with the largest timestamp of the
//!   records in it as ROWTIME, through the record cache: `statestore.cache.max.bytes` (shared
//!   among `num.stream.threads`, `KafkaStreams.getCacheSizePerThread`) coalesces updates of one
//!   window until a commit (`commit.interval.ms`) or an eviction flushes them
//!   (`NamedCache.flush`: the evicted entry first, then every dirty entry in the order it was last
//!   updated). A cache of 0 bytes forwards every update.
//! - **EMIT FINAL** (`EmitStrategy.onWindowClose`, KIP-825) forwards each window once, after it
//!   closes, from the window store: `fetchAll` over window starts
//!   `[max(lower, store time - retention), close - size]` in window-start then key order, where
//!   the store's time is the largest window start written to it
//!   (`AbstractDualSchemaRocksDBSegmentedBytesStore.getActualFrom` for the time-first schema). So
//!   a window that fell out of the store's retention before stream time closed it is never
//!   emitted, as in ksqlDB's `suppress.json` cases. The emit interval is 0 here, as ksqlDB's
//!   tests set `__emit.interval.ms.kstreams.windowed.aggregation__`.
//! - **HAVING** is a filter on the aggregate's changes (`TableFilterBuilder`, Kafka's
//!   `KTableFilter` with old values sent, because the aggregate is materialized): a new value that
//!   passes is forwarded; one that fails is forwarded as a tombstone only if the old one passed.

use super::ast::{BinaryOp, Emit, JoinKind};
use super::plan::{AggCall, AggFunc, Aggregation, QueryKind, QueryPlan, RExpr, WindowSpec};
use super::value::{SqlType, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// ksqlDB's default `commit.interval.ms` (`KsqlConstants.defaultCommitIntervalMsConfig`; Streams'
/// own default is 30 000).
pub const DEFAULT_COMMIT_INTERVAL_MS: i64 = 2000;
/// ksqlDB's default `num.stream.threads` (`KsqlConstants.defaultNumberOfStreamsThreads`): the
/// record cache is shared among them.
pub const DEFAULT_NUM_STREAM_THREADS: u64 = 4;

/// Open windows (or keys) one query keeps: a bound on memory for a pathological input.
pub const MAX_STORE_ENTRIES: usize = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecConfig {
    /// ksqlDB's `cache.max.bytes.buffering` (`statestore.cache.max.bytes`) for the query.
    pub cache_max_bytes: u64,
    pub commit_interval_ms: i64,
    pub num_stream_threads: u64,
}

impl Default for ExecConfig {
    /// Every update forwarded (a cache of 0 bytes, as ksqlDB's query-validation tests run), and
    /// ksqlDB's commit interval and thread count.
    fn default() -> ExecConfig {
        ExecConfig {
            cache_max_bytes: 0,
            commit_interval_ms: DEFAULT_COMMIT_INTERVAL_MS,
            num_stream_threads: DEFAULT_NUM_STREAM_THREADS,
        }
    }
}

/// A record of a source: its timestamp and its columns in the source's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub rowtime: i64,
    pub values: Vec<Value>,
}

/// A row a query emits. `value` is `None` for a tombstone.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub rowtime: i64,
    pub key: Vec<Value>,
    /// `[start, end)` for a windowed aggregation.
    pub window: Option<(i64, i64)>,
    pub value: Option<Vec<Value>>,
}

/// A record a window refused: the window had closed.
#[derive(Clone, Debug, PartialEq)]
pub struct LateDrop {
    pub rowtime: i64,
    pub key: Vec<Value>,
    pub window: (i64, i64),
    pub stream_time: i64,
    pub grace_ms: i64,
}

/// One write to a query's state store: what its changelog topic records, in the order the store
/// logged it (Streams' `ChangeLoggingKeyValueBytesStore` / `ChangeLoggingWindowBytesStore` sit
/// below the caching layer, so under EMIT CHANGES a write is logged when the record cache
/// forwards the entry; with the cache at 0 bytes that is every update).
#[derive(Clone, Debug, PartialEq)]
pub struct StoreWrite {
    /// The GROUP BY key, in the sink's key-column order.
    pub key: Vec<Value>,
    /// `[start, end)` for a window store.
    pub window: Option<(i64, i64)>,
    /// The aggregates' running state.
    pub aggs: Vec<Value>,
    /// The largest timestamp of the records folded in (the result's ROWTIME).
    pub timestamp: i64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    pub rows: Vec<Row>,
    pub late: Vec<LateDrop>,
    /// Every store write, in order: what a changelog topic receives.
    pub changelog: Vec<StoreWrite>,
    /// An inner join found no table row for the record's key (or the key was NULL): nothing
    /// was emitted.
    pub unjoined: bool,
}

/// A declared table's rows as a stream-table join reads them, by primary key (as
/// [`Value::to_csv`] writes it: one key type per table, so distinct keys stay distinct).
pub type TableRows = BTreeMap<String, Vec<Value>>;

/// The window store's key: window start, then the key's bytes as the KAFKA format serializes
/// them, which is the order a time-first window store iterates in.
type StoreKey = (i64, Vec<u8>);

#[derive(Clone, Debug)]
struct Stored {
    key: Vec<Value>,
    end: i64,
    aggs: Vec<Value>,
    timestamp: i64,
}

/// The record cache of one store (`NamedCache` under a `ThreadCache`), by what it decides:
/// which entries are dirty (and their value at the last flush), in which order they were last
/// written, and how many bytes it holds.
#[derive(Clone, Debug)]
struct CacheEntry {
    /// When it was last written (its place in LRU order and in flush order).
    last_use: u64,
    /// Estimated bytes.
    size: u64,
    /// `Some` while dirty: the aggregate's value at the last flush (`None` for a new window).
    dirty: Option<Option<Vec<Value>>>,
}

#[derive(Clone, Debug, Default)]
struct Cache {
    entries: BTreeMap<StoreKey, CacheEntry>,
    seq: u64,
    bytes: u64,
}

pub struct QueryRuntime {
    plan: QueryPlan,
    config: ExecConfig,
    key_types: Vec<SqlType>,
    stream_time: Option<i64>,
    store: BTreeMap<StoreKey, Stored>,
    cache: Cache,
    last_commit_ms: Option<i64>,
    /// The largest window start written to the store (its "observed stream time").
    store_time: Option<i64>,
    last_emit_close: Option<i64>,
}

impl QueryRuntime {
    pub fn new(plan: QueryPlan, config: ExecConfig) -> QueryRuntime {
        let key_types = plan.output.key_columns().map(|c| c.ty).collect();
        QueryRuntime {
            plan,
            config,
            key_types,
            stream_time: None,
            store: BTreeMap::new(),
            cache: Cache::default(),
            last_commit_ms: None,
            store_time: None,
            last_emit_close: None,
        }
    }

    pub fn plan(&self) -> &QueryPlan {
        &self.plan
    }

    /// Put one changelog record back into the store, as Streams' `StoreChangelogReader` restores
    /// a store before its task processes: the value is the one written, nothing is forwarded, and
    /// stream time does not move (it comes back with the first record processed).
    pub fn restore(&mut self, write: &StoreWrite) {
        let key_bytes = serialize_key(&write.key, &self.key_types);
        let (start, end) = write.window.unwrap_or((0, 0));
        if write.window.is_some() {
            self.store_time = Some(self.store_time.map_or(start, |t| t.max(start)));
        }
        let stored = Stored { key: write.key.clone(), end, aggs: write.aggs.clone(), timestamp: write.timestamp };
        self.store.insert((start, key_bytes), stored);
    }

    /// The store's entries, in its iteration order (window start, then key).
    pub fn store_entries(&self) -> Vec<StoreWrite> {
        let windowed = matches!(&self.plan.kind, QueryKind::Aggregation(a) if a.window.is_some());
        self.store
            .iter()
            .map(|((start, _), s)| StoreWrite {
                key: s.key.clone(),
                window: windowed.then_some((*start, s.end)),
                aggs: s.aggs.clone(),
                timestamp: s.timestamp,
            })
            .collect()
    }

    /// What an aggregation groups `record` by, after its WHERE: the key Kafka Streams'
    /// `groupBy` selects (`KStreamImpl.groupBy` -> a key-changing map) and writes to the
    /// repartition topic. `None` if WHERE drops the record, a GROUP BY value is NULL (ksqlDB
    /// drops the row), or the query is no aggregation.
    pub fn group_key(&self, record: &Record) -> Option<Vec<Value>> {
        let QueryKind::Aggregation(agg) = &self.plan.kind else { return None };
        let input = Ctx { input: &record.values, rowtime: record.rowtime, keys: &[], aggs: &[], window: None };
        if let Some(w) = &self.plan.where_ {
            if eval(w, &input) != Value::Boolean(true) {
                return None;
            }
        }
        let group: Vec<Value> = agg.group_by.iter().map(|g| eval(g, &input)).collect();
        if group.iter().any(Value::is_null) {
            return None;
        }
        Some(agg.key_order.iter().map(|&i| group[i].clone()).collect())
    }

    /// Feed one record of the query's source; a join looks its key up in `tables` (each
    /// declared table's rows as they stand now). `Err` only when the query would keep more than
    /// [`MAX_STORE_ENTRIES`] windows.
    pub fn process(&mut self, record: &Record, tables: &BTreeMap<String, TableRows>) -> Result<Output, String> {
        let mut out = Output::default();
        let joined;
        let record = match &self.plan.join {
            None => record,
            Some(join) => {
                // `KStreamKTableJoinProcessor.process`: the table as it stands now, by the
                // stream's key. A NULL key finds no row; since KIP-962 (Kafka 3.7) a left join
                // still emits such a record, an inner join drops it.
                let key = record.values.get(join.stream_key).unwrap_or(&Value::Null);
                let row = if key.is_null() { None } else { tables.get(&join.table).and_then(|t| t.get(&key.to_csv())) };
                if row.is_none() && join.kind == JoinKind::Inner {
                    out.unjoined = true;
                    return Ok(out);
                }
                let mut values = record.values.clone();
                match row {
                    Some(row) => values.extend(row.iter().cloned()),
                    None => values.extend(std::iter::repeat_n(Value::Null, join.table_width)),
                }
                joined = Record { rowtime: record.rowtime, values };
                &joined
            }
        };
        let input = Ctx { input: &record.values, rowtime: record.rowtime, keys: &[], aggs: &[], window: None };
        if let Some(w) = &self.plan.where_ {
            if eval(w, &input) != Value::Boolean(true) {
                return Ok(out);
            }
        }
        match &self.plan.kind {
            QueryKind::Projection { keys, values } => {
                out.rows.push(Row {
                    rowtime: record.rowtime,
                    key: keys.iter().map(|k| eval(k, &input)).collect(),
                    window: None,
                    value: Some(values.iter().map(|v| eval(v, &input)).collect()),
                });
            }
            QueryKind::Aggregation(agg) => {
                let agg = agg.clone();
                self.aggregate(&agg, record, &mut out)?;
                self.maybe_commit(&agg, record.rowtime, &mut out);
            }
        }
        Ok(out)
    }

    fn aggregate(&mut self, agg: &Aggregation, record: &Record, out: &mut Output) -> Result<(), String> {
        let input = Ctx { input: &record.values, rowtime: record.rowtime, keys: &[], aggs: &[], window: None };
        let group: Vec<Value> = agg.group_by.iter().map(|g| eval(g, &input)).collect();
        if group.iter().any(Value::is_null) {
            // Streams skips a record with a null key ("Skipping record due to null key"); ksqlDB
            // drops a row whose GROUP BY expression is NULL before the aggregation.
            return Ok(());
        }
        let key: Vec<Value> = agg.key_order.iter().map(|&i| group[i].clone()).collect();
        let key_bytes = serialize_key(&key, &self.key_types);
        let stream_time = self.stream_time.map_or(record.rowtime, |t| t.max(record.rowtime));
        self.stream_time = Some(stream_time);
        let Some(window) = agg.window else {
            return self.update(agg, (0, key_bytes), key, 0, record, out);
        };
        let close = stream_time.saturating_sub(window.grace_ms);
        for (start, end) in windows_for(&window, record.rowtime) {
            if end > close {
                self.update(agg, (start, key_bytes.clone()), key.clone(), end, record, out)?;
            } else {
                out.late.push(LateDrop {
                    rowtime: record.rowtime,
                    key: key.clone(),
                    window: (start, end),
                    stream_time,
                    grace_ms: window.grace_ms,
                });
            }
        }
        if agg.emit == Emit::Final {
            self.emit_final(agg, &window, close, out);
        }
        Ok(())
    }

    fn update(
        &mut self,
        agg: &Aggregation,
        at: StoreKey,
        key: Vec<Value>,
        end: i64,
        record: &Record,
        out: &mut Output,
    ) -> Result<(), String> {
        let input = Ctx { input: &record.values, rowtime: record.rowtime, keys: &[], aggs: &[], window: None };
        let old = self.store.get(&at).cloned();
        if old.is_none() && self.store.len() >= MAX_STORE_ENTRIES {
            return Err(format!(
                "the query would keep more than {MAX_STORE_ENTRIES} windows; ksim bounds its state there"
            ));
        }
        let (mut aggs, timestamp) = match &old {
            Some(s) => (s.aggs.clone(), s.timestamp.max(record.rowtime)),
            None => (agg.aggregates.iter().map(initial).collect(), record.rowtime),
        };
        for (state, call) in aggs.iter_mut().zip(&agg.aggregates) {
            *state = step(call, std::mem::replace(state, Value::Null), &input);
        }
        if agg.window.is_some() {
            self.store_time = Some(self.store_time.map_or(at.0, |t| t.max(at.0)));
        }
        self.store.insert(at.clone(), Stored { key, end, aggs, timestamp });
        match agg.emit {
            // The caching layer sits above the change-logging one (`CachingKeyValueStore` /
            // `CachingWindowStore` wrap `ChangeLogging*Store`): the changelog gets a write when
            // the cache forwards the entry, so the cache deduplicates both.
            Emit::Changes => self.cache_put(agg, at, old.map(|s| s.aggs), out),
            // EMIT FINAL's window store is not cached (`EmitStrategy.onWindowClose`): every
            // update is logged.
            Emit::Final => self.log_write(agg, &at, out),
        }
        Ok(())
    }

    /// Log the store's current value of `at` to the changelog.
    fn log_write(&self, agg: &Aggregation, at: &StoreKey, out: &mut Output) {
        let stored = &self.store[at];
        out.changelog.push(StoreWrite {
            key: stored.key.clone(),
            window: agg.window.map(|_| (at.0, stored.end)),
            aggs: stored.aggs.clone(),
            timestamp: stored.timestamp,
        });
    }

    /// Forward and log every entry the record cache holds dirty (a commit's
    /// `ThreadCache.flush`): what the runtime calls at each commit.
    pub fn flush_cache(&mut self) -> Output {
        let mut out = Output::default();
        if let QueryKind::Aggregation(agg) = &self.plan.kind {
            let agg = agg.clone();
            self.flush(&agg, &mut out);
        }
        out
    }

    /// Put an updated aggregate through the record cache, flushing what it evicts.
    fn cache_put(&mut self, agg: &Aggregation, at: StoreKey, old: Option<Vec<Value>>, out: &mut Output) {
        let size = self.entry_size(&at);
        let cache = &mut self.cache;
        cache.seq += 1;
        let seq = cache.seq;
        match cache.entries.get_mut(&at) {
            Some(entry) => {
                entry.last_use = seq;
                if entry.dirty.is_none() {
                    entry.dirty = Some(old);
                }
            }
            None => {
                cache.entries.insert(at, CacheEntry { last_use: seq, size, dirty: Some(old) });
                cache.bytes += size;
            }
        }
        let max_bytes = self.config.cache_max_bytes / self.config.num_stream_threads.max(1);
        while self.cache.bytes > max_bytes {
            // `NamedCache.evict`: the least recently used entry goes; if it was dirty, the whole
            // cache flushes, the evicted entry first.
            let eldest =
                self.cache.entries.iter().min_by_key(|(_, e)| e.last_use).map(|(k, _)| k.clone()).expect("bytes > 0");
            let evicted = self.cache.entries.remove(&eldest).expect("present");
            self.cache.bytes -= evicted.size;
            if let Some(old) = evicted.dirty {
                self.log_write(agg, &eldest, out);
                self.forward_change(agg, &eldest, old, out);
                self.flush(agg, out);
            }
        }
    }

    /// Forward every dirty entry in the order it was last written (`NamedCache.flush`).
    fn flush(&mut self, agg: &Aggregation, out: &mut Output) {
        let mut dirty: Vec<(u64, StoreKey)> = self
            .cache
            .entries
            .iter()
            .filter(|(_, e)| e.dirty.is_some())
            .map(|(k, e)| (e.last_use, k.clone()))
            .collect();
        dirty.sort();
        for (_, at) in dirty {
            let old = self.cache.entries.get_mut(&at).and_then(|e| e.dirty.take()).expect("dirty");
            self.log_write(agg, &at, out);
            self.forward_change(agg, &at, old, out);
        }
    }

    /// A commit flushes the caches (`StreamTask.prepareCommit`); the clock is the record's ROWTIME.
    fn maybe_commit(&mut self, agg: &Aggregation, now: i64, out: &mut Output) {
        let last = *self.last_commit_ms.get_or_insert(now);
        if now.saturating_sub(last) >= self.config.commit_interval_ms {
            self.flush(agg, out);
            self.last_commit_ms = Some(now);
        }
    }

    /// The estimated bytes of one cache entry, after Streams' accounting (`NamedCache.LRUNode.size`,
    /// `LRUCacheEntry.size`, `ProcessorRecordContext.residentMemorySizeEstimate`): the cache key
    /// (segment id, serialized key, window start, sequence number), 24 bytes of node pointers, the
    /// value (its timestamp and the aggregates as ksim serializes them, 8 bytes each), and the
    /// record context (timestamp, offset, partition, topic name). An estimate: ksqlDB's internal
    /// serialization of the aggregate row differs.
    fn entry_size(&self, at: &StoreKey) -> u64 {
        let aggs = match &self.plan.kind {
            QueryKind::Aggregation(a) => a.aggregates.len() as u64,
            QueryKind::Projection { .. } => 0,
        };
        let key = 8 + at.1.len() as u64 + 8 + 4;
        let value = 8 + 8 * aggs;
        let context = 8 + 8 + 4 + self.plan.source.len() as u64;
        key + 24 + value + 1 + context
    }

    /// Forward a change of one aggregate through HAVING to the sink.
    fn forward_change(&self, agg: &Aggregation, at: &StoreKey, old: Option<Vec<Value>>, out: &mut Output) {
        let stored = &self.store[at];
        let window = agg.window.map(|_| (at.0, stored.end));
        let ctx = |aggs: &'_ [Value]| -> (bool, Vec<Value>) {
            let c = Ctx { input: &[], rowtime: stored.timestamp, keys: &stored.key, aggs, window };
            let passes = agg.having.as_ref().is_none_or(|h| eval(h, &c) == Value::Boolean(true));
            (passes, agg.values.iter().map(|v| eval(v, &c)).collect())
        };
        let (new_passes, values) = ctx(&stored.aggs);
        let old_passes = old.as_ref().is_some_and(|o| ctx(o).0);
        let value = if new_passes {
            Some(values)
        } else if old_passes {
            None
        } else {
            return;
        };
        out.rows.push(Row { rowtime: stored.timestamp, key: stored.key.clone(), window, value });
    }

    /// EMIT FINAL: forward the windows that closed since the last emission
    /// (`AbstractKStreamTimeWindowAggregateProcessor.maybeForwardFinalResult`).
    fn emit_final(&mut self, agg: &Aggregation, window: &WindowSpec, close: i64, out: &mut Output) {
        if self.last_emit_close.is_some_and(|last| last >= close) {
            return;
        }
        let upper = close - window.size_ms;
        if upper < 0 {
            return;
        }
        let lower = match self.last_emit_close {
            None => 0,
            Some(last) => (last - window.size_ms).max(0) + 1,
        };
        if self.last_emit_close.is_some() {
            // `KStreamWindowAggregateProcessor.shouldRangeFetch`: nothing new has closed.
            let starts = |t: i64| windows_for(window, t).into_iter().map(|w| w.0).collect::<Vec<_>>();
            if starts(upper) == starts(lower - 1) {
                return;
            }
        }
        let Some(store_time) = self.store_time else { return };
        let from = lower.max(store_time - window.retention_ms);
        if from <= upper {
            let closed: Vec<StoreKey> = self
                .store
                .range((from, Vec::new())..)
                .take_while(|(k, _)| k.0 <= upper)
                .map(|(k, _)| k.clone())
                .collect();
            for at in closed {
                self.forward_change(agg, &at, None, out);
            }
        }
        self.last_emit_close = Some(close);
    }
}

/// The windows a timestamp falls in, by start (`TimeWindows.windowsFor`).
pub fn windows_for(window: &WindowSpec, timestamp: i64) -> Vec<(i64, i64)> {
    let mut start = (timestamp - window.size_ms + window.advance_ms).max(0) / window.advance_ms * window.advance_ms;
    let mut out = Vec::new();
    while start <= timestamp {
        out.push((start, start.saturating_add(window.size_ms)));
        start += window.advance_ms;
    }
    out
}

/// A key as the KAFKA format serializes it: strings as UTF-8, INT as 4 bytes and BIGINT as 8
/// bytes big-endian, DOUBLE as its 8 IEEE bytes; the byte order is the window store's order.
fn serialize_key(key: &[Value], types: &[SqlType]) -> Vec<u8> {
    let mut out = Vec::new();
    for (v, ty) in key.iter().zip(types) {
        match (v, ty) {
            (Value::Int(i), SqlType::Integer) => out.extend_from_slice(&(*i as i32).to_be_bytes()),
            (Value::Int(i), _) => out.extend_from_slice(&i.to_be_bytes()),
            (Value::Double(d), _) => out.extend_from_slice(&d.to_bits().to_be_bytes()),
            (Value::String(s), _) => out.extend_from_slice(s.as_bytes()),
            (Value::Boolean(b), _) => out.push(u8::from(*b)),
            (Value::Null, _) => {}
        }
    }
    out
}

fn initial(call: &AggCall) -> Value {
    match call.func {
        AggFunc::CountAll | AggFunc::Count => Value::Int(0),
        // ksqlDB's SUM starts from zero (`SumKudaf` / `BaseSumKudaf.initialize`).
        AggFunc::Sum if call.ty == SqlType::Double => Value::Double(0.0),
        AggFunc::Sum => Value::Int(0),
        AggFunc::Min | AggFunc::Max => Value::Null,
    }
}

/// Fold one row into an aggregate. NULL arguments are skipped, as ksqlDB's UDAFs skip them.
fn step(call: &AggCall, state: Value, row: &Ctx<'_>) -> Value {
    let arg = call.arg.as_ref().map(|a| eval(a, row));
    match (call.func, state, arg) {
        (AggFunc::CountAll, Value::Int(n), _) => Value::Int(n.wrapping_add(1)),
        (_, state, Some(Value::Null)) => state,
        (AggFunc::Count, Value::Int(n), _) => Value::Int(n.wrapping_add(1)),
        (AggFunc::Sum, state, Some(v)) => arithmetic(BinaryOp::Add, &state, &v, Some(call.ty)),
        (AggFunc::Min, Value::Null, Some(v)) | (AggFunc::Max, Value::Null, Some(v)) => v,
        (AggFunc::Min, state, Some(v)) => {
            if v.compare(&state) == Some(Ordering::Less) {
                v
            } else {
                state
            }
        }
        (AggFunc::Max, state, Some(v)) => {
            if v.compare(&state) == Some(Ordering::Greater) {
                v
            } else {
                state
            }
        }
        (_, state, _) => state,
    }
}

/// What an expression sees: the input row (before an aggregation), or the key, the aggregates
/// and the window (after one).
struct Ctx<'a> {
    input: &'a [Value],
    rowtime: i64,
    keys: &'a [Value],
    aggs: &'a [Value],
    window: Option<(i64, i64)>,
}

fn eval(e: &RExpr, c: &Ctx<'_>) -> Value {
    match e {
        RExpr::Input(i) => c.input.get(*i).cloned().unwrap_or(Value::Null),
        RExpr::Rowtime => Value::Int(c.rowtime),
        RExpr::WindowStart => c.window.map_or(Value::Null, |w| Value::Int(w.0)),
        RExpr::WindowEnd => c.window.map_or(Value::Null, |w| Value::Int(w.1)),
        RExpr::Key(i) => c.keys.get(*i).cloned().unwrap_or(Value::Null),
        RExpr::Agg(i) => c.aggs.get(*i).cloned().unwrap_or(Value::Null),
        RExpr::Literal(v) => v.clone(),
        RExpr::Not(inner) => match eval(inner, c) {
            Value::Boolean(b) => Value::Boolean(!b),
            _ => Value::Null,
        },
        RExpr::Neg(inner) => match eval(inner, c) {
            Value::Int(i) => Value::Int(i.wrapping_neg()),
            Value::Double(d) => Value::Double(-d),
            _ => Value::Null,
        },
        RExpr::IsNull(inner, negated) => Value::Boolean(eval(inner, c).is_null() != *negated),
        RExpr::Binary(op, l, r, ty) => {
            let (l, r) = (eval(l, c), eval(r, c));
            match op {
                BinaryOp::And => match (l, r) {
                    (Value::Boolean(false), _) | (_, Value::Boolean(false)) => Value::Boolean(false),
                    (Value::Boolean(true), Value::Boolean(true)) => Value::Boolean(true),
                    _ => Value::Null,
                },
                BinaryOp::Or => match (l, r) {
                    (Value::Boolean(true), _) | (_, Value::Boolean(true)) => Value::Boolean(true),
                    (Value::Boolean(false), Value::Boolean(false)) => Value::Boolean(false),
                    _ => Value::Null,
                },
                BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                    match l.compare(&r) {
                        None => Value::Null,
                        Some(o) => Value::Boolean(match op {
                            BinaryOp::Eq => o == Ordering::Equal,
                            BinaryOp::Ne => o != Ordering::Equal,
                            BinaryOp::Lt => o == Ordering::Less,
                            BinaryOp::Le => o != Ordering::Greater,
                            BinaryOp::Gt => o == Ordering::Greater,
                            _ => o != Ordering::Less,
                        }),
                    }
                }
                _ => arithmetic(*op, &l, &r, *ty),
            }
        }
    }
}

/// `l op r` in the result type: INT wraps at 32 bits and BIGINT at 64, as Java's `int` and
/// `long` do; integer division truncates; a division by zero is NULL.
fn arithmetic(op: BinaryOp, l: &Value, r: &Value, ty: Option<SqlType>) -> Value {
    match ty {
        Some(SqlType::Integer) | Some(SqlType::Bigint) => {
            let (Value::Int(a), Value::Int(b)) = (l, r) else { return Value::Null };
            let (a, b) = (*a, *b);
            let v = match op {
                BinaryOp::Add => a.wrapping_add(b),
                BinaryOp::Sub => a.wrapping_sub(b),
                BinaryOp::Mul => a.wrapping_mul(b),
                BinaryOp::Div if b == 0 => return Value::Null,
                BinaryOp::Div => a.wrapping_div(b),
                BinaryOp::Mod if b == 0 => return Value::Null,
                BinaryOp::Mod => a.wrapping_rem(b),
                _ => return Value::Null,
            };
            Value::Int(if ty == Some(SqlType::Integer) { i64::from(v as i32) } else { v })
        }
        Some(SqlType::Double) => {
            let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) else { return Value::Null };
            Value::Double(match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div => a / b,
                BinaryOp::Mod => a % b,
                _ => return Value::Null,
            })
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_windows_are_aligned_to_the_epoch() {
        let w = WindowSpec { size_ms: 5000, advance_ms: 5000, grace_ms: 0, retention_ms: 5000 };
        assert_eq!(windows_for(&w, 0), [(0, 5000)]);
        assert_eq!(windows_for(&w, 4999), [(0, 5000)]);
        assert_eq!(windows_for(&w, 5000), [(5000, 10000)]);
        assert_eq!(windows_for(&w, 6452), [(5000, 10000)]);
    }

    #[test]
    fn a_hopping_window_covers_every_start_within_its_size() {
        let w = WindowSpec { size_ms: 5, advance_ms: 2, grace_ms: 1, retention_ms: 6 };
        assert_eq!(windows_for(&w, 6), [(2, 7), (4, 9), (6, 11)]);
        assert_eq!(windows_for(&w, 1), [(0, 5)]);
    }

    #[test]
    fn int_arithmetic_wraps_as_java_int_does() {
        let v = arithmetic(BinaryOp::Add, &Value::Int(i32::MAX.into()), &Value::Int(1), Some(SqlType::Integer));
        assert_eq!(v, Value::Int(i32::MIN.into()));
        assert_eq!(arithmetic(BinaryOp::Div, &Value::Int(7), &Value::Int(0), Some(SqlType::Bigint)), Value::Null);
        assert_eq!(arithmetic(BinaryOp::Div, &Value::Int(-7), &Value::Int(2), Some(SqlType::Bigint)), Value::Int(-3));
    }
}
