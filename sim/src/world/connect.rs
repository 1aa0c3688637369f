//! Kafka Connect's side of the world: the external systems (durable, outside every worker: a
//! worker crash loses nothing they hold), the standalone worker's offsets file (on the worker's
//! disk, which a crash keeps), and what workers ask of the world. (The distributed workers'
//! group is the brokers' business: workers join it over the network, `connect_worker.rs`.)

use super::driver::Wake;
use super::World;
use crate::scenario::connect::{ConnectMode, ConnectSetup};
use crate::trace::EventKind;
use ksim_cluster::connect::event::ConnectEvent;
use ksim_cluster::connect::external::{SinkMode, SinkStore, SinkWrite, SourceTable};
use ksim_cluster::connect::source_task::{parse_offset_value, Polled, SourceTask};
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::time::SimTime;
use ksim_cluster::TopicPartition;
use std::collections::BTreeMap;

/// The world's Connect state.
pub struct ConnectWorld {
    pub setup: ConnectSetup,
    pub tables: BTreeMap<String, SourceTable>,
    pub stores: BTreeMap<String, SinkStore>,
    /// The standalone worker's `offset.storage.file.filename`: key to offset.
    pub offsets_file: BTreeMap<String, i64>,
    /// Whether the connectors' configurations are in the config topic yet.
    pub configs_written: bool,
}

impl ConnectWorld {
    pub fn new(setup: ConnectSetup) -> ConnectWorld {
        ConnectWorld {
            tables: setup.sources.keys().map(|k| (k.clone(), SourceTable::default())).collect(),
            stores: setup.sinks.iter().map(|(k, m)| (k.clone(), SinkStore::new(*m))).collect(),
            offsets_file: BTreeMap::new(),
            configs_written: false,
            setup,
        }
    }
}

impl World {
    /// Schedule each source table's first row.
    pub(super) fn start_connect_sources(&mut self) {
        let Some(connect) = &self.connect else { return };
        let firsts: Vec<(String, u64)> = connect
            .setup
            .sources
            .iter()
            .filter_map(|(name, rows)| rows.first().map(|(at, _, _)| (name.clone(), *at)))
            .collect();
        for (source, at_ms) in firsts {
            self.driver.wake_at(SimTime::from_ms(at_ms), Wake::SourceRow { source, index: 0 });
        }
    }

    /// A row arrives in a source table; the next one is scheduled.
    pub(super) fn insert_source_row(&mut self, source: String, index: usize) {
        let Some(connect) = self.connect.as_mut() else { return };
        let rows = &connect.setup.sources[&source];
        let (_, id, row) = rows[index].clone();
        let next = rows.get(index + 1).map(|(at, _, _)| *at);
        connect.tables.get_mut(&source).expect("every source has a table").insert(id, row.clone());
        self.record_connect_world(ConnectEvent::RowInserted { source: source.clone(), id, row: row.to_json() });
        if let Some(at_ms) = next {
            self.driver.wake_at(SimTime::from_ms(at_ms), Wake::SourceRow { source, index: index + 1 });
        }
    }

    /// Record what no worker did (a row arriving, the group's decisions), with its narration.
    fn record_connect_world(&mut self, event: ConnectEvent) {
        let kind = EventKind::Note(Note::Connect(Box::new(event)));
        let triggered = self.narration_triggered(crate::trace::Actor::World, &kind);
        self.record_world(kind);
        for text in triggered {
            self.record_world(EventKind::Narration(text));
        }
    }

    pub fn connect_setup(&self) -> Option<ConnectSetup> {
        self.connect.as_ref().map(|c| c.setup.clone())
    }

    /// Record what a worker's task did.
    pub fn connect_event(&mut self, node: NodeId, event: ConnectEvent) {
        if self.finished {
            return;
        }
        self.on_note(node, Note::Connect(Box::new(event)));
    }

    /// A group coordinator removed a member of the Connect worker group because its session
    /// expired: the trace says which worker that was (its member id starts with the worker's
    /// `client.id`, its name).
    pub(super) fn connect_member_expired(&mut self, broker: NodeId, group: &str, member: &str) {
        let Some(connect) = self.connect.as_ref() else { return };
        if connect.setup.worker.group_id != group {
            return;
        }
        let worker = connect
            .setup
            .workers
            .iter()
            .find(|w| {
                member
                    .strip_prefix(w.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|n| n.parse::<u64>().is_ok())
            })
            .cloned()
            .unwrap_or_else(|| member.to_string());
        let event = ConnectEvent::WorkerSessionExpired { group: group.to_string(), worker };
        self.on_note(broker, Note::Connect(Box::new(event)));
    }

