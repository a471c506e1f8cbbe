//! Generic netlink (family ids by name through nlctrl) and what the agent
//! reads over it: ethtool netlink (pause and FEC statistics, link state)
//! and devlink (dev info: driver, serial, firmware versions). Framing and
//! transport are the RDMA netlink ones; unknown attributes are skipped.

use serde::Serialize;

use crate::sources::rdma_netlink::wire::{self, Attr, WireError, skip};
use crate::sources::rdma_netlink::{NlError, Transport, for_each_reply};
use crate::sys;

const GENL_HDR: usize = std::mem::size_of::<sys::genlmsghdr>();
const NLA_F_NESTED: u16 = sys::NLA_F_NESTED as u16;

/// ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT (u32): newer than the 6.1 header
/// (linux/ethtool_netlink.h gained it in 6.2, right after EXT_SUBSTATE).
pub const ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT: u16 = sys::ETHTOOL_A_LINKSTATE_EXT_SUBSTATE as u16 + 1;

fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + payload.len() + 3);
    v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(payload);
    v.resize(wire::align4(v.len()), 0);
    v
}

fn cstring(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A generic netlink request: nlmsghdr, genlmsghdr (cmd, version 1), attributes.
pub fn request(family: u16, cmd: u8, dump: bool, seq: u32, attrs: &[u8]) -> Vec<u8> {
    let flags = sys::NLM_F_REQUEST | if dump { sys::NLM_F_DUMP } else { 0 };
    let mut m = Vec::with_capacity(16 + GENL_HDR + attrs.len());
    let len = 16 + GENL_HDR + attrs.len();
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&family.to_ne_bytes());
    m.extend_from_slice(&(flags as u16).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, 1, 0, 0]);
    m.extend_from_slice(attrs);
    m
}

/// Runs one exchange; returns the payloads (after genlmsghdr) of the replies of `family`.
pub fn run<T: Transport>(
    t: &mut T,
    req: &[u8],
    cmd_name: &'static str,
) -> Result<Vec<Vec<u8>>, NlError> {
    let seq = u32::from_ne_bytes(req[8..12].try_into().expect("4 bytes"));
    let family = u16::from_ne_bytes([req[4], req[5]]);
    let mut buf = Vec::new();
    t.exchange(req, &mut buf)?;
    let mut out = Vec::new();
    for_each_reply(&buf, seq, family, cmd_name, |payload| {
        let p = payload.get(GENL_HDR..).ok_or(NlError::Wire {
            cmd: cmd_name,
            source: WireError::Truncated {
                what: "genlmsghdr",
                need: GENL_HDR,
                have: payload.len(),
            },
        })?;
        out.push(p.to_vec());
        Ok(())
    })?;
    Ok(out)
}

/// The id of a generic netlink family ("ethtool", "devlink"), or None when the kernel has none.
pub fn family_id<T: Transport>(t: &mut T, name: &str, seq: u32) -> Result<Option<u16>, NlError> {
    let req = request(
        sys::GENL_ID_CTRL as u16,
        sys::CTRL_CMD_GETFAMILY as u8,
        false,
        seq,
        &attr(sys::CTRL_ATTR_FAMILY_NAME as u16, &cstring(name)),
    );
    match run(t, &req, "CTRL_CMD_GETFAMILY") {
        Ok(replies) => {
            for p in replies {
                for a in wire::attrs(&p) {
                    let a = a.map_err(|source| NlError::Wire {
                        cmd: "CTRL_CMD_GETFAMILY",
                        source,
                    })?;
                    if u32::from(a.kind) == sys::CTRL_ATTR_FAMILY_ID {
                        return a.u16().map(Some).map_err(|source| NlError::Wire {
                            cmd: "CTRL_CMD_GETFAMILY",
                            source,
                        });
                    }
                }
            }
            Ok(None)
        }
        Err(NlError::Kernel { errno, .. }) if errno == libc::ENOENT => Ok(None),
        Err(e) => Err(e),
    }
}

