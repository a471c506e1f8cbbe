//! The event watch on the bundled sysfs tree (mlx5_1 port 1 is RoCE on
//! eth2, irdma0 on ens801f0), a plain file standing in for /dev/kmsg.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;
use crate::config::Config;
use crate::model::DeviceFilter;
use crate::model::finding::Finding;
use crate::sources::sysfs::SysfsSource;

fn snapshot() -> Snapshot {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed");
    let reading = SysfsSource::new(&root, DeviceFilter::default(), Duration::from_secs(60))
        .poll(Instant::now());
    let devices = crate::snapshot::devices(&reading, None, 0.0, crate::config::NetworkMode::Auto);
    Snapshot::of_devices(devices, Some(10.0))
}

/// A watch with only the kernel log on, reading `kmsg` (created empty).
fn watch(kmsg: &Path, extra: &str) -> EventWatch {
    std::fs::write(kmsg, b"").unwrap();
    let file = kmsg.with_extension("yaml");
    std::fs::write(
        &file,
        format!(
            "events:\n  link_events: false\n  rdma_monitor: false\n  kmsg_path: {}\n{extra}",
            kmsg.display()
        ),
    )
    .unwrap();
    EventWatch::open(
        &Config::load(Some(&file), std::iter::empty())
            .unwrap()
            .events,
    )
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rdma-mon-events-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join("kmsg")
}

fn append(path: &Path, lines: &[&str]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    for l in lines {
        f.write_all(l.as_bytes()).unwrap();
    }
}

/// One cycle of the watch and the findings engine.
fn cycle(w: &mut EventWatch, e: &mut Findings, now_ms: u64) -> (Vec<Finding>, Snapshot) {
    let mut snap = snapshot();
    w.cycle(&mut snap, e, now_ms);
    let (f, _) = e.evaluate(&snap, now_ms);
    (f, snap)
}

/// Lines written to the log become one finding per place: the device the
/// dictionary or the text names, else a subject; the worst pattern's
/// severity; the line as evidence. Unmatched lines are read, not matched.
#[test]
fn kernel_log_lines_become_findings_naming_their_device() {
    let path = tmp("lines");
    let mut w = watch(&path, "");
    let mut e = Findings::new(Config::defaults().analysis);
    append(
        &path,
        &[
            // printk's record of ibdev_warn() on rxe (class device, no parent): DEVICE=+infiniband:<name>.
            "4,100,1000,-;mlx5_ib: something the driver warns about\n SUBSYSTEM=infiniband\n DEVICE=+infiniband:mlx5_1\n",
            // The stand-in, as `echo "<3>mlx5_core ..." > /dev/kmsg` records it (facility 1).
            "11,101,1001,-;mlx5_core 0000:5e:00.0: wait_func:1189:(pid 72061): ACCESS_REG(0x805) timeout. Will cause a leak of a command resource\n",
            "6,102,1002,-;e1000e 0000:00:19.0 eno1: NIC Link is Up 1000 Mbps Full Duplex\n",
            "6,103,1003,-;infiniband mlx5_0: set down\n",
        ],
    );
    let (f, snap) = cycle(&mut w, &mut e, 10_000);
    let logs: Vec<&Finding> = f.iter().filter(|f| f.id == "kernel_log_event").collect();
    assert_eq!(logs.len(), 2, "{logs:#?}");
    let pci = logs
        .iter()
        .find(|f| f.subject.as_deref() == Some("pci 0000:5e:00.0"))
        .unwrap();
    assert_eq!(pci.severity, Severity::Critical);
    assert_eq!(pci.device, "");
    assert_eq!(pci.evidence["facility"], 1);
    assert!(
        pci.evidence["line"]
            .as_str()
            .unwrap()
            .contains("ACCESS_REG(0x805) timeout")
    );
    assert_eq!(pci.evidence["patterns"]["mlx5_command_timeout"], 1);
    let dev = logs.iter().find(|f| f.device == "mlx5_0").unwrap();
    assert_eq!(
        (dev.severity, dev.subject.as_deref()),
        (Severity::Info, None)
    );
    // mlx5_ib at warning (4) is not an error: no driver_error.
    assert!(!logs.iter().any(|f| f.device == "mlx5_1"));
    let ev = snap.events.as_ref().unwrap();
    assert_eq!(
        (
            ev.kernel_log.state,
            ev.kernel_log.received_total,
            ev.kernel_log_matched_total
        ),
        ("listening", 4, 2)
    );
    // Held: still there two cycles later without new lines, gone after the hold.
    assert_eq!(
        cycle(&mut w, &mut e, 20_000)
            .0
            .iter()
            .filter(|f| f.id == "kernel_log_event")
            .count(),
        2
    );
    assert!(
        !cycle(&mut w, &mut e, 10_000 + 3_600_001)
            .0
            .iter()
            .any(|f| f.id == "kernel_log_event")
    );
}

