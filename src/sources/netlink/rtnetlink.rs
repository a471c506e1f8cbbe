//! rtnetlink (NETLINK_ROUTE) link dump: each netdev's IFLA_STATS64 counters,
//! carrier changes, operational state and MTU — one request for every
//! netdev of the node. (DCB, also NETLINK_ROUTE, is `dcb.rs`.)

use super::wire::{self, MessageBuilder, WireError, skip};
use super::{NlError, NlTransport, replies};
use crate::sys;

/// The name of an rtnetlink request, for errors.
pub fn command_name(kind: u16) -> &'static str {
    match u32::from(kind) {
        sys::RTM_GETLINK => "RTM_GETLINK",
        sys::RTM_GETDCB => "RTM_GETDCB",
        _ => "rtnetlink request",
    }
}

/// Decoded straight into the model's type: the snapshot schema is the model's.
pub use crate::model::netdev::Link;

pub use crate::model::netdev::{STATS64_FIELDS, Stats64};
const _: () = assert!(STATS64_FIELDS.len() * 8 == std::mem::size_of::<sys::rtnl_link_stats64>());

const IFINFOMSG: usize = std::mem::size_of::<sys::ifinfomsg>();

pub fn get_links(seq: u32) -> Vec<u8> {
    MessageBuilder::new(
        sys::RTM_GETLINK as u16,
        (sys::NLM_F_REQUEST | sys::NLM_F_DUMP) as u16,
        seq,
    )
    // The ifinfomsg header (all zero: every family, every link) follows nlmsghdr.
    .raw(&[0u8; IFINFOMSG])
    .finish()
}

/// What one RTM_NEWLINK says of the link's name, index and carrier, read
/// without allocating: a dump of every link of the node is walked for these,
/// and [`decode_link`] decodes only the links that are watched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkHead<'a> {
    pub index: i32,
    pub name: &'a str,
    pub carrier_changes: Option<u32>,
    /// IFLA_INFO_KIND: the kind of a link made by rtnl_link_ops (bond,
    /// vlan, veth, ...); None for a driver's own netdev. See
    /// [`speed_follows_carrier`].
    pub kind: Option<&'a str>,
}

/// Whether a link's carrier count tells every change of its speed, so that
/// a RoCE port's rate (its netdev's speed, `ib_get_eth_speed`) needs reading
/// again only when the count moved. `kind` is the link's IFLA_INFO_KIND,
/// `driver` its ethtool driver name (GDRVINFO, read at rescans).
///
/// - veth: fixed speed (veth_get_link_ksettings reports SPEED_10000).
/// - mlx5_core, mlx4_en: a speed change retrains the link, and the driver's
///   link event handler (mlx5e_update_carrier, mlx4_en_update_carrier)
///   counts an event that finds the carrier as it was with
///   netif_carrier_event (added in 2021 with these callers, for link flap
///   detection by the carrier counts): a down and up between two of its
///   link queries still moves the count.
/// - Everything else reads the rate every cycle. Paravirtual drivers change
///   speed with no carrier event: hv_netvsc on RNDIS_STATUS_LINK_SPEED_CHANGE
///   (7f5d5af0b2f8), virtio_net and netvsc on `ethtool -s speed`
///   (ethtool_virtdev_set_link_ksettings stores it). A physical driver
///   whose link handler only calls netif_carrier_on/off (which do nothing
///   when the carrier is already so) misses a down and up between two of
///   its link reads; none other is known here to count them. A
///   stacked link (bond, team, vlan, macvlan) has its lower links' speed,
///   which moves while its own carrier stays. An unknown driver (GDRVINFO
///   not read yet, or failed) is not trusted either.
pub fn speed_follows_carrier(kind: Option<&str>, driver: Option<&str>) -> bool {
    match kind {
        Some(k) => k == "veth",
        None => matches!(driver, Some("mlx5_core" | "mlx4_en")),
    }
}

