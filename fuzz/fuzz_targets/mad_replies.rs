//! Any bytes as the MAD answering each query of a sweep and a PMA read:
//! the engine and the decoders return values or errors, never panic.
#![no_main]

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rdma_monitor::sources::mad::{Engine, Limits, MadPort, Outgoing, Received, discovery, pma};

/// Answers every MAD with the fuzz input, its TID patched to match.
struct Garbage {
    data: Vec<u8>,
    queue: VecDeque<Received>,
    sent: usize,
}

impl MadPort for Garbage {
    fn send(&mut self, out: &Outgoing) -> io::Result<()> {
        self.sent += 1;
        if self.sent > 200 {
            return Ok(()); // bound the run
        }
        let mut m = self.data.clone();
        if m.len() >= 16 {
            m[8..16].copy_from_slice(&out.mad[8..16]);
        }
        let status = if m.first() == Some(&0xee) { 110 } else { 0 };
        self.queue.push_back(Received { status, mad: m });
        Ok(())
    }
    fn recv(&mut self, _: Duration) -> io::Result<Option<Received>> {
        Ok(self.queue.pop_front())
    }
}

fuzz_target!(|data: &[u8]| {
    let port = Garbage { data: data.to_vec(), queue: VecDeque::new(), sent: 0 };
    let limits = Limits { max_outstanding: 4, timeout: Duration::from_millis(1), retries: 1, budget: Duration::from_millis(50) };
    let mut e = Engine::new(port, limits);
    let f = discovery::sweep(&mut e, Duration::from_millis(50));
    let _ = rdma_monitor::exporters::ibnetdiscover::render(&f, "fuzz");
    let mut caps = Default::default();
    let _ = pma::read(&mut e, &[pma::Target { lid: 1, port: 1 }], true, &mut caps);
});
