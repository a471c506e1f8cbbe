//! Netlink multicast events: rtnetlink `RTNLGRP_LINK` (carrier changes of
//! netdevs, RTM_NEWLINK/RTM_DELLINK as `rtnl_fill_ifinfo` lays them out) and
//! RDMA netlink monitor events (`RDMA_NLDEV_CMD_MONITOR` on
//! `RDMA_NL_GROUP_NOTIFY`: device register/unregister, netdev attach/detach,
//! renames). A small reader thread per socket sleeps in poll(2), stamps each
//! event on arrival (netlink carries no time) and queues it, bounded; the
//! collection thread takes the queue each cycle.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::wire::{self, WireError, skip};
use super::{Multicast, NlError};
pub use crate::model::events::{LinkEvent, RdmaEvent, RdmaEventKind};
use crate::sys;

// RDMA monitor events are newer than the 6.1 headers the bindings come from.
// Defined from include/uapi/rdma/rdma_netlink.h as upstream commit
// 9cbed5aab5ae ("RDMA/nldev: Add support for RDMA monitoring", Linux 6.12)
// added them: the group follows RDMA_NL_GROUP_LS, the command follows
// RDMA_NLDEV_CMD_DELDEV, the attribute follows RDMA_NLDEV_ATTR_NAME_ASSIGN_TYPE.
/// `RDMA_NL_GROUP_NOTIFY`.
pub const RDMA_NL_GROUP_NOTIFY: u32 = sys::RDMA_NL_GROUP_LS + 1;
/// `RDMA_NLDEV_CMD_MONITOR` (28).
pub const RDMA_NLDEV_CMD_MONITOR: u32 = 28;
/// `RDMA_NLDEV_ATTR_EVENT_TYPE` (u8; 102).
pub const RDMA_NLDEV_ATTR_EVENT_TYPE: u32 = 102;
const _: () = assert!(RDMA_NL_GROUP_NOTIFY == 4);

/// Queued events per listener before the oldest are dropped (and counted).
const QUEUE_MAX: usize = 4096;

const IFINFOMSG: usize = std::mem::size_of::<sys::ifinfomsg>();
/// IFF_LOWER_UP (linux/if.h): the carrier, in ifi_flags.
const IFF_LOWER_UP: u32 = 1 << 16;

/// One RTM_NEWLINK/RTM_DELLINK multicast: ifindex, name, carrier, operational
/// state. The carrier is IFF_LOWER_UP of ifi_flags (dev_get_flags: carrier
/// and running), not IFLA_CARRIER, which stays 1 on an administratively
/// down dummy or veth whose driver never dropped it.
pub fn decode_link_event(kind: u16, payload: &[u8], unix_ms: u64) -> Result<LinkEvent, WireError> {
    let head = payload.get(..IFINFOMSG).ok_or(WireError::Truncated {
        what: "ifinfomsg",
        need: IFINFOMSG,
        have: payload.len(),
    })?;
    let word = |at: usize| u32::from_ne_bytes(head[at..at + 4].try_into().expect("4 bytes"));
    let flags = word(8);
    let mut ev = LinkEvent {
        unix_ms,
        ifindex: word(4) as i32,
        netdev: String::new(),
        carrier: flags & IFF_LOWER_UP != 0,
        operstate: None,
        deleted: u32::from(kind) == sys::RTM_DELLINK,
    };
    for a in wire::attrs(&payload[IFINFOMSG..]) {
        let a = a?;
        match u32::from(a.kind) {
            sys::IFLA_IFNAME => {
                if let Some(n) = skip(a.str()) {
                    ev.netdev = n.to_string();
                }
            }
            sys::IFLA_OPERSTATE => ev.operstate = skip(a.u8()),
            _ => {}
        }
    }
    Ok(ev)
}

/// The message type of a monitor event: `RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, RDMA_NLDEV_CMD_MONITOR)`.
pub const fn monitor_type() -> u16 {
    super::nldev::nldev_type(RDMA_NLDEV_CMD_MONITOR)
}

