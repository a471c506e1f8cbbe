//! Attribution end to end on replayed data: the QP/MR/CQ/PD dumps recorded
//! in the rxe VM (fixtures/netlink/rxe-6.1-res: pingpong server pid 161 on
//! rxe1, client pid 163 on rxe0) against the `/proc` tree of
//! fixtures/proc/node-jobs, where 161 is in Slurm job 4242 step 0 and 163 in
//! job 77's batch step.

use super::*;
use crate::model::consumers::Kind;
use crate::sources::netlink::nldev::poll::NldevDeviceReading as DeviceReading;
use crate::sources::netlink::nldev::res::tests::recorded_replay;
use crate::sources::netlink::nldev::{BoundCounter, Device, Named, decode_bound_counters};
use crate::sys::*;

pub(crate) fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/node-jobs")
}

/// The recorded PIDs are not this host's: their exits are watched through
/// pidfds of the test process itself, which outlives every test.
fn source(max: usize) -> AttributionSource {
    let root = fixture();
    AttributionSource::new(&root.join("proc"), &root, Duration::from_secs(30), max)
        .with_pidfd_opener(Box::new(|_| pidfd_open(std::process::id())))
}

pub(crate) fn reading(bound: Vec<BoundCounter>) -> NetlinkReading {
    let dev = |index: u32, name: &str| DeviceReading {
        device: Device {
            index,
            name: name.into(),
            ..Device::default()
        },
        ports: Vec::new(),
        resources: summary(2),
        bound_counters: bound
            .iter()
            .filter(|b| b.dev_index == index)
            .cloned()
            .collect(),
    };
    NetlinkReading {
        devices: vec![dev(0, "rxe0"), dev(1, "rxe1")],
        ..NetlinkReading::default()
    }
}

/// A RES_GET summary of `qps` QPs (the recorded devices each hold two: the
/// GSI QP and a pingpong RC QP).
fn summary(qps: u64) -> Vec<crate::model::Counter> {
    [("qp", qps), ("cq", 2), ("mr", 1), ("pd", 2)]
        .map(|(name, value)| crate::model::Counter {
            name: name.into(),
            value,
        })
        .to_vec()
}

#[test]
fn recorded_dumps_name_the_slurm_jobs() {
    let mut src = source(256);
    let mut client = Client::new(recorded_replay());
    let now = Instant::now();
    let a = src
        .poll(now, || 1, &mut client, &reading(Vec::new()))
        .unwrap();
    assert_eq!(a.status.errors, Vec::<String>::new());
    assert_eq!(a.status.round_trips, 8, "one dump per type and device");
    let ids: Vec<(&str, Kind)> = a
        .consumers
        .iter()
        .map(|c| (c.id.as_str(), c.kind))
        .collect();
    assert_eq!(
        ids,
        [("4242.0", Kind::SlurmJob), ("77.batch", Kind::SlurmJob)]
    );
    let j = &a.consumers[0];
    assert_eq!(j.labels.user.as_deref(), Some("alice"));
    assert_eq!(j.ports.len(), 1);
    assert_eq!(
        (j.ports[0].device.as_str(), j.ports[0].port, j.ports[0].qps),
        ("rxe1", 1, 1)
    );
    assert_eq!(j.ports[0].qps_by_type["RC"], 1);
    assert_eq!(j.ports[0].qps_by_state["RTS"], 1);
    assert_eq!((j.mrs, j.mr_bytes, j.cqs, j.pds), (1, 4096, 1, 1));
    assert_eq!(j.processes[0].pid, 161);
    assert!(j.counters.is_empty(), "rxe keeps no bound counters");
    assert_eq!(a.consumers[1].ports[0].device, "rxe0");
    // The two GSI QPs are the kernel's.
    assert_eq!(a.status.unattributed.kernel_qps, 2);
    assert_eq!(a.status.unattributed.user_qps, 0);
    // Not due again before the interval; due after it.
    assert!(
        src.poll(now, || 2, &mut client, &reading(Vec::new()))
            .is_none()
    );
    assert!(src.due(now + Duration::from_secs(30)));
}