pub fn link_head(payload: &[u8]) -> Result<LinkHead<'_>, WireError> {
    let head = payload.get(..IFINFOMSG).ok_or(WireError::Truncated {
        what: "ifinfomsg",
        need: IFINFOMSG,
        have: payload.len(),
    })?;
    let mut h = LinkHead {
        index: i32::from_ne_bytes(head[4..8].try_into().expect("4 bytes")),
        name: "",
        carrier_changes: None,
        kind: None,
    };
    for a in wire::attrs(&payload[IFINFOMSG..]) {
        let a = a?;
        match u32::from(a.kind) {
            // Types as rtnl_fill_ifinfo puts them (ifla_policy in net/core/rtnetlink.c).
            sys::IFLA_IFNAME => {
                if let Some(n) = skip(a.str()) {
                    h.name = n;
                }
            }
            sys::IFLA_CARRIER_CHANGES => h.carrier_changes = skip(a.u32()),
            // rtnl_link_info_fill: the kind of a link made by rtnl_link_ops
            // (bond, vlan, veth, ...); a hardware driver's link has none.
            sys::IFLA_LINKINFO => {
                h.kind = a
                    .nested()
                    .filter_map(Result::ok)
                    .find(|i| u32::from(i.kind) == sys::IFLA_INFO_KIND)
                    .and_then(|i| i.str().ok());
            }
            _ => {}
        }
    }
    Ok(h)
}

pub fn decode_link(payload: &[u8]) -> Result<Link, WireError> {
    let h = link_head(payload)?;
    let mut link = Link {
        index: h.index,
        name: h.name.to_string(),
        carrier_changes: h.carrier_changes,
        ..Link::default()
    };
    for a in wire::attrs(&payload[IFINFOMSG..]) {
        let a = a?;
        match u32::from(a.kind) {
            sys::IFLA_MTU => link.mtu = skip(a.u32()),
            sys::IFLA_OPERSTATE => link.operstate = skip(a.u8()),
            sys::IFLA_CARRIER_UP_COUNT => link.carrier_up_count = skip(a.u32()),
            sys::IFLA_CARRIER_DOWN_COUNT => link.carrier_down_count = skip(a.u32()),
            sys::IFLA_STATS64 => {
                // Older kernels send fewer fields, newer ones more: take what
                // is there, but only whole u64 fields.
                if let Some(values) = skip(a.u64s()) {
                    link.stats64 = Stats64::of(values);
                }
            }
            _ => {}
        }
    }
    Ok(link)
}

/// Every link of the node (one dump).
pub fn links<T: NlTransport>(t: &mut T, seq: u32) -> Result<Vec<Link>, NlError> {
    links_into(t, seq, &mut Vec::new())
}

