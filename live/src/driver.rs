//! The real-time driver: the world's clock is the wall clock since the server started, and its
//! wake-ups wait on a timer wheel (an ordered agenda) that the server's loop serves when they
//! fall due.
//!
//! madsim is not involved: no runtime is ever built in `ksim serve`, and madsim's interposed
//! `clock_gettime` passes through to the real one outside a runtime context, so
//! `std::time::Instant` here is the operating system's monotonic clock (checked by the test
//! `instant_is_real_time_outside_madsim` below).

use ksim_cluster::node::NodeId;
use ksim_cluster::time::SimTime;
use ksim_sim::world::driver::{Driver, ProcessControl, Wake};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the world asked for and the loop has not yet done.
pub struct Agenda {
    start: Instant,
    next_seq: u64,
    /// Wake-ups by due time; the sequence number keeps same-time wake-ups in the order asked.
    wakes: BTreeMap<(SimTime, u64), Wake>,
    /// Process changes the world asked for (kills, restarts), for the loop to carry out.
    pub controls: Vec<(NodeId, ProcessControl)>,
}

impl Agenda {
    pub fn new() -> Arc<Mutex<Agenda>> {
        Arc::new(Mutex::new(Agenda {
            start: Instant::now(),
            next_seq: 0,
            wakes: BTreeMap::new(),
            controls: Vec::new(),
        }))
    }

    /// Microseconds since the server started.
    pub fn now(&self) -> SimTime {
        SimTime(u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// The first wake-up that is due now, if any.
    pub fn pop_due(&mut self) -> Option<Wake> {
        let now = self.now();
        let first = self.wakes.first_key_value().map(|(k, _)| *k)?;
        if first.0 > now {
            return None;
        }
        self.wakes.remove(&first)
    }

    /// How long until the next wake-up (`None`: nothing scheduled).
    pub fn until_next(&self) -> Option<std::time::Duration> {
        let ((at, _), _) = self.wakes.first_key_value()?;
        Some(std::time::Duration::from_micros(at.0.saturating_sub(self.now().0)))
    }
}

/// The world's driver in live mode.
pub struct RealTimeDriver(pub Arc<Mutex<Agenda>>);

impl Driver for RealTimeDriver {
    fn now(&self) -> SimTime {
        self.0.lock().expect("agenda lock").now()
    }

    fn wake_at(&mut self, at: SimTime, wake: Wake) {
        let mut agenda = self.0.lock().expect("agenda lock");
        let seq = agenda.next_seq;
        agenda.next_seq += 1;
        agenda.wakes.insert((at, seq), wake);
    }

    fn control(&mut self, node: NodeId, control: ProcessControl) {
        self.0.lock().expect("agenda lock").controls.push((node, control));
    }

    fn release(&mut self) {
        let mut agenda = self.0.lock().expect("agenda lock");
        agenda.wakes.clear();
        agenda.controls.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    /// The workspace builds with `--cfg madsim`, and madsim interposes `clock_gettime`. Outside a
    /// runtime context the call passes through: real time advances with a real sleep.
    #[test]
    fn instant_is_real_time_outside_madsim() {
        let before = Instant::now();
        let wall_before = SystemTime::now();
        std::thread::sleep(Duration::from_millis(20));
        assert!(before.elapsed() >= Duration::from_millis(20));
        let wall = wall_before.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970");
        assert!(wall > Duration::from_secs(1_600_000_000), "the wall clock is the real one: {wall:?}");
    }

    /// std::net is the operating system's, too: a listener on 127.0.0.1 accepts a real connection.
    #[test]
    fn std_net_is_real_outside_madsim() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            s.write_all(b"ping").expect("write");
        });
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"ping");
        client.join().expect("client thread");
    }
}
