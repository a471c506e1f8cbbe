//! Netlink framing: `struct nlmsghdr` messages carrying `struct nlattr`
//! attributes (linux/netlink.h). Decoding checks every length against the
//! buffer; a short or inconsistent message is an error, never a panic.
//! Attribute types the caller doesn't know are simply not asked for, so a
//! newer kernel's extra attributes pass through untouched.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys;

pub const NLMSG_HDRLEN: usize = std::mem::size_of::<sys::nlmsghdr>();
pub const NLA_HDRLEN: usize = std::mem::size_of::<sys::nlattr>();
/// Type bits of `nla_type`; the top two are the NESTED and NET_BYTEORDER flags.
const NLA_TYPE_MASK: u16 = !((sys::NLA_F_NESTED | sys::NLA_F_NET_BYTEORDER) as u16);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One netlink message: header fields and the payload after the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Iterates the messages packed in one `recv` buffer.
pub struct Messages<'a> {
    rest: &'a [u8],
}

pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { rest: buf }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let b = self.rest;
        if b.len() < NLMSG_HDRLEN {
            self.rest = &[];
            return Some(Err(WireError::Truncated {
                what: "netlink header",
                need: NLMSG_HDRLEN,
                have: b.len(),
            }));
        }
        let len = u32_at(b, 0) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            self.rest = &[];
            return Some(Err(WireError::Truncated {
                what: "netlink message",
                need: len.max(NLMSG_HDRLEN),
                have: b.len(),
            }));
        }
        let msg = Message {
            kind: u16_at(b, 4),
            flags: u16_at(b, 6),
            seq: u32_at(b, 8),
            payload: &b[NLMSG_HDRLEN..len],
        };
        self.rest = &b[align4(len).min(b.len())..];
        Some(Ok(msg))
    }
}

/// The whole messages (header included) packed in `buf`, as they were
/// built: a batch of requests split back into its requests. Stops at the
/// first length that does not fit.
pub fn frames(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32_at(rest, 0) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return None;
        }
        let (frame, tail) = (&rest[..len], &rest[align4(len).min(rest.len())..]);
        rest = tail;
        Some(frame)
    })
}

/// One attribute: its type (flags masked off) and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlAttr<'a> {
    pub kind: u16,
    pub payload: &'a [u8],
}

pub struct NlAttrs<'a> {
    rest: &'a [u8],
}

/// Iterates the attributes of a payload (or of a nested attribute's payload).
pub fn attrs(payload: &[u8]) -> NlAttrs<'_> {
    NlAttrs { rest: payload }
}

impl<'a> Iterator for NlAttrs<'a> {
    type Item = Result<NlAttr<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Trailing padding shorter than a header is allowed by the format.
        if self.rest.len() < NLA_HDRLEN {
            self.rest = &[];
            return None;
        }
        let b = self.rest;
        let len = u16_at(b, 0) as usize;
        if len < NLA_HDRLEN || len > b.len() {
            self.rest = &[];
            return Some(Err(WireError::Truncated {
                what: "netlink attribute",
                need: len.max(NLA_HDRLEN),
                have: b.len(),
            }));
        }
        let attr = NlAttr {
            kind: u16_at(b, 2) & NLA_TYPE_MASK,
            payload: &b[NLA_HDRLEN..len],
        };
        self.rest = &b[align4(len).min(b.len())..];
        Some(Ok(attr))
    }
}

