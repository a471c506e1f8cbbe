//! NLDEV requests over a transport, replies decoded into typed values.

use super::{
    BoundCounter, CounterStatus, Device, Port, PortStats, Resources, Sys, command_name,
    decode_bound_counters, decode_device, decode_port, decode_port_stats, decode_resources,
    decode_stat_status, decode_sys, each_port_counter, each_resource, get_bound_counters,
    get_device_resources, get_devices, get_port, get_port_stats, get_ports, get_resources,
    get_stat_status, get_sys, nldev_type,
};
use crate::sources::netlink::wire::{WireError, messages};
use crate::sources::netlink::{NlError, NlTransport, TransportStats, replies_into};
use crate::sys::{self, RDMA_NLDEV_CMD_GET};

pub struct Client<T: NlTransport> {
    transport: T,
    seq: u32,
    buf: Vec<u8>,
    /// The requests of the batch being built, back to back.
    batch: Vec<u8>,
    /// The replies to the last batch sent.
    batch_replies: Vec<u8>,
}

/// A request queued in a batch: its answer is read with `Client::answer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    seq: u32,
    kind: u16,
    /// Another message type the answer may carry: nldev_port_get_doit
    /// answers PORT_GET with a message of type RDMA_NLDEV_CMD_GET.
    also: u16,
}

impl<T: NlTransport> Client<T> {
    pub fn new(transport: T) -> Client<T> {
        Client {
            transport,
            seq: 0,
            buf: Vec::with_capacity(16 * 1024),
            batch: Vec::with_capacity(4 * 1024),
            batch_replies: Vec::with_capacity(16 * 1024),
        }
    }

    /// Adds a request to the batch sent by `send_batch`.
    fn queue(&mut self, build: impl FnOnce(u32) -> Vec<u8>) -> Queued {
        let (request, q) = self.build(build);
        self.batch.extend_from_slice(&request);
        q
    }

    /// A request with the next seq, and what its replies are found by.
    fn build(&mut self, build: impl FnOnce(u32) -> Vec<u8>) -> (Vec<u8>, Queued) {
        let seq = self.next_seq();
        let request = build(seq);
        let kind = messages(&request)
            .next()
            .and_then(|m| m.ok())
            .map_or(0, |m| m.kind);
        (
            request,
            Queued {
                seq,
                kind,
                also: kind,
            },
        )
    }

    pub fn queue_port(&mut self, dev: u32, port: u32) -> Queued {
        let q = self.queue(|s| get_port(s, dev, port));
        Queued {
            also: nldev_type(RDMA_NLDEV_CMD_GET),
            ..q
        }
    }
    pub fn queue_port_stats(&mut self, dev: u32, port: u32) -> Queued {
        self.queue(|s| get_port_stats(s, dev, port))
    }
    pub fn queue_resources(&mut self, dev: u32) -> Queued {
        self.queue(|s| get_device_resources(s, dev))
    }
    pub fn queue_bound_counters(&mut self, dev: u32) -> Queued {
        self.queue(|s| get_bound_counters(s, dev))
    }

    /// Sends every queued request at once (the socket: as few sendto and
    /// recvmmsg calls as its receive buffer allows). An error here is the
    /// transport's; each request's own answer is read with `answer`.
    pub fn send_batch(&mut self) -> Result<(), NlError> {
        let r = self.transport.batch(&self.batch, &mut self.batch_replies);
        self.batch.clear();
        if r.is_err() {
            self.batch_replies.clear();
        }
        r
    }

    /// The replies to one request of the last batch, decoded (a doit's one,
    /// a dump's many); its NLMSG_ERROR is its error.
    pub fn answer<R>(
        &self,
        q: Queued,
        mut decode: impl FnMut(&[u8]) -> Result<R, WireError>,
    ) -> Result<Vec<R>, NlError> {
        let cmd = command_name(q.kind);
        let mut out = Vec::new();
        let mut answered = false;
        for m in messages(&self.batch_replies) {
            let m = m.map_err(|source| NlError::Wire { cmd, source })?;
            if m.seq != q.seq {
                continue;
            }
            answered = true;
            match u32::from(m.kind) {
                sys::NLMSG_ERROR | sys::NLMSG_DONE => {
                    let errno = error_code(m.payload);
                    if errno != 0 {
                        return Err(NlError::Kernel { cmd, errno });
                    }
                    break;
                }
                _ if m.kind == q.kind || m.kind == q.also => {
                    out.push(decode(m.payload).map_err(|source| NlError::Wire { cmd, source })?)
                }
                _ => {}
            }
        }
        if !answered {
            return Err(no_reply());
        }
        Ok(out)
    }

