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
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
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
        let tv = libc::timeval {
            tv_sec: RECV_TIMEOUT.as_secs() as _,
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
        Ok(NetlinkSocket {
            fd,
            protocol,
            buf: vec![0; RECV_BUF],
            stats: TransportStats::default(),
        })
    }
}

impl NlTransport for NetlinkSocket {
    fn exchange(&mut self, request: &[u8], out: &mut Vec<u8>) -> Result<(), NlError> {
        out.clear();
        self.stats.round_trips += 1;
        // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as u16;
        self.stats.syscalls += 1;
        // SAFETY: `request` and `kernel` are valid for the lengths given.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
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
        let mut exchange = Exchange::for_request(request, self.protocol)?;
        loop {
            self.stats.syscalls += 1;
            // SAFETY: `self.buf` is valid for writes of its length. MSG_TRUNC
            // makes the kernel return the datagram's real length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(NlError::Io {
                    op: "recv",
                    source: e,
                });
            }
            let n = n as usize;
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
