//! RDMA netlink (`NETLINK_RDMA`, `RDMA_NL_NLDEV`): devices, ports, every
//! port hw counter in one `STAT_GET`, resource counts, optional and bound
//! (per-QP) counters — what `rdma dev/link/res/statistic` read.
//!
//! A thin layer of our own over a raw socket: the hot path reuses one
//! receive buffer and decodes in place, and the transport is a trait so the
//! decoders run on recorded kernel replies in tests.

pub mod nldev;
pub mod poll;
pub mod res;
mod socket;
pub mod wire;

use std::collections::HashMap;
use std::io;

use serde::Serialize;

pub use socket::NetlinkSocket;
use wire::{Message, WireError, messages};

use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum NlError {
    #[error("netlink {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{cmd}: the kernel answered {}", errno_name(*.errno))]
    Kernel { cmd: &'static str, errno: i32 },
    #[error("{cmd}: {source}")]
    Wire {
        cmd: &'static str,
        #[source]
        source: WireError,
    },
    #[error("netlink reply of {len} bytes is larger than the receive buffer")]
    Oversized { len: usize },
}

impl NlError {
    /// The kernel or the socket said "no such thing here" (no netlink, no hw stats, no device).
    pub fn is_unsupported(&self) -> bool {
        let errno = match self {
            NlError::Kernel { errno, .. } => Some(*errno),
            NlError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        };
        matches!(
            errno,
            Some(
                libc::EPROTONOSUPPORT
                    | libc::EOPNOTSUPP
                    | libc::EINVAL
                    | libc::ENOENT
                    | libc::ENODEV
            )
        )
    }
}

fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EINVAL => "EINVAL",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::ENOENT => "ENOENT",
        libc::ENODEV => "ENODEV",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EBUSY => "EBUSY",
        libc::EAGAIN => "EAGAIN",
        _ => return format!("errno {errno} ({})", io::Error::from_raw_os_error(errno)),
    };
    format!("{name} ({})", io::Error::from_raw_os_error(errno))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TransportStats {
    /// sendto + recv calls.
    pub syscalls: u64,
    /// Requests sent (each a complete exchange).
    pub round_trips: u64,
}

/// Sends a request and collects the raw replies of the exchange.
pub trait Transport: Send {
    fn exchange(&mut self, request: &[u8], out: &mut Vec<u8>) -> Result<(), NlError>;
    fn stats(&self) -> TransportStats;
}

impl Transport for Box<dyn Transport> {
    fn exchange(&mut self, request: &[u8], out: &mut Vec<u8>) -> Result<(), NlError> {
        (**self).exchange(request, out)
    }
    fn stats(&self) -> TransportStats {
        (**self).stats()
    }
}

/// Tracks when the replies to one request are complete: a dump ends with
/// NLMSG_DONE, a doit with its one reply; NLMSG_ERROR ends either (errno 0 is an ACK).
pub struct Exchange {
    seq: u32,
    dump: bool,
    cmd: &'static str,
}

impl Exchange {
    /// `protocol` (NETLINK_RDMA, NETLINK_ROUTE, NETLINK_GENERIC) names the command in errors.
    pub fn for_request(request: &[u8], protocol: i32) -> Result<Exchange, NlError> {
        let cmd = "netlink request";
        let m = messages(request)
            .next()
            .ok_or(NlError::Wire {
                cmd,
                source: WireError::Truncated {
                    what: "request",
                    need: wire::NLMSG_HDRLEN,
                    have: 0,
                },
            })?
            .map_err(|source| NlError::Wire { cmd, source })?;
        Ok(Exchange {
            seq: m.seq,
            dump: m.flags & (sys::NLM_F_DUMP as u16) == sys::NLM_F_DUMP as u16,
            cmd: request_name(protocol, m.kind),
        })
    }

    /// Looks at one received datagram; `Ok(true)` when the exchange is over.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<bool, NlError> {
        for m in messages(chunk) {
            let m = m.map_err(|source| NlError::Wire {
                cmd: self.cmd,
                source,
            })?;
            if m.seq != self.seq {
                continue; // a late reply to an earlier request
            }
            match u32::from(m.kind) {
                sys::NLMSG_ERROR | sys::NLMSG_DONE => {
                    let errno = error_code(&m);
                    if errno != 0 {
                        return Err(NlError::Kernel {
                            cmd: self.cmd,
                            errno,
                        });
                    }
                    return Ok(true);
                }
                _ if !self.dump => return Ok(true),
                _ => {}
            }
        }
        Ok(false)
    }
}

/// The name of a request for errors: an RTM_GETDCB refused by a veth must not
/// read as an RDMA netlink failure.
fn request_name(protocol: i32, kind: u16) -> &'static str {
    match protocol {
        p if p == sys::NETLINK_RDMA as i32 => nldev::command_name(kind),
        libc::NETLINK_ROUTE => match u32::from(kind) {
            sys::RTM_GETLINK => "RTM_GETLINK",
            sys::RTM_GETDCB => "RTM_GETDCB",
            _ => "rtnetlink request",
        },
        _ => "generic netlink request",
    }
}