/// [`links`], the raw replies received into `buf`: a caller that keeps it
/// from cycle to cycle receives the dump without allocating (the dump of a
/// few dozen links is tens of KiB, a fresh mapping each time it grows).
pub fn links_into<T: NlTransport>(
    t: &mut T,
    seq: u32,
    buf: &mut Vec<u8>,
) -> Result<Vec<Link>, NlError> {
    replies(
        t,
        buf,
        &get_links(seq),
        sys::RTM_NEWLINK as u16,
        "RTM_GETLINK",
        decode_link,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::netlink::Replay;

    /// An RTM_NEWLINK message as rtnl_fill_ifinfo lays it out. Hand-built,
    /// for what the VM's one kernel cannot show (a shorter struct of an older
    /// kernel, an attribute newer than the headers); the real replies are in
    /// `recorded` below.
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
        assert_eq!(l.stats64.iter().nth(2), Some(("rx_bytes", 3)));
        assert_eq!(l.stats64.len(), 25);
        assert_eq!(links[1].stats64.len(), 23);
        assert_eq!(
            link_head(&newlink(2, "eth2", &stats)[16..]).unwrap().kind,
            None,
            "no IFLA_LINKINFO: a driver's own link"
        );
        assert!(decode_link(&[0; 8]).is_err());
    }

    /// A bond's speed is the sum of its lower links' (bond_ethtool_get_link_ksettings):
    /// it changes while the bond's own carrier stays, so its carrier count
    /// cannot tell a speed change. veth's speed is fixed.
    #[test]
    fn a_stacked_link_does_not_tell_its_speed_by_its_carrier() {
        let with_kind = |kind: &str| {
            let mut payload = vec![0u8; IFINFOMSG];
            let info = MessageBuilder::new(0, 0, 0)
                .nested(sys::IFLA_LINKINFO, |b| b.string(sys::IFLA_INFO_KIND, kind))
                .finish();
            payload.extend_from_slice(&info[16..]);
            let head = link_head(&payload).unwrap();
            assert_eq!(head.kind, Some(kind));
            speed_follows_carrier(head.kind, Some("mlx5_core"))
        };
        assert!(!with_kind("bond"));
        assert!(!with_kind("vlan"));
        assert!(with_kind("veth"));
    }

    /// A driver's own link tells its speed by its carrier only for the
    /// drivers known to count every retrain in it; a paravirtual one
    /// (virtio_net, hv_netvsc) changes speed with no carrier event, and an
    /// unknown driver is not trusted.
    #[test]
    fn only_drivers_that_count_every_retrain_tell_the_speed_by_the_carrier() {
        assert!(speed_follows_carrier(None, Some("mlx5_core")));
        assert!(speed_follows_carrier(None, Some("mlx4_en")));
        for driver in [Some("virtio_net"), Some("hv_netvsc"), Some("ice"), None] {
            assert!(!speed_follows_carrier(None, driver), "{driver:?}");
        }
        assert!(speed_follows_carrier(Some("veth"), None));
    }

    /// IFLA_MTU (u32) in 8 bytes, IFLA_OPERSTATE (u8) in 4, a name without
    /// its NUL, IFLA_STATS64 not a whole number of u64s: each is counted and
    /// skipped, the other attributes are still read.
    #[test]
    fn wrong_sized_attributes_are_skipped() {
        let before = wire::malformed_on_this_thread();
        let mut payload = vec![0u8; IFINFOMSG];
        payload[4..8].copy_from_slice(&7i32.to_ne_bytes());
        for (kind, data) in [
            (sys::IFLA_IFNAME, &b"eth7"[..]),
            (sys::IFLA_MTU, &[0, 0x23, 0, 0, 9, 9, 9, 9][..]),
            (sys::IFLA_OPERSTATE, &[6, 0, 0, 0][..]),
            (sys::IFLA_CARRIER_CHANGES, &5u32.to_ne_bytes()[..]),
            (sys::IFLA_STATS64, &[1; 12][..]),
        ] {
            payload.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
            payload.extend_from_slice(&(kind as u16).to_ne_bytes());
            payload.extend_from_slice(data);
            payload.resize(wire::align4(payload.len()), 0);
        }
        let l = decode_link(&payload).unwrap();
        assert_eq!((l.index, l.name.as_str()), (7, ""));
        assert_eq!(
            (l.mtu, l.operstate, l.carrier_changes),
            (None, None, Some(5))
        );
        assert!(l.stats64.is_empty());
        assert_eq!(wire::malformed_on_this_thread() - before, 4);
    }
}

/// Replies recorded in the rxe VM (fixtures/netlink/rxe-6.1-net, see its
/// README), checked against `ip -j -s -s link show` run just before and just
/// after the recording.
#[cfg(test)]
mod recorded {
    use super::*;
    use crate::sources::netlink::{Replay, recorded_net};

    fn ip_json(name: &str) -> Vec<serde_json::Value> {
        serde_json::from_slice(&recorded_net(name)).unwrap()
    }

