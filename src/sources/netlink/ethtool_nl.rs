//! ethtool netlink (the "ethtool" generic netlink family): pause and FEC
//! statistics, link state and module EEPROM pages — what the SIOCETHTOOL
//! ioctls (`sources/ethtool/`) lack. Unknown attributes are skipped.

use super::genl::request;
use super::wire::{self, MessageBuilder, NlAttr, WireError, skip};
use crate::sys;

/// ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT (u32): newer than the 6.1 header
/// (linux/ethtool_netlink.h gained it in 6.2, right after EXT_SUBSTATE).
pub const ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT: u16 = sys::ETHTOOL_A_LINKSTATE_EXT_SUBSTATE as u16 + 1;

/// Decoded straight into the model's type: the snapshot schema is the model's.
pub use crate::model::netdev::EthtoolNl;

/// An ethtool request for `ifname`: the header nest (device name, and the
/// "with statistics" flag when `stats`) is its first attribute.
fn ethtool_request(
    family: u16,
    cmd: u32,
    header_attr: u32,
    seq: u32,
    ifname: &str,
    stats: bool,
) -> MessageBuilder {
    request(family, cmd as u8, false, seq).nested(header_attr, |h| {
        let h = h.string(sys::ETHTOOL_A_HEADER_DEV_NAME, ifname);
        if stats {
            h.u32(sys::ETHTOOL_A_HEADER_FLAGS, sys::ETHTOOL_FLAG_STATS)
        } else {
            h
        }
    })
}

pub fn pause_request(family: u16, seq: u32, ifname: &str) -> Vec<u8> {
    let (cmd, header) = (sys::ETHTOOL_MSG_PAUSE_GET, sys::ETHTOOL_A_PAUSE_HEADER);
    ethtool_request(family, cmd, header, seq, ifname, true).finish()
}
pub fn fec_request(family: u16, seq: u32, ifname: &str) -> Vec<u8> {
    let (cmd, header) = (sys::ETHTOOL_MSG_FEC_GET, sys::ETHTOOL_A_FEC_HEADER);
    ethtool_request(family, cmd, header, seq, ifname, true).finish()
}
pub fn linkstate_request(family: u16, seq: u32, ifname: &str) -> Vec<u8> {
    let (cmd, header) = (
        sys::ETHTOOL_MSG_LINKSTATE_GET,
        sys::ETHTOOL_A_LINKSTATE_HEADER,
    );
    ethtool_request(family, cmd, header, seq, ifname, false).finish()
}

/// How many strings a string set of `ifname` has now (ETHTOOL_MSG_STRSET_GET
/// with ETHTOOL_A_STRSET_COUNTS_ONLY, one set asked). The kernel answers
/// with `ops->get_sset_count(dev, set)` (strset_prepare_set, net/ethtool/
/// strset.c), the driver callback the ETHTOOL_GSSET_INFO and ETHTOOL_GSTATS
/// ioctls size their answers by; a set whose count is 0 or an error is left
/// out of the reply (strset_fill_set).
pub fn strset_count_request(family: u16, seq: u32, ifname: &str, set: u32) -> Vec<u8> {
    let (cmd, header) = (sys::ETHTOOL_MSG_STRSET_GET, sys::ETHTOOL_A_STRSET_HEADER);
    ethtool_request(family, cmd, header, seq, ifname, false)
        .nested(sys::ETHTOOL_A_STRSET_STRINGSETS, |b| {
            b.nested(sys::ETHTOOL_A_STRINGSETS_STRINGSET, |b| {
                b.u32(sys::ETHTOOL_A_STRINGSET_ID, set)
            })
        })
        .flag(sys::ETHTOOL_A_STRSET_COUNTS_ONLY)
        .finish()
}

