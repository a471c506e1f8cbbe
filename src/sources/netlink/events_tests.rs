use super::*;
use crate::sources::netlink::recorded_net;
use crate::sources::netlink::testing::{msg, stra, u8a, u32a};

/// The recorded link dump of the rxe VM (fixtures/netlink/rxe-6.1-net,
/// Linux 6.1): a multicast RTM_NEWLINK is the same rtnl_fill_ifinfo message
/// as a dump entry. ip-link-before.json of the same recording says veth0
/// is UP,LOWER_UP (carrier) and operstate UP; dummy0 has no carrier.
#[test]
fn recorded_newlink_messages_decode_as_link_events() {
    let dump = recorded_net("01-getlink-dump.bin");
    let events: Vec<LinkEvent> = wire::messages(&dump)
        .map(|m| m.unwrap())
        .filter(|m| u32::from(m.kind) == sys::RTM_NEWLINK)
        .map(|m| decode_link_event(m.kind, m.payload, 7).unwrap())
        .collect();
    let by = |n: &str| events.iter().find(|e| e.netdev == n).unwrap();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(by("veth0").carrier);
    assert_eq!(by("veth0").operstate, Some(6)); // IF_OPER_UP
    assert!(!by("dummy0").carrier);
    assert!(!by("veth0").deleted);
    assert_eq!(by("veth0").unix_ms, 7);
}

/// The carrier is IFF_LOWER_UP, whatever IFLA_CARRIER says (a dummy that is
/// down keeps IFLA_CARRIER 1, recorded above); RTM_DELLINK is a deletion; a
/// short header is an error, not a panic.
#[test]
fn carrier_attribute_and_dellink() {
    let mut payload = vec![0u8; IFINFOMSG];
    payload[4..8].copy_from_slice(&9i32.to_ne_bytes());
    payload[8..12].copy_from_slice(&IFF_LOWER_UP.to_ne_bytes());
    payload.extend(stra(sys::IFLA_IFNAME, "eth9"));
    payload.extend(u8a(sys::IFLA_CARRIER, 0));
    let e = decode_link_event(sys::RTM_DELLINK as u16, &payload, 1).unwrap();
    assert_eq!(
        (e.ifindex, e.netdev.as_str(), e.carrier, e.deleted),
        (9, "eth9", true, true)
    );
    assert!(decode_link_event(sys::RTM_NEWLINK as u16, &[0; 4], 1).is_err());
}

/// Monitor events built exactly as rdma_nl_notify_event() in upstream
/// drivers/infiniband/core/nldev.c (9cbed5aab5ae) puts them: nlmsg_put of
/// RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, RDMA_NLDEV_CMD_MONITOR), flags 0, seq 0;
/// register/unregister: DEV_INDEX (fill_mon_register); attach/detach:
/// DEV_INDEX, PORT_INDEX, NDEV_INDEX only when a netdev is attached
/// (fill_mon_netdev_association); then EVENT_TYPE (u8). The rename events
/// of the later "Add IB device and net device rename events" carry the
/// device handle (DEV_INDEX, DEV_NAME) or NDEV_INDEX and NDEV_NAME.
#[test]
fn monitor_events_as_nldev_c_builds_them() {
    let t = monitor_type();
    assert_eq!(t, (5 << 10) + 28);
    let decode = |m: Vec<u8>| {
        let m = wire::messages(&m).next().unwrap().unwrap();
        assert_eq!(m.kind, t);
        decode_rdma_event(m.payload, 5).unwrap()
    };
    let reg = decode(msg(
        t,
        0,
        0,
        &[
            u32a(sys::RDMA_NLDEV_ATTR_DEV_INDEX, 4),
            u8a(RDMA_NLDEV_ATTR_EVENT_TYPE, 0),
        ],
    ));
    assert_eq!(
        (reg.kind, reg.dev_index, reg.port),
        (RdmaEventKind::Register, Some(4), None)
    );
    let unreg = decode(msg(
        t,
        0,
        0,
        &[
            u32a(sys::RDMA_NLDEV_ATTR_DEV_INDEX, 3),
            u8a(RDMA_NLDEV_ATTR_EVENT_TYPE, 1),
        ],
    ));
    assert_eq!(unreg.kind, RdmaEventKind::Unregister);
    let attach = decode(msg(
        t,
        0,
        0,
        &[
            u32a(sys::RDMA_NLDEV_ATTR_DEV_INDEX, 4),
            u32a(sys::RDMA_NLDEV_ATTR_PORT_INDEX, 1),
            u32a(sys::RDMA_NLDEV_ATTR_NDEV_INDEX, 7),
            u8a(RDMA_NLDEV_ATTR_EVENT_TYPE, 2),
        ],
    ));
    assert_eq!(
        (
            attach.kind,
            attach.dev_index,
            attach.port,
            attach.netdev_index
        ),
        (RdmaEventKind::NetdevAttach, Some(4), Some(1), Some(7))
    );
    let detach = decode(msg(
        t,
        0,
        0,
        &[
            u32a(sys::RDMA_NLDEV_ATTR_DEV_INDEX, 6),
            u32a(sys::RDMA_NLDEV_ATTR_PORT_INDEX, 2),
            u8a(RDMA_NLDEV_ATTR_EVENT_TYPE, 3),
        ],
    ));
    assert_eq!(
        (detach.kind, detach.netdev_index),
        (RdmaEventKind::NetdevDetach, None)
    );
    let rename = decode(msg(
        t,
        0,
        0,
        &[
            u32a(sys::RDMA_NLDEV_ATTR_DEV_INDEX, 5),
            stra(sys::RDMA_NLDEV_ATTR_DEV_NAME, "rocep8s0f0v0"),
            u8a(RDMA_NLDEV_ATTR_EVENT_TYPE, 4),
        ],
    ));
    assert_eq!(
        (rename.kind, rename.dev_name.as_deref()),
        (RdmaEventKind::Rename, Some("rocep8s0f0v0"))
    );
    let newer = decode(msg(t, 0, 0, &[u8a(RDMA_NLDEV_ATTR_EVENT_TYPE, 9)]));
    assert_eq!(newer.kind, RdmaEventKind::Other(9));
    // No event type: malformed, said as an error.
    assert!(decode_rdma_event(&u32a(sys::RDMA_NLDEV_ATTR_DEV_INDEX, 1), 0).is_err());
}

