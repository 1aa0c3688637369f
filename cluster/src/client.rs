//! A client node: the producer and consumer engines an application uses, side by side.
//!
//! Each engine keeps its own requests (in separate correlation-id ranges) and its own timers; the
//! node routes every input to the engine it belongs to. An application may run several consumers
//! (Kafka's separate `KafkaConsumer` instances: a Streams thread's main and restore consumers, a
//! Connect worker's consumer per sink task); consumer engine `k` takes the `k`-th range of
//! correlation ids ([`crate::consumer::CONSUMER_ENGINE_SPAN`]) and its timers travel wrapped in
//! [`Timer::Engine`], so that two consumers' heartbeats or request timeouts never meet.

use crate::consumer::{consumer_engine_of, Consumer, MAX_CONSUMER_ENGINES};
use crate::effects::{Effects, Input, StateMachine, TimerOp};
use crate::note::Note;
use crate::producer::Producer;
use crate::protocol::{Message, Response};
use crate::time::SimTime;
use crate::timer::{ClientEngine, Timer};

/// The correlation ids of an operator's admin requests sent from this node (Admin
/// `abortTransaction`), above every engine's range.
pub const ADMIN_CORRELATION_BASE: u64 = 1 << 48;

pub struct Client {
    pub producer: Option<Producer>,
    /// Consumer engine 0: the application's first (or only) consumer.
    pub consumer: Option<Consumer>,
    /// Consumer engines 1, 2, ...: further consumers the application created as it ran. They
    /// die with the process; a restarted application creates them again.
    pub more_consumers: Vec<Consumer>,
}

enum Route {
    Producer,
    /// Consumer engine `k`, with the input it is to see (a wrapped timer unwrapped).
    Consumer(usize),
    All,
}

fn route(input: &Input) -> Route {
    let by_id = |id: u64| consumer_engine_of(id).map_or(Route::Producer, Route::Consumer);
    match input {
        Input::Start | Input::Shutdown | Input::ConnectionClosed { .. } | Input::ConnectionEstablished { .. } => {
            Route::All
        }
        Input::Message {
            message: Message::Response { correlation_id, .. } | Message::Request { correlation_id, .. },
            ..
        } => by_id(*correlation_id),
        // Clients never speak KRaft; a stray one goes to the consumer, which ignores it.
        Input::Message { message: Message::Raft(_), .. } => Route::Consumer(0),
        Input::Timer(Timer::RequestTimeout(id)) => by_id(*id),
        Input::Timer(Timer::Engine(k, _)) => Route::Consumer(usize::from(*k)),
        Input::Timer(
            Timer::Linger(_)
            | Timer::ProducerWakeup
            | Timer::MetadataRefresh
            | Timer::TxnRetry
            | Timer::ConnectionSetup(ClientEngine::Producer, _),
        ) => Route::Producer,
        Input::Timer(_) => Route::Consumer(0),
    }
}

impl Client {
    pub fn new(producer: Option<Producer>, consumer: Option<Consumer>) -> Client {
        Client { producer, consumer, more_consumers: Vec::new() }
    }

    /// The producer's and the consumers' invariants.
    pub fn check_invariants(&self) -> Result<(), String> {
        if let Some(p) = &self.producer {
            p.check_invariants().map_err(|e| format!("producer: {e}"))?;
        }
        for (k, c) in self.consumers() {
            c.check_invariants().map_err(|e| format!("consumer {k}: {e}"))?;
        }
        Ok(())
    }

    /// Consumer engine `k`, if the application created it.
    pub fn consumer_engine(&self, k: usize) -> Option<&Consumer> {
        match k {
            0 => self.consumer.as_ref(),
            k => self.more_consumers.get(k - 1),
        }
    }

    pub fn consumer_engine_mut(&mut self, k: usize) -> Option<&mut Consumer> {
        match k {
            0 => self.consumer.as_mut(),
            k => self.more_consumers.get_mut(k - 1),
        }
    }

    /// Every consumer engine, with its number.
    pub fn consumers(&self) -> impl Iterator<Item = (usize, &Consumer)> {
        self.consumer.iter().map(|c| (0, c)).chain(self.more_consumers.iter().enumerate().map(|(i, c)| (i + 1, c)))
    }

    /// Start one more consumer (`new KafkaConsumer(props)`): returns its engine number, or
    /// `None` when the node already runs [`MAX_CONSUMER_ENGINES`] that have not closed. A
    /// closed engine's number is taken again, its correlation ids counting on from the closed
    /// one's, so that a late answer to the old consumer never matches a request of the new.
    pub fn add_consumer(&mut self, build: impl FnOnce(usize) -> Consumer) -> Option<usize> {
        if let Some(i) = self.more_consumers.iter().position(Consumer::is_closed) {
            let k = i + 1;
            let next = self.more_consumers[i].next_correlation_id();
            self.more_consumers[i] = build(k).as_engine(k).counting_from(next);
            return Some(k);
        }
        let k = self.more_consumers.len() + 1;
        if k >= MAX_CONSUMER_ENGINES {
            return None;
        }
        self.more_consumers.push(build(k).as_engine(k));
        Some(k)
    }

