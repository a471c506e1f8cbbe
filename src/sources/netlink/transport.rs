//! The transport under every netlink family: the socket (`socket.rs`) and
//! the replay of recorded replies that tests, fuzzing and benchmarks use.

use std::io;

use serde::Serialize;

use super::wire::{self, messages};
use super::{Exchange, NlError};
use crate::sys;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TransportStats {
    /// sendto + recv calls.
    pub syscalls: u64,
    /// Requests sent (each a complete exchange).
    pub round_trips: u64,
}

/// Sends a request and collects the raw replies of the exchange.
pub trait NlTransport: Send {
    fn exchange(&mut self, request: &[u8], out: &mut Vec<u8>) -> Result<(), NlError>;
    fn stats(&self) -> TransportStats;

    /// Several requests (whole messages back to back, each with its own
    /// seq) and the replies to all of them in `out`. A kernel error answering
    /// one request stays in `out` as that request's NLMSG_ERROR for the
    /// caller to find by seq; only a transport failure fails the batch.
    /// This default runs them one exchange at a time; the socket sends them
    /// together.
    fn batch(&mut self, requests: &[u8], out: &mut Vec<u8>) -> Result<(), NlError> {
        out.clear();
        let mut one = Vec::new();
        for request in wire::frames(requests) {
            match self.exchange(request, &mut one) {
                Ok(()) | Err(NlError::Kernel { .. }) => out.extend_from_slice(&one),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl NlTransport for Box<dyn NlTransport> {
    fn exchange(&mut self, request: &[u8], out: &mut Vec<u8>) -> Result<(), NlError> {
        (**self).exchange(request, out)
    }
    fn stats(&self) -> TransportStats {
        (**self).stats()
    }
    fn batch(&mut self, requests: &[u8], out: &mut Vec<u8>) -> Result<(), NlError> {
        (**self).batch(requests, out)
    }
}

/// Recorded replies, replayed in order: tests and fuzzing use it in place of the socket.
pub struct Replay {
    replies: std::collections::VecDeque<Vec<u8>>,
    /// Replayed over and over once `replies` is used up (benchmarks).
    looped: Vec<Vec<u8>>,
    next_looped: usize,
    /// Every request sent, kept unless looping.
    pub requests: Vec<Vec<u8>>,
    stats: TransportStats,
    /// Names the commands in errors, as the socket of that protocol does.
    protocol: i32,
}

impl Replay {
    pub fn new(replies: impl IntoIterator<Item = Vec<u8>>) -> Replay {
        Replay::looping(replies, Vec::new())
    }

    /// `first`, then `looped` forever.
    pub fn looping(first: impl IntoIterator<Item = Vec<u8>>, looped: Vec<Vec<u8>>) -> Replay {
        Replay {
            replies: first.into_iter().collect(),
            looped,
            next_looped: 0,
            requests: Vec::new(),
            stats: TransportStats::default(),
            protocol: sys::NETLINK_RDMA as i32,
        }
    }

    /// Replies of another netlink protocol (NETLINK_ROUTE, NETLINK_GENERIC).
    pub fn protocol(mut self, protocol: i32) -> Replay {
        self.protocol = protocol;
        self
    }
}

impl NlTransport for Replay {
    fn exchange(&mut self, request: &[u8], out: &mut Vec<u8>) -> Result<(), NlError> {
        self.stats.round_trips += 1;
        out.clear();
        let reply = match self.replies.pop_front() {
            Some(r) => {
                self.requests.push(request.to_vec());
                r
            }
            None if !self.looped.is_empty() => {
                let r = self.looped[self.next_looped].clone();
                self.next_looped = (self.next_looped + 1) % self.looped.len();
                r
            }
            None => {
                return Err(NlError::Io {
                    op: "replay",
                    source: io::Error::from_raw_os_error(libc::ETIMEDOUT),
                });
            }
        };
        // Recorded replies carry the recording's sequence numbers: renumber
        // them to this request's, as the kernel would have.
        let seq = messages(request)
            .next()
            .and_then(|m| m.ok())
            .map_or(0, |m| m.seq);
        let mut rewritten = reply.clone();
        let mut at = 0;
        for m in messages(&reply) {
            let Ok(m) = m else { break };
            let len = wire::NLMSG_HDRLEN + m.payload.len();
            rewritten[at + 8..at + 12].copy_from_slice(&seq.to_ne_bytes());
            at += wire::align4(len);
        }
        out.extend_from_slice(&rewritten);
        // A kernel error ends the exchange with an error, as on the socket.
        Exchange::for_request(request, self.protocol)?.feed(out)?;
        Ok(())
    }
    fn stats(&self) -> TransportStats {
        self.stats
    }
}
