//! The client API, and the applications scenarios run on it.
//!
//! [`KafkaProducer`] and [`KafkaConsumer`] are what application code holds, shaped like the Java
//! and .NET clients: `send` returns a delivery you may await (or drop, and let the producer report
//! the outcome), `poll` waits up to a timeout for records. The applications below are ordinary
//! async Rust, as a learner would write them at work.

use crate::scenario::App;
use crate::world::{now, Delivery, World};
use ksim_cluster::consumer::ConsumedRecord;
use ksim_cluster::node::NodeId;
use ksim_cluster::record::Record;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct KafkaProducer {
    world: Arc<Mutex<World>>,
    node: NodeId,
}

impl KafkaProducer {
    pub fn new(world: Arc<Mutex<World>>, node: NodeId) -> Self {
        KafkaProducer { world, node }
    }

    /// Queue a record. The returned delivery resolves to its partition and offset, or the error
    /// the producer gave up with.
    pub fn send(&self, topic: &str, key: Option<&str>, value: &str) -> Delivery {
        let record = Record { key: key.map(str::to_string), value: value.to_string() };
        self.world.lock().expect("world lock").producer_send(self.node, topic, record)
    }
}

pub struct KafkaConsumer {
    world: Arc<Mutex<World>>,
    node: NodeId,
}

impl KafkaConsumer {
    pub fn new(world: Arc<Mutex<World>>, node: NodeId) -> Self {
        KafkaConsumer { world, node }
    }

    /// Read every partition of these topics (no consumer group: this consumer owns them all).
    pub fn assign_all(&self, topics: &[String]) {
        self.world.lock().expect("world lock").consumer_assign_topics(self.node, topics);
    }

    /// Wait up to `timeout` for records.
    pub async fn poll(&self, timeout: Duration) -> Vec<ConsumedRecord> {
        let ready = {
            let mut world = self.world.lock().expect("world lock");
            let records = world.consumer_poll(self.node);
            if !records.is_empty() {
                return records;
            }
            world.poll_ready(self.node)
        };
        let _ = madsim::time::timeout(timeout, ready.notified()).await;
        self.world.lock().expect("world lock").consumer_poll(self.node)
    }
}

/// Wait until virtual time `ms` (no wait if it has passed).
async fn wait_until_ms(ms: u64) {
    let now_ms = now().as_ms();
    if ms > now_ms {
        madsim::time::sleep(Duration::from_millis(ms - now_ms)).await;
    }
}

/// Run a scenario's application on a client node.
pub async fn run(world: Arc<Mutex<World>>, node: NodeId, app: App, start_ms: u64) {
    wait_until_ms(start_ms).await;
    match app {
        App::Producer { topic, records, interval_ms, keys, value_prefix } => {
            let producer = KafkaProducer::new(world, node);
            for n in 0..records {
                let key = (!keys.is_empty()).then(|| keys[n as usize % keys.len()].as_str());
                let value = format!("{value_prefix}-{n}");
                // Like `producer.send(record, callback)`: don't wait; the trace reports the outcome.
                drop(producer.send(&topic, key, &value));
                madsim::time::sleep(Duration::from_millis(interval_ms)).await;
            }
        }
        App::Consumer { topics, poll_interval_ms } => {
            let consumer = KafkaConsumer::new(world, node);
            consumer.assign_all(&topics);
            loop {
                // What the application does with the records is its business; the trace shows them.
                let _records = consumer.poll(Duration::from_millis(poll_interval_ms)).await;
            }
        }
    }
}