/// A configured pattern is tried before the built-in ones; without the
/// built-in ones a built-in line matches nothing.
#[test]
fn configured_patterns_first_builtins_optional() {
    let path = tmp("patterns");
    let mut w = watch(
        &path,
        "  builtin_patterns: false\n  patterns:\n    - {name: site_rule, driver: irdma, contains: [reset], severity: warning}\n",
    );
    let mut e = Findings::new(Config::defaults().analysis);
    append(
        &path,
        &[
            "3,1,1,-;irdma 0000:af:00.0: Requesting a reset\n",
            "3,2,2,-;mlx5_core 0000:5e:00.0: poll_health:852:(pid 0): device's health compromised - reached miss count\n",
        ],
    );
    let (f, _) = cycle(&mut w, &mut e, 1);
    let logs: Vec<&Finding> = f.iter().filter(|f| f.id == "kernel_log_event").collect();
    assert_eq!(logs.len(), 1, "{logs:#?}");
    assert_eq!(logs[0].evidence["patterns"]["site_rule"], 1);
}

/// A kernel log that cannot be opened is said in the status, and the
/// metrics say the listener is not listening; nothing else is exported.
#[test]
fn an_unreadable_log_is_a_status_not_a_failure() {
    let mut w = watch(&tmp("missing"), "");
    w.kmsg = State::Off;
    let file = tmp("missing2").with_extension("yaml");
    std::fs::write(
        &file,
        "events:\n  link_events: false\n  rdma_monitor: false\n  kmsg_path: /nonexistent/kmsg\n",
    )
    .unwrap();
    let mut w2 = EventWatch::open(
        &Config::load(Some(&file), std::iter::empty())
            .unwrap()
            .events,
    );
    let mut e = Findings::new(Config::defaults().analysis);
    let (_, snap) = cycle(&mut w2, &mut e, 1);
    let st = &snap.events.as_ref().unwrap().kernel_log;
    assert_eq!(st.state, "failed");
    assert!(st.detail.as_deref().unwrap().contains("/nonexistent/kmsg"));
    let mut out = crate::metrics::Builder::new();
    w2.export(&mut out);
    let set = out.finish();
    let listening = set.get(
        "rdma_monitor_events_listening",
        &[("listener", "kernel_log")],
    );
    assert!(
        matches!(listening, Some(crate::metrics::Value::U64(0))),
        "{listening:?}"
    );
    assert!(
        set.get("rdma_monitor_kernel_log_records_matched_total", &[])
            .is_none()
    );
    assert!(
        set.get(
            "rdma_monitor_events_received_total",
            &[("listener", "link")]
        )
        .is_none()
    );
    drop(w);
}

/// Two flaps of mlx5_1's netdev eth2 between two polls, seen only by link
/// events (the port is ACTIVE at both polls and no counter moved): the
/// second poll raises link_flapping, and the transitions carry the times
/// the carrier came back, not the poll's.
#[test]
fn two_flaps_between_polls_from_link_events() {
    let path = tmp("flaps");
    let mut w = watch(&path, "");
    let mut e = Findings::new(Config::defaults().analysis);
    assert!(
        !cycle(&mut w, &mut e, 10_000)
            .0
            .iter()
            .any(|f| f.id == "link_flapping")
    );
    let ev = |ms: u64, netdev: &str, carrier: bool| LinkEvent {
        unix_ms: ms,
        ifindex: 4,
        netdev: netdev.into(),
        carrier,
        operstate: None,
        deleted: false,
    };
    let events = [
        ev(12_000, "eth2", true),
        ev(12_100, "eth2", false),
        ev(12_400, "eth2", true),
        ev(12_500, "eth2", false),
        ev(12_900, "eth2", true),
        // Not an RDMA port's netdev: ignored.
        ev(12_950, "veth7", false),
        ev(12_960, "veth7", true),
    ];
    let mut snap = snapshot();
    let names = Names::of(&snap);
    let kept: Vec<LinkEvent> = events
        .iter()
        .filter(|e| names.is_rdma_netdev(&e.netdev))
        .cloned()
        .collect();
    let ups = w.transitions(&kept);
    assert_eq!(ups["eth2"], [12_400, 12_900]);
    e.feed_events(ups, Vec::new());
    w.read_kernel_log(&snap, &mut None, 20_000);
    let (f, _) = e.evaluate(&snap, 20_000);
    let flap = f
        .iter()
        .find(|f| f.id == "link_flapping")
        .expect("flap from events");
    assert_eq!((flap.device.as_str(), flap.port), ("mlx5_1", Some(1)));
    assert_eq!(flap.evidence["transitions"], 2);
    snap.events = None;
}
