//! A client node: the producer and consumer engines an application uses, side by side.
//!
//! Each engine keeps its own requests (in separate correlation-id ranges) and its own timers; the
//! node routes every input to the engine it belongs to.

use crate::consumer::{Consumer, CONSUMER_CORRELATION_BASE};
use crate::effects::{Effects, Input, StateMachine};
use crate::note::Note;
use crate::producer::Producer;
use crate::protocol::{Message, Response};
use crate::time::SimTime;
use crate::timer::{ClientEngine, Timer};

/// The correlation ids of an operator's admin requests sent from this node (Admin
/// `abortTransaction`), above both engines' ranges.
pub const ADMIN_CORRELATION_BASE: u64 = 1 << 48;

pub struct Client {
    pub producer: Option<Producer>,
    pub consumer: Option<Consumer>,
}

enum Route {
    Producer,
    Consumer,
    Both,
}

fn route(input: &Input) -> Route {
    let by_id = |id: u64| if id >= CONSUMER_CORRELATION_BASE { Route::Consumer } else { Route::Producer };
    match input {
        Input::Start | Input::Shutdown | Input::ConnectionClosed { .. } | Input::ConnectionEstablished { .. } => {
            Route::Both
        }
        Input::Message {
            message: Message::Response { correlation_id, .. } | Message::Request { correlation_id, .. },
            ..
        } => by_id(*correlation_id),
        // Clients never speak KRaft; a stray one goes to the consumer, which ignores it.
        Input::Message { message: Message::Raft(_), .. } => Route::Consumer,
        Input::Timer(Timer::RequestTimeout(id)) => by_id(*id),
        Input::Timer(
            Timer::Linger(_)
            | Timer::ProducerWakeup
            | Timer::MetadataRefresh
            | Timer::TxnRetry
            | Timer::ConnectionSetup(ClientEngine::Producer, _),
        ) => Route::Producer,
        Input::Timer(_) => Route::Consumer,
    }
}

impl Client {
    /// The producer's and the consumer's invariants.
    pub fn check_invariants(&self) -> Result<(), String> {
        if let Some(p) = &self.producer {
            p.check_invariants().map_err(|e| format!("producer: {e}"))?;
        }
        if let Some(c) = &self.consumer {
            c.check_invariants().map_err(|e| format!("consumer: {e}"))?;
        }
        Ok(())
    }
}

impl StateMachine for Client {
    fn handle(&mut self, now: SimTime, input: Input, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        if let Input::Shutdown = input {
            // An application asked to stop (SIGTERM) closes its consumer, as a shutdown hook
            // calling `KafkaConsumer.close()` does: the consumer commits, leaves its group and
            // exits the process once its coordinator answered (or its close timeout passed). A
            // producer is not flushed: ksim's producer has no `close()` yet, so a client without
            // a consumer exits at once.
            match self.consumer.as_mut() {
                Some(c) => c.handle(now, input, rng, fx),
                None => fx.exit(),
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
            Route::Consumer => {
                if let Some(c) = self.consumer.as_mut() {
                    c.handle(now, input, rng, fx);
                }
            }
            Route::Both => {
                if let Some(p) = self.producer.as_mut() {
                    p.handle(now, input.clone(), rng, fx);
                }
                if let Some(c) = self.consumer.as_mut() {
                    c.handle(now, input, rng, fx);
                }
            }
        }
    }
}
