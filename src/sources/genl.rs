//! Generic netlink (family ids by name through nlctrl) and what the agent
//! reads over it: ethtool netlink (pause and FEC statistics, link state)
//! and devlink (dev info: driver, serial, firmware versions). Framing and
//! transport are the RDMA netlink ones; unknown attributes are skipped.

use serde::Serialize;

use crate::sources::rdma_netlink::wire::{self, Attr, WireError};
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
                        let v = a.payload.get(..2).ok_or(NlError::Wire {
                            cmd: "CTRL_CMD_GETFAMILY",
                            source: WireError::Truncated {
                                what: "family id",
                                need: 2,
                                have: a.payload.len(),
                            },
                        })?;
                        return Ok(Some(u16::from_ne_bytes([v[0], v[1]])));
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
    /// FEC blocks corrected / uncorrectable, summed over lanes.
    pub fec_corrected: Option<u64>,
    pub fec_uncorrectable: Option<u64>,
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

/// A u64 statistic attribute; the kernel pads 64-bit values with a PAD attribute before them.
fn u64_of(a: &Attr) -> Result<u64, WireError> {
    a.u64()
}

/// Sums an array attribute of u64 per lane (ETHTOOL_A_FEC_STAT_CORRECTED is an array, one per lane).
fn sum_u64s(a: &Attr) -> u64 {
    a.payload
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
        // Saturating: garbage lanes must not overflow (found by the netdev_replies fuzz target).
        .fold(0u64, u64::saturating_add)
}

pub fn decode_pause(p: &[u8], out: &mut EthtoolNl) -> Result<(), WireError> {
    for a in wire::attrs(p) {
        let a = a?;
        if u32::from(a.kind) == sys::ETHTOOL_A_PAUSE_STATS {
            for s in a.nested() {
                let s = s?;
                match u32::from(s.kind) {
                    sys::ETHTOOL_A_PAUSE_STAT_TX_FRAMES => out.pause_tx_frames = Some(u64_of(&s)?),
                    sys::ETHTOOL_A_PAUSE_STAT_RX_FRAMES => out.pause_rx_frames = Some(u64_of(&s)?),
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
                    sys::ETHTOOL_A_FEC_STAT_CORRECTED => out.fec_corrected = Some(sum_u64s(&s)),
                    sys::ETHTOOL_A_FEC_STAT_UNCORR => out.fec_uncorrectable = Some(sum_u64s(&s)),
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
            k if u32::from(k) == sys::ETHTOOL_A_LINKSTATE_LINK => out.link_up = Some(a.u8()? != 0),
            ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT => out.link_down_events = Some(u64::from(a.u32()?)),
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

pub fn decode_devlink_info(p: &[u8]) -> Result<DevlinkInfo, WireError> {
    let mut d = DevlinkInfo::default();
    for a in wire::attrs(p) {
        let a = a?;
        match u32::from(a.kind) {
            sys::DEVLINK_ATTR_BUS_NAME => d.bus = a.str()?.to_string(),
            sys::DEVLINK_ATTR_DEV_NAME => d.device = a.str()?.to_string(),
            sys::DEVLINK_ATTR_INFO_DRIVER_NAME => d.driver = Some(a.str()?.to_string()),
            sys::DEVLINK_ATTR_INFO_SERIAL_NUMBER => d.serial = Some(a.str()?.to_string()),
            sys::DEVLINK_ATTR_INFO_BOARD_SERIAL_NUMBER => {
                d.board_serial = Some(a.str()?.to_string())
            }
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
                        sys::DEVLINK_ATTR_INFO_VERSION_NAME => name = Some(v.str()?.to_string()),
                        sys::DEVLINK_ATTR_INFO_VERSION_VALUE => value = Some(v.str()?.to_string()),
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
    use crate::sources::rdma_netlink::Replay;

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

    #[test]
    fn family_lookup() {
        let r = reply(
            sys::GENL_ID_CTRL as u16,
            1,
            &[
                stra(sys::CTRL_ATTR_FAMILY_NAME, "ethtool"),
                attr(sys::CTRL_ATTR_FAMILY_ID as u16, &[0x15, 0, 0, 0]),
            ],
        );
        let mut t = Replay::new([r]);
        assert_eq!(family_id(&mut t, "ethtool", 9).unwrap(), Some(0x15));
        let req = &t.requests[0];
        assert_eq!(u16::from_ne_bytes([req[4], req[5]]), 0x10, "to nlctrl");
        assert_eq!(req[16], sys::CTRL_CMD_GETFAMILY as u8);
        // No such family: ENOENT, not an error.
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

    #[test]
    fn pause_fec_linkstate() {
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
        let lanes: Vec<u8> = [10u64, 20, 30, 40]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let fec = nest(
            sys::ETHTOOL_A_FEC_STATS,
            &[
                attr(sys::ETHTOOL_A_FEC_STAT_CORRECTED as u16, &lanes),
                attr(sys::ETHTOOL_A_FEC_STAT_UNCORR as u16, &7u64.to_ne_bytes()),
            ],
        );
        decode_fec(&fec, &mut out).unwrap();
        let ls = [
            attr(sys::ETHTOOL_A_LINKSTATE_LINK as u16, &[1]),
            attr(ETHTOOL_A_LINKSTATE_EXT_DOWN_CNT, &3u32.to_ne_bytes()),
        ]
        .concat();
        decode_linkstate(&ls, &mut out).unwrap();
        assert_eq!(
            out,
            EthtoolNl {
                pause_tx_frames: Some(1234),
                pause_rx_frames: Some(5678),
                fec_corrected: Some(100),
                fec_uncorrectable: Some(7),
                link_up: Some(true),
                link_down_events: Some(3),
            }
        );
        // The request carries the device and the statistics flag.
        let r = pause_request(0x15, 3, "eth2");
        let body = &r[16 + GENL_HDR..];
        let header = wire::attrs(body).next().unwrap().unwrap();
        assert_eq!(u32::from(header.kind), sys::ETHTOOL_A_PAUSE_HEADER);
        let inner: Vec<_> = header.nested().map(|a| a.unwrap()).collect();
        assert_eq!(inner[0].str().unwrap(), "eth2");
        assert_eq!(inner[1].u32().unwrap(), sys::ETHTOOL_FLAG_STATS);
        // Lanes at u64::MAX saturate instead of overflowing.
        let big: Vec<u8> = [u64::MAX, 5].iter().flat_map(|v| v.to_ne_bytes()).collect();
        let mut o = EthtoolNl::default();
        decode_fec(
            &nest(
                sys::ETHTOOL_A_FEC_STATS,
                &[attr(sys::ETHTOOL_A_FEC_STAT_CORRECTED as u16, &big)],
            ),
            &mut o,
        )
        .unwrap();
        assert_eq!(o.fec_corrected, Some(u64::MAX));
        // Truncated statistics are an error, not a panic.
        assert!(decode_pause(&pause[..pause.len() - 6], &mut EthtoolNl::default()).is_err());
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