/// The same dump against a `/proc` where the client (163) has exited and the
/// server's PID (161) now belongs to a process started after the dump.
#[test]
fn vanished_and_reused_pids_are_unattributed() {
    let tmp = tempfile::tempdir().unwrap();
    crate::testutil::copy_tree(&fixture(), tmp.path());
    let proc_root = tmp.path().join("proc");
    std::fs::remove_dir_all(proc_root.join("163")).unwrap();
    let stat = std::fs::read_to_string(proc_root.join("161/stat"))
        .unwrap()
        .replace(" 50010 ", " 100001 "); // uptime is 1000.00 s = 100000 ticks
    std::fs::write(proc_root.join("161/stat"), stat).unwrap();
    let mut src = AttributionSource::new(&proc_root, tmp.path(), Duration::ZERO, 256);
    let mut client = Client::new(recorded_replay());
    let a = src
        .poll(Instant::now(), || 1, &mut client, &reading(Vec::new()))
        .unwrap();
    assert!(a.consumers.is_empty());
    assert_eq!(a.status.vanished, 2);
    assert_eq!(a.status.unattributed.user_qps, 2);
    assert_eq!(a.status.unattributed.mrs, 2);
    assert_eq!(a.status.unattributed.mr_bytes, 8192);
}

pub(crate) fn attr(kind: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
    v.extend_from_slice(&(kind as u16).to_ne_bytes());
    v.extend_from_slice(payload);
    v.resize(v.len().next_multiple_of(4), 0);
    v
}

/// One STAT_COUNTER_ENTRY of a counter in auto mode by PID, laid out as
/// `fill_res_counter_entry` (drivers/infiniband/core/nldev.c, kernel ≥ 5.3)
/// writes it: port, counter id, mode, the PID (`fill_stat_counter_mode` →
/// `fill_res_name_pid`), the hw counters, the bound QPs. mlx5 produces these
/// once an operator sets `rdma statistic qp set link mlx5_0/1 auto pid on`
/// (`network.qp_counter_auto_mode: [pid]`); rxe does not (fixtures/netlink/README.md).
fn pid_counter(id: u32, pid: u32, lqpn: u32, rx_write: u64) -> Vec<u8> {
    pid_counter_with(
        id,
        pid,
        lqpn,
        &[("rx_write_requests", rx_write), ("out_of_sequence", 2)],
    )
}

/// [`pid_counter`] with any hw counters: an optional counter that is
/// enabled is one more STAT_HWCOUNTER_ENTRY (`fill_stat_counter_hwcounters`
/// skips only the disabled ones), so mlx5 on Linux ≥ 6.15 with
/// `optional-counters on` in auto mode adds `rdma_tx_bytes` and the like here.
pub(crate) fn pid_counter_with(id: u32, pid: u32, lqpn: u32, hws: &[(&str, u64)]) -> Vec<u8> {
    let hw = |name: &str, v: u64| {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        attr(
            RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY,
            &[
                attr(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_NAME, &n),
                attr(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_VALUE, &v.to_ne_bytes()),
            ]
            .concat(),
        )
    };
    attr(
        RDMA_NLDEV_ATTR_STAT_COUNTER_ENTRY,
        &[
            attr(RDMA_NLDEV_ATTR_PORT_INDEX, &1u32.to_ne_bytes()),
            attr(RDMA_NLDEV_ATTR_STAT_COUNTER_ID, &id.to_ne_bytes()),
            attr(
                RDMA_NLDEV_ATTR_STAT_MODE,
                &RDMA_COUNTER_MODE_AUTO.to_ne_bytes(),
            ),
            attr(RDMA_NLDEV_ATTR_RES_PID, &pid.to_ne_bytes()),
            attr(
                RDMA_NLDEV_ATTR_STAT_HWCOUNTERS,
                &hws.iter()
                    .map(|(n, v)| hw(n, *v))
                    .collect::<Vec<_>>()
                    .concat(),
            ),
            attr(
                RDMA_NLDEV_ATTR_RES_QP,
                &attr(
                    RDMA_NLDEV_ATTR_RES_QP_ENTRY,
                    &attr(RDMA_NLDEV_ATTR_RES_LQPN, &lqpn.to_ne_bytes()),
                ),
            ),
        ]
        .concat(),
    )
}