/// One monitor event as `rdma_nl_notify_event` (drivers/infiniband/core/nldev.c)
/// fills it: DEV_INDEX (+ DEV_NAME where the kernel sends the device handle),
/// PORT_INDEX, NDEV_INDEX, NDEV_NAME as the event type has them, EVENT_TYPE last.
pub fn decode_rdma_event(payload: &[u8], unix_ms: u64) -> Result<RdmaEvent, WireError> {
    let mut ev = RdmaEvent {
        unix_ms,
        kind: RdmaEventKind::Other(u8::MAX),
        dev_index: None,
        dev_name: None,
        port: None,
        netdev_index: None,
        netdev_name: None,
    };
    let mut kind = None;
    for a in wire::attrs(payload) {
        let a = a?;
        match u32::from(a.kind) {
            sys::RDMA_NLDEV_ATTR_DEV_INDEX => ev.dev_index = skip(a.u32()),
            sys::RDMA_NLDEV_ATTR_DEV_NAME => ev.dev_name = skip(a.str()).map(str::to_string),
            sys::RDMA_NLDEV_ATTR_PORT_INDEX => ev.port = skip(a.u32()),
            sys::RDMA_NLDEV_ATTR_NDEV_INDEX => ev.netdev_index = skip(a.u32()),
            sys::RDMA_NLDEV_ATTR_NDEV_NAME => ev.netdev_name = skip(a.str()).map(str::to_string),
            RDMA_NLDEV_ATTR_EVENT_TYPE => kind = skip(a.u8()),
            _ => {}
        }
    }
    let kind = kind.ok_or(WireError::Malformed {
        what: "RDMA monitor event",
        detail: "no RDMA_NLDEV_ATTR_EVENT_TYPE".into(),
    })?;
    ev.kind = match kind {
        0 => RdmaEventKind::Register,
        1 => RdmaEventKind::Unregister,
        2 => RdmaEventKind::NetdevAttach,
        3 => RdmaEventKind::NetdevDetach,
        4 => RdmaEventKind::Rename,
        5 => RdmaEventKind::NetdevRename,
        n => RdmaEventKind::Other(n),
    };
    Ok(ev)
}

/// Events a listener has queued since the last take.
#[derive(Debug)]
pub struct Inbox<E> {
    pub events: VecDeque<E>,
    pub received: u64,
    /// Dropped by the kernel (ENOBUFS: the socket queue overran) or by the
    /// bounded queue here.
    pub lost: u64,
    /// Messages that did not decode.
    pub malformed: u64,
    /// A receive error other than ENOBUFS ended the reader.
    pub failed: Option<String>,
}

/// Empty, for any event type (a derive would ask `E: Default`).
impl<E> Default for Inbox<E> {
    fn default() -> Self {
        Inbox {
            events: VecDeque::new(),
            received: 0,
            lost: 0,
            malformed: 0,
            failed: None,
        }
    }
}

/// A reader thread on one multicast socket.
pub struct Listener<E> {
    inbox: Arc<Mutex<Inbox<E>>>,
    stop: Arc<AtomicBool>,
    /// Written at drop: the reader's poll wakes, sees `stop` and ends.
    wake: Arc<std::fs::File>,
}

impl<E> Drop for Listener<E> {
    fn drop(&mut self) {
        // The thread ends at once; nobody waits for it. Release: a reader
        // woken by the eventfd write below sees the flag (Acquire there).
        self.stop.store(true, Ordering::Release);
        let _ = std::io::Write::write(&mut &*self.wake, &1u64.to_ne_bytes());
    }
}

