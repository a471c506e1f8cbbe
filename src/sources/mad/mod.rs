//! MADs without libibumad: the umad transport, a request engine with a
//! bounded window of outstanding MADs, timeouts and retries, table-driven
//! field decoding, PerfMgt counters (what `perfquery` reads) and a
//! directed-route fabric sweep (what `ibnetdiscover` does).

pub mod discovery;
pub mod fields;
pub mod layout;
pub mod pma;
pub mod samples;
mod umad;

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use layout::{MadError, Reply};
pub use umad::{Umad, UmadError};

/// One MAD to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub mad: [u8; layout::MAD_SIZE],
    /// Destination LID (0xffff, the permissive LID, for directed route).
    pub lid: u16,
    pub timeout_ms: u32,
}

/// One MAD received: the umad header status (0, or ETIMEDOUT when the
/// request got no answer) and the MAD bytes.
#[derive(Debug, Clone)]
pub struct Received {
    pub status: u32,
    pub mad: Vec<u8>,
}

/// The umad device, or a stand-in for tests.
pub trait MadPort: Send {
    fn send(&mut self, out: &Outgoing) -> io::Result<()>;
    /// Waits at most `wait` for one MAD.
    fn recv(&mut self, wait: Duration) -> io::Result<Option<Received>>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("no answer after {attempts} attempts")]
    Timeout { attempts: u32 },
    #[error("{0}")]
    Mad(#[from] MadError),
    #[error("umad I/O: {0}")]
    Io(String),
    #[error("time budget used up before the query was sent")]
    Budget,
}

/// Limits of the engine.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_outstanding: usize,
    pub timeout: Duration,
    pub retries: u32,
    /// A batch stops sending new queries after this long.
    pub budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_outstanding: 16,
            timeout: Duration::from_millis(200),
            retries: 2,
            budget: Duration::from_secs(30),
        }
    }
}

/// MADs sent and what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MadStats {
    pub sent: u64,
    pub answered: u64,
    pub timeouts: u64,
    pub retries: u64,
    pub errors: u64,
}

/// A query: the MAD (its TID is filled in by the engine) and where it goes.
#[derive(Debug, Clone)]
pub struct Query {
    pub mad: [u8; layout::MAD_SIZE],
    pub lid: u16,
}

struct InFlight {
    index: usize,
    attempts: u32,
    deadline: Instant,
}

/// Sends batches of queries with at most `max_outstanding` in flight,
/// matching answers by the low 32 bits of the TID (the kernel and umad2sim
/// rewrite the high ones).
pub struct Engine<P: MadPort> {
    port: P,
    limits: Limits,
    next_tid: u32,
    stats: MadStats,
}

impl<P: MadPort> Engine<P> {
    pub fn new(port: P, limits: Limits) -> Engine<P> {
        Engine {
            port,
            limits,
            // Distinct per process, so a late answer to a previous run is not taken for ours.
            next_tid: std::process::id().wrapping_mul(0x9e37_79b9) | 1,
            stats: MadStats::default(),
        }
    }

    pub fn stats(&self) -> MadStats {
        self.stats
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn send(&mut self, q: &Query, tid: u32) -> Result<(), QueryError> {
        let mut mad = q.mad;
        mad[8..16].copy_from_slice(&u64::from(tid).to_be_bytes());
        self.stats.sent += 1;
        self.port
            .send(&Outgoing {
                mad,
                lid: q.lid,
                timeout_ms: self.limits.timeout.as_millis() as u32,
            })
            .map_err(|e| QueryError::Io(e.to_string()))
    }

    /// Runs every query; the result at index i answers query i.
    pub fn run(&mut self, queries: &[Query]) -> Vec<Result<Reply, QueryError>> {
        let started = Instant::now();
        let mut results: Vec<Option<Result<Reply, QueryError>>> = vec![None; queries.len()];
        let mut next = 0;
        let mut in_flight: HashMap<u32, InFlight> = HashMap::new();
        // Queries to send again (after a timeout), before new ones.
        let mut resend: Vec<(usize, u32)> = Vec::new();
        loop {
            while in_flight.len() < self.limits.max_outstanding.max(1) {
                let (index, attempts) = if let Some(r) = resend.pop() {
                    r
                } else if next < queries.len() {
                    // `>=`: a zero budget sends nothing, on any clock.
                    if started.elapsed() >= self.limits.budget {
                        break;
                    }
                    next += 1;
                    (next - 1, 0)
                } else {
                    break;
                };
                let tid = self.next_tid;
                self.next_tid = self.next_tid.wrapping_add(1);
                match self.send(&queries[index], tid) {
                    Ok(()) => {
                        in_flight.insert(
                            tid,
                            InFlight {
                                index,
                                attempts: attempts + 1,
                                deadline: crate::clock::from_now(self.limits.timeout),
                            },
                        );
                    }
                    Err(e) => {
                        self.stats.errors += 1;
                        results[index] = Some(Err(e));
                    }
                }
            }
            if in_flight.is_empty() && resend.is_empty() {
                break;
            }
            let now = Instant::now();
            let wait = in_flight
                .values()
                .map(|f| f.deadline.saturating_duration_since(now))
                .min()
                .unwrap_or_default();
            match self.port.recv(wait) {
                Ok(Some(rx)) => {
                    let Ok(reply) = layout::decode(&rx.mad) else {
                        self.stats.errors += 1;
                        continue;
                    };
                    let Some(f) = in_flight.remove(&(reply.tid as u32)) else {
                        continue; // not ours, or already given up on
                    };
                    if rx.status != 0 {
                        // The kernel (or ibsim) gave up on it: no answer.
                        self.retry_or_fail(f, &mut resend, &mut results);
                    } else if reply.status != 0 {
                        self.stats.errors += 1;
                        results[f.index] = Some(Err(MadError::Status {
                            status: reply.status,
                        }
                        .into()));
                    } else if reply.method != layout::METHOD_GET_RESP {
                        self.stats.errors += 1;
                        results[f.index] = Some(Err(MadError::Unexpected {
                            class: reply.class,
                            method: reply.method,
                        }
                        .into()));
                    } else {
                        self.stats.answered += 1;
                        results[f.index] = Some(Ok(reply));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    self.stats.errors += 1;
                    // Every query without an answer fails with the port, the
                    // ones not sent yet too: `Budget` is for time alone (a
                    // sweep counts those paths as unexplored, not failed).
                    let failed = Err(QueryError::Io(e.to_string()));
                    for r in results.iter_mut().filter(|r| r.is_none()) {
                        *r = Some(failed.clone());
                    }
                    in_flight.clear();
                    resend.clear();
                    break;
                }
            }
            let now = Instant::now();
            let expired: Vec<u32> = in_flight
                .iter()
                .filter(|(_, f)| f.deadline <= now)
                .map(|(t, _)| *t)
                .collect();
            for tid in expired {
                if let Some(f) = in_flight.remove(&tid) {
                    self.retry_or_fail(f, &mut resend, &mut results);
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(QueryError::Budget)))
            .collect()
    }

    fn retry_or_fail(
        &mut self,
        f: InFlight,
        resend: &mut Vec<(usize, u32)>,
        results: &mut [Option<Result<Reply, QueryError>>],
    ) {
        if f.attempts <= self.limits.retries {
            self.stats.retries += 1;
            resend.push((f.index, f.attempts));
        } else {
            self.stats.timeouts += 1;
            results[f.index] = Some(Err(QueryError::Timeout {
                attempts: f.attempts,
            }));
        }
    }
}

#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