/// Attributes skipped because their size did not match their type, since
/// the process started (a self-metric: a kernel or driver that sends them is
/// worth knowing about).
static MALFORMED: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
thread_local! {
    /// The same count for the current thread only: tests run in parallel.
    static MALFORMED_HERE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Attributes (or table entries) skipped as malformed so far, process-wide.
pub fn malformed_attributes() -> u64 {
    MALFORMED.load(Ordering::Relaxed)
}

#[cfg(test)]
pub fn malformed_on_this_thread() -> u64 {
    MALFORMED_HERE.with(|c| c.get())
}

/// Counts one malformed attribute (or table entry) that the decoder skips.
pub fn count_malformed() {
    MALFORMED.fetch_add(1, Ordering::Relaxed);
    #[cfg(test)]
    MALFORMED_HERE.with(|c| c.set(c.get() + 1));
}

/// A strictly read attribute value, or `None` after counting it as malformed:
/// one bad attribute costs that value, not the whole reply.
pub fn skip<T>(r: Result<T, WireError>) -> Option<T> {
    r.map_err(|_| count_malformed()).ok()
}

impl<'a> NlAttr<'a> {
    /// Exactly `N` bytes, as libmnl's `mnl_attr_validate` wants for
    /// MNL_TYPE_U8..U64 (iproute2 `rdma` validates NLDEV replies with it):
    /// too long is as wrong as too short.
    fn fixed<const N: usize>(&self, what: &'static str) -> Result<[u8; N], WireError> {
        self.payload.try_into().map_err(|_| WireError::Malformed {
            what,
            detail: format!("{} bytes, want {N}", self.payload.len()),
        })
    }
    pub fn u8(&self) -> Result<u8, WireError> {
        Ok(self.fixed::<1>("u8 attribute")?[0])
    }
    pub fn u16(&self) -> Result<u16, WireError> {
        Ok(u16::from_ne_bytes(self.fixed("u16 attribute")?))
    }
    pub fn u32(&self) -> Result<u32, WireError> {
        Ok(u32::from_ne_bytes(self.fixed("u32 attribute")?))
    }
    pub fn u64(&self) -> Result<u64, WireError> {
        Ok(u64::from_ne_bytes(self.fixed("u64 attribute")?))
    }
    /// A struct of exactly `len` bytes (struct ieee_pfc, struct dcb_app...).
    pub fn exact(&self, what: &'static str, len: usize) -> Result<&'a [u8], WireError> {
        if self.payload.len() != len {
            return Err(WireError::Malformed {
                what,
                detail: format!("{} bytes, want {len}", self.payload.len()),
            });
        }
        Ok(self.payload)
    }
    /// An array of u64 (ETHTOOL_A_FEC_STAT_*): a whole number of them.
    pub fn u64s(&self) -> Result<impl Iterator<Item = u64> + 'a, WireError> {
        if !self.payload.len().is_multiple_of(8) {
            return Err(WireError::Malformed {
                what: "u64 array attribute",
                detail: format!("{} bytes, not a multiple of 8", self.payload.len()),
            });
        }
        Ok(self
            .payload
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes"))))
    }
    /// A NUL-terminated string (NLA_NUL_STRING, as `nla_put_string` sends it):
    /// non-empty, ending in NUL, UTF-8, as MNL_TYPE_NUL_STRING validates.
    pub fn str(&self) -> Result<&'a str, WireError> {
        let Some((0, bytes)) = self.payload.split_last() else {
            return Err(WireError::Malformed {
                what: "string attribute",
                detail: "not NUL-terminated".into(),
            });
        };
        let bytes = match bytes.iter().position(|&b| b == 0) {
            Some(end) => &bytes[..end],
            None => bytes,
        };
        std::str::from_utf8(bytes).map_err(|_| WireError::Malformed {
            what: "string attribute",
            detail: "not UTF-8".into(),
        })
    }
    pub fn nested(&self) -> NlAttrs<'a> {
        attrs(self.payload)
    }
}

/// Builds one request message.
pub struct MessageBuilder {
    buf: Vec<u8>,
}

impl MessageBuilder {
    pub fn new(kind: u16, flags: u16, seq: u32) -> MessageBuilder {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in finish()
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        MessageBuilder { buf }
    }

    fn put(&mut self, kind: u16, payload: &[u8]) {
        let len = NLA_HDRLEN + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    /// Bytes as they are, padded to 4: the family's fixed header right
    /// after nlmsghdr (genlmsghdr, ifinfomsg, dcbmsg), before any attribute.
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// A nested attribute (NLA_F_NESTED set) holding what `inner` puts.
    pub fn nested(mut self, kind: u32, inner: impl FnOnce(Self) -> Self) -> Self {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes()); // length, set below
        self.buf
            .extend_from_slice(&(kind as u16 | sys::NLA_F_NESTED as u16).to_ne_bytes());
        let mut b = inner(self);
        let len = (b.buf.len() - at) as u16;
        b.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        b
    }