/// An eventfd (non-blocking, not inherited by exec).
fn eventfd() -> std::io::Result<std::fs::File> {
    // SAFETY: eventfd takes no pointers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor just made, owned by nothing else.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

impl<E: Send + 'static> Listener<E> {
    /// Moves the queued events into `out`; returns (received, lost, failed) so far.
    pub fn take(&self, out: &mut Vec<E>) -> (u64, u64, Option<String>) {
        let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        out.extend(inbox.events.drain(..));
        (inbox.received, inbox.lost, inbox.failed.clone())
    }

    fn spawn(
        name: &str,
        mut socket: Multicast,
        decode: impl Fn(u16, &[u8], u64) -> Option<Result<E, WireError>> + Send + 'static,
    ) -> Result<Listener<E>, NlError> {
        let inbox: Arc<Mutex<Inbox<E>>> = Arc::new(Mutex::new(Inbox::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(eventfd().map_err(|source| NlError::Io {
            op: "eventfd",
            source,
        })?);
        let (i, s, w) = (inbox.clone(), stop.clone(), wake.clone());
        std::thread::Builder::new()
            .name(name.to_string())
            .stack_size(128 * 1024)
            .spawn(move || read_loop(&mut socket, &i, &s, &w, &decode))
            .map_err(|source| NlError::Io {
                op: "spawn event reader",
                source,
            })?;
        Ok(Listener { inbox, stop, wake })
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Decodes one message of the listened family: `None` for a type not listened to.
type Decode<E> = dyn Fn(u16, &[u8], u64) -> Option<Result<E, WireError>>;

fn read_loop<E>(
    socket: &mut Multicast,
    inbox: &Mutex<Inbox<E>>,
    stop: &AtomicBool,
    wake: &std::fs::File,
    decode: &Decode<E>,
) {
    while !stop.load(Ordering::Acquire) {
        match socket.wait_readable(std::os::fd::AsFd::as_fd(wake)) {
            Ok(true) => {}
            Ok(false) => {
                // The wake-up (or EINTR): drained (non-blocking), so that an
                // eventfd left readable cannot spin this loop in poll; the
                // flag is looked at again.
                let _ = std::io::Read::read(&mut &*wake, &mut [0u8; 8]);
                continue;
            }
            Err(e) => {
                inbox.lock().unwrap_or_else(|p| p.into_inner()).failed = Some(e.to_string());
                return;
            }
        }
        loop {
            let datagram = match socket.recv_event() {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(NlError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOBUFS) => {
                    // The kernel dropped an unknown number of events: at least one.
                    inbox.lock().unwrap_or_else(|p| p.into_inner()).lost += 1;
                    continue;
                }
                Err(NlError::Oversized { .. }) => {
                    inbox.lock().unwrap_or_else(|p| p.into_inner()).malformed += 1;
                    continue;
                }
                Err(e) => {
                    inbox.lock().unwrap_or_else(|p| p.into_inner()).failed = Some(e.to_string());
                    return;
                }
            };
            let at = now_ms();
            let mut inbox = inbox.lock().unwrap_or_else(|p| p.into_inner());
            for m in wire::messages(datagram) {
                let Ok(m) = m else {
                    inbox.malformed += 1;
                    break;
                };
                match decode(m.kind, m.payload, at) {
                    None => {}
                    Some(Err(_)) => inbox.malformed += 1,
                    Some(Ok(e)) => {
                        inbox.received += 1;
                        if inbox.events.len() >= QUEUE_MAX {
                            inbox.events.pop_front();
                            inbox.lost += 1;
                        }
                        inbox.events.push_back(e);
                    }
                }
            }
        }
    }
}

/// Listens to RTNLGRP_LINK: every netdev's link changes (the caller keeps
/// the ones of RDMA ports).
pub fn listen_links() -> Result<Listener<LinkEvent>, NlError> {
    let s = Multicast::open(libc::NETLINK_ROUTE)?;
    s.join(libc::RTNLGRP_LINK)?;
    Listener::spawn("rdma-mon-links", s, |kind, payload, at| {
        let k = u32::from(kind);
        (k == sys::RTM_NEWLINK || k == sys::RTM_DELLINK)
            .then(|| decode_link_event(kind, payload, at))
    })
}

/// Why the running kernel (`release`, as /proc/sys/kernel/osrelease says it)
/// sends no RDMA monitor events; `None` from Linux 6.12 on, or when the
/// release does not start with `major.minor` (then listening is tried).
/// An older kernel does not refuse the group: NETLINK_RDMA gets the 32
/// groups netlink_kernel_create() gives every family, so root joins
/// RDMA_NL_GROUP_NOTIFY and is never sent anything (seen on 6.1 in the rxe
/// VM, tests/vm/events.sh). A distribution kernel with 9cbed5aab5ae
/// backported is taken for an old one: the rescans stand in.
pub fn monitor_absent(release: &str) -> Option<String> {
    let mut parts = release.split(['.', '-']);
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    ((major, minor) < (6, 12)).then(|| {
        format!("Linux {major}.{minor} has no RDMA monitor events (9cbed5aab5ae, Linux 6.12)")
    })
}

/// The running kernel's release, for [`monitor_absent`].
pub fn kernel_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Listens to RDMA_NL_GROUP_NOTIFY (ask [`monitor_absent`] first: a kernel
/// before 6.12 accepts the group and stays silent).
pub fn listen_rdma() -> Result<Listener<RdmaEvent>, NlError> {
    let s = Multicast::open(sys::NETLINK_RDMA as i32)?;
    s.join(RDMA_NL_GROUP_NOTIFY)?;
    let monitor = monitor_type();
    Listener::spawn("rdma-mon-rdma", s, move |kind, payload, at| {
        (kind == monitor).then(|| decode_rdma_event(payload, at))
    })
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
