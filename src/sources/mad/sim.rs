//! A small fabric answering MADs in-process, for unit tests of the engine,
//! the sweep and the PMA reader: one 4-port switch (LID 1) with two CAs
//! (LIDs 2 and 3) on ports 1 and 2; port 3 and 4 are down. Replies are
//! built with the same field tables the decoders read, from the IBTA layout.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use super::fields::{self, Field};
use super::layout::{self as mad, MAD_SIZE};
use super::{MadPort, Outgoing, Received};

pub const SWITCH_GUID: u64 = 0x0002_c903_00aa_0000;
pub const CA_GUIDS: [u64; 2] = [0x0002_c903_00bb_0010, 0x0002_c903_00bb_0020];

#[derive(Default)]
pub struct SimFabric {
    pub queue: VecDeque<Received>,
    /// Answer every n-th MAD with umad status 110 (dropped).
    pub drop_every: Option<u64>,
    /// Never answer at all (a dead fabric).
    pub silent: bool,
    pub symbol_errors: u64,
    pub seen: u64,
    /// PortSamplesControl.Tick of the switch (LID 1); None: not answered.
    pub switch_tick: Option<u8>,
    /// The 64-bit PortXmitWait of PortCountersExtended: Some makes the PMAs
    /// announce the additional extended counters (CapabilityMask2 bit 1).
    pub xmit_wait_64: Option<u64>,
    /// Waiting for an answer fails (a umad poll error).
    pub recv_fails: bool,
}

fn put(data: &mut [u8], table: &'static [Field], name: &str, v: u64) {
    fields::set(data, fields::by_name(table, name).expect("known field"), v);
}

impl SimFabric {
    /// What node the directed route `path` from CA 0 ends at: None = nothing there.
    fn walk(path: &[u8]) -> Option<(u64, u8)> {
        match path {
            [] => Some((CA_GUIDS[0], 1)),
            [1] => Some((SWITCH_GUID, 1)),
            [1, 1] => Some((CA_GUIDS[0], 1)),
            [1, 2] => Some((CA_GUIDS[1], 1)),
            _ => None,
        }
    }