/// Ethernet statistics from ethtool netlink that the ioctls lack.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EthtoolNl {
    pub pause_tx_frames: Option<u64>,
    pub pause_rx_frames: Option<u64>,
    /// FEC blocks corrected / uncorrectable and bits corrected: the total the
    /// kernel sends first, then each lane's count where the driver has lanes.
    pub fec_corrected: Option<u64>,
    pub fec_corrected_lanes: Vec<u64>,
    pub fec_uncorrectable: Option<u64>,
    pub fec_uncorrectable_lanes: Vec<u64>,
    pub fec_corrected_bits: Option<u64>,
    pub fec_corrected_bits_lanes: Vec<u64>,
    pub link_up: Option<bool>,
    /// Link-down events the driver counted (ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT, 6.2+).
    pub link_down_events: Option<u64>,
}

/// The request header nest: device name, and the "with statistics" flag.
fn ethtool_header(header_attr: u16, ifname: &str, stats: bool) -> Vec<u8> {
    let mut inner = attr(sys::ETHTOOL_A_HEADER_DEV_NAME as u16, &cstring(ifname));
    if stats {
        inner.extend(attr(
            sys::ETHTOOL_A_HEADER_FLAGS as u16,
            &sys::ETHTOOL_FLAG_STATS.to_ne_bytes(),
        ));
    }
    attr(header_attr | NLA_F_NESTED, &inner)
}

pub fn pause_request(family: u16, seq: u32, ifname: &str) -> Vec<u8> {
    request(
        family,
        sys::ETHTOOL_MSG_PAUSE_GET as u8,
        false,
        seq,
        &ethtool_header(sys::ETHTOOL_A_PAUSE_HEADER as u16, ifname, true),
    )
}
pub fn fec_request(family: u16, seq: u32, ifname: &str) -> Vec<u8> {
    request(
        family,
        sys::ETHTOOL_MSG_FEC_GET as u8,
        false,
        seq,
        &ethtool_header(sys::ETHTOOL_A_FEC_HEADER as u16, ifname, true),
    )
}
pub fn linkstate_request(family: u16, seq: u32, ifname: &str) -> Vec<u8> {
    request(
        family,
        sys::ETHTOOL_MSG_LINKSTATE_GET as u8,
        false,
        seq,
        &ethtool_header(sys::ETHTOOL_A_LINKSTATE_HEADER as u16, ifname, false),
    )
}

/// One FEC statistic into its total and lanes. fec_put_stats()
/// (net/ethtool/fec.c, since 5.13 "ethtool: add FEC statistics") sends
/// `stats[0..cnt]` as filled by fec_stats_recalc(): `[total]` when the driver
/// counts a total only, `[total, lane0, lane1, …]` when it counts lanes (the
/// total is then the kernel's sum of them), and an empty attribute (cnt 0)
/// when the driver does not count this statistic at all: absent, not zero.
/// Only the total is a count of the link; the lanes are its parts.
fn fec_stat(a: &Attr, total: &mut Option<u64>, lanes: &mut Vec<u64>) {
    lanes.clear();
    *total = None;
    if let Some(mut values) = skip(a.u64s()) {
        *total = values.next();
        lanes.extend(values);
    }
}