    pub fn u8(mut self, kind: u32, v: u8) -> Self {
        self.put(kind as u16, &[v]);
        self
    }
    /// An NLA_FLAG: present, no payload.
    pub fn flag(mut self, kind: u32) -> Self {
        self.put(kind as u16, &[]);
        self
    }
    pub fn u32(mut self, kind: u32, v: u32) -> Self {
        self.put(kind as u16, &v.to_ne_bytes());
        self
    }
    pub fn string(mut self, kind: u32, v: &str) -> Self {
        let mut p = v.as_bytes().to_vec();
        p.push(0);
        self.put(kind as u16, &p);
        self
    }
    /// A nested attribute holding `u32` attributes of one type (STAT_HWCOUNTERS in STAT_SET).
    pub fn nested_u32s(mut self, kind: u32, entry: u32, values: &[u32]) -> Self {
        let mut inner = Vec::new();
        for v in values {
            inner.extend_from_slice(&((NLA_HDRLEN + 4) as u16).to_ne_bytes());
            inner.extend_from_slice(&(entry as u16).to_ne_bytes());
            inner.extend_from_slice(&v.to_ne_bytes());
        }
        self.put(kind as u16 | sys::NLA_F_NESTED as u16, &inner);
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_reads_back() {
        let m = MessageBuilder::new(0x1411, 0x0005, 7)
            .u32(1, 3)
            .string(2, "rxe0")
            .u8(14, 1)
            .nested_u32s(80, 94, &[4, 9])
            .finish();
        assert_eq!(m.len() % 4, 0);
        let msgs: Vec<_> = messages(&m).collect::<Result<_, _>>().unwrap();
        assert_eq!(msgs.len(), 1);
        let msg = msgs[0];
        assert_eq!((msg.kind, msg.flags, msg.seq), (0x1411, 5, 7));
        let a: Vec<_> = attrs(msg.payload).collect::<Result<_, _>>().unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!((a[0].kind, a[0].u32().unwrap()), (1, 3));
        assert_eq!(a[1].str().unwrap(), "rxe0");
        assert_eq!(a[2].u8().unwrap(), 1);
        assert_eq!(a[3].kind, 80, "NESTED flag is masked off");
        let inner: Vec<u32> = a[3].nested().map(|x| x.unwrap().u32().unwrap()).collect();
        assert_eq!(inner, [4, 9]);
    }

    /// A family header (`raw`) and a nest (`nested`) as genl and ethtool
    /// requests use them: the header sits before the attributes, the nest's
    /// length covers its members, and both read back.
    #[test]
    fn raw_header_and_nest_read_back() {
        let m = MessageBuilder::new(20, 1, 2)
            .raw(&[3, 1, 0, 0])
            .nested(1, |n| n.string(1, "eth2").u32(2, 4))
            .u8(3, 9)
            .finish();
        let msg = messages(&m).next().unwrap().unwrap();
        assert_eq!(msg.payload[..4], [3, 1, 0, 0]);
        let a: Vec<_> = attrs(&msg.payload[4..]).collect::<Result<_, _>>().unwrap();
        assert_eq!(a.len(), 2, "the nest's members are inside it");
        assert_eq!(a[0].kind, 1);
        let inner: Vec<_> = a[0].nested().collect::<Result<_, _>>().unwrap();
        assert_eq!((inner[0].str(), inner[1].u32()), (Ok("eth2"), Ok(4)));
        assert_eq!(a[1].u8(), Ok(9));
        let nest_flag = u16::from_ne_bytes([msg.payload[6], msg.payload[7]]);
        assert_eq!(nest_flag, 1 | sys::NLA_F_NESTED as u16);
    }

    #[test]
    fn truncation_is_an_error() {
        let m = MessageBuilder::new(1, 0, 1).u32(1, 3).finish();
        for cut in 1..m.len() {
            let r: Result<Vec<Message>, _> = messages(&m[..cut]).collect();
            assert!(r.is_err(), "cut at {cut}");
        }
        // A message whose attribute claims more than the message holds.
        let mut bad = m.clone();
        bad[NLMSG_HDRLEN] = 200;
        let msg = messages(&bad).next().unwrap().unwrap();
        assert!(attrs(msg.payload).any(|a| a.is_err()));
        // Fixed-size reads of short payloads.
        let a = NlAttr {
            kind: 1,
            payload: &[1, 2],
        };
        assert!(a.u32().is_err() && a.u64().is_err());
    }

    /// Every fixed type wants its exact size: a prefix of a longer payload
    /// is not read as the value (libmnl's mnl_attr_validate rule).
    #[test]
    fn sizes_are_exact() {
        let at = |payload: &'static [u8]| NlAttr { kind: 1, payload };
        assert_eq!(at(&[7]).u8(), Ok(7));
        assert!(at(&[7, 0]).u8().is_err() && at(&[]).u8().is_err());
        assert_eq!(at(&[7, 0]).u16(), Ok(7));
        assert!(at(&[7, 0, 0, 0]).u16().is_err() && at(&[7]).u16().is_err());
        assert_eq!(at(&[7, 0, 0, 0]).u32(), Ok(7));
        assert!(at(&[7, 0, 0, 0, 0, 0, 0, 0]).u32().is_err() && at(&[7, 0]).u32().is_err());
        assert_eq!(at(&[7, 0, 0, 0, 0, 0, 0, 0]).u64(), Ok(7));
        assert!(at(&[7; 12]).u64().is_err() && at(&[7; 4]).u64().is_err());
        assert_eq!(at(b"rxe0\0").str(), Ok("rxe0"));
        assert!(at(b"rxe0").str().is_err() && at(b"").str().is_err());
        assert!(at(b"\xff\0").str().is_err());
        assert_eq!(at(&[0; 16]).u64s().map(|v| v.count()), Ok(2));
        assert!(at(&[0; 12]).u64s().is_err());
        assert_eq!(at(&[0; 0]).u64s().map(|v| v.count()), Ok(0));
        assert!(
            at(&[0; 3]).exact("dcb_app", 4).is_err() && at(&[0; 5]).exact("dcb_app", 4).is_err()
        );
        // skip() turns an error into None and counts it.
        let before = malformed_on_this_thread();
        assert_eq!(skip(at(&[7, 0]).u8()), None);
        assert_eq!(skip(at(&[7]).u8()), Some(7));
        assert_eq!(malformed_on_this_thread() - before, 1);
        assert!(malformed_attributes() >= 1);
    }
}