    /// Run consumer engine `k` on `input`, its timers wrapped as that engine's. A consumer that
    /// finished closing asks to end the process; the process ends once every consumer has.
    pub fn handle_consumer(
        &mut self,
        k: usize,
        now: SimTime,
        input: Input,
        rng: &mut dyn rand_core::RngCore,
        fx: &mut Effects,
    ) {
        let Some(consumer) = self.consumer_engine_mut(k) else { return };
        let input = match input {
            Input::Timer(Timer::Engine(_, timer)) => Input::Timer(*timer),
            other => other,
        };
        let (ops_before, exit_before) = (fx.timer_ops.len(), fx.exit);
        consumer.handle(now, input, rng, fx);
        if k > 0 {
            wrap_timers(&mut fx.timer_ops[ops_before..], k);
        }
        if fx.exit && !exit_before {
            fx.exit = self.consumers().all(|(_, c)| c.is_closed());
        }
    }

    /// Close consumer engine `k` (`KafkaConsumer.close()`), with the same exit rule.
    pub fn close_consumer(&mut self, k: usize, now: SimTime, fx: &mut Effects) {
        let Some(consumer) = self.consumer_engine_mut(k) else { return };
        let (ops_before, exit_before) = (fx.timer_ops.len(), fx.exit);
        consumer.close(now, fx);
        if k > 0 {
            wrap_timers(&mut fx.timer_ops[ops_before..], k);
        }
        if fx.exit && !exit_before {
            fx.exit = self.consumers().all(|(_, c)| c.is_closed());
        }
    }

    /// Run `f` on consumer engine `k` (an application's call), its timers wrapped as that
    /// engine's.
    pub fn with_consumer<T>(
        &mut self,
        k: usize,
        fx: &mut Effects,
        f: impl FnOnce(&mut Consumer, &mut Effects) -> T,
    ) -> Option<T> {
        let consumer = self.consumer_engine_mut(k)?;
        let ops_before = fx.timer_ops.len();
        let out = f(consumer, fx);
        if k > 0 {
            wrap_timers(&mut fx.timer_ops[ops_before..], k);
        }
        Some(out)
    }

    /// How many consumer engine numbers are in use (engine 0 counts even when the node has no
    /// first consumer).
    pub fn consumer_slots(&self) -> usize {
        1 + self.more_consumers.len()
    }
}

fn wrap_timers(ops: &mut [TimerOp], k: usize) {
    let wrap = |t: &mut Timer| {
        let inner = std::mem::replace(t, Timer::WriteNoOp);
        *t = Timer::Engine(k as u8, Box::new(inner));
    };
    for op in ops {
        match op {
            TimerOp::Set(t, _) | TimerOp::Cancel(t) => wrap(t),
        }
    }
}

