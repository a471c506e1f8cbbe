//! The `NETLINK_RDMA` socket: one request out, replies in until the exchange
//! is complete. Syscalls and round trips are counted for the self-metrics.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::{Exchange, NlError, NlTransport, TransportStats};
use crate::sys;

/// Large enough for any NLDEV reply skb (the kernel sizes dump skbs by the
/// reader's buffer, up to 32 KiB); a bigger datagram is reported, not cut.
const RECV_BUF: usize = 64 * 1024;
/// A kernel that doesn't answer within this is treated as an error, never a hang.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

pub struct NetlinkSocket {
    fd: OwnedFd,
    protocol: i32,
    buf: Vec<u8>,
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
        Ok(NetlinkSocket {
            fd,
            protocol,
            buf: vec![0; RECV_BUF],
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
    // SAFETY: `tv` is a valid timeval for SO_RCVTIMEO and the length matches it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    if rc < 0 {
        return Err(last_error("setsockopt(SO_RCVTIMEO)"));
    }
    Ok(())
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

/// Receives one datagram into `buf`; returns its real length, which is more
/// than `buf` holds when the datagram was cut (MSG_TRUNC).
fn recv_datagram(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length. MSG_TRUNC makes the
    // kernel return the datagram's real length.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

impl NlTransport for NetlinkSocket {
    fn exchange(&mut self, request: &[u8], out: &mut Vec<u8>) -> Result<(), NlError> {
        out.clear();
        self.stats.round_trips += 1;
        self.stats.syscalls += 1;
        send_to_kernel(&self.fd, request)?;
        let mut exchange = Exchange::for_request(request, self.protocol)?;
        loop {
            self.stats.syscalls += 1;
            let n = match recv_datagram(&self.fd, &mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(NlError::Io { op: "recv", source }),
            };
            if n > self.buf.len() {
                return Err(NlError::Oversized { len: n });
            }
            let chunk = &self.buf[..n];
            // Kept before it is judged, so a caller (the recorder) still has
            // the NLMSG_ERROR of a failed exchange.
            out.extend_from_slice(chunk);
            if exchange.feed(chunk)? {
                return Ok(());
            }
        }
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
        // SAFETY: `group` is a valid u32 for NETLINK_ADD_MEMBERSHIP and the
        // length matches it.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_ADD_MEMBERSHIP,
                (&group as *const u32).cast(),
                std::mem::size_of::<u32>() as u32,
            )
        };
        if rc < 0 {
            return Err(last_error("setsockopt(NETLINK_ADD_MEMBERSHIP)"));
        }
        Ok(())
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

    /// Waits until a datagram is queued or `timeout` passes (poll(2)): the
    /// reader thread sleeps here, it never spins.
    pub fn wait_readable(&self, timeout: Duration) -> Result<bool, NlError> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `pfd` is one valid pollfd and the count says one.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
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
        Ok(rc > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::netlink::rtnetlink;

    /// The socket against this host's kernel: NETLINK_ROUTE is there on any
    /// Linux. A link dump is one send and at least two receives (the links,
    /// then NLMSG_DONE), and holds the loopback link.
    #[test]
    fn link_dump_over_the_kernel_socket() {
        let mut s = NetlinkSocket::open_protocol(libc::NETLINK_ROUTE).unwrap();
        let links = rtnetlink::links(&mut s, 1).unwrap();
        assert!(links.iter().any(|l| l.name == "lo"), "{links:?}");
        let stats = s.stats();
        assert_eq!(stats.round_trips, 1);
        assert!(stats.syscalls >= 3, "{stats:?}");
        // A request the kernel refuses is its errno, not a hang.
        let bad = crate::sources::netlink::dcb::get_dcb(2, "no-such-netdev0");
        let e = s.exchange(&bad, &mut Vec::new()).unwrap_err();
        assert!(matches!(e, NlError::Kernel { .. }), "{e}");
    }
}