    /// rtnl_link_stats64 field ↔ `ip -s -s -j` key.
    const IP_KEYS: &[(&str, &str, &str)] = &[
        ("rx_bytes", "rx", "bytes"),
        ("rx_packets", "rx", "packets"),
        ("rx_errors", "rx", "errors"),
        ("rx_dropped", "rx", "dropped"),
        ("rx_over_errors", "rx", "over_errors"),
        ("multicast", "rx", "multicast"),
        ("rx_length_errors", "rx", "length_errors"),
        ("rx_crc_errors", "rx", "crc_errors"),
        ("rx_frame_errors", "rx", "frame_errors"),
        ("rx_fifo_errors", "rx", "fifo_errors"),
        ("rx_missed_errors", "rx", "missed_errors"),
        ("tx_bytes", "tx", "bytes"),
        ("tx_packets", "tx", "packets"),
        ("tx_errors", "tx", "errors"),
        ("tx_dropped", "tx", "dropped"),
        ("tx_carrier_errors", "tx", "carrier_errors"),
        ("collisions", "tx", "collisions"),
        ("tx_aborted_errors", "tx", "aborted_errors"),
        ("tx_fifo_errors", "tx", "fifo_errors"),
        ("tx_window_errors", "tx", "window_errors"),
        ("tx_heartbeat_errors", "tx", "heartbeat_errors"),
    ];

    #[test]
    fn link_dump_matches_ip() {
        let mut t =
            Replay::new([recorded_net("01-getlink-dump.bin")]).protocol(libc::NETLINK_ROUTE);
        let links = links(&mut t, 1).unwrap();
        let (before, after) = (
            ip_json("ip-link-before.json"),
            ip_json("ip-link-after.json"),
        );
        assert_eq!(links.len(), before.len());
        for ((l, b), a) in links.iter().zip(&before).zip(&after) {
            assert_eq!(i64::from(l.index), b["ifindex"].as_i64().unwrap());
            assert_eq!(l.name, b["ifname"].as_str().unwrap());
            assert_eq!(l.mtu.map(u64::from), b["mtu"].as_u64());
            let oper = match b["operstate"].as_str().unwrap() {
                "UP" => 6,
                "DOWN" => 2,
                _ => 0, // UNKNOWN (lo)
            };
            assert_eq!(l.operstate, Some(oper), "{}", l.name);
            assert_eq!(
                l.carrier_changes.map(u64::from),
                b["stats64"]["tx"]["carrier_changes"].as_u64(),
                "{}",
                l.name
            );
            // 6.1 sends the whole struct, rx_otherhost_dropped included.
            assert_eq!(l.stats64.len(), STATS64_FIELDS.len());
            for (field, dir, key) in IP_KEYS {
                let v = l.stats64.get(field).unwrap();
                let (lo, hi) = (
                    b["stats64"][dir][key].as_u64().unwrap(),
                    a["stats64"][dir][key].as_u64().unwrap(),
                );
                assert!(
                    lo <= v && v <= hi,
                    "{} {field}: {v} not in {lo}..={hi}",
                    l.name
                );
            }
        }
        // IFLA_LINKINFO's kind, as `ip -d` shows it.
        let dump = recorded_net("01-getlink-dump.bin");
        let heads: Vec<_> = wire::frames(&dump)
            .filter_map(|f| link_head(&f[16..]).ok())
            .filter(|h| !h.name.is_empty())
            .collect();
        let details = ip_json("ip-link-details.json");
        assert_eq!(heads.len(), details.len());
        for d in details {
            let h = heads.iter().find(|h| h.name == d["ifname"]).unwrap();
            assert_eq!(h.kind, d["linkinfo"]["info_kind"].as_str(), "{}", h.name);
        }
        let veth0 = links.iter().find(|l| l.name == "veth0").unwrap();
        assert!(
            veth0
                .stats64
                .iter()
                .any(|(f, v)| f == "rx_bytes" && v > 500_000),
            "rxe traffic"
        );
    }
}
