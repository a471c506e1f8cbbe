//! The `NETLINK_RDMA` socket: one request (or a batch of them) out, replies
//! in until the exchange is complete. Replies are drained with `recvmmsg`,
//! several datagrams a syscall (an NLDEV dump sends one device per
//! datagram). Syscalls and round trips are counted for the self-metrics.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::wire::{align4, frames, messages};
use super::{BatchExchange, Exchange, NlError, NlTransport, TransportStats, request_name};
use crate::sys;

/// A receive slot on the rtnetlink socket: large enough for any link dump
/// skb (rtnetlink sizes them by the largest link message, VF lists
/// included); a bigger datagram is reported, not cut. The generic netlink
/// socket has `RDMA_SLOT`s: what is asked there (ethtool link state, pause,
/// FEC, string counts and module pages, nlctrl, devlink info) answers in
/// far less.
const RECV_BUF: usize = 64 * 1024;
/// NETLINK_RDMA: many slots of 8 KiB. The kernel sizes a dump's skb by the
/// reader's buffer (netlink_dump: max(NLMSG_GOODSIZE, the largest recv
/// length)), so a dump fills 8 KiB datagrams; a doit reply is at most
/// NLMSG_GOODSIZE (under 8 KiB on any page size). A message that does not
/// fit 8 KiB is the kernel's EMSGSIZE, never a cut datagram.
const RDMA_SLOT: usize = 8 * 1024;
const RDMA_SLOTS: usize = 32;
/// NETLINK_ROUTE: slots of `RECV_BUF`.
const ROUTE_SLOTS: usize = 4;

/// Asked for at open so a batch of requests can be answered at once; the
/// kernel caps it at net.core.rmem_max (doubled).
const RDMA_RCVBUF: i32 = 1 << 20;
/// The receive-queue memory (skb truesize) one answered request may take. A
/// batch sends no more requests at once than the receive buffer holds
/// answers for: a reply that does not fit is dropped by the kernel
/// (netlink_unicast never waits for a reader). A dump's first skb is sized
/// by the reader's slot (netlink_dump), an allocation of up to twice that
/// plus the sk_buff; a doit reply is at most NLMSG_GOODSIZE (the NLDEV
/// doits and genetlink's ethtool doits allocate with nlmsg_new of at most
/// that: NLMSG_DEFAULT_SIZE, or the reply's own size), a page of at most
/// 8 KiB plus the sk_buff.
const DUMP_TRUESIZE: usize = 2 * RDMA_SLOT + 1024;
const DOIT_TRUESIZE: usize = RDMA_SLOT + 1024;
/// A kernel that doesn't answer within this is treated as an error, never a hang.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

pub struct NetlinkSocket {
    fd: OwnedFd,
    protocol: i32,
    /// Receive slots of `slot` bytes each.
    buf: Vec<u8>,
    slot: usize,
    /// Receive-queue bytes the answers of one batch may take (the
    /// socket's receive buffer): the requests of a batch are split to fit.
    budget: usize,
    stats: TransportStats,
}

fn last_error(op: &'static str) -> NlError {
    NlError::Io {
        op,
        source: io::Error::last_os_error(),
    }
}

impl NetlinkSocket {
    /// Opens and binds the socket. A kernel without RDMA netlink answers
    /// EPROTONOSUPPORT here.
    pub fn open() -> Result<NetlinkSocket, NlError> {
        NetlinkSocket::open_protocol(sys::NETLINK_RDMA as i32)
    }

    /// A socket of another netlink family (NETLINK_ROUTE for link statistics).
    pub fn open_protocol(protocol: i32) -> Result<NetlinkSocket, NlError> {
        let fd = socket(protocol)?;
        bind(&fd)?;
        set_recv_timeout(&fd, RECV_TIMEOUT)?;
        let (slot, slots, budget) = match protocol {
            // Generic netlink: the ethtool requests of every netdev go out
            // in one batch too (genl_rcv hands each message of a send to
            // its family, netlink_rcv_skb); their doit replies are small.
            p if p == sys::NETLINK_RDMA as i32 || p == libc::NETLINK_GENERIC => {
                let rcvbuf = grow_recv_buffer(&fd, RDMA_RCVBUF);
                (RDMA_SLOT, RDMA_SLOTS, rcvbuf)
            }
            // rtnetlink's link dump: the kernel queues the next skb while
            // the reader takes one (netlink_recvmsg runs the dump on): a
            // first skb of a page (the reader's size is not known yet), one
            // of up to 32 KiB with the other links, and NLMSG_DONE, all in
            // one recvmmsg.
            _ => (RECV_BUF, ROUTE_SLOTS, 0),
        };
        Ok(NetlinkSocket {
            fd,
            protocol,
            buf: vec![0; slot * slots],
            slot,
            budget,
            stats: TransportStats::default(),
        })
    }
}

