//! Generic netlink (NETLINK_GENERIC): requests (nlmsghdr, genlmsghdr,
//! attributes), the walk over a family's replies, and family ids by name
//! through nlctrl. The families read over it are `ethtool_nl` and `devlink`.

use super::wire::{self, MessageBuilder, WireError};
use super::{NlError, NlTransport, replies};
use crate::sys;

pub(crate) const GENL_HDR: usize = std::mem::size_of::<sys::genlmsghdr>();

/// A generic netlink request to `family`: nlmsghdr, then genlmsghdr (`cmd`,
/// version 1); the caller adds the attributes and finishes it.
pub fn request(family: u16, cmd: u8, dump: bool, seq: u32) -> MessageBuilder {
    let flags = sys::NLM_F_REQUEST | if dump { sys::NLM_F_DUMP } else { 0 };
    MessageBuilder::new(family, flags as u16, seq).raw(&[cmd, 1, 0, 0])
}

/// Runs one exchange; returns the payloads (after genlmsghdr) of the replies of `family`.
pub fn run<T: NlTransport>(
    t: &mut T,
    req: &[u8],
    cmd_name: &'static str,
) -> Result<Vec<Vec<u8>>, NlError> {
    let family = wire::messages(req)
        .next()
        .and_then(|m| m.ok())
        .map_or(0, |m| m.kind);
    replies(t, &mut Vec::new(), req, family, cmd_name, |payload| {
        payload
            .get(GENL_HDR..)
            .map(<[u8]>::to_vec)
            .ok_or(WireError::Truncated {
                what: "genlmsghdr",
                need: GENL_HDR,
                have: payload.len(),
            })
    })
}

/// The id of a generic netlink family ("ethtool", "devlink"), or None when the kernel has none.
pub fn family_id<T: NlTransport>(t: &mut T, name: &str, seq: u32) -> Result<Option<u16>, NlError> {
    let req = request(
        sys::GENL_ID_CTRL as u16,
        sys::CTRL_CMD_GETFAMILY as u8,
        false,
        seq,
    )
    .string(sys::CTRL_ATTR_FAMILY_NAME, name)
    .finish();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::netlink::Replay;
    use crate::sources::netlink::testing::*;

    #[test]
    fn family_lookup_recorded() {
        let mut t = genl_replay(&["06-getfamily-ethtool.bin", "07-getfamily-devlink.bin"]);
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
}