    pub fn port_answer(&self, q: Queued) -> Result<Port, NlError> {
        first(self.answer(q, decode_port)?)
    }
    /// Each counter of a STAT_GET answer (a doit: one reply) to `f`.
    pub fn port_counters_answer(
        &self,
        q: Queued,
        mut f: impl FnMut(&str, u64),
    ) -> Result<(), NlError> {
        first(self.answer(q, |p| each_port_counter(p, &mut f))?)
    }
    /// Each resource count of a RES_GET answer (a doit: one reply) to `f`.
    pub fn resources_answer(&self, q: Queued, mut f: impl FnMut(&str, u64)) -> Result<(), NlError> {
        first(self.answer(q, |p| each_resource(p, &mut f))?)
    }
    pub fn bound_counters_answer(&self, q: Queued) -> Result<Vec<BoundCounter>, NlError> {
        Ok(self
            .answer(q, decode_bound_counters)?
            .into_iter()
            .flatten()
            .collect())
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
    pub(super) fn run<R>(
        &mut self,
        build: impl FnOnce(u32) -> Vec<u8>,
        decode: impl Fn(&[u8]) -> Result<R, WireError>,
    ) -> Result<Vec<R>, NlError> {
        let mut out = Vec::new();
        self.run_into(build, decode, &mut out)?;
        Ok(out)
    }

    /// [`Client::run`] into `out` (cleared first).
    fn run_into<R>(
        &mut self,
        build: impl FnOnce(u32) -> Vec<u8>,
        decode: impl Fn(&[u8]) -> Result<R, WireError>,
        out: &mut Vec<R>,
    ) -> Result<(), NlError> {
        let (request, Queued { kind, .. }) = self.build(build);
        let cmd = command_name(kind);
        replies_into(
            &mut self.transport,
            &mut self.buf,
            &request,
            kind,
            cmd,
            decode,
            out,
        )
    }

    fn run_one<R>(
        &mut self,
        build: impl FnOnce(u32) -> Vec<u8>,
        decode: impl Fn(&[u8]) -> Result<R, WireError>,
    ) -> Result<R, NlError> {
        first(self.run(build, decode)?)
    }

    pub fn devices(&mut self) -> Result<Vec<Device>, NlError> {
        self.run(get_devices, decode_device)
    }
    /// [`Client::devices`] into a list kept by the caller.
    pub fn devices_into(&mut self, out: &mut Vec<Device>) -> Result<(), NlError> {
        self.run_into(get_devices, decode_device, out)
    }
    pub fn ports(&mut self, dev: u32) -> Result<Vec<Port>, NlError> {
        self.run(|s| get_ports(s, dev), decode_port)
    }
    pub fn port_stats(&mut self, dev: u32, port: u32) -> Result<PortStats, NlError> {
        self.run_one(|s| get_port_stats(s, dev, port), decode_port_stats)
    }
    pub fn stat_status(&mut self, dev: u32, port: u32) -> Result<Vec<CounterStatus>, NlError> {
        self.run_one(|s| get_stat_status(s, dev, port), decode_stat_status)
    }
    pub fn resources(&mut self) -> Result<Vec<Resources>, NlError> {
        self.run(get_resources, decode_resources)
    }
    pub fn sys(&mut self) -> Result<Sys, NlError> {
        self.run_one(get_sys, decode_sys)
    }
    pub fn bound_counters(&mut self, dev: u32) -> Result<Vec<BoundCounter>, NlError> {
        Ok(self
            .run(|s| get_bound_counters(s, dev), decode_bound_counters)?
            .into_iter()
            .flatten()
            .collect())
    }
}

fn no_reply() -> NlError {
    NlError::Wire {
        cmd: "netlink doit",
        source: WireError::Malformed {
            what: "reply",
            detail: "no reply message".into(),
        },
    }
}

/// A doit's one reply.
fn first<R>(mut v: Vec<R>) -> Result<R, NlError> {
    if v.is_empty() {
        return Err(no_reply());
    }
    Ok(v.swap_remove(0))
}

/// The (positive) errno of an NLMSG_ERROR / NLMSG_DONE payload, 0 for none.
fn error_code(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
        .saturating_abs()
}