/// The 6.1 headers end the NLDEV attributes at RDMA_NLDEV_ATTR_MAX = 96;
/// upstream adds PRIVILEGED_QKEY_MODE, DRIVER_DETAILS, RES_SUBTYPE, DEV_TYPE,
/// PARENT_NAME and NAME_ASSIGN_TYPE before EVENT_TYPE: 96 + 6 = 102. The
/// commands end at STAT_GET_STATUS = 24; upstream adds RES_SRQ_GET_RAW,
/// NEWDEV and DELDEV before MONITOR: 24 + 4 = 28.
#[test]
fn hand_defined_constants_follow_the_6_1_enums() {
    assert_eq!(sys::RDMA_NLDEV_ATTR_MAX + 6, RDMA_NLDEV_ATTR_EVENT_TYPE);
    assert_eq!(sys::RDMA_NLDEV_CMD_STAT_GET_STATUS, 24);
}

/// Before 6.12 the kernel lets root join RDMA_NL_GROUP_NOTIFY and never
/// sends on it (the 6.1 rxe VM: the join succeeded, no event came): the
/// release decides. Distribution suffixes and a two-digit minor parse; a
/// release that does not parse leaves the decision to the join.
#[test]
fn monitor_events_need_6_12() {
    assert!(
        monitor_absent("6.1.0-27-amd64")
            .unwrap()
            .contains("Linux 6.1 ")
    );
    assert!(monitor_absent("5.14.0-503.el9.x86_64").is_some());
    assert!(monitor_absent("6.11.10").is_some());
    assert_eq!(monitor_absent("6.12.0"), None);
    assert_eq!(monitor_absent("6.18.44-fc-v782"), None);
    assert_eq!(monitor_absent("7.0-rc1"), None);
    assert_eq!(monitor_absent("mainline"), None);
    assert_eq!(monitor_absent(""), None);
}

/// The reader sleeps in poll(2) until an event or its listener's drop: it
/// does not wake each second to look at a stop flag (a syscall a second for
/// nothing), and it ends at once when dropped. In a network namespace of
/// the test's own thread (root needed), where no link changes.
#[test]
fn an_idle_reader_sleeps_until_its_listener_is_dropped() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("*** SKIPPED: not root ***");
        return;
    }
    // SAFETY: unshare takes no pointers; CLONE_NEWNET moves this thread only
    // (the test's own, and the reader it spawns) into a new network namespace.
    assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
    let s = Multicast::open(libc::NETLINK_ROUTE).unwrap();
    s.join(libc::RTNLGRP_LINK).unwrap();
    let l = Listener::spawn("evtest-idle", s, |_, _, _| None::<Result<LinkEvent, _>>).unwrap();
    let task = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| {
                std::fs::read_to_string(e.path().join("comm"))
                    .is_ok_and(|c| c.trim() == "evtest-idle")
            })
            .map(|e| e.path())
    };
    let wakes = |t: &std::path::Path| {
        let status = std::fs::read_to_string(t.join("status")).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("voluntary_ctxt_switches:"))
            .unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let mut t = None;
    for _ in 0..500 {
        t = task();
        if t.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let t = t.expect("reader thread");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = wakes(&t);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(wakes(&t), before, "the idle reader woke");
    drop(l);
    for _ in 0..500 {
        if !t.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the reader of a dropped listener still runs");
}

/// A wake-up with no stop behind it (the eventfd readable while the flag is
/// down) is drained, not left readable for poll(2) to return at once, again
/// and again; the reader waits on, and ends when the flag is raised and it
/// is woken. No namespace or event needed: the socket joins no group.
#[test]
fn a_wake_up_without_stop_is_drained_not_spun_on() {
    let mut socket = Multicast::open(libc::NETLINK_ROUTE).unwrap();
    let inbox: Arc<Mutex<Inbox<LinkEvent>>> = Arc::new(Mutex::new(Inbox::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(eventfd().unwrap());
    let reader = {
        let (inbox, stop, wake) = (inbox.clone(), stop.clone(), wake.clone());
        std::thread::spawn(move || {
            let decode = |_: u16, _: &[u8], _: u64| None::<Result<LinkEvent, _>>;
            read_loop(&mut socket, &inbox, &stop, &wake, &decode)
        })
    };
    let readable = |f: &std::fs::File| {
        let mut p = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(f),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, and the count says one.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    };
    std::io::Write::write(&mut &*wake, &1u64.to_ne_bytes()).unwrap();
    // Bounded: a reader that never drains fails the test, it does not hang.
    let drained = (0..1_000).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        !readable(&wake)
    });
    assert!(
        drained,
        "the eventfd is still readable: the reader spins in poll"
    );
    assert!(!reader.is_finished(), "the reader ended without its stop");
    stop.store(true, Ordering::Release);
    std::io::Write::write(&mut &*wake, &1u64.to_ne_bytes()).unwrap();
    reader.join().unwrap();
    assert!(inbox.lock().unwrap().failed.is_none());
}