/// Bound counters in auto mode by PID (constructed: rxe has none) are decoded
/// and summed per consumer; a counter of a PID that is gone is not attributed.
#[test]
fn bound_pid_counters_become_consumer_counters() {
    let payload = [
        attr(RDMA_NLDEV_ATTR_DEV_INDEX, &1u32.to_ne_bytes()),
        attr(
            RDMA_NLDEV_ATTR_STAT_COUNTER,
            &[
                pid_counter(4, 161, 17, 1000),
                pid_counter(5, 160, 18, 500),
                pid_counter(6, 4000, 19, 7),
            ]
            .concat(),
        ),
    ]
    .concat();
    let bound = decode_bound_counters(&payload).unwrap();
    assert_eq!(bound.len(), 3);
    assert_eq!(
        (bound[0].pid, bound[0].mode, bound[0].qpns.as_slice()),
        (Some(161), Some(1), &[17][..])
    );
    assert_eq!(
        bound[0].counters[0],
        Named {
            name: "rx_write_requests".into(),
            value: 1000
        }
    );
    let mut src = source(256);
    let mut client = Client::new(recorded_replay());
    let a = src
        .poll(Instant::now(), || 1, &mut client, &reading(bound))
        .unwrap();
    assert!(a.status.pid_counters);
    let j = a.consumers.iter().find(|c| c.id == "4242.0").unwrap();
    assert_eq!(j.counters.len(), 1);
    assert_eq!(
        (j.counters[0].device.as_str(), j.counters[0].port),
        ("rxe1", 1)
    );
    // 161 and 160 are both in job 4242 step 0.
    assert_eq!(j.counters[0].values["rx_write_requests"], 1500);
    assert_eq!(j.counters[0].values["out_of_sequence"], 4);
    assert!(
        !a.consumers
            .iter()
            .any(|c| c.processes.iter().any(|p| p.pid == 4000))
    );
}

fn proc_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/proc")
        .join(name)
}

/// The agent's PID namespace from `<proc_root>/self`: the ns link names the
/// initial namespace's fixed inode only on the host; NSpid with two entries
/// proves nesting even without the link; one entry alone proves nothing.
#[test]
fn pid_namespace_is_detected_from_proc_self() {
    assert_eq!(parse_ns_link("pid:[4026531836]"), Some(PROC_PID_INIT_INO));
    assert_eq!(parse_ns_link("net:[4026531836]"), None);
    assert_eq!(parse_nspid("Name:\tx\nNSpid:\t4121\t7\n"), Some(2));
    assert_eq!(host_pid_namespace(&proc_fixture("pidns-host")), Some(true));
    assert_eq!(
        host_pid_namespace(&proc_fixture("pidns-nested")),
        Some(false)
    );
    assert_eq!(
        host_pid_namespace(&proc_fixture("pidns-status-only")),
        Some(false)
    );
    assert_eq!(
        host_pid_namespace(&fixture().join("proc")),
        None,
        "no self: cannot tell"
    );
    let nested = proc_fixture("pidns-nested");
    let mut src = AttributionSource::new(&nested, &nested, Duration::ZERO, 256);
    let a = src.group(&ResDump::default(), &[], AttributionStatus::default(), None);
    assert_eq!(a.status.host_pid_namespace, Some(false));
    assert_eq!(
        src.unavailable(1, "x").status.host_pid_namespace,
        Some(false)
    );
}

/// When the netlink reading fails the cycle publishes no consumers (not the
/// last dump's) and says why; the next reading dumps at once.
#[test]
fn an_unavailable_cycle_publishes_no_stale_consumers() {
    let mut src = source(256);
    let mut client = Client::new(recorded_replay());
    let now = Instant::now();
    let a = src
        .poll(now, || 1, &mut client, &reading(Vec::new()))
        .unwrap();
    assert_eq!(a.consumers.len(), 2);
    let u = src.unavailable(2, "RDMA_NLDEV_CMD_GET: ENOBUFS");
    assert!(u.consumers.is_empty());
    assert_eq!(
        u.status.unavailable.as_deref(),
        Some("RDMA_NLDEV_CMD_GET: ENOBUFS")
    );
    assert!(
        src.due(now),
        "dumps again at the next reading, not after the interval"
    );
}

/// A dump keeps at most its budget of entries; the rest are counted.
#[test]
fn dump_records_are_bounded_and_the_rest_counted() {
    use crate::sources::netlink::nldev::res::tests::recorded;
    let budget = Budget::new(1);
    let mut c = Client::new(crate::sources::netlink::Replay::new([
        recorded("02-res-qp-rxe0.bin"),
        recorded("03-res-mr-rxe0.bin"),
    ]));
    let qps = c.res_qps_within(0, &budget).unwrap();
    assert_eq!(qps.len(), 1);
    assert_eq!(
        budget.dropped(),
        1,
        "rxe0 holds two QPs (GSI and the client's RC)"
    );
    let budget = Budget::new(0);
    assert!(
        c.res_objects_within(0, ResKind::Mr, &budget)
            .unwrap()
            .is_empty()
    );
    assert_eq!(budget.dropped(), 1);
}

