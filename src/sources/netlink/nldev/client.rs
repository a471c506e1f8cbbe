//! NLDEV requests over a transport, replies decoded into typed values.

use super::{
    BoundCounter, CounterStatus, Device, Port, PortStats, Resources, Sys, command_name,
    decode_bound_counters, decode_device, decode_port, decode_port_stats, decode_resources,
    decode_stat_status, decode_sys, get_bound_counters, get_devices, get_port_stats, get_ports,
    get_resources, get_stat_status, get_sys,
};
use crate::sources::netlink::wire::{WireError, messages};
use crate::sources::netlink::{NlError, NlTransport, TransportStats, replies};

pub struct Client<T: NlTransport> {
    transport: T,
    seq: u32,
    buf: Vec<u8>,
}

impl<T: NlTransport> Client<T> {
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
    pub(super) fn run<R>(
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
        let cmd = command_name(kind);
        replies(
            &mut self.transport,
            &mut self.buf,
            &request,
            kind,
            cmd,
            decode,
        )
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

    pub fn devices(&mut self) -> Result<Vec<Device>, NlError> {
        self.run(get_devices, decode_device)
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
