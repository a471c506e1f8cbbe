//! Netlink: the one framing every family here uses, and a small module of
//! decoders per family.
//!
//! The framing — `wire` (messages and attributes, each attribute read at the
//! exact size of its type), `exchange` (when a request's replies are
//! complete, walking them, kernel errors), `transport` (the `NlTransport`
//! trait, its replay) and `socket` (the one `AF_NETLINK` socket) — knows no
//! family. The families build their requests with `wire::MessageBuilder` and
//! decode replies with `wire::attrs`:
//! - `nldev`: RDMA netlink (`NETLINK_RDMA`, `RDMA_NL_NLDEV`), the per-cycle
//!   poll, and `nldev::settings`, the only place the agent writes to the kernel;
//! - `rtnetlink`: the link dump (`RTM_GETLINK`);
//! - `dcb`: dcbnl's IEEE configuration (`RTM_GETDCB`);
//! - `genl`: generic netlink requests and family lookup (nlctrl);
//! - `ethtool_nl` and `devlink`: the generic netlink families read.
//!
//! A thin layer of our own over a raw socket: the hot path reuses one
//! receive buffer and decodes in place, and the transport is a trait so the
//! decoders run on recorded kernel replies in tests.

pub mod dcb;
pub mod devlink;
pub mod ethtool_nl;
pub mod events;
mod exchange;
pub mod genl;
pub mod nldev;
pub mod rtnetlink;
mod socket;
pub(crate) use socket::set_option;
#[cfg(test)]
pub(crate) mod testing;
mod transport;
pub mod wire;

use std::io;

pub use exchange::{BatchExchange, Exchange, for_each_reply, replies, replies_into};
pub use socket::{Multicast, NetlinkSocket};
pub use transport::{NlTransport, Replay, TransportStats};
use wire::WireError;

#[derive(Debug, thiserror::Error)]
pub enum NlError {
    #[error("netlink {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{cmd}: the kernel answered {}", errno_name(*.errno))]
    Kernel { cmd: &'static str, errno: i32 },
    #[error("{cmd}: {source}")]
    Wire {
        cmd: &'static str,
        #[source]
        source: WireError,
    },
    #[error("netlink reply of {len} bytes is larger than the receive buffer")]
    Oversized { len: usize },
}

impl NlError {
    /// The kernel or the socket said "no such thing here" (no netlink, no hw stats, no device).
    pub fn is_unsupported(&self) -> bool {
        let errno = match self {
            NlError::Kernel { errno, .. } => Some(*errno),
            NlError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        };
        matches!(
            errno,
            Some(
                libc::EPROTONOSUPPORT
                    | libc::EOPNOTSUPP
                    | libc::EINVAL
                    | libc::ENOENT
                    | libc::ENODEV
            )
        )
    }
}

fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EINVAL => "EINVAL",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::ENOENT => "ENOENT",
        libc::ENODEV => "ENODEV",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EBUSY => "EBUSY",
        libc::EAGAIN => "EAGAIN",
        _ => return format!("errno {errno} ({})", io::Error::from_raw_os_error(errno)),
    };
    format!("{name} ({})", io::Error::from_raw_os_error(errno))
}

/// The name of a request for errors: an RTM_GETDCB refused by a veth must not
/// read as an RDMA netlink failure.
fn request_name(protocol: i32, kind: u16) -> &'static str {
    match protocol {
        p if p == crate::sys::NETLINK_RDMA as i32 => nldev::command_name(kind),
        libc::NETLINK_ROUTE => rtnetlink::command_name(kind),
        _ => "generic netlink request",
    }
}

/// A netdev-side reply recorded in the rxe VM (fixtures/netlink/rxe-6.1-net,
/// whose README says how and where).
#[cfg(test)]
pub(crate) fn recorded_net(name: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/netlink/rxe-6.1-net");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}
