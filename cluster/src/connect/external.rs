//! The systems outside Kafka that connectors move data between.
//!
//! A **source table** is a database table that grows: rows arrive with increasing ids, and a
//! source connector in incrementing mode (Confluent's JDBC source, `mode=incrementing`) reads the
//! rows whose id is above the last one it recorded. The id is the *source offset*: Connect, not
//! the table, remembers how far each task got.
//!
//! A **sink store** is where a sink connector writes. It either *upserts* (a key-value store or a
//! search index: one document per key, a rewrite replaces it, so a record written twice leaves
//! no trace) or *appends* (a file or a log: every write is a new line, so a record written twice
//! is there twice). Which one a sink is decides what at-least-once delivery costs.
//!
//! Both live outside every Connect worker: a worker crash loses nothing they hold.

use super::smt::Value;
use std::collections::BTreeMap;

/// A table whose rows a source connector reads by increasing id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceTable {
    /// Every row, in id order: (id, the row as a map of columns).
    rows: Vec<(i64, Value)>,
}

impl SourceTable {
    /// Insert a row. Ids only grow (an auto-increment column): a row whose id is not above the
    /// last one is a scenario error the caller checks before the run.
    pub fn insert(&mut self, id: i64, row: Value) {
        assert!(
            self.rows.last().is_none_or(|(last, _)| *last < id),
            "source table ids must grow: {id} after {:?}",
            self.rows.last()
        );
        self.rows.push((id, row));
    }

    /// Up to `max` rows with an id above `after` (`WHERE id > ? ORDER BY id LIMIT max`).
    pub fn rows_after(&self, after: i64, max: usize) -> &[(i64, Value)] {
        let start = self.rows.partition_point(|(id, _)| *id <= after);
        let end = (start + max).min(self.rows.len());
        &self.rows[start..end]
    }

    pub fn rows(&self) -> &[(i64, Value)] {
        &self.rows
    }
}

/// How a sink store takes a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SinkMode {
    /// One entry per key; a write replaces the key's entry (a key-value store, a search index).
    Upsert,
    /// Every write is a new entry (a file, an append-only table).
    Append,
}

/// What one write did to a sink store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkWrite {
    /// A new key (upsert) or a new line (append).
    Added,
    /// The key existed; its entry was replaced. `same`: with the very value it had (a record
    /// written again after a crash changes nothing in an upserting store).
    Replaced { same: bool },
}

/// An external store a sink connector writes to.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkStore {
    pub mode: SinkMode,
    /// Upsert: the entry of each key. Append: unused.
    by_key: BTreeMap<String, String>,
    /// Append: every line, in write order. Upsert: unused.
    lines: Vec<String>,
}

impl SinkStore {
    pub fn new(mode: SinkMode) -> SinkStore {
        SinkStore { mode, by_key: BTreeMap::new(), lines: Vec::new() }
    }

    /// Write one record's key and value (as the sink formats them).
    pub fn write(&mut self, key: &str, value: &str) -> SinkWrite {
        match self.mode {
            SinkMode::Upsert => match self.by_key.insert(key.to_string(), value.to_string()) {
                None => SinkWrite::Added,
                Some(old) => SinkWrite::Replaced { same: old == value },
            },
            SinkMode::Append => {
                self.lines.push(value.to_string());
                SinkWrite::Added
            }
        }
    }

    /// An upserting store's entries, by key.
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.by_key
    }

    /// An appending store's lines.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// How many entries (upsert) or lines (append) the store holds.
    pub fn len(&self) -> usize {
        match self.mode {
            SinkMode::Upsert => self.by_key.len(),
            SinkMode::Append => self.lines.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_read_by_increasing_id_in_batches() {
        let mut t = SourceTable::default();
        for id in [1, 2, 5, 7] {
            t.insert(id, Value::Int64(id));
        }
        let ids = |rows: &[(i64, Value)]| rows.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        assert_eq!(ids(t.rows_after(0, 2)), vec![1, 2]);
        assert_eq!(ids(t.rows_after(2, 10)), vec![5, 7]);
        assert_eq!(ids(t.rows_after(3, 10)), vec![5, 7]);
        assert!(t.rows_after(7, 10).is_empty());
    }

    #[test]
    fn a_rewrite_duplicates_an_appending_store_and_not_an_upserting_one() {
        let mut upsert = SinkStore::new(SinkMode::Upsert);
        let mut append = SinkStore::new(SinkMode::Append);
        for store in [&mut upsert, &mut append] {
            store.write("1", "alice");
            store.write("2", "bob");
            store.write("1", "alice");
        }
        assert_eq!(upsert.len(), 2);
        assert_eq!(upsert.write("1", "alice"), SinkWrite::Replaced { same: true });
        assert_eq!(upsert.write("1", "ann"), SinkWrite::Replaced { same: false });
        assert_eq!(append.lines(), &["alice", "bob", "alice"]);
    }
}