/// The count of string set `set` in a STRSET_GET reply: 0 when the set is
/// not there (the kernel leaves out sets of count 0).
pub fn decode_strset_count(p: &[u8], set: u32) -> Result<u32, WireError> {
    for a in wire::attrs(p) {
        let a = a?;
        if u32::from(a.kind) != sys::ETHTOOL_A_STRSET_STRINGSETS {
            continue;
        }
        for s in a.nested() {
            let s = s?;
            if u32::from(s.kind) != sys::ETHTOOL_A_STRINGSETS_STRINGSET {
                continue;
            }
            let (mut id, mut count) = (None, None);
            for f in s.nested() {
                let f = f?;
                match u32::from(f.kind) {
                    sys::ETHTOOL_A_STRINGSET_ID => id = Some(f.u32()?),
                    sys::ETHTOOL_A_STRINGSET_COUNT => count = Some(f.u32()?),
                    _ => {}
                }
            }
            if id == Some(set) {
                return count.ok_or(WireError::Malformed {
                    what: "ETHTOOL_A_STRINGSETS_STRINGSET",
                    detail: "no COUNT".into(),
                });
            }
        }
    }
    Ok(0)
}

/// One FEC statistic into its total and lanes. fec_put_stats()
/// (net/ethtool/fec.c, since 5.13 "ethtool: add FEC statistics") sends
/// `stats[0..cnt]` as filled by fec_stats_recalc(): `[total]` when the driver
/// counts a total only, `[total, lane0, lane1, …]` when it counts lanes (the
/// total is then the kernel's sum of them), and an empty attribute (cnt 0)
/// when the driver does not count this statistic at all: absent, not zero.
/// Only the total is a count of the link; the lanes are its parts.
fn fec_stat(a: &NlAttr, total: &mut Option<u64>, lanes: &mut Vec<u64>) {
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
    let (cmd, header) = (
        sys::ETHTOOL_MSG_MODULE_EEPROM_GET,
        sys::ETHTOOL_A_MODULE_EEPROM_HEADER,
    );
    ethtool_request(family, cmd, header, seq, ifname, false)
        .u32(sys::ETHTOOL_A_MODULE_EEPROM_OFFSET, 128)
        .u32(sys::ETHTOOL_A_MODULE_EEPROM_LENGTH, 128)
        .u8(sys::ETHTOOL_A_MODULE_EEPROM_PAGE, page)
        .u8(sys::ETHTOOL_A_MODULE_EEPROM_BANK, 0)
        // 0x50: the module's memory map (0x51 is SFF-8472's diagnostics address).
        .u8(sys::ETHTOOL_A_MODULE_EEPROM_I2C_ADDRESS, 0x50)
        .finish()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::netlink::devlink::decode_devlink_info;
    use crate::sources::netlink::genl::{GENL_HDR, family_id, run};
    use crate::sources::netlink::testing::*;
    use crate::sources::netlink::{NlError, Replay};

    /// Runs one recorded ethtool exchange through `decode`.
    fn ethtool_recorded(
        file: &str,
        decode: fn(&[u8], &mut EthtoolNl) -> Result<(), WireError>,
    ) -> Result<EthtoolNl, NlError> {
        let mut out = EthtoolNl::default();
        for p in run(
            &mut genl_replay(&[file]),
            &linkstate_request(20, 1, "x"),
            "GET",
        )? {
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
            &mut genl_replay(&["12-ethtool-module-eeprom-veth0.bin"]),
            &module_page_request(20, 1, "veth0", 0x11),
            "ETHTOOL_MSG_MODULE_EEPROM_GET",
        )
        .unwrap_err();
        assert!(e.is_unsupported(), "{e}");
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
            attr(sys::ETHTOOL_A_PAUSE_AUTONEG, &[0]),
            nest(
                sys::ETHTOOL_A_PAUSE_STATS,
                &[
                    attr(sys::ETHTOOL_A_PAUSE_STAT_PAD, &[]),
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
        attr(kind, &bytes)
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
            attr(sys::ETHTOOL_A_LINKSTATE_LINK, &[1, 0]), // u8 sent as 2 bytes
            attr(ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT.into(), &3u32.to_ne_bytes()),
        ]
        .concat();
        decode_linkstate(&ls, &mut out).unwrap();
        assert_eq!((out.link_up, out.link_down_events), (None, Some(3)));
        let ls = [
            attr(sys::ETHTOOL_A_LINKSTATE_LINK, &[1]),
            attr(ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT.into(), &3u16.to_ne_bytes()), // u32 too short
        ]
        .concat();
        decode_linkstate(&ls, &mut out).unwrap();
        assert_eq!((out.link_up, out.link_down_events), (Some(true), None));
        let stats = nest(
            sys::ETHTOOL_A_PAUSE_STATS,
            &[
                attr(sys::ETHTOOL_A_PAUSE_STAT_TX_FRAMES, &[1; 12]), // too long
                attr(sys::ETHTOOL_A_PAUSE_STAT_RX_FRAMES, &[1; 4]),  // too short
            ],
        );
        decode_pause(&stats, &mut out).unwrap();
        assert_eq!((out.pause_tx_frames, out.pause_rx_frames), (None, None));
        let fec = nest(
            sys::ETHTOOL_A_FEC_STATS,
            &[
                attr(sys::ETHTOOL_A_FEC_STAT_CORRECTED, &[1; 12]), // 1.5 u64s
                u64a(sys::ETHTOOL_A_FEC_STAT_UNCORR, 5),
            ],
        );
        decode_fec(&fec, &mut out).unwrap();
        assert_eq!((out.fec_corrected, out.fec_uncorrectable), (None, Some(5)));
        let d = decode_devlink_info(
            &[
                attr(sys::DEVLINK_ATTR_BUS_NAME, b"pci"), // no NUL
                stra(sys::DEVLINK_ATTR_DEV_NAME, "0000:5e:00.0"),
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!((d.bus.as_str(), d.device.as_str()), ("", "0000:5e:00.0"));
        assert_eq!(wire::malformed_on_this_thread() - before, 6);
        // A family id (u16) sent as u32 is an error: the family is unknown.
        let r = genl_reply(
            sys::GENL_ID_CTRL as u16,
            1,
            &[attr(sys::CTRL_ATTR_FAMILY_ID, &[0x15, 0, 0, 0])],
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
            nest(sys::ETHTOOL_A_MODULE_EEPROM_HEADER, &[]),
            attr(sys::ETHTOOL_A_MODULE_EEPROM_DATA, &data),
        ]
        .concat();
        assert_eq!(decode_module_page(&reply).unwrap(), Some(data));
    }

    /// Against this host's kernel: the ethtool requests of several netdevs
    /// in one batch on the generic netlink socket come back each under its
    /// own seq, a refused one (no such netdev) as its own error, in one
    /// sendto. `lo` has no statistics: STRSET_GET leaves the set out (0).
    /// A kernel without the ethtool family (before 5.6) has nothing to test.
    #[test]
    fn a_batch_of_ethtool_requests_over_the_kernel_socket() {
        use crate::sources::netlink::{NetlinkSocket, NlTransport, for_each_reply};
        let mut s = NetlinkSocket::open_protocol(libc::NETLINK_GENERIC).unwrap();
        let Some(f) = family_id(&mut s, "ethtool", 1).unwrap() else {
            return;
        };
        let before = s.stats();
        let requests = [
            strset_count_request(f, 2, "lo", sys::ETH_SS_STATS),
            linkstate_request(f, 3, "lo"),
            linkstate_request(f, 4, "no-such-netdev0"),
            strset_count_request(f, 5, "lo", sys::ETH_SS_FEATURES),
        ]
        .concat();
        let mut out = Vec::new();
        s.batch(&requests, &mut out).unwrap();
        let answer = |seq: u32| {
            let mut got = Vec::new();
            for_each_reply(&out, seq, f, "GET", |p| {
                got.push(p[GENL_HDR..].to_vec());
                Ok(())
            })
            .map(|()| got)
        };
        let stats = answer(2).unwrap();
        assert_eq!(stats.len(), 1);
        assert_eq!(
            decode_strset_count(&stats[0], sys::ETH_SS_STATS).unwrap(),
            0
        );
        let mut link = EthtoolNl::default();
        decode_linkstate(&answer(3).unwrap()[0], &mut link).unwrap();
        assert_eq!(link.link_up, Some(true), "lo is up");
        let e = answer(4).unwrap_err();
        assert!(
            matches!(
                e,
                NlError::Kernel {
                    errno: libc::ENODEV,
                    ..
                }
            ),
            "{e}"
        );
        // Every netdev has the features set (netdev_features_strings).
        let features = answer(5).unwrap();
        assert!(decode_strset_count(&features[0], sys::ETH_SS_FEATURES).unwrap() > 30);
        let spent = s.stats().syscalls - before.syscalls;
        assert!(
            (2..=3).contains(&spent),
            "one sendto, one or two recvmmsg: {spent}"
        );
    }
}