/// Between interval dumps, a cycle whose resource summary equals the last
/// dump's makes no request and publishes nothing new (the last pass stands);
/// a changed count, or a device whose summary did not read, dumps again at
/// once, before the interval.
#[test]
fn a_changed_resource_summary_dumps_again_before_the_interval() {
    use crate::sources::netlink::nldev::res::tests::{RECORDED_PASS, recorded};
    // Three passes' worth of replies.
    let replies = RECORDED_PASS.iter().cycle().take(24).map(|f| recorded(f));
    let mut client = Client::new(crate::sources::netlink::Replay::new(replies));
    let mut src = source(256);
    let now = Instant::now();
    let steady = reading(Vec::new());
    assert!(src.poll(now, || 1, &mut client, &steady).is_some());
    assert_eq!(client.stats().round_trips, 8);
    let later = now + Duration::from_secs(1);
    assert!(src.poll(later, || 2, &mut client, &steady).is_none());
    assert_eq!(
        client.stats().round_trips,
        8,
        "no request when nothing changed"
    );
    // rxe1 has one QP more: dumped again, a second before the 30 s interval.
    let mut changed = reading(Vec::new());
    changed.devices[1].resources = summary(3);
    let a = src.poll(later, || 3, &mut client, &changed).unwrap();
    assert_eq!((a.status.round_trips, a.status.timestamp_unix_ms), (8, 3));
    assert_eq!(a.consumers.len(), 2);
    assert!(src.poll(later, || 4, &mut client, &changed).is_none());
    // rxe0's RES_GET failed this cycle: nothing to judge by, dumped.
    let mut unread = reading(Vec::new());
    unread.devices[1].resources = summary(3);
    unread.devices[0].resources.clear();
    assert!(src.poll(later, || 5, &mut client, &unread).is_some());
    assert_eq!(client.stats().round_trips, 24);
}

/// Bound per-PID counters move every cycle: between dumps the last dump is
/// grouped again with this cycle's values, without a request.
#[test]
fn bound_counters_stay_current_between_dumps() {
    let bound = |rx_write: u64| {
        let payload = [
            attr(RDMA_NLDEV_ATTR_DEV_INDEX, &1u32.to_ne_bytes()),
            attr(
                RDMA_NLDEV_ATTR_STAT_COUNTER,
                &pid_counter(4, 161, 17, rx_write),
            ),
        ]
        .concat();
        decode_bound_counters(&payload).unwrap()
    };
    let job = |a: &Attribution| {
        let j = a.consumers.iter().find(|c| c.id == "4242.0").unwrap();
        j.counters[0].values["rx_write_requests"]
    };
    let mut src = source(256);
    let mut client = Client::new(recorded_replay());
    let now = Instant::now();
    let a = src
        .poll(now, || 1, &mut client, &reading(bound(1000)))
        .unwrap();
    assert_eq!(job(&a), 1000);
    let later = now + Duration::from_secs(1);
    let a = src
        .poll(later, || 2, &mut client, &reading(bound(2500)))
        .unwrap();
    assert_eq!(job(&a), 2500);
    assert_eq!(client.stats().round_trips, 8, "grouped again, not dumped");
    assert_eq!(
        a.status.timestamp_unix_ms, 1,
        "the consumers are the first dump's"
    );
    // The counters unbound: grouped once more without them, then nothing.
    let a = src
        .poll(later, || 3, &mut client, &reading(Vec::new()))
        .unwrap();
    assert!(a.consumers.iter().all(|c| c.counters.is_empty()));
    assert!(
        src.poll(later, || 4, &mut client, &reading(Vec::new()))
            .is_none()
    );
}