impl StateMachine for Client {
    fn handle(&mut self, now: SimTime, input: Input, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        if let Input::Shutdown = input {
            // An application asked to stop (SIGTERM) closes its consumers, as a shutdown hook
            // calling `KafkaConsumer.close()` does: each commits, leaves its group and the process
            // exits once all are done (or their close timeouts passed). A producer is not
            // flushed: ksim's producer has no `close()` yet, so a client without a consumer
            // exits at once.
            if self.consumer.is_none() && self.more_consumers.is_empty() {
                fx.exit();
                return;
            }
            for k in 0..self.consumer_slots() {
                self.handle_consumer(k, now, Input::Shutdown, rng, fx);
            }
            return;
        }
        if let Input::Message {
            message: Message::Response { correlation_id, body: Response::WriteTxnMarkers(r) },
            ..
        } = &input
        {
            if *correlation_id >= ADMIN_CORRELATION_BASE {
                // `AbortTransactionHandler`: the admin's abort is answered.
                fx.note(Note::AdminAbortAnswered { partition: r.partition.clone(), error: r.error });
                return;
            }
        }
        match route(&input) {
            Route::Producer => {
                if let Some(p) = self.producer.as_mut() {
                    p.handle(now, input, rng, fx);
                }
            }
            Route::Consumer(k) => self.handle_consumer(k, now, input, rng, fx),
            Route::All => {
                if let Some(p) = self.producer.as_mut() {
                    p.handle(now, input.clone(), rng, fx);
                }
                for k in 0..self.consumer_slots() {
                    self.handle_consumer(k, now, input.clone(), rng, fx);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsumerConfig;
    use crate::topic::TopicPartition;

    fn engine_of_timer(op: &TimerOp) -> Option<usize> {
        match op {
            TimerOp::Set(Timer::Engine(k, _), _) | TimerOp::Cancel(Timer::Engine(k, _)) => Some(usize::from(*k)),
            _ => None,
        }
    }

    /// Two consumers of one node (a Streams thread's main and restore consumers) keep apart:
    /// each sends in its own correlation-id range, the second's timers travel wrapped with its
    /// number, and a wrapped timer or a response reaches only its own engine.
    #[test]
    fn a_second_consumer_has_its_own_requests_and_timers() {
        let mut client = Client::new(None, Some(Consumer::new(ConsumerConfig::default(), vec![1], "app")));
        let k = client
            .add_consumer(|_| Consumer::new(ConsumerConfig::default(), vec![1], "app-restore-consumer"))
            .expect("room for a second consumer");
        assert_eq!(k, 1);
        let tp = TopicPartition::new("changelog", 0);

        let mut fx = Effects::default();
        client.with_consumer(0, &mut fx, |c, fx| c.assign(vec![TopicPartition::new("input", 0)], SimTime::ZERO, fx));
        assert!(!fx.sends.is_empty(), "the first consumer asks for metadata");
        for (_, message) in &fx.sends {
            let Message::Request { correlation_id, .. } = message else { panic!("a request") };
            assert_eq!(consumer_engine_of(*correlation_id), Some(0));
        }
        assert!(fx.timer_ops.iter().all(|op| engine_of_timer(op).is_none()), "engine 0's timers are its own");

        let mut fx = Effects::default();
        client.with_consumer(1, &mut fx, |c, fx| c.assign(vec![tp.clone()], SimTime::ZERO, fx));
        let ids: Vec<u64> = fx
            .sends
            .iter()
            .map(|(_, m)| match m {
                Message::Request { correlation_id, .. } => *correlation_id,
                other => panic!("a request, not {other:?}"),
            })
            .collect();
        assert!(!ids.is_empty());
        assert!(ids.iter().all(|id| consumer_engine_of(*id) == Some(1)), "engine 1's range: {ids:?}");
        assert!(!fx.timer_ops.is_empty());
        assert!(fx.timer_ops.iter().all(|op| engine_of_timer(op) == Some(1)), "{:?}", fx.timer_ops);

        // Engine 1's request timeout reaches engine 1 (it retries the metadata request in its
        // own range), and engine 0 sends nothing.
        let mut rng = <rand_chacha::ChaCha8Rng as rand_core::SeedableRng>::seed_from_u64(1);
        let mut fx = Effects::default();
        let timer = Timer::Engine(1, Box::new(Timer::RequestTimeout(ids[0])));
        client.handle(SimTime::from_ms(40_000), Input::Timer(timer), &mut rng, &mut fx);
        assert!(fx.sends.iter().all(|(_, m)| matches!(m, Message::Request { correlation_id, .. }
            if consumer_engine_of(*correlation_id) == Some(1))));
        assert_eq!(client.consumers().count(), 2);
    }

    /// A consumer closed and replaced (a Connect sink task moved away and back) takes the
    /// closed one's engine number, with correlation ids past the old one's.
    #[test]
    fn a_closed_engine_is_reused_with_fresh_correlation_ids() {
        let mut client = Client::new(None, Some(Consumer::new(ConsumerConfig::default(), vec![1], "worker")));
        let k = client.add_consumer(|_| Consumer::new(ConsumerConfig::default(), vec![1], "task-0")).expect("room");
        let mut fx = Effects::default();
        client.with_consumer(k, &mut fx, |c, fx| c.assign(vec![TopicPartition::new("t", 0)], SimTime::ZERO, fx));
        let used = client.consumer_engine(k).expect("running").next_correlation_id();
        let mut fx = Effects::default();
        client.close_consumer(k, SimTime::ZERO, &mut fx);
        assert!(client.consumer_engine(k).is_some_and(Consumer::is_closed));
        let again = client.add_consumer(|_| Consumer::new(ConsumerConfig::default(), vec![1], "task-0")).expect("room");
        assert_eq!(again, k, "the closed engine's number");
        let fresh = client.consumer_engine(k).expect("running");
        assert!(!fresh.is_closed());
        assert!(fresh.next_correlation_id() >= used, "ids count on");
        assert_eq!(consumer_engine_of(fresh.next_correlation_id()), Some(k));
    }

    /// The process ends once every consumer it runs has closed, not when the first has.
    #[test]
    fn the_node_exits_when_its_last_consumer_closed() {
        let mut client = Client::new(None, Some(Consumer::new(ConsumerConfig::default(), vec![1], "a")));
        client.add_consumer(|_| Consumer::new(ConsumerConfig::default(), vec![1], "b")).expect("room");
        let mut fx = Effects::default();
        client.close_consumer(0, SimTime::ZERO, &mut fx);
        assert!(!fx.exit, "consumer 1 still runs");
        let mut fx = Effects::default();
        client.close_consumer(1, SimTime::ZERO, &mut fx);
        assert!(fx.exit, "both closed");
    }
}