    /// A source task polls its table.
    pub fn connect_poll_source(&mut self, task: &mut SourceTask) -> Polled {
        let now_ms = self.now().as_ms() as i64;
        let Some(connect) = self.connect.as_ref() else { return Polled::default() };
        let table = &connect.tables[&task.settings().table];
        task.poll(table, now_ms)
    }

    /// The source offset a task resumes after: the standalone worker's file, or the offset
    /// topic read to its end (`KafkaOffsetBackingStore` reads it with `read_committed` when
    /// exactly-once source support is enabled, so an aborted transaction's offsets never count).
    /// `Err` while some partition of the topic has no leader to read from: the task waits, as
    /// `KafkaBasedLog.readToEnd` blocks.
    pub fn connect_committed_offset(&self, key: &str, read_committed: bool) -> Result<Option<i64>, String> {
        let Some(connect) = self.connect.as_ref() else { return Ok(None) };
        if connect.setup.mode == ConnectMode::Standalone {
            return Ok(connect.offsets_file.get(key).copied());
        }
        let topic = &connect.setup.worker.offset_topic;
        let mut latest = None;
        for p in 0..connect.setup.worker.offset_partitions {
            let tp = TopicPartition::new(topic, p);
            let records = crate::check::connect::readable(&self.slots, &tp, read_committed)
                .ok_or_else(|| format!("{tp} has no leader to read the offsets from"))?;
            for (_, record) in records {
                if record.key.as_deref() == Some(key) {
                    // A tombstone removes the key's offset (`KafkaOffsetBackingStore`'s null value).
                    latest = match record.value.as_deref() {
                        Some(value) => parse_offset_value(value).or(latest),
                        None => None,
                    };
                }
            }
        }
        Ok(latest)
    }

    /// The standalone worker writes its offsets file.
    pub fn connect_write_offsets_file(&mut self, key: &str, offset: i64) {
        if let Some(connect) = self.connect.as_mut() {
            connect.offsets_file.insert(key.to_string(), offset);
        }
    }

    /// A sink task writes one record to its store; the checker sees the write.
    pub fn connect_sink_write(
        &mut self,
        node: NodeId,
        task: &str,
        store: &str,
        origin: (&TopicPartition, i64),
        key: &str,
        value: &str,
    ) {
        let Some(connect) = self.connect.as_mut() else { return };
        let sink = connect.stores.get_mut(store).expect("validated: the store exists");
        let mode = sink.mode;
        let effect = match (mode, sink.write(key, value)) {
            (SinkMode::Append, _) => "appended",
            (SinkMode::Upsert, SinkWrite::Added) => "added",
            (SinkMode::Upsert, SinkWrite::Replaced { same: true }) => "rewritten (same value)",
            (SinkMode::Upsert, SinkWrite::Replaced { same: false }) => "replaced",
        };
        let (tp, offset) = origin;
        self.connect_event(
            node,
            ConnectEvent::SinkWrote {
                task: task.to_string(),
                store: store.to_string(),
                partition: tp.to_string(),
                offset,
                key: key.to_string(),
                value: value.to_string(),
                effect: effect.to_string(),
            },
        );
        // A task is named `<connector>-<task number>` (`ConnectorTaskId`).
        let connector = task.rsplit_once('-').map_or(task, |(c, _)| c);
        let findings = self.checker.connect.on_sink_write(connector, store, mode, tp, offset, key, value);
        for finding in findings {
            self.record_world(EventKind::Finding(finding));
        }
    }

    /// The producer acknowledged a source task's record: the checker remembers where each
    /// source record landed.
    pub fn connect_source_delivered(&mut self, connector: &str, source_offset: i64, tp: TopicPartition, offset: i64) {
        self.checker.connect.on_source_delivered(connector, source_offset, tp, offset);
    }

    /// Whether the connectors' configurations still need writing to the config topic (the
    /// first worker to ask writes them, as the group's first leader does).
    pub fn connect_claim_config_write(&mut self) -> bool {
        match self.connect.as_mut() {
            Some(c) if !c.configs_written => {
                c.configs_written = true;
                true
            }
            _ => false,
        }
    }
}
