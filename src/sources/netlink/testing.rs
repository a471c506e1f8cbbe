//! Netlink messages built by hand for the decoder tests of every family:
//! attributes, nests, whole messages, NLMSG_DONE and NLMSG_ERROR, laid out
//! as the kernel's nla_put/nlmsg_put do. Recorded replies are preferred
//! (fixtures/netlink/); these cover what the VM's kernel cannot show.

use super::wire::{NLA_HDRLEN, align4};
use crate::sys::{NLA_F_NESTED, NLM_F_MULTI, NLMSG_DONE, NLMSG_ERROR};

/// An attribute: header, payload, padding.
pub(crate) fn attr(kind: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((NLA_HDRLEN + payload.len()) as u16).to_ne_bytes());
    v.extend_from_slice(&(kind as u16).to_ne_bytes());
    v.extend_from_slice(payload);
    v.resize(align4(v.len()), 0);
    v
}
pub(crate) fn u32a(kind: u32, v: u32) -> Vec<u8> {
    attr(kind, &v.to_ne_bytes())
}
pub(crate) fn u64a(kind: u32, v: u64) -> Vec<u8> {
    attr(kind, &v.to_ne_bytes())
}
pub(crate) fn u8a(kind: u32, v: u8) -> Vec<u8> {
    attr(kind, &[v])
}
pub(crate) fn stra(kind: u32, s: &str) -> Vec<u8> {
    let mut p = s.as_bytes().to_vec();
    p.push(0);
    attr(kind, &p)
}
pub(crate) fn nest(kind: u32, children: &[Vec<u8>]) -> Vec<u8> {
    attr(kind | NLA_F_NESTED, &children.concat())
}
/// A whole message of `kind` with `attrs` as payload.
pub(crate) fn msg(kind: u16, flags: u16, seq: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
    let payload = attrs.concat();
    let mut v = Vec::new();
    v.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&seq.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v.extend_from_slice(&payload);
    v
}
pub(crate) fn done(seq: u32) -> Vec<u8> {
    msg(
        NLMSG_DONE as u16,
        NLM_F_MULTI as u16,
        seq,
        &[0u32.to_ne_bytes().to_vec()],
    )
}
pub(crate) fn error(seq: u32, errno: i32) -> Vec<u8> {
    // struct nlmsgerr: int error; struct nlmsghdr msg (the request's header).
    let mut p = (-errno).to_ne_bytes().to_vec();
    p.extend_from_slice(&[0u8; 16]);
    msg(NLMSG_ERROR as u16, 0, seq, &[p])
}

/// A generic netlink reply of `family` carrying `attrs`, as the kernel would.
pub(crate) fn genl_reply(family: u16, cmd: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut m = super::genl::request(family, cmd, false, 1)
        .raw(&attrs.concat())
        .finish();
    m[6..8].copy_from_slice(&0u16.to_ne_bytes());
    m
}

/// Recorded generic netlink replies (fixtures/netlink/rxe-6.1-net), in order.
pub(crate) fn genl_replay(files: &[&str]) -> super::Replay {
    super::Replay::new(files.iter().map(|f| super::recorded_net(f))).protocol(libc::NETLINK_GENERIC)
}