/// The kernel's netlink address (port id 0), or this socket's before bind
/// (the kernel then picks the port id).
fn kernel_address() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as u16;
    addr
}

fn socket(protocol: i32) -> Result<OwnedFd, NlError> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        return Err(last_error("socket(AF_NETLINK)"));
    }
    // SAFETY: `fd` is a fresh descriptor owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(fd: &OwnedFd) -> Result<(), NlError> {
    let addr = kernel_address();
    // SAFETY: `addr` is a valid sockaddr_nl and the length matches it.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if rc < 0 {
        return Err(last_error("bind(AF_NETLINK)"));
    }
    Ok(())
}

fn set_recv_timeout(fd: &OwnedFd, timeout: Duration) -> Result<(), NlError> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as _,
        tv_usec: 0,
    };
    set_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv).map_err(|source| NlError::Io {
        op: "setsockopt(SO_RCVTIMEO)",
        source,
    })
}

/// Sets socket option `name` of `level` to `value` (an int, a timeval ...),
/// passing its size.
pub(crate) fn set_option<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` and its size is passed; `fd` is
    // open for the call (borrowed).
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks for a receive buffer of `want` bytes and returns the one the kernel
/// gave (its default when it refused).
fn grow_recv_buffer(fd: &OwnedFd, want: i32) -> usize {
    // Refused: the kernel's default stays, read back below.
    let _ = set_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, &want);
    let mut got: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: `got` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut i32).cast(),
            &mut len,
        )
    };
    if rc < 0 { 0 } else { got.max(0) as usize }
}

/// Sends one request datagram to the kernel.
fn send_to_kernel(fd: &OwnedFd, request: &[u8]) -> Result<(), NlError> {
    let kernel = kernel_address();
    // SAFETY: `request` and `kernel` are valid for the lengths given.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if n < 0 {
        return Err(last_error("sendto"));
    }
    Ok(())
}

/// Receives up to `buf.len() / slot` datagrams, one a slot: waits for the
/// first (`wait`; else only what is queued), takes what else is queued. Fills `lens` with each one's real
/// length, which is more than `slot` when the datagram was cut (MSG_TRUNC).
fn recv_datagrams(
    fd: &OwnedFd,
    buf: &mut [u8],
    slot: usize,
    lens: &mut [usize; RDMA_SLOTS],
    wait: bool,
) -> io::Result<usize> {
    let n = (buf.len() / slot).min(RDMA_SLOTS);
    let flags = libc::MSG_TRUNC
        | if wait {
            libc::MSG_WAITFORONE
        } else {
            libc::MSG_DONTWAIT
        };
    // SAFETY: iovec and mmsghdr are plain data; all-zero is a valid value.
    let mut iov: [libc::iovec; RDMA_SLOTS] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; RDMA_SLOTS] = unsafe { std::mem::zeroed() };
    for (i, chunk) in buf.chunks_exact_mut(slot).take(n).enumerate() {
        iov[i].iov_base = chunk.as_mut_ptr().cast();
        iov[i].iov_len = slot;
        msgs[i].msg_hdr.msg_iov = &mut iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // MSG_TRUNC makes the kernel return each datagram's real length;
    // MSG_WAITFORONE waits (up to SO_RCVTIMEO) for the first only.
    // SAFETY: each of the first `n` headers points at one iovec, each at its
    // own `slot` bytes of `buf`; all outlive the call.
    let got = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            msgs.as_mut_ptr(),
            n as _,
            flags as _,
            std::ptr::null_mut(),
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = got as usize;
    for (len, m) in lens.iter_mut().zip(&msgs).take(got) {
        *len = m.msg_len as usize;
    }
    Ok(got)
}

impl NetlinkSocket {
    /// One `recvmmsg`: each datagram received goes to `out` and to `feed`;
    /// `Ok(true)` once `feed` says the exchange is complete.
    fn receive(
        &mut self,
        out: &mut Vec<u8>,
        mut feed: impl FnMut(&[u8]) -> Result<bool, NlError>,
    ) -> Result<bool, NlError> {
        let mut lens = [0usize; RDMA_SLOTS];
        self.stats.syscalls += 1;
        let got = match recv_datagrams(&self.fd, &mut self.buf, self.slot, &mut lens, true) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(source) => return Err(NlError::Io { op: "recv", source }),
        };
        for (i, &n) in lens.iter().enumerate().take(got) {
            if n > self.slot {
                return Err(NlError::Oversized { len: n });
            }
            let chunk = &self.buf[i * self.slot..i * self.slot + n];
            // Kept before it is judged, so a caller (the recorder) still has
            // the NLMSG_ERROR of a failed exchange.
            out.extend_from_slice(chunk);
            if feed(chunk)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Requests whose answers fit `budget` in one sendto, then their replies.
    fn send_batch(&mut self, requests: &[u8], out: &mut Vec<u8>) -> Result<(), NlError> {
        let mut exchange = BatchExchange::for_requests(requests)?;
        let cmd = request_name(self.protocol, first_kind(requests));
        self.stats.round_trips += exchange.pending().count() as u64;
        self.stats.syscalls += 1;
        send_to_kernel(&self.fd, requests)?;
        loop {
            match self.receive(out, |chunk| exchange.feed(chunk, cmd)) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                // The receive queue overflowed and the kernel dropped a
                // reply: what is queued is taken, the unanswered requests
                // are sent again one at a time.
                Err(NlError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOBUFS) => {
                    return self.resend_unanswered(requests, exchange, out);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn resend_unanswered(
        &mut self,
        requests: &[u8],
        mut exchange: BatchExchange,
        out: &mut Vec<u8>,
    ) -> Result<(), NlError> {
        let cmd = request_name(self.protocol, first_kind(requests));
        let mut lens = [0usize; RDMA_SLOTS];
        loop {
            self.stats.syscalls += 1;
            let got = match recv_datagrams(&self.fd, &mut self.buf, self.slot, &mut lens, false) {
                Ok(n) => n,
                Err(_) => break,
            };
            for (i, &n) in lens.iter().enumerate().take(got) {
                let chunk = &self.buf[i * self.slot..i * self.slot + n.min(self.slot)];
                out.extend_from_slice(chunk);
                exchange.feed(chunk, cmd)?;
            }
        }
        let pending: Vec<u32> = exchange.pending().collect();
        let mut one = Vec::new();
        for request in frames(requests) {
            let seq = messages(request)
                .next()
                .and_then(|m| m.ok())
                .map_or(0, |m| m.seq);
            if !pending.contains(&seq) {
                continue;
            }
            match self.exchange(request, &mut one) {
                Ok(()) | Err(NlError::Kernel { .. }) => out.extend_from_slice(&one),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The receive-queue memory the answer to one request may take.
fn answer_truesize(request: &[u8]) -> usize {
    let dump = sys::NLM_F_DUMP as u16;
    match messages(request).next().and_then(|m| m.ok()) {
        Some(m) if m.flags & dump != dump => DOIT_TRUESIZE,
        _ => DUMP_TRUESIZE,
    }
}

fn first_kind(requests: &[u8]) -> u16 {
    messages(requests)
        .next()
        .and_then(|m| m.ok())
        .map_or(0, |m| m.kind)
}

impl NlTransport for NetlinkSocket {
    fn exchange(&mut self, request: &[u8], out: &mut Vec<u8>) -> Result<(), NlError> {
        out.clear();
        self.stats.round_trips += 1;
        self.stats.syscalls += 1;
        send_to_kernel(&self.fd, request)?;
        let mut exchange = Exchange::for_request(request, self.protocol)?;
        while !self.receive(out, |chunk| exchange.feed(chunk))? {}
        Ok(())
    }

    fn batch(&mut self, requests: &[u8], out: &mut Vec<u8>) -> Result<(), NlError> {
        out.clear();
        let (mut start, mut end, mut used) = (0, 0, 0);
        for frame in frames(requests) {
            let cost = answer_truesize(frame);
            // At least one request a send, whatever the budget.
            if end > start && used + cost > self.budget {
                self.send_batch(&requests[start..end], out)?;
                (start, used) = (end, 0);
            }
            end += align4(frame.len());
            used += cost;
        }
        if end > start {
            self.send_batch(&requests[start..end.min(requests.len())], out)?;
        }
        Ok(())
    }

    fn stats(&self) -> TransportStats {
        self.stats
    }
}

/// A socket that listens to a netlink family's multicast groups (events).
/// Reads never block: `recv_event` answers `None` when nothing is queued,
/// so the caller decides when to wait (`wait_readable`), never spins.
pub struct Multicast {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Multicast {
    /// Opens and binds a socket of `protocol`, subscribed to nothing yet.
    pub fn open(protocol: i32) -> Result<Multicast, NlError> {
        let fd = socket(protocol)?;
        bind(&fd)?;
        Ok(Multicast {
            fd,
            // One event is a few hundred bytes; a link message with every
            // attribute a few KiB. A bigger datagram is reported as oversized.
            buf: vec![0; 32 * 1024],
        })
    }

    /// Joins multicast group `group` (NETLINK_ADD_MEMBERSHIP). A kernel
    /// that has no such group answers EINVAL.
    pub fn join(&self, group: u32) -> Result<(), NlError> {
        set_option(
            self.fd.as_fd(),
            libc::SOL_NETLINK,
            libc::NETLINK_ADD_MEMBERSHIP,
            &group,
        )
        .map_err(|source| NlError::Io {
            op: "setsockopt(NETLINK_ADD_MEMBERSHIP)",
            source,
        })
    }

    /// The next queued datagram, without waiting. `Err` with ENOBUFS means
    /// the kernel dropped events because the queue was full (the socket
    /// stays usable; the caller counts the loss).
    pub fn recv_event(&mut self) -> Result<Option<&[u8]>, NlError> {
        loop {
            // SAFETY: `buf` is valid for writes of its length. MSG_TRUNC makes
            // the kernel return the datagram's real length; MSG_DONTWAIT never blocks.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC | libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Ok(None),
                    _ => {
                        return Err(NlError::Io {
                            op: "recv",
                            source: e,
                        });
                    }
                }
            }
            let n = n as usize;
            if n > self.buf.len() {
                return Err(NlError::Oversized { len: n });
            }
            return Ok(Some(&self.buf[..n]));
        }
    }

    /// Waits until a datagram is queued (`Ok(true)`) or `wake` is readable
    /// (poll(2), no timeout): the reader thread sleeps here until there is
    /// something to do; it never spins, nor wakes only to look.
    pub fn wait_readable(&self, wake: BorrowedFd<'_>) -> Result<bool, NlError> {
        let mut pfd = [self.fd.as_raw_fd(), wake.as_raw_fd()].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: `pfd` is two valid pollfds and the count says two.
        let rc = unsafe { libc::poll(pfd.as_mut_ptr(), 2, -1) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(NlError::Io {
                op: "poll",
                source: e,
            });
        }
        // An error on the socket (ENOBUFS) is for the receive to report.
        Ok(pfd[0].revents != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::netlink::for_each_reply;
    use crate::sources::netlink::rtnetlink;
    use crate::sources::netlink::wire::MessageBuilder;

    /// The socket against this host's kernel: NETLINK_ROUTE is there on any
    /// Linux. A link dump is one send and its replies (the links, then
    /// NLMSG_DONE), and holds the loopback link.
    #[test]
    fn link_dump_over_the_kernel_socket() {
        let mut s = NetlinkSocket::open_protocol(libc::NETLINK_ROUTE).unwrap();
        let links = rtnetlink::links(&mut s, 1).unwrap();
        assert!(links.iter().any(|l| l.name == "lo"), "{links:?}");
        let stats = s.stats();
        assert_eq!(stats.round_trips, 1);
        // The links' skb and the NLMSG_DONE the kernel queues while it is
        // read come in one recvmmsg: a few links (a 32 KiB skb holds a
        // couple of dozen) are one sendto and one recvmmsg.
        if links.len() <= 8 {
            assert_eq!(stats.syscalls, 2, "{stats:?}");
        }
        assert!(stats.syscalls >= 2, "{stats:?}");
        // A request the kernel refuses is its errno, not a hang.
        let bad = crate::sources::netlink::dcb::get_dcb(2, "no-such-netdev0");
        let e = s.exchange(&bad, &mut Vec::new()).unwrap_err();
        assert!(matches!(e, NlError::Kernel { .. }), "{e}");
    }

    /// A NETLINK_ROUTE socket with the NETLINK_RDMA receive slots and a
    /// receive budget of `budget` bytes a send.
    fn batching(budget: usize) -> NetlinkSocket {
        let mut s = NetlinkSocket::open_protocol(libc::NETLINK_ROUTE).unwrap();
        s.slot = RDMA_SLOT;
        s.buf = vec![0; RDMA_SLOT * RDMA_SLOTS];
        s.budget = budget;
        s
    }

    /// RTM_GETLINK of one link by index (a doit).
    fn get_link(seq: u32, index: i32) -> Vec<u8> {
        let mut ifinfomsg = [0u8; 16];
        ifinfomsg[4..8].copy_from_slice(&index.to_ne_bytes());
        MessageBuilder::new(libc::RTM_GETLINK, libc::NLM_F_REQUEST as u16, seq)
            .raw(&ifinfomsg)
            .finish()
    }

    /// A batch against this host's kernel, on a socket with the NETLINK_RDMA
    /// receive slots and a receive budget of three doit answers a send: seven doits (one of
    /// them for a link that does not exist) and a dump come back complete,
    /// each answer under its own seq, the failed one as its own error, in
    /// three sends, each drained by one recvmmsg or a few.
    #[test]
    fn a_batch_is_answered_request_by_request() {
        let mut s = batching(3 * DOIT_TRUESIZE);
        let mut requests = Vec::new();
        for seq in 1..=7 {
            let index = if seq == 4 { 0x7fff_fff0 } else { 1 };
            requests.extend(get_link(seq, index));
        }
        requests.extend(rtnetlink::get_links(8));
        let mut out = Vec::new();
        s.batch(&requests, &mut out).unwrap();
        for seq in 1..=8 {
            let mut names = Vec::new();
            let r = for_each_reply(&out, seq, libc::RTM_NEWLINK, "RTM_GETLINK", |p| {
                names.push(
                    rtnetlink::decode_link(p)
                        .map(|l| l.name)
                        .unwrap_or_default(),
                );
                Ok(())
            });
            match seq {
                4 => assert!(
                    matches!(
                        r,
                        Err(NlError::Kernel {
                            errno: libc::ENODEV,
                            ..
                        })
                    ),
                    "{r:?}"
                ),
                8 => assert!(names.iter().any(|n| n == "lo"), "{names:?}"),
                _ => assert_eq!(names, ["lo"], "seq {seq}"),
            }
        }
        let stats = s.stats();
        assert_eq!(stats.round_trips, 8);
        assert!((6..=10).contains(&stats.syscalls), "{stats:?}");
    }

    /// A doit's answer takes at most a page of the receive queue, a dump's
    /// first skb two slots: a receive budget of four dump answers holds seven
    /// doit answers, sent at once and drained by one recvmmsg (the kernel
    /// answers every message of a send before sendto returns).
    #[test]
    fn doit_answers_are_budgeted_smaller_than_dumps() {
        let mut s = batching(4 * DUMP_TRUESIZE);
        let requests: Vec<u8> = (1..=7).flat_map(|seq| get_link(seq, 1)).collect();
        let mut out = Vec::new();
        s.batch(&requests, &mut out).unwrap();
        assert_eq!(s.stats().syscalls, 2, "{:?}", s.stats());
        // Dumps: four fit, the fifth goes in a send of its own.
        let dumps: Vec<u8> = (8..=12).flat_map(rtnetlink::get_links).collect();
        let before = s.stats().syscalls;
        s.batch(&dumps, &mut Vec::new()).unwrap();
        assert!(s.stats().syscalls - before >= 4, "{:?}", s.stats());
    }

    /// More answers than the receive buffer holds: the kernel drops some and
    /// says ENOBUFS; the batch still comes back whole (the unanswered
    /// requests are sent again one at a time), not as an error or a hang.
    #[test]
    fn an_overrun_batch_is_completed() {
        let mut s = batching(64 * DOIT_TRUESIZE);
        grow_recv_buffer(&s.fd, 4096);
        let mut requests = Vec::new();
        for seq in 1..=64 {
            requests.extend(get_link(seq, 1));
        }
        let mut out = Vec::new();
        s.batch(&requests, &mut out).unwrap();
        for seq in 1..=64 {
            let mut n = 0;
            for_each_reply(&out, seq, libc::RTM_NEWLINK, "RTM_GETLINK", |_| {
                n += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(n, 1, "seq {seq}");
        }
        // Requests sent again count as round trips of their own.
        assert!(s.stats().round_trips > 64, "no overrun: {:?}", s.stats());
    }
}
