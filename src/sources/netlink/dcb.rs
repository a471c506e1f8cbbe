//! dcbnl (NETLINK_ROUTE, RTM_GETDCB with DCB_CMD_IEEE_GET): a netdev's PFC
//! per priority, ETS map and APP table, as `dcb pfc show` / `mlnx_qos` show
//! them (net/dcb/dcbnl.c fills the reply).

use super::wire::{self, MessageBuilder, WireError, skip};
use super::{NlError, NlTransport, for_each_reply};
use crate::sys;

/// Decoded straight into the model's type: the snapshot schema is the model's.
pub use crate::model::netdev::Dcb;

const DCBMSG: usize = std::mem::size_of::<sys::dcbmsg>();

pub fn get_dcb(seq: u32, ifname: &str) -> Vec<u8> {
    MessageBuilder::new(sys::RTM_GETDCB as u16, sys::NLM_F_REQUEST as u16, seq)
        // struct dcbmsg: family, command, padding.
        .raw(&[libc::AF_UNSPEC as u8, sys::DCB_CMD_IEEE_GET as u8, 0, 0])
        .string(sys::DCB_ATTR_IFNAME, ifname)
        .finish()
}

pub fn decode_dcb(payload: &[u8]) -> Result<Dcb, WireError> {
    let body = payload.get(DCBMSG..).ok_or(WireError::Truncated {
        what: "dcbmsg",
        need: DCBMSG,
        have: payload.len(),
    })?;
    let mut d = Dcb::default();
    for a in wire::attrs(body) {
        let a = a?;
        if u32::from(a.kind) != sys::DCB_ATTR_IEEE {
            continue;
        }
        for i in a.nested() {
            let i = i?;
            match u32::from(i.kind) {
                // Structs of the UAPI's size exactly, as dcbnl_ieee_policy wants
                // them (net/dcb/dcbnl.c); another size is counted and skipped.
                sys::DCB_ATTR_IEEE_PFC => {
                    let need = std::mem::size_of::<sys::ieee_pfc>();
                    let Some(b) = skip(i.exact("ieee_pfc", need)) else {
                        continue;
                    };
                    d.pfc_cap = Some(b[std::mem::offset_of!(sys::ieee_pfc, pfc_cap)]);
                    d.pfc_enabled = Some(b[std::mem::offset_of!(sys::ieee_pfc, pfc_en)]);
                    let u64s = |at: usize| -> Vec<u64> {
                        b[at..at + 64]
                            .chunks_exact(8)
                            .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
                            .collect()
                    };
                    d.pfc_requests = u64s(std::mem::offset_of!(sys::ieee_pfc, requests));
                    d.pfc_indications = u64s(std::mem::offset_of!(sys::ieee_pfc, indications));
                }
                sys::DCB_ATTR_IEEE_ETS => {
                    let need = std::mem::size_of::<sys::ieee_ets>();
                    let Some(b) = skip(i.exact("ieee_ets", need)) else {
                        continue;
                    };
                    let at = std::mem::offset_of!(sys::ieee_ets, prio_tc);
                    d.prio_tc = b[at..at + 8].to_vec();
                    let at = std::mem::offset_of!(sys::ieee_ets, tc_tx_bw);
                    d.tc_bw = b[at..at + 8].to_vec();
                }
                sys::DCB_ATTR_IEEE_APP_TABLE => {
                    for app in i.nested() {
                        let app = app?;
                        // struct dcb_app { u8 selector; u8 priority; u16 protocol; }: 4 bytes.
                        if let Some(&[selector, ..]) = skip(app.exact("dcb_app", 4)) {
                            d.app_entries += 1;
                            d.dscp_trust |= selector == 5;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(d)
}

/// The DCB configuration of one netdev; `None` when the driver has no DCB.
pub fn dcb<T: NlTransport>(t: &mut T, seq: u32, ifname: &str) -> Result<Option<Dcb>, NlError> {
    let mut buf = Vec::new();
    let cmd = "RTM_GETDCB";
    let mut dcb = None;
    // The socket reports the kernel's "no DCB here" from the exchange itself.
    let walked = t.exchange(&get_dcb(seq, ifname), &mut buf).and_then(|()| {
        for_each_reply(&buf, seq, sys::RTM_GETDCB as u16, cmd, |payload| {
            if dcb.is_none() {
                dcb = Some(decode_dcb(payload).map_err(|source| NlError::Wire { cmd, source })?);
            }
            Ok(())
        })
    });
    match walked {
        // The driver has no DCB ops, or the netdev is gone: nothing to report.
        Err(NlError::Kernel {
            errno: libc::EOPNOTSUPP | libc::EINVAL | libc::ENODEV,
            ..
        }) => Ok(None),
        Err(e) => Err(e),
        Ok(()) => Ok(dcb),
    }
}

/// Replies recorded in the rxe VM (fixtures/netlink/rxe-6.1-net, see its README).
#[cfg(test)]
mod recorded {
    use super::*;
    use crate::sources::netlink::{Replay, recorded_net};

    #[test]
    fn dcb_not_supported() {
        // veth, dummy and lo have no dcbnl_ops: the kernel answers EOPNOTSUPP,
        // which is "no DCB here", not an error.
        for f in [
            "02-getdcb-veth0.bin",
            "04-getdcb-dummy0.bin",
            "05-getdcb-lo.bin",
        ] {
            let mut t = Replay::new([recorded_net(f)]).protocol(libc::NETLINK_ROUTE);
            assert_eq!(dcb(&mut t, 2, "veth0").unwrap(), None, "{f}");
        }
    }
}

#[cfg(test)]
mod dcb_tests {
    use super::*;
    use crate::sources::netlink::Replay;
    use crate::sources::netlink::testing::attr;

    /// Hand-built (no netdev in the VM has dcbnl_ops; `recorded` holds their
    /// EOPNOTSUPP). A dcbnl IEEE_GET reply as dcbnl_ieee_fill builds it: PFC on priority 3,
    /// priorities 3 → TC 3 and the rest → TC 0, 50/50 bandwidth, DSCP trust.
    fn reply() -> Vec<u8> {
        let mut pfc = vec![0u8; std::mem::size_of::<sys::ieee_pfc>()];
        pfc[std::mem::offset_of!(sys::ieee_pfc, pfc_cap)] = 8;
        pfc[std::mem::offset_of!(sys::ieee_pfc, pfc_en)] = 0b1000;
        let r = std::mem::offset_of!(sys::ieee_pfc, requests) + 3 * 8;
        pfc[r..r + 8].copy_from_slice(&42u64.to_ne_bytes());
        let ind = std::mem::offset_of!(sys::ieee_pfc, indications) + 3 * 8;
        pfc[ind..ind + 8].copy_from_slice(&17u64.to_ne_bytes());
        let mut ets = vec![0u8; std::mem::size_of::<sys::ieee_ets>()];
        let p = std::mem::offset_of!(sys::ieee_ets, prio_tc);
        ets[p + 3] = 3;
        let bw = std::mem::offset_of!(sys::ieee_ets, tc_tx_bw);
        ets[bw] = 50;
        ets[bw + 3] = 50;
        let apps = attr(
            sys::DCB_ATTR_IEEE_APP_TABLE | sys::NLA_F_NESTED,
            &[attr(0, &[5, 3, 26, 0]), attr(0, &[5, 3, 24, 0])].concat(),
        );
        let ieee = attr(
            sys::DCB_ATTR_IEEE | sys::NLA_F_NESTED,
            &[
                attr(sys::DCB_ATTR_IEEE_ETS, &ets),
                attr(sys::DCB_ATTR_IEEE_PFC, &pfc),
                apps,
            ]
            .concat(),
        );
        let mut payload = vec![0u8, sys::DCB_CMD_IEEE_GET as u8, 0, 0];
        payload.extend(attr(sys::DCB_ATTR_IFNAME, b"eth2\0"));
        payload.extend(ieee);
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&(sys::RTM_GETDCB as u16).to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&1u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend(payload);
        m
    }

    #[test]
    fn pfc_ets_and_trust() {
        let mut t = Replay::new([reply()]);
        let d = dcb(&mut t, 5, "eth2").unwrap().unwrap();
        assert_eq!((d.pfc_enabled, d.pfc_cap), (Some(0b1000), Some(8)));
        assert_eq!((d.pfc_requests[3], d.pfc_indications[3]), (42, 17));
        assert_eq!(d.prio_tc, [0, 0, 0, 3, 0, 0, 0, 0]);
        assert_eq!((d.tc_bw[0], d.tc_bw[3]), (50, 50));
        assert_eq!((d.app_entries, d.dscp_trust), (2, true));
        let req = &t.requests[0];
        assert_eq!(u16::from_ne_bytes([req[4], req[5]]), sys::RTM_GETDCB as u16);
        assert_eq!(req[17], sys::DCB_CMD_IEEE_GET as u8);
        // A cut message is an error.
        let r = reply();
        let m = wire::messages(&r).next().unwrap().unwrap();
        assert!(decode_dcb(&m.payload[..m.payload.len() - 40]).is_err());
    }

    /// ieee_pfc, ieee_ets and dcb_app of another size than the UAPI's are
    /// counted and skipped; the rest of the reply still counts.
    #[test]
    fn wrong_sized_structs_are_skipped() {
        let before = wire::malformed_on_this_thread();
        let pfc = std::mem::size_of::<sys::ieee_pfc>();
        let mut ets = vec![0u8; std::mem::size_of::<sys::ieee_ets>()];
        ets[std::mem::offset_of!(sys::ieee_ets, prio_tc) + 3] = 3;
        let ieee = attr(
            sys::DCB_ATTR_IEEE | sys::NLA_F_NESTED,
            &[
                attr(sys::DCB_ATTR_IEEE_PFC, &vec![1u8; pfc + 8]), // too long
                attr(sys::DCB_ATTR_IEEE_ETS, &ets),
                attr(
                    sys::DCB_ATTR_IEEE_APP_TABLE | sys::NLA_F_NESTED,
                    &[attr(0, &[5, 3]), attr(0, &[5, 3, 26, 0])].concat(), // short, good
                ),
            ]
            .concat(),
        );
        let mut payload = vec![0u8, sys::DCB_CMD_IEEE_GET as u8, 0, 0];
        payload.extend(ieee);
        let d = decode_dcb(&payload).unwrap();
        assert_eq!((d.pfc_enabled, d.pfc_cap), (None, None));
        assert!(d.pfc_requests.is_empty());
        assert_eq!(d.prio_tc[3], 3);
        assert_eq!((d.app_entries, d.dscp_trust), (1, true));
        assert_eq!(wire::malformed_on_this_thread() - before, 2);
        // A short ieee_ets is skipped too.
        let ieee = attr(
            sys::DCB_ATTR_IEEE | sys::NLA_F_NESTED,
            &attr(sys::DCB_ATTR_IEEE_ETS, &ets[..ets.len() - 1]),
        );
        let mut payload = vec![0u8, sys::DCB_CMD_IEEE_GET as u8, 0, 0];
        payload.extend(ieee);
        assert!(decode_dcb(&payload).unwrap().prio_tc.is_empty());
        assert_eq!(wire::malformed_on_this_thread() - before, 3);
    }
}
