//! One exchange: a request out, its replies in. When the replies are
//! complete (a dump's NLMSG_DONE, a doit's one reply, an NLMSG_ERROR), and
//! the walk over them that hands each reply's payload to a family decoder.

use super::wire::{Message, NLMSG_HDRLEN, WireError, messages};
use super::{NlError, NlTransport, request_name};
use crate::sys;

/// Tracks when the replies to one request are complete: a dump ends with
/// NLMSG_DONE, a doit with its one reply; NLMSG_ERROR ends either (errno 0 is an ACK).
pub struct Exchange {
    seq: u32,
    dump: bool,
    cmd: &'static str,
}

impl Exchange {
    /// `protocol` (NETLINK_RDMA, NETLINK_ROUTE, NETLINK_GENERIC) names the command in errors.
    pub fn for_request(request: &[u8], protocol: i32) -> Result<Exchange, NlError> {
        let cmd = "netlink request";
        let m = messages(request)
            .next()
            .ok_or(NlError::Wire {
                cmd,
                source: WireError::Truncated {
                    what: "request",
                    need: NLMSG_HDRLEN,
                    have: 0,
                },
            })?
            .map_err(|source| NlError::Wire { cmd, source })?;
        Ok(Exchange {
            seq: m.seq,
            dump: m.flags & (sys::NLM_F_DUMP as u16) == sys::NLM_F_DUMP as u16,
            cmd: request_name(protocol, m.kind),
        })
    }

    /// Looks at one received datagram; `Ok(true)` when the exchange is over.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<bool, NlError> {
        for m in messages(chunk) {
            let m = m.map_err(|source| NlError::Wire {
                cmd: self.cmd,
                source,
            })?;
            if m.seq != self.seq {
                continue; // a late reply to an earlier request
            }
            match u32::from(m.kind) {
                sys::NLMSG_ERROR | sys::NLMSG_DONE => {
                    let errno = error_code(&m);
                    if errno != 0 {
                        return Err(NlError::Kernel {
                            cmd: self.cmd,
                            errno,
                        });
                    }
                    return Ok(true);
                }
                _ if !self.dump => return Ok(true),
                _ => {}
            }
        }
        Ok(false)
    }
}

/// Tracks when the replies to a batch of requests (`NlTransport::batch`)
/// are complete: each request is answered as `Exchange` would have it, and
/// a kernel error answers its own request without ending the others.
pub struct BatchExchange {
    /// (seq, dump) of each request not answered yet.
    pending: Vec<(u32, bool)>,
}

impl BatchExchange {
    pub fn for_requests(requests: &[u8]) -> Result<BatchExchange, NlError> {
        let mut pending = Vec::new();
        for m in messages(requests) {
            let m = m.map_err(|source| NlError::Wire {
                cmd: "netlink request",
                source,
            })?;
            pending.push((m.seq, m.flags & DUMP == DUMP));
        }
        Ok(BatchExchange { pending })
    }

    /// Looks at one received datagram; `Ok(true)` when every request is answered.
    pub fn feed(&mut self, chunk: &[u8], cmd: &'static str) -> Result<bool, NlError> {
        for m in messages(chunk) {
            let m = m.map_err(|source| NlError::Wire { cmd, source })?;
            let Some(at) = self.pending.iter().position(|&(seq, _)| seq == m.seq) else {
                continue; // a late reply to an earlier request
            };
            let ends = match u32::from(m.kind) {
                sys::NLMSG_ERROR | sys::NLMSG_DONE => true,
                _ => !self.pending[at].1,
            };
            if ends {
                self.pending.swap_remove(at);
            }
        }
        Ok(self.pending.is_empty())
    }

    /// The seqs still waiting for an answer.
    pub fn pending(&self) -> impl Iterator<Item = u32> + '_ {
        self.pending.iter().map(|&(seq, _)| seq)
    }
}

const DUMP: u16 = sys::NLM_F_DUMP as u16;

/// Walks the replies to request `seq` in `buf`, handing the payload of each
/// message of type `kind` to `each`. NLMSG_DONE ends the walk, and so does
/// NLMSG_ERROR: errno 0 is an ACK, any other becomes `NlError::Kernel`.
pub fn for_each_reply(
    buf: &[u8],
    seq: u32,
    kind: u16,
    cmd: &'static str,
    mut each: impl FnMut(&[u8]) -> Result<(), NlError>,
) -> Result<(), NlError> {
    for m in messages(buf) {
        let m = m.map_err(|source| NlError::Wire { cmd, source })?;
        if m.seq != seq {
            continue; // a late reply to an earlier request
        }
        match u32::from(m.kind) {
            sys::NLMSG_ERROR | sys::NLMSG_DONE => {
                let errno = error_code(&m);
                if errno != 0 {
                    return Err(NlError::Kernel { cmd, errno });
                }
                break;
            }
            _ if m.kind == kind => each(m.payload)?,
            _ => {}
        }
    }
    Ok(())
}

/// The (positive) errno carried by NLMSG_ERROR / NLMSG_DONE, 0 for none.
fn error_code(m: &Message) -> i32 {
    m.payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
        .saturating_abs()
}

/// Sends `request` and decodes the payload of each reply of type `kind`
/// (a dump's many, a doit's one) with `decode`; `buf` receives the replies
/// and is kept by the caller, so a steady poll allocates no receive buffer.
pub fn replies<T: NlTransport + ?Sized, R>(
    t: &mut T,
    buf: &mut Vec<u8>,
    request: &[u8],
    kind: u16,
    cmd: &'static str,
    decode: impl FnMut(&[u8]) -> Result<R, WireError>,
) -> Result<Vec<R>, NlError> {
    let mut out = Vec::new();
    replies_into(t, buf, request, kind, cmd, decode, &mut out)?;
    Ok(out)
}

/// [`replies`] into `out` (cleared first): a caller that keeps it from cycle
/// to cycle decodes without allocating the list (musl maps a list of a few
/// KiB afresh, and unmaps it when freed, each cycle).
pub fn replies_into<T: NlTransport + ?Sized, R>(
    t: &mut T,
    buf: &mut Vec<u8>,
    request: &[u8],
    kind: u16,
    cmd: &'static str,
    mut decode: impl FnMut(&[u8]) -> Result<R, WireError>,
    out: &mut Vec<R>,
) -> Result<(), NlError> {
    out.clear();
    let seq = messages(request)
        .next()
        .and_then(|m| m.ok())
        .map_or(0, |m| m.seq);
    t.exchange(request, buf)?;
    for_each_reply(buf, seq, kind, cmd, |payload| {
        out.push(decode(payload).map_err(|source| NlError::Wire { cmd, source })?);
        Ok(())
    })
}