pub fn decode_pause(p: &[u8], out: &mut EthtoolNl) -> Result<(), WireError> {
    for a in wire::attrs(p) {
        let a = a?;
        if u32::from(a.kind) == sys::ETHTOOL_A_PAUSE_STATS {
            for s in a.nested() {
                let s = s?;
                match u32::from(s.kind) {
                    // The PAD attribute before them (on 32-bit-unaligned
                    // architectures) has a type of its own and is passed over.
                    sys::ETHTOOL_A_PAUSE_STAT_TX_FRAMES => out.pause_tx_frames = skip(s.u64()),
                    sys::ETHTOOL_A_PAUSE_STAT_RX_FRAMES => out.pause_rx_frames = skip(s.u64()),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

pub fn decode_fec(p: &[u8], out: &mut EthtoolNl) -> Result<(), WireError> {
    for a in wire::attrs(p) {
        let a = a?;
        if u32::from(a.kind) == sys::ETHTOOL_A_FEC_STATS {
            for s in a.nested() {
                let s = s?;
                match u32::from(s.kind) {
                    sys::ETHTOOL_A_FEC_STAT_CORRECTED => {
                        fec_stat(&s, &mut out.fec_corrected, &mut out.fec_corrected_lanes)
                    }
                    sys::ETHTOOL_A_FEC_STAT_UNCORR => fec_stat(
                        &s,
                        &mut out.fec_uncorrectable,
                        &mut out.fec_uncorrectable_lanes,
                    ),
                    sys::ETHTOOL_A_FEC_STAT_CORR_BITS => fec_stat(
                        &s,
                        &mut out.fec_corrected_bits,
                        &mut out.fec_corrected_bits_lanes,
                    ),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

pub fn decode_linkstate(p: &[u8], out: &mut EthtoolNl) -> Result<(), WireError> {
    for a in wire::attrs(p) {
        let a = a?;
        match a.kind {
            k if u32::from(k) == sys::ETHTOOL_A_LINKSTATE_LINK => {
                out.link_up = skip(a.u8()).map(|v| v != 0)
            }
            ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT => out.link_down_events = skip(a.u32()).map(u64::from),
            _ => {}
        }
    }
    Ok(())
}

/// One 128-byte upper page of a module's EEPROM (ETHTOOL_MSG_MODULE_EEPROM_GET):
/// what the ioctl cannot reach, such as CMIS lane monitors (page 11h) and
/// thresholds (page 02h).
pub fn module_page_request(family: u16, seq: u32, ifname: &str, page: u8) -> Vec<u8> {
    let mut a = ethtool_header(sys::ETHTOOL_A_MODULE_EEPROM_HEADER as u16, ifname, false);
    a.extend(attr(
        sys::ETHTOOL_A_MODULE_EEPROM_OFFSET as u16,
        &128u32.to_ne_bytes(),
    ));
    a.extend(attr(
        sys::ETHTOOL_A_MODULE_EEPROM_LENGTH as u16,
        &128u32.to_ne_bytes(),
    ));
    a.extend(attr(sys::ETHTOOL_A_MODULE_EEPROM_PAGE as u16, &[page]));
    a.extend(attr(sys::ETHTOOL_A_MODULE_EEPROM_BANK as u16, &[0]));
    // 0x50: the module's memory map (0x51 is SFF-8472's diagnostics address).
    a.extend(attr(
        sys::ETHTOOL_A_MODULE_EEPROM_I2C_ADDRESS as u16,
        &[0x50],
    ));
    request(
        family,
        sys::ETHTOOL_MSG_MODULE_EEPROM_GET as u8,
        false,
        seq,
        &a,
    )
}

pub fn decode_module_page(p: &[u8]) -> Result<Option<Vec<u8>>, WireError> {
    for a in wire::attrs(p) {
        let a = a?;
        if u32::from(a.kind) == sys::ETHTOOL_A_MODULE_EEPROM_DATA {
            return Ok(Some(a.payload.to_vec()));
        }
    }
    Ok(None)
}

/// `devlink dev info` of one device.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DevlinkInfo {
    pub bus: String,
    pub device: String,
    pub driver: Option<String>,
    pub serial: Option<String>,
    pub board_serial: Option<String>,
    /// (kind: fixed/running/stored, name, value): e.g. ("running", "fw.version", "22.36.1010").
    pub versions: Vec<(&'static str, String, String)>,
}

pub fn devlink_info_request(family: u16, seq: u32) -> Vec<u8> {
    request(family, sys::DEVLINK_CMD_INFO_GET as u8, true, seq, &[])
}

/// A string attribute, or `None` (counted) when it is not a NUL-terminated UTF-8 string.
fn string(a: &Attr) -> Option<String> {
    skip(a.str()).map(str::to_string)
}

pub fn decode_devlink_info(p: &[u8]) -> Result<DevlinkInfo, WireError> {
    let mut d = DevlinkInfo::default();
    for a in wire::attrs(p) {
        let a = a?;
        match u32::from(a.kind) {
            sys::DEVLINK_ATTR_BUS_NAME => d.bus = string(&a).unwrap_or_default(),
            sys::DEVLINK_ATTR_DEV_NAME => d.device = string(&a).unwrap_or_default(),
            sys::DEVLINK_ATTR_INFO_DRIVER_NAME => d.driver = string(&a),
            sys::DEVLINK_ATTR_INFO_SERIAL_NUMBER => d.serial = string(&a),
            sys::DEVLINK_ATTR_INFO_BOARD_SERIAL_NUMBER => d.board_serial = string(&a),
            k @ (sys::DEVLINK_ATTR_INFO_VERSION_FIXED
            | sys::DEVLINK_ATTR_INFO_VERSION_RUNNING
            | sys::DEVLINK_ATTR_INFO_VERSION_STORED) => {
                let kind = match k {
                    sys::DEVLINK_ATTR_INFO_VERSION_FIXED => "fixed",
                    sys::DEVLINK_ATTR_INFO_VERSION_RUNNING => "running",
                    _ => "stored",
                };
                let (mut name, mut value) = (None, None);
                for v in a.nested() {
                    let v = v?;
                    match u32::from(v.kind) {
                        sys::DEVLINK_ATTR_INFO_VERSION_NAME => name = string(&v),
                        sys::DEVLINK_ATTR_INFO_VERSION_VALUE => value = string(&v),
                        _ => {}
                    }
                }
                if let (Some(n), Some(v)) = (name, value) {
                    d.versions.push((kind, n, v));
                }
            }
            _ => {}
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::rdma_netlink::{Replay, recorded_net};

    fn nest(kind: u32, children: &[Vec<u8>]) -> Vec<u8> {
        attr(kind as u16 | NLA_F_NESTED, &children.concat())
    }
    fn u64a(kind: u32, v: u64) -> Vec<u8> {
        attr(kind as u16, &v.to_ne_bytes())
    }
    fn stra(kind: u32, s: &str) -> Vec<u8> {
        attr(kind as u16, &cstring(s))
    }
    /// A reply message of `family` carrying `attrs`, as the kernel would.
    fn reply(family: u16, cmd: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut m = request(family, cmd, false, 1, &attrs.concat());
        m[6..8].copy_from_slice(&0u16.to_ne_bytes());
        m
    }

    fn replay(files: &[&str]) -> Replay {
        Replay::new(files.iter().map(|f| recorded_net(f))).protocol(libc::NETLINK_GENERIC)
    }

    #[test]
    fn family_lookup_recorded() {
        let mut t = replay(&["06-getfamily-ethtool.bin", "07-getfamily-devlink.bin"]);
        assert_eq!(family_id(&mut t, "ethtool", 9).unwrap(), Some(20));
        assert_eq!(family_id(&mut t, "devlink", 10).unwrap(), Some(21));
        let req = &t.requests[0];
        assert_eq!(u16::from_ne_bytes([req[4], req[5]]), 0x10, "to nlctrl");
        assert_eq!(req[16], sys::CTRL_CMD_GETFAMILY as u8);
        // Hand-built (the VM kernel has both families): no such family is
        // ENOENT, which is "none", not an error.
        let mut err = vec![0u8; 36];
        err[..4].copy_from_slice(&36u32.to_ne_bytes());
        err[4..6].copy_from_slice(&(sys::NLMSG_ERROR as u16).to_ne_bytes());
        err[8..12].copy_from_slice(&1u32.to_ne_bytes());
        err[16..20].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        assert_eq!(
            family_id(&mut Replay::new([err]), "devlink", 1).unwrap(),
            None
        );
    }

    /// Runs one recorded ethtool exchange through `decode`.
    fn ethtool_recorded(
        file: &str,
        decode: fn(&[u8], &mut EthtoolNl) -> Result<(), WireError>,
    ) -> Result<EthtoolNl, NlError> {
        let mut out = EthtoolNl::default();
        for p in run(&mut replay(&[file]), &linkstate_request(20, 1, "x"), "GET")? {
            decode(&p, &mut out).unwrap();
        }
        Ok(out)
    }

    #[test]
    fn linkstate_pause_fec_recorded() {
        // veth: the link is up (`ip link` said UP); 6.1 has no EXT_DOWN_CNT.
        let veth = ethtool_recorded("11-ethtool-linkstate-veth0.bin", decode_linkstate).unwrap();
        assert_eq!((veth.link_up, veth.link_down_events), (Some(true), None));
        // dummy has no get_link: the kernel leaves LINKSTATE_LINK out, and so do we.
        let dummy = ethtool_recorded("19-ethtool-linkstate-dummy0.bin", decode_linkstate).unwrap();
        assert_eq!(dummy, EthtoolNl::default());
        // veth, dummy and lo have no pause or FEC ops: EOPNOTSUPP, "unsupported".
        for (f, decode) in [
            (
                "09-ethtool-pause-veth0.bin",
                decode_pause as fn(&[u8], &mut EthtoolNl) -> _,
            ),
            ("10-ethtool-fec-veth0.bin", decode_fec),
            ("17-ethtool-pause-dummy0.bin", decode_pause),
            ("22-ethtool-fec-lo.bin", decode_fec),
        ] {
            let e = ethtool_recorded(f, decode).unwrap_err();
            assert!(
                matches!(
                    e,
                    NlError::Kernel {
                        errno: libc::EOPNOTSUPP,
                        ..
                    }
                ) && e.is_unsupported(),
                "{f}: {e}"
            );
        }
        let e = run(
            &mut replay(&["12-ethtool-module-eeprom-veth0.bin"]),
            &module_page_request(20, 1, "veth0", 0x11),
            "ETHTOOL_MSG_MODULE_EEPROM_GET",
        )
        .unwrap_err();
        assert!(e.is_unsupported(), "{e}");
    }

    #[test]
    fn devlink_without_devices_recorded() {
        // The VM has no devlink instance: the dump is NLMSG_DONE alone.
        let got = run(
            &mut replay(&["08-devlink-info-dump.bin"]),
            &devlink_info_request(21, 1),
            "DEVLINK_CMD_INFO_GET",
        )
        .unwrap();
        assert!(got.is_empty());
    }

    /// Hand-built (no device in the VM has pause statistics): a PAUSE_GET
    /// reply with ETHTOOL_FLAG_STATS, as pause_fill_reply lays it out.
    #[test]
    fn pause_statistics() {
        let mut out = EthtoolNl::default();
        let pause = [
            nest(
                sys::ETHTOOL_A_PAUSE_HEADER,
                &[stra(sys::ETHTOOL_A_HEADER_DEV_NAME, "eth2")],
            ),
            attr(sys::ETHTOOL_A_PAUSE_AUTONEG as u16, &[0]),
            nest(
                sys::ETHTOOL_A_PAUSE_STATS,
                &[
                    attr(sys::ETHTOOL_A_PAUSE_STAT_PAD as u16, &[]),
                    u64a(sys::ETHTOOL_A_PAUSE_STAT_TX_FRAMES, 1234),
                    u64a(sys::ETHTOOL_A_PAUSE_STAT_RX_FRAMES, 5678),
                ],
            ),
        ]
        .concat();
        decode_pause(&pause, &mut out).unwrap();
        assert_eq!(
            (out.pause_tx_frames, out.pause_rx_frames),
            (Some(1234), Some(5678))
        );
        // The request carries the device and the statistics flag.
        let r = pause_request(0x15, 3, "eth2");
        let body = &r[16 + GENL_HDR..];
        let header = wire::attrs(body).next().unwrap().unwrap();
        assert_eq!(u32::from(header.kind), sys::ETHTOOL_A_PAUSE_HEADER);
        let inner: Vec<_> = header.nested().map(|a| a.unwrap()).collect();
        assert_eq!(inner[0].str().unwrap(), "eth2");
        assert_eq!(inner[1].u32().unwrap(), sys::ETHTOOL_FLAG_STATS);
        // A cut attribute header is an error, not a panic.
        assert!(decode_pause(&pause[..pause.len() - 6], &mut EthtoolNl::default()).is_err());
    }

    /// ETHTOOL_STAT_NOT_SET (include/linux/ethtool.h): what a driver leaves in
    /// a statistic it does not count.
    const NOT_SET: u64 = u64::MAX;

    /// One FEC statistic attribute as the kernel builds it from the driver's
    /// `struct ethtool_fec_stat { total; lanes[ETHTOOL_MAX_LANES] }`
    /// (net/ethtool/fec.c): fec_stats_recalc() gives `[total]` when lanes[0]
    /// is NOT_SET (nothing at all when total is NOT_SET too), else
    /// `[sum of lanes, lane0, lane1, …]` up to the first NOT_SET lane; then
    /// fec_put_stats() puts those `cnt` u64s with nla_put_64bit (no PAD on
    /// x86-64, where 64-bit values need no alignment).
    fn kernel_fec_attr(kind: u32, total: u64, lanes: [u64; 8]) -> Vec<u8> {
        let set: Vec<u64> = lanes
            .iter()
            .copied()
            .take_while(|&l| l != NOT_SET)
            .collect();
        let stats: Vec<u64> = if set.is_empty() {
            if total == NOT_SET {
                vec![]
            } else {
                vec![total]
            }
        } else {
            std::iter::once(set.iter().sum()).chain(set).collect()
        };
        let bytes: Vec<u8> = stats.iter().flat_map(|v| v.to_ne_bytes()).collect();
        attr(kind as u16, &bytes)
    }

    #[test]
    fn fec_total_and_lanes_as_the_kernel_sends_them() {
        let none = [NOT_SET; 8];
        let mut four = [NOT_SET; 8];
        four[..4].copy_from_slice(&[10, 20, 30, 40]);
        // mlx5 in RS-FEC mode: totals only (its lanes[] stay NOT_SET).
        // Corrected bits: not counted by the driver, an empty attribute.
        let totals = nest(
            sys::ETHTOOL_A_FEC_STATS,
            &[
                kernel_fec_attr(sys::ETHTOOL_A_FEC_STAT_CORRECTED, 100, none),
                kernel_fec_attr(sys::ETHTOOL_A_FEC_STAT_UNCORR, 7, none),
                kernel_fec_attr(sys::ETHTOOL_A_FEC_STAT_CORR_BITS, NOT_SET, none),
            ],
        );
        let mut out = EthtoolNl::default();
        decode_fec(&totals, &mut out).unwrap();
        assert_eq!(
            (
                out.fec_corrected,
                out.fec_uncorrectable,
                out.fec_corrected_bits
            ),
            (Some(100), Some(7), None),
            "a statistic the driver does not count is absent, not 0"
        );
        assert!(out.fec_corrected_lanes.is_empty() && out.fec_uncorrectable_lanes.is_empty());
        // mlx5 in FC-FEC (BASE-R) mode: per lane; the kernel adds the total
        // in front. The total is the sum once, not twice.
        let mut two = [NOT_SET; 8];
        two[..2].copy_from_slice(&[3, 4]);
        let lanes = nest(
            sys::ETHTOOL_A_FEC_STATS,
            &[
                kernel_fec_attr(sys::ETHTOOL_A_FEC_STAT_CORRECTED, NOT_SET, four),
                kernel_fec_attr(sys::ETHTOOL_A_FEC_STAT_UNCORR, NOT_SET, two),
                kernel_fec_attr(sys::ETHTOOL_A_FEC_STAT_CORR_BITS, 999, four),
            ],
        );
        let mut out = EthtoolNl::default();
        decode_fec(&lanes, &mut out).unwrap();
        assert_eq!(out.fec_corrected, Some(100));
        assert_eq!(out.fec_corrected_lanes, [10, 20, 30, 40]);
        assert_eq!(
            (out.fec_uncorrectable, &out.fec_uncorrectable_lanes[..]),
            (Some(7), &[3, 4][..])
        );
        assert_eq!(
            out.fec_corrected_bits,
            Some(100),
            "lanes win over the driver's total"
        );
        assert_eq!(out.fec_corrected_bits_lanes.len(), 4);
        // Large lanes: the kernel's u64 sum wraps, we take its total as sent.
        let mut big = [NOT_SET; 8];
        big[..2].copy_from_slice(&[u64::MAX - 1, 0]);
        let mut o = EthtoolNl::default();
        decode_fec(
            &nest(
                sys::ETHTOOL_A_FEC_STATS,
                &[kernel_fec_attr(
                    sys::ETHTOOL_A_FEC_STAT_CORRECTED,
                    NOT_SET,
                    big,
                )],
            ),
            &mut o,
        )
        .unwrap();
        assert_eq!(o.fec_corrected, Some(u64::MAX - 1));
    }

    /// Attributes of the wrong size for their type: counted, skipped, and
    /// the rest of the reply still decoded.
    #[test]
    fn wrong_sized_attributes_are_counted_and_skipped() {
        let before = wire::malformed_on_this_thread();
        let mut out = EthtoolNl::default();
        let ls = [
            attr(sys::ETHTOOL_A_LINKSTATE_LINK as u16, &[1, 0]), // u8 sent as 2 bytes
            attr(ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT, &3u32.to_ne_bytes()),
        ]
        .concat();
        decode_linkstate(&ls, &mut out).unwrap();
        assert_eq!((out.link_up, out.link_down_events), (None, Some(3)));
        let ls = [
            attr(sys::ETHTOOL_A_LINKSTATE_LINK as u16, &[1]),
            attr(ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT, &3u16.to_ne_bytes()), // u32 too short
        ]
        .concat();
        decode_linkstate(&ls, &mut out).unwrap();
        assert_eq!((out.link_up, out.link_down_events), (Some(true), None));
        let stats = nest(
            sys::ETHTOOL_A_PAUSE_STATS,
            &[
                attr(sys::ETHTOOL_A_PAUSE_STAT_TX_FRAMES as u16, &[1; 12]), // too long
                attr(sys::ETHTOOL_A_PAUSE_STAT_RX_FRAMES as u16, &[1; 4]),  // too short
            ],
        );
        decode_pause(&stats, &mut out).unwrap();
        assert_eq!((out.pause_tx_frames, out.pause_rx_frames), (None, None));
        let fec = nest(
            sys::ETHTOOL_A_FEC_STATS,
            &[
                attr(sys::ETHTOOL_A_FEC_STAT_CORRECTED as u16, &[1; 12]), // 1.5 u64s
                u64a(sys::ETHTOOL_A_FEC_STAT_UNCORR, 5),
            ],
        );
        decode_fec(&fec, &mut out).unwrap();
        assert_eq!((out.fec_corrected, out.fec_uncorrectable), (None, Some(5)));
        let d = decode_devlink_info(
            &[
                attr(sys::DEVLINK_ATTR_BUS_NAME as u16, b"pci"), // no NUL
                stra(sys::DEVLINK_ATTR_DEV_NAME, "0000:5e:00.0"),
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!((d.bus.as_str(), d.device.as_str()), ("", "0000:5e:00.0"));
        assert_eq!(wire::malformed_on_this_thread() - before, 6);
        // A family id (u16) sent as u32 is an error: the family is unknown.
        let r = reply(
            sys::GENL_ID_CTRL as u16,
            1,
            &[attr(sys::CTRL_ATTR_FAMILY_ID as u16, &[0x15, 0, 0, 0])],
        );
        assert!(family_id(&mut Replay::new([r]), "ethtool", 1).is_err());
    }

    #[test]
    fn module_page() {
        let r = module_page_request(0x15, 2, "eth2", 0x11);
        let attrs: Vec<_> = wire::attrs(&r[16 + GENL_HDR..])
            .map(|a| a.unwrap())
            .collect();
        let get = |k: u32| attrs.iter().find(|a| u32::from(a.kind) == k).unwrap();
        assert_eq!(get(sys::ETHTOOL_A_MODULE_EEPROM_OFFSET).u32().unwrap(), 128);
        assert_eq!(get(sys::ETHTOOL_A_MODULE_EEPROM_PAGE).u8().unwrap(), 0x11);
        let data: Vec<u8> = (0..128).collect();
        let reply = [
            attr(
                sys::ETHTOOL_A_MODULE_EEPROM_HEADER as u16 | NLA_F_NESTED,
                &[],
            ),
            attr(sys::ETHTOOL_A_MODULE_EEPROM_DATA as u16, &data),
        ]
        .concat();
        assert_eq!(decode_module_page(&reply).unwrap(), Some(data));
    }

    #[test]
    fn devlink_dev_info() {
        let p = [
            stra(sys::DEVLINK_ATTR_BUS_NAME, "pci"),
            stra(sys::DEVLINK_ATTR_DEV_NAME, "0000:5e:00.0"),
            stra(sys::DEVLINK_ATTR_INFO_DRIVER_NAME, "mlx5_core"),
            stra(sys::DEVLINK_ATTR_INFO_SERIAL_NUMBER, "MT2117X12345"),
            nest(
                sys::DEVLINK_ATTR_INFO_VERSION_FIXED,
                &[
                    stra(sys::DEVLINK_ATTR_INFO_VERSION_NAME, "fw.psid"),
                    stra(sys::DEVLINK_ATTR_INFO_VERSION_VALUE, "MT_0000000359"),
                ],
            ),
            nest(
                sys::DEVLINK_ATTR_INFO_VERSION_RUNNING,
                &[
                    stra(sys::DEVLINK_ATTR_INFO_VERSION_NAME, "fw.version"),
                    stra(sys::DEVLINK_ATTR_INFO_VERSION_VALUE, "22.36.1010"),
                ],
            ),
            nest(
                sys::DEVLINK_ATTR_INFO_VERSION_STORED,
                &[
                    stra(sys::DEVLINK_ATTR_INFO_VERSION_NAME, "fw.version"),
                    stra(sys::DEVLINK_ATTR_INFO_VERSION_VALUE, "22.39.1002"),
                ],
            ),
        ]
        .concat();
        let d = decode_devlink_info(&p).unwrap();
        assert_eq!(
            (d.bus.as_str(), d.device.as_str(), d.driver.as_deref()),
            ("pci", "0000:5e:00.0", Some("mlx5_core"))
        );
        assert_eq!(d.versions.len(), 3);
        assert_eq!(
            d.versions[2],
            ("stored", "fw.version".into(), "22.39.1002".into()),
            "a pending firmware update shows"
        );
        let mut t = Replay::new([reply(0x14, sys::DEVLINK_CMD_INFO_GET as u8, &[])]);
        let got = run(
            &mut t,
            &devlink_info_request(0x14, 1),
            "DEVLINK_CMD_INFO_GET",
        )
        .unwrap();
        assert_eq!(got.len(), 1);
    }
}