/// Walks the replies to request `seq` in `buf`, handing the payload of each
/// message of type `kind` to `each`. NLMSG_DONE ends the walk, and so does
/// NLMSG_ERROR: errno 0 is an ACK, any other becomes `NlError::Kernel`.
pub fn for_each_reply(
    buf: &[u8],
    seq: u32,
    kind: u16,
    cmd: &'static str,
    mut each: impl FnMut(&[u8]) -> Result<(), NlError>,
) -> Result<(), NlError> {
    for m in messages(buf) {
        let m = m.map_err(|source| NlError::Wire { cmd, source })?;
        if m.seq != seq {
            continue; // a late reply to an earlier request
        }
        match u32::from(m.kind) {
            sys::NLMSG_ERROR | sys::NLMSG_DONE => {
                let errno = error_code(&m);
                if errno != 0 {
                    return Err(NlError::Kernel { cmd, errno });
                }
                break;
            }
            _ if m.kind == kind => each(m.payload)?,
            _ => {}
        }
    }
    Ok(())
}

/// The (positive) errno carried by NLMSG_ERROR / NLMSG_DONE, 0 for none.
fn error_code(m: &Message) -> i32 {
    m.payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
        .saturating_abs()
}

/// NLDEV requests over a transport; replies decoded into typed values.
pub struct Client<T: Transport> {
    transport: T,
    seq: u32,
    buf: Vec<u8>,
}

impl<T: Transport> Client<T> {
    pub fn new(transport: T) -> Client<T> {
        Client {
            transport,
            seq: 0,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    pub fn stats(&self) -> TransportStats {
        self.transport.stats()
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Runs one exchange and decodes each reply of the expected type.
    fn run<R>(
        &mut self,
        build: impl FnOnce(u32) -> Vec<u8>,
        decode: impl Fn(&[u8]) -> Result<R, WireError>,
    ) -> Result<Vec<R>, NlError> {
        let seq = self.next_seq();
        let request = build(seq);
        let kind = messages(&request)
            .next()
            .and_then(|m| m.ok())
            .map_or(0, |m| m.kind);
        let cmd = nldev::command_name(kind);
        self.transport.exchange(&request, &mut self.buf)?;
        let mut out = Vec::new();
        for_each_reply(&self.buf, seq, kind, cmd, |payload| {
            out.push(decode(payload).map_err(|source| NlError::Wire { cmd, source })?);
            Ok(())
        })?;
        Ok(out)
    }

    fn run_one<R>(
        &mut self,
        build: impl FnOnce(u32) -> Vec<u8>,
        decode: impl Fn(&[u8]) -> Result<R, WireError>,
    ) -> Result<R, NlError> {
        let mut v = self.run(build, decode)?;
        if v.is_empty() {
            return Err(NlError::Wire {
                cmd: "netlink doit",
                source: WireError::Malformed {
                    what: "reply",
                    detail: "no reply message".into(),
                },
            });
        }
        Ok(v.swap_remove(0))
    }

    pub fn devices(&mut self) -> Result<Vec<nldev::Device>, NlError> {
        self.run(nldev::get_devices, nldev::decode_device)
    }
    pub fn ports(&mut self, dev: u32) -> Result<Vec<nldev::Port>, NlError> {
        self.run(|s| nldev::get_ports(s, dev), nldev::decode_port)
    }
    pub fn port_stats(&mut self, dev: u32, port: u32) -> Result<nldev::PortStats, NlError> {
        self.run_one(
            |s| nldev::get_port_stats(s, dev, port),
            nldev::decode_port_stats,
        )
    }
    pub fn stat_status(
        &mut self,
        dev: u32,
        port: u32,
    ) -> Result<Vec<nldev::CounterStatus>, NlError> {
        self.run_one(
            |s| nldev::get_stat_status(s, dev, port),
            nldev::decode_stat_status,
        )
    }
    pub fn resources(&mut self) -> Result<Vec<nldev::Resources>, NlError> {
        self.run(nldev::get_resources, nldev::decode_resources)
    }
    pub fn sys(&mut self) -> Result<nldev::Sys, NlError> {
        self.run_one(nldev::get_sys, nldev::decode_sys)
    }
    pub fn bound_counters(&mut self, dev: u32) -> Result<Vec<nldev::BoundCounter>, NlError> {
        Ok(self
            .run(
                |s| nldev::get_bound_counters(s, dev),
                nldev::decode_bound_counters,
            )?
            .into_iter()
            .flatten()
            .collect())
    }
    pub fn set_optional_counters(
        &mut self,
        dev: u32,
        port: u32,
        indices: &[u32],
    ) -> Result<(), NlError> {
        self.run(
            |s| nldev::set_optional_counters(s, dev, port, indices),
            |_| Ok(()),
        )
        .map(|_| ())
    }
    pub fn set_auto_mode(&mut self, dev: u32, port: u32, mask: u32) -> Result<(), NlError> {
        self.run(|s| nldev::set_auto_mode(s, dev, port, mask), |_| Ok(()))
            .map(|_| ())
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

impl Transport for Replay {
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

/// Names of hw counters kept from one cycle to the next, so a steady port
/// allocates no strings per cycle.
#[derive(Default)]
pub struct NameCache {
    names: HashMap<String, std::sync::Arc<str>>,
}

impl NameCache {
    pub fn get(&mut self, name: &str) -> std::sync::Arc<str> {
        if let Some(n) = self.names.get(name) {
            return n.clone();
        }
        let n: std::sync::Arc<str> = name.into();
        self.names.insert(name.to_string(), n.clone());
        n
    }
}

/// A netdev-side reply recorded in the rxe VM (fixtures/netlink/rxe-6.1-net,
/// whose README says how and where).
#[cfg(test)]
pub(crate) fn recorded_net(name: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/netlink/rxe-6.1-net");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[cfg(test)]
mod tests;
