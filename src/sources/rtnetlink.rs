//! rtnetlink (NETLINK_ROUTE) link dump: each netdev's IFLA_STATS64 counters,
//! carrier changes, operational state and MTU — one request for every
//! netdev of the node. Framing and transport are the RDMA netlink ones.

use serde::Serialize;

use crate::sources::rdma_netlink::wire::{self, MessageBuilder, WireError};
use crate::sources::rdma_netlink::{NlError, Transport};
use crate::sys;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Link {
    pub index: i32,
    pub name: String,
    pub mtu: Option<u32>,
    /// IF_OPER_* (6 = up, 2 = down).
    pub operstate: Option<u8>,
    pub carrier_changes: Option<u32>,
    pub carrier_up_count: Option<u32>,
    pub carrier_down_count: Option<u32>,
    /// struct rtnl_link_stats64, by field name, in the header's order.
    pub stats64: Vec<(&'static str, u64)>,
}

/// Field names of struct rtnl_link_stats64 (linux/if_link.h), in order.
pub const STATS64_FIELDS: &[&str] = &[
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
    "multicast",
    "collisions",
    "rx_length_errors",
    "rx_over_errors",
    "rx_crc_errors",
    "rx_frame_errors",
    "rx_fifo_errors",
    "rx_missed_errors",
    "tx_aborted_errors",
    "tx_carrier_errors",
    "tx_fifo_errors",
    "tx_heartbeat_errors",
    "tx_window_errors",
    "rx_compressed",
    "tx_compressed",
    "rx_nohandler",
    "rx_otherhost_dropped",
];
const _: () = assert!(STATS64_FIELDS.len() * 8 == std::mem::size_of::<sys::rtnl_link_stats64>());

const IFINFOMSG: usize = std::mem::size_of::<sys::ifinfomsg>();

pub fn get_links(seq: u32) -> Vec<u8> {
    let mut m = MessageBuilder::new(
        sys::RTM_GETLINK as u16,
        (sys::NLM_F_REQUEST | sys::NLM_F_DUMP) as u16,
        seq,
    )
    .finish();
    // The ifinfomsg header (all zero: every family, every link) follows nlmsghdr.
    m.extend_from_slice(&[0u8; IFINFOMSG]);
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
    m
}

pub fn decode_link(payload: &[u8]) -> Result<Link, WireError> {
    let head = payload.get(..IFINFOMSG).ok_or(WireError::Truncated {
        what: "ifinfomsg",
        need: IFINFOMSG,
        have: payload.len(),
    })?;
    let mut link = Link {
        index: i32::from_ne_bytes(head[4..8].try_into().expect("4 bytes")),
        ..Link::default()
    };
    for a in wire::attrs(&payload[IFINFOMSG..]) {
        let a = a?;
        match u32::from(a.kind) {
            sys::IFLA_IFNAME => link.name = a.str()?.to_string(),
            sys::IFLA_MTU => link.mtu = Some(a.u32()?),
            sys::IFLA_OPERSTATE => link.operstate = Some(a.u8()?),
            sys::IFLA_CARRIER_CHANGES => link.carrier_changes = Some(a.u32()?),
            sys::IFLA_CARRIER_UP_COUNT => link.carrier_up_count = Some(a.u32()?),
            sys::IFLA_CARRIER_DOWN_COUNT => link.carrier_down_count = Some(a.u32()?),
            sys::IFLA_STATS64 => {
                // Older kernels send fewer fields, newer ones more: take what is there.
                link.stats64 = a
                    .payload
                    .chunks_exact(8)
                    .zip(STATS64_FIELDS)
                    .map(|(c, n)| (*n, u64::from_ne_bytes(c.try_into().expect("8 bytes"))))
                    .collect();
            }
            _ => {}
        }
    }
    Ok(link)
}

/// Every link of the node (one dump).
pub fn links<T: Transport>(t: &mut T, seq: u32) -> Result<Vec<Link>, NlError> {
    let mut buf = Vec::new();
    t.exchange(&get_links(seq), &mut buf)?;
    let cmd = "RTM_GETLINK";
    let mut out = Vec::new();
    for m in wire::messages(&buf) {
        let m = m.map_err(|source| NlError::Wire { cmd, source })?;
        if m.seq != seq {
            continue;
        }
        match u32::from(m.kind) {
            sys::NLMSG_DONE => break,
            sys::NLMSG_ERROR => {
                let errno = m
                    .payload
                    .get(..4)
                    .map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                    .saturating_abs();
                if errno != 0 {
                    return Err(NlError::Kernel { cmd, errno });
                }
                break;
            }
            k if k == sys::RTM_NEWLINK => {
                out.push(decode_link(m.payload).map_err(|source| NlError::Wire { cmd, source })?)
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::rdma_netlink::Replay;

    /// An RTM_NEWLINK message as rtnl_fill_ifinfo lays it out.
    fn newlink(index: i32, name: &str, stats: &[u64]) -> Vec<u8> {
        let mut payload = vec![0u8; IFINFOMSG];
        payload[4..8].copy_from_slice(&index.to_ne_bytes());
        let mut attr = |kind: u32, data: &[u8]| {
            let len = 4 + data.len();
            payload.extend_from_slice(&(len as u16).to_ne_bytes());
            payload.extend_from_slice(&(kind as u16).to_ne_bytes());
            payload.extend_from_slice(data);
            payload.resize(wire::align4(payload.len()), 0);
        };
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        attr(sys::IFLA_IFNAME, &n);
        attr(sys::IFLA_MTU, &9000u32.to_ne_bytes());
        attr(sys::IFLA_OPERSTATE, &[6]);
        attr(sys::IFLA_CARRIER_CHANGES, &5u32.to_ne_bytes());
        let s: Vec<u8> = stats.iter().flat_map(|v| v.to_ne_bytes()).collect();
        attr(sys::IFLA_STATS64, &s);
        attr(999, &[1, 2, 3]); // newer than any header we know
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&(sys::RTM_NEWLINK as u16).to_ne_bytes());
        m.extend_from_slice(&(sys::NLM_F_MULTI as u16).to_ne_bytes());
        m.extend_from_slice(&1u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&payload);
        m
    }

    #[test]
    fn request_and_dump() {
        let r = get_links(3);
        assert_eq!(r.len(), 16 + IFINFOMSG);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), sys::RTM_GETLINK as u16);
        let stats: Vec<u64> = (1..=25).collect();
        let mut reply = newlink(2, "eth2", &stats);
        reply.extend(newlink(3, "eth3", &stats[..23])); // an older kernel's shorter struct
        let mut done = vec![0u8; 20];
        done[..4].copy_from_slice(&20u32.to_ne_bytes());
        done[4..6].copy_from_slice(&(sys::NLMSG_DONE as u16).to_ne_bytes());
        done[8..12].copy_from_slice(&1u32.to_ne_bytes());
        reply.extend(done);
        let mut t = Replay::new([reply]);
        let links = links(&mut t, 3).unwrap();
        assert_eq!(links.len(), 2);
        let l = &links[0];
        assert_eq!(
            (
                l.index,
                l.name.as_str(),
                l.mtu,
                l.operstate,
                l.carrier_changes
            ),
            (2, "eth2", Some(9000), Some(6), Some(5))
        );
        assert_eq!(l.stats64[2], ("rx_bytes", 3));
        assert_eq!(l.stats64.len(), 25);
        assert_eq!(links[1].stats64.len(), 23);
        assert!(decode_link(&[0; 8]).is_err());
    }
}