    fn answer(&mut self, out: &Outgoing) -> Option<Received> {
        let m = &out.mad;
        let mut reply = *m;
        reply[3] = mad::METHOD_GET_RESP;
        let attr = u16::from_be_bytes([m[16], m[17]]);
        let attr_mod = u32::from_be_bytes([m[20], m[21], m[22], m[23]]);
        let data = &mut reply[mad::DATA_OFFSET..];
        match m[1] {
            mad::CLASS_SMP_DR => {
                let hops = m[7] as usize;
                let path = &m[129..129 + hops];
                let (guid, in_port) = Self::walk(path)?;
                let switch = guid == SWITCH_GUID;
                match attr {
                    mad::ATTR_NODE_INFO => {
                        let t = fields::NODE_INFO;
                        put(data, t, "NodeType", if switch { 2 } else { 1 });
                        put(data, t, "NumPorts", if switch { 4 } else { 1 });
                        put(data, t, "NodeGUID", guid);
                        put(data, t, "SystemImageGUID", guid);
                        put(data, t, "PortGUID", if switch { guid } else { guid + 1 });
                        put(data, t, "LocalPortNum", u64::from(in_port));
                        put(data, t, "VendorID", 0x2c9);
                        put(data, t, "DeviceID", if switch { 0xcf08 } else { 0x1017 });
                    }
                    mad::ATTR_NODE_DESC => {
                        let d = if switch {
                            "sim switch".to_string()
                        } else {
                            format!("sim ca {guid:x}")
                        };
                        data[..d.len()].copy_from_slice(d.as_bytes());
                    }
                    mad::ATTR_SWITCH_INFO => put(data, fields::SWITCH_INFO, "EnhancedPort0", 1),
                    mad::ATTR_PORT_INFO => {
                        let t = fields::PORT_INFO;
                        let up = !switch || attr_mod <= 2;
                        let lid = if switch {
                            1
                        } else if guid == CA_GUIDS[0] {
                            2
                        } else {
                            3
                        };
                        put(
                            data,
                            t,
                            "LID",
                            if switch && attr_mod != 0 { 0 } else { lid },
                        );
                        put(data, t, "PortState", if up { 4 } else { 1 });
                        put(data, t, "PortPhysicalState", if up { 5 } else { 2 });
                        put(data, t, "LinkWidthActive", 2);
                        put(data, t, "LinkSpeedActive", 1);
                        put(data, t, "LinkSpeedExtActive", 2);
                        // 1x or 4x, FDR or EDR: what ibsim's 4xEDR ports say.
                        put(data, t, "LinkWidthSupported", 3);
                        put(data, t, "LinkWidthEnabled", 3);
                        put(data, t, "LinkSpeedExtSupported", 3);
                        put(data, t, "LinkSpeedExtEnabled", 3);
                    }
                    _ => {
                        reply[4..6].copy_from_slice(&0x000cu16.to_be_bytes()); // attribute not supported
                    }
                }
            }
            mad::CLASS_PERF => {
                if !(1..=3).contains(&out.lid) {
                    return None;
                }
                match attr {
                    mad::ATTR_CLASS_PORT_INFO => {
                        let t = fields::CLASS_PORT_INFO;
                        put(data, t, "CapabilityMask", 0x1200);
                        if self.xmit_wait_64.is_some() {
                            put(data, t, "CapabilityMask2", 0b10);
                        }
                    }
                    mad::ATTR_PORT_COUNTERS => {
                        let t = fields::PORT_COUNTERS;
                        put(data, t, "SymbolErrorCounter", self.symbol_errors);
                        put(data, t, "LinkDownedCounter", 3);
                        put(data, t, "PortXmitData", 0xffff_ffff);
                        put(data, t, "PortXmitWait", 77);
                    }
                    mad::ATTR_PORT_COUNTERS_EXT => {
                        let t = fields::PORT_COUNTERS_EXT;
                        put(data, t, "PortXmitData", 0x1_0000_0000 + u64::from(out.lid));
                        put(data, t, "PortRcvPkts", 12345);
                        if let Some(w) = self.xmit_wait_64 {
                            put(data, t, "PortXmitWait", w);
                        }
                    }
                    // Tick is byte 2 of the attribute (ib_pma.h
                    // `struct ib_pma_portsamplescontrol`), written by offset
                    // here, not through the decoder's bit table.
                    super::samples::ATTR_PORT_SAMPLES_CONTROL
                        if out.lid == 1 && self.switch_tick.is_some() =>
                    {
                        data[0] = 0xff;
                        data[1] = m[mad::DATA_OFFSET + 1];
                        data[2] = self.switch_tick.unwrap_or_default();
                    }
                    _ => reply[4..6].copy_from_slice(&0x000cu16.to_be_bytes()),
                }
            }
            _ => return None,
        }
        Some(Received {
            status: 0,
            mad: reply.to_vec(),
        })
    }
}

impl MadPort for SimFabric {
    fn send(&mut self, out: &Outgoing) -> io::Result<()> {
        self.seen += 1;
        if self.silent {
            return Ok(());
        }
        if self.drop_every.is_some_and(|n| self.seen.is_multiple_of(n)) {
            self.queue.push_back(Received {
                status: 110,
                mad: out.mad.to_vec(),
            });
            return Ok(());
        }
        let r = self.answer(out).unwrap_or(Received {
            status: 110,
            mad: out.mad.to_vec(),
        });
        self.queue.push_back(r);
        Ok(())
    }

    fn recv(&mut self, wait: Duration) -> io::Result<Option<Received>> {
        if self.recv_fails {
            return Err(io::Error::other("poll failed"));
        }
        match self.queue.pop_front() {
            Some(r) => Ok(Some(r)),
            None => {
                std::thread::sleep(wait.min(Duration::from_millis(5)));
                Ok(None)
            }
        }
    }
}

#[allow(dead_code)]
pub fn mad_len() -> usize {
    MAD_SIZE
}