/// Job 1234 ends and job 1235 starts with equal resource counts within a
/// cycle: the summary is unchanged, but the dumped process (the server, PID
/// 161) exited, so the next cycle dumps again rather than publishing the
/// ended job's consumer. The server's pidfd stands in as a pipe: it polls
/// readable once written to, as a pidfd does when its process exits (no
/// process is started).
#[test]
fn an_exited_dumped_process_dumps_again_with_an_equal_summary() {
    use crate::sources::netlink::nldev::res::tests::{RECORDED_PASS, recorded};
    use std::io::Write;
    let (server_fd, mut server_exits) = std::io::pipe().unwrap();
    let replies = RECORDED_PASS.iter().cycle().take(16).map(|f| recorded(f));
    let mut client = Client::new(crate::sources::netlink::Replay::new(replies));
    let root = fixture();
    let mut src = AttributionSource::new(&root.join("proc"), &root, Duration::from_secs(30), 256)
        .with_pidfd_opener(Box::new(move |pid| {
            if pid == 161 {
                server_fd
                    .try_clone()
                    .map(OwnedFd::from)
                    .map_err(|_| libc::EIO)
            } else {
                pidfd_open(std::process::id())
            }
        }));
    let now = Instant::now();
    let steady = reading(Vec::new());
    assert!(src.poll(now, || 1, &mut client, &steady).is_some());
    let later = now + Duration::from_secs(1);
    assert!(
        src.poll(later, || 2, &mut client, &steady).is_none(),
        "every dumped process alive: the dump stands"
    );
    server_exits.write_all(b"x").unwrap();
    let a = src.poll(later, || 3, &mut client, &steady);
    assert_eq!(
        a.map(|a| a.status.timestamp_unix_ms),
        Some(3),
        "dumped again"
    );
    assert_eq!(client.stats().round_trips, 16);
}

/// Over the budget of watched PIDs, or without pidfds, every cycle dumps.
#[test]
fn an_unwatched_dump_is_not_kept() {
    use crate::sources::netlink::nldev::res::tests::{RECORDED_PASS, recorded};
    let replies = RECORDED_PASS.iter().cycle().take(16).map(|f| recorded(f));
    let mut client = Client::new(crate::sources::netlink::Replay::new(replies));
    let mut src = source(256).with_pidfd_opener(Box::new(|_| Err(libc::ENOSYS)));
    let now = Instant::now();
    let steady = reading(Vec::new());
    assert!(src.poll(now, || 1, &mut client, &steady).is_some());
    assert!(src.poll(now, || 2, &mut client, &steady).is_some());
    assert_eq!(client.stats().round_trips, 16);
}

/// The PID-reuse check of a regroup between dumps goes by the dump's time:
/// a process that started after the dump (but before this cycle) cannot own
/// what the dump listed, even though it started before "now".
#[test]
fn a_regroup_judges_reuse_by_the_dump_time() {
    let tmp = tempfile::tempdir().unwrap();
    crate::testutil::copy_tree(&fixture(), tmp.path());
    let proc_root = tmp.path().join("proc");
    let bound = || {
        let payload = [
            attr(RDMA_NLDEV_ATTR_DEV_INDEX, &1u32.to_ne_bytes()),
            attr(RDMA_NLDEV_ATTR_STAT_COUNTER, &pid_counter(4, 161, 17, 1)),
        ]
        .concat();
        decode_bound_counters(&payload).unwrap()
    };
    let mut src = AttributionSource::new(&proc_root, tmp.path(), Duration::from_secs(30), 256)
        .with_pidfd_opener(Box::new(|_| pidfd_open(std::process::id())));
    let mut client = Client::new(recorded_replay());
    let now = Instant::now();
    let a = src.poll(now, || 1, &mut client, &reading(bound())).unwrap();
    let owns_161 = |a: &Attribution| {
        a.consumers
            .iter()
            .any(|c| c.processes.iter().any(|p| p.pid == 161))
    };
    assert!(owns_161(&a));
    // The dump was at uptime 1000.00 s (100000 ticks); now it is 2000.00 s
    // and PID 161 belongs to a process started at 1500.00 s.
    std::fs::write(proc_root.join("uptime"), "2000.00 1000.00\n").unwrap();
    let stat = std::fs::read_to_string(proc_root.join("161/stat"))
        .unwrap()
        .replace(" 50010 ", " 150000 ");
    std::fs::write(proc_root.join("161/stat"), stat).unwrap();
    let later = now + Duration::from_secs(1);
    let a = src
        .poll(later, || 2, &mut client, &reading(bound()))
        .unwrap();
    assert_eq!(a.status.timestamp_unix_ms, 1, "regrouped, not dumped");
    assert!(!owns_161(&a), "PID 161 was reused after the dump");
    assert_eq!(a.status.vanished, 1);
}
