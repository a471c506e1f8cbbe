//! Tests against the bundled tree (fixtures/sysfs/node-mixed, see its README).

use super::*;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed")
}

/// A copy of the bundled tree to change, and a source over it (no rescan due for an hour).
fn copied_fixture() -> (tempfile::TempDir, SysfsSource) {
    let dir = tempfile::tempdir().unwrap();
    crate::testutil::copy_tree(&fixture(), dir.path());
    let s = SysfsSource::new(
        dir.path(),
        DeviceFilter::default(),
        Duration::from_secs(3600),
    );
    (dir, s)
}

fn poll_fixture() -> (SysfsSource, NodeReading) {
    let mut s = SysfsSource::new(&fixture(), DeviceFilter::default(), Duration::from_secs(60));
    let r = s.poll(Instant::now());
    (s, r)
}

fn device<'a>(r: &'a NodeReading, name: &str) -> &'a DeviceReading {
    r.devices.iter().find(|d| &*d.info.name == name).unwrap()
}

fn counter(list: &[Counter], name: &str) -> Option<u64> {
    list.iter().find(|c| &*c.name == name).map(|c| c.value)
}

#[test]
fn reads_every_device() {
    let (_, r) = poll_fixture();
    assert!(r.class_present);
    let names: Vec<&str> = r.devices.iter().map(|d| &*d.info.name).collect();
    assert_eq!(
        names,
        ["efa_0", "hfi1_0", "irdma0", "mlx4_0", "mlx5_0", "mlx5_1"]
    );
}

#[test]
fn device_attributes() {
    let (_, r) = poll_fixture();
    let d = &device(&r, "mlx5_0").info;
    assert_eq!(d.fw_ver.as_deref(), Some("20.31.1014"));
    assert_eq!(d.board_id.as_deref(), Some("MT_0000000223"));
    assert_eq!(d.hca_type.as_deref(), Some("MT4123"));
    assert_eq!(d.node_guid, Some(0x0c42_a103_0071_6a10));
    assert_eq!(
        d.node_type,
        Some(Enumerated {
            value: 1,
            name: "CA".into()
        })
    );
    assert_eq!(d.driver.as_deref(), Some("mlx5_core"));
    let hfi = &device(&r, "hfi1_0").info;
    assert_eq!(hfi.board_id, None);
    assert_eq!(&*hfi.unsupported, [Arc::<str>::from("hfi1_0/board_id")]);
    // An empty node_desc is absent, not "".
    assert_eq!(device(&r, "efa_0").info.node_desc, None);
}

#[test]
fn ib_port() {
    let (_, r) = poll_fixture();
    let p = &device(&r, "mlx5_0").ports[0];
    assert_eq!(p.port, 1);
    assert_eq!(p.state.as_ref().unwrap().value, 4);
    assert_eq!(p.phys_state.as_ref().unwrap().name, "LinkUp");
    assert_eq!(p.rate.as_ref().unwrap().gbit_per_sec, 200.0);
    assert_eq!(p.info.link_layer.as_deref(), Some("InfiniBand"));
    assert_eq!(
        (p.info.lid, p.info.sm_lid, p.info.lmc),
        (Some(0x12), Some(1), Some(0))
    );
    assert_eq!(p.info.cap_mask, Some(0xa751_e848));
    assert_eq!(p.info.netdev.as_deref(), Some("ib0"));
    assert_eq!(
        counter(&p.counters, "port_xmit_data"),
        Some(9_876_543_210_123)
    );
    assert_eq!(p.counters.len(), 21);
    assert_eq!(p.info.hw_counters_lifespan_ms, Some(12));
    assert!(counter(&p.hw_counters, "lifespan").is_none());
    // The unused (all-zero) GID is left out.
    assert_eq!(p.info.gids.len(), 1);
    assert_eq!(p.info.gids[0].gid_type.as_deref(), Some("IB/RoCE v1"));
    assert_eq!(p.info.gids[0].netdev, None);
}

#[test]
fn roce_port_gids_and_netdev() {
    let (_, r) = poll_fixture();
    let p = &device(&r, "mlx5_1").ports[0];
    assert_eq!(p.info.netdev.as_deref(), Some("eth2"));
    let gids: Vec<(&str, &str)> = p
        .info
        .gids
        .iter()
        .map(|g| (g.gid.as_str(), g.gid_type.as_deref().unwrap()))
        .collect();
    assert_eq!(gids.len(), 6);
    assert_eq!(
        gids[3],
        ("0000:0000:0000:0000:0000:ffff:0a00:0005", "RoCE v2")
    );
    assert!(counter(&p.hw_counters, "np_cnp_sent").is_some());
}

#[test]
fn dual_port_mixed_link_layers() {
    let (_, r) = poll_fixture();
    let d = device(&r, "mlx4_0");
    assert_eq!(d.ports.len(), 2);
    assert_eq!(d.ports[0].info.link_layer.as_deref(), Some("InfiniBand"));
    assert_eq!(d.ports[0].info.netdev.as_deref(), Some("ib1"));
    assert_eq!(d.ports[1].info.link_layer.as_deref(), Some("Ethernet"));
    assert_eq!(d.ports[1].info.netdev.as_deref(), Some("eth3"));
    assert_eq!(d.ports[1].state.as_ref().unwrap().name, "DOWN");
}

#[test]
fn quirks_are_absent_not_zero() {
    let (_, r) = poll_fixture();
    let hfi = &device(&r, "hfi1_0").ports[0];
    // "N/A (no PMA)" is unsupported, not a value and not an error.
    assert_eq!(counter(&hfi.counters, "port_xmit_wait"), None);
    assert!(
        hfi.unsupported
            .iter()
            .any(|u| &**u == "hfi1_0/ports/1/counters/port_xmit_wait")
    );
    assert!(!hfi.info.has_hw_counters);
    assert!(
        hfi.unsupported
            .iter()
            .any(|u| &**u == "hfi1_0/ports/1/hw_counters")
    );
    assert!(hfi.hw_counters.is_empty());

    let efa = device(&r, "efa_0");
    assert!(!efa.ports[0].info.has_counters);
    assert!(efa.ports[0].counters.is_empty());
    assert_eq!(
        &*efa.ports[0].unsupported,
        [Arc::<str>::from("efa_0/ports/1/counters")]
    );
    assert_eq!(efa.hw_counters.len(), 7);

    let irdma = &device(&r, "irdma0").ports[0];
    assert_eq!(counter(&irdma.hw_counters, "ip4InDiscards"), None);
    assert_eq!(counter(&irdma.hw_counters, "tcpRetransSegs"), None);
    assert_eq!(
        counter(&irdma.hw_counters, "cnpSent"),
        Some(600_000 + 1009 * 3)
    );
    assert_eq!(irdma.info.cap_mask, None);
    let errs: Vec<&str> = r.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        errs,
        [
            "irdma0/ports/1/hw_counters/ip4InDiscards",
            "irdma0/ports/1/hw_counters/tcpRetransSegs"
        ]
    );
    assert!(
        r.errors[0].reason.starts_with("EISDIR"),
        "{:?}",
        r.errors[0]
    );
    assert!(
        r.errors[1].reason.contains("not a number"),
        "{:?}",
        r.errors[1]
    );
}

#[test]
fn failing_files_are_not_reread_every_cycle() {
    let (mut s, _) = poll_fixture();
    let reads_first = s.stats().file_reads;
    let r2 = s.poll(Instant::now());
    let reads_second = s.stats().file_reads - reads_first;
    // The second cycle reads only what moves, and nothing that failed.
    assert!(r2.errors.is_empty(), "{:?}", r2.errors);
    assert!(
        reads_second < reads_first,
        "{reads_second} vs {reads_first}"
    );
    let counted: usize = r2
        .devices
        .iter()
        .flat_map(|d| d.ports.iter())
        .map(|p| 3 + p.counters.len() + p.hw_counters.len())
        .sum::<usize>()
        + r2.devices
            .iter()
            .map(|d| d.hw_counters.len())
            .sum::<usize>();
    assert_eq!(reads_second as usize, counted);
}

#[test]
fn filter_and_absent_class() {
    let mut s = SysfsSource::new(
        &fixture(),
        DeviceFilter {
            include: vec!["mlx5_0".into(), "mlx5_1".into()],
            exclude: vec!["mlx5_1".into()],
        },
        Duration::from_secs(60),
    );
    let r = s.poll(Instant::now());
    assert_eq!(r.devices.len(), 1);
    assert_eq!(&*r.devices[0].info.name, "mlx5_0");

    let empty = tempfile::tempdir().unwrap();
    let mut s = SysfsSource::new(
        empty.path(),
        DeviceFilter::default(),
        Duration::from_secs(60),
    );
    let r = s.poll(Instant::now());
    assert!(!r.class_present);
    assert!(r.devices.is_empty() && r.errors.is_empty());
}

#[test]
fn devices_come_and_go_without_restart() {
    let (dir, mut s) = copied_fixture();
    assert_eq!(s.poll(Instant::now()).devices.len(), 6);
    std::fs::remove_file(dir.path().join("class/infiniband/mlx4_0")).unwrap();
    let r = s.poll(Instant::now());
    assert_eq!(r.devices.len(), 5);
    assert!(r.devices.iter().all(|d| &*d.info.name != "mlx4_0"));
    std::os::unix::fs::symlink(
        "../../devices/pci0000:00/0000:00:02.0/0000:af:00.0/infiniband/mlx4_0",
        dir.path().join("class/infiniband/mlx4_0"),
    )
    .unwrap();
    assert_eq!(s.poll(Instant::now()).devices.len(), 6);
    // Counters move between cycles; values are re-read.
    let f = dir
        .path()
        .join("class/infiniband/mlx5_0/ports/1/counters/symbol_error");
    std::fs::write(&f, "77\n").unwrap();
    let r = s.poll(Instant::now());
    assert_eq!(
        counter(&device(&r, "mlx5_0").ports[0].counters, "symbol_error"),
        Some(77)
    );
}

/// Held attributes cost one pread a cycle; without an fd budget, four
/// syscalls (openat, fstat, pread, close).
#[test]
fn held_attributes_are_one_syscall_a_read() {
    for (budget, per_read) in [(None, 1), (Some(0), 4)] {
        let mut s = SysfsSource::new(
            &fixture(),
            DeviceFilter::default(),
            Duration::from_secs(3600),
        );
        if let Some(b) = budget {
            s.set_fd_budget(b);
        }
        s.poll(Instant::now()); // discovery
        s.poll(Instant::now()); // opens what it will hold
        let before = s.stats();
        s.poll(Instant::now());
        let after = s.stats();
        let reads = after.file_reads - before.file_reads;
        // The class directory listing is 4 syscalls on top.
        assert_eq!(
            after.syscalls - before.syscalls,
            reads * per_read + 4,
            "budget {budget:?}"
        );
    }
}

/// A held attribute sees the value the file has now, not the one it had when opened.
#[test]
fn held_attributes_reread_the_current_value() {
    let (dir, mut s) = copied_fixture();
    s.poll(Instant::now());
    s.poll(Instant::now());
    let f = dir
        .path()
        .join("class/infiniband/mlx5_0/ports/1/hw_counters/out_of_buffer");
    for v in [11u64, 12, 1_000_000] {
        // Written in place, as sysfs regenerates in place.
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&f)
            .unwrap();
        std::fs::write(&f, format!("{v}\n")).unwrap();
        let r = s.poll(Instant::now());
        assert_eq!(
            counter(&device(&r, "mlx5_0").ports[0].hw_counters, "out_of_buffer"),
            Some(v)
        );
    }
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn state(r: &NodeReading, dev: &str) -> Option<String> {
    device(r, dev).ports[0]
        .state
        .as_ref()
        .map(|s| s.name.clone())
}

/// A `state` file gone for a moment (a devlink reload) is absent until the
/// next rescan, which reads it again; it is not "unsupported" for good.
#[test]
fn missing_file_is_retried_at_the_next_rescan() {
    let dir = tempfile::tempdir().unwrap();
    crate::testutil::copy_tree(&fixture(), dir.path());
    let mut s = SysfsSource::new(dir.path(), DeviceFilter::default(), Duration::from_secs(10));
    // Opened at every read, as on a node whose fd budget is spent (a held
    // fd of a removed sysfs file fails with ENODEV instead, tested by the kernel).
    s.set_fd_budget(0);
    let t0 = Instant::now();
    assert_eq!(state(&s.poll(t0), "mlx5_0").as_deref(), Some("ACTIVE"));
    let f = dir.path().join("class/infiniband/mlx5_0/ports/1/state");
    let away = dir.path().join("state.away");
    std::fs::rename(&f, &away).unwrap();
    let r = s.poll(t0 + Duration::from_secs(1));
    assert_eq!(state(&r, "mlx5_0"), None);
    assert!(
        r.errors.is_empty(),
        "missing is not an error: {:?}",
        r.errors
    );
    assert!(
        device(&r, "mlx5_0").ports[0]
            .unsupported
            .iter()
            .any(|u| &**u == "mlx5_0/ports/1/state")
    );
    std::fs::rename(&away, &f).unwrap();
    // Not read again before the rescan...
    let before = s.stats().file_reads;
    assert_eq!(state(&s.poll(t0 + Duration::from_secs(2)), "mlx5_0"), None);
    let r = s.poll(t0 + Duration::from_secs(11));
    // ...and back after it.
    assert!(s.stats().file_reads > before);
    assert_eq!(state(&r, "mlx5_0").as_deref(), Some("ACTIVE"));
    assert!(device(&r, "mlx5_0").ports[0].unsupported.is_empty());
}

/// A device directory that loses its files (a driver restart while the
/// class link stays) and gets them back is rediscovered in full: firmware,
/// GUIDs, link layer and state.
#[test]
fn device_directory_churn_is_rediscovered() {
    let dir = tempfile::tempdir().unwrap();
    crate::testutil::copy_tree(&fixture(), dir.path());
    let mut s = SysfsSource::new(dir.path(), DeviceFilter::default(), Duration::from_secs(1));
    let t0 = Instant::now();
    s.poll(t0);
    let real = std::fs::canonicalize(dir.path().join("class/infiniband/mlx5_0")).unwrap();
    let away = dir.path().join("mlx5_0.away");
    for round in 1..=3u64 {
        std::fs::rename(&real, &away).unwrap();
        std::fs::create_dir(&real).unwrap();
        let r = s.poll(t0 + Duration::from_secs(2 * round));
        let d = device(&r, "mlx5_0");
        assert_eq!(d.info.fw_ver, None);
        assert!(d.ports.is_empty());
        std::fs::remove_dir(&real).unwrap();
        std::fs::rename(&away, &real).unwrap();
        let r = s.poll(t0 + Duration::from_secs(2 * round + 1));
        let d = device(&r, "mlx5_0");
        assert_eq!(
            d.info.fw_ver.as_deref(),
            Some("20.31.1014"),
            "round {round}"
        );
        assert_eq!(d.info.node_guid, Some(0x0c42_a103_0071_6a10));
        assert_eq!(d.ports[0].info.link_layer.as_deref(), Some("InfiniBand"));
        assert_eq!(state(&r, "mlx5_0").as_deref(), Some("ACTIVE"));
        assert!(d.info.unsupported.is_empty(), "{:?}", d.info.unsupported);
    }
}

/// A FIFO, an endless device and an oversized file in the tree are errors
/// for their attribute, with a reason; the poll returns, with bounded memory.
#[test]
fn hostile_files_are_errors_not_hangs() {
    let dir = tempfile::tempdir().unwrap();
    crate::testutil::copy_tree(&fixture(), dir.path());
    let port = dir.path().join("class/infiniband/mlx5_0/ports/1");
    // `dev_port` is read to find an IB port's netdev: a FIFO there hung discovery.
    let dev_port = dir
        .path()
        .join("class/infiniband/mlx5_0/device/net/ib0/dev_port");
    std::fs::remove_file(&dev_port).unwrap();
    mkfifo(&dev_port);
    std::fs::remove_file(port.join("state")).unwrap();
    mkfifo(&port.join("state"));
    let ctr = port.join("counters/symbol_error");
    std::fs::remove_file(&ctr).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &ctr).unwrap();
    std::fs::write(port.join("counters/link_downed"), vec![b'7'; 20 << 20]).unwrap();
    for budget in [0, 100] {
        let mut s = SysfsSource::new(dir.path(), DeviceFilter::default(), Duration::from_secs(60));
        s.set_fd_budget(budget);
        let r = s.poll(Instant::now());
        let reason = |path: &str| {
            r.errors
                .iter()
                .find(|e| e.path == path)
                .map(|e| e.reason.clone())
                .unwrap_or_else(|| panic!("no error for {path}: {:?}", r.errors))
        };
        assert_eq!(reason("mlx5_0/ports/1/state"), "not a regular file (FIFO)");
        assert!(reason("mlx5_0/ports/1/counters/symbol_error").starts_with("ELOOP"));
        assert_eq!(
            reason("mlx5_0/ports/1/counters/link_downed"),
            "larger than 4095 bytes"
        );
        let p = &device(&r, "mlx5_0").ports[0];
        assert_eq!(p.state, None);
        assert_eq!(counter(&p.counters, "link_downed"), None);
        // The netdev is still found: the only one on the PCI device.
        assert_eq!(p.info.netdev.as_deref(), Some("ib0"));
    }
}

/// DCQCN parameters come with the mlx5 RoCE device only, from
/// `kernel/debug/mlx5/<PCI address>/cc_params`, each with its file's value.
#[test]
fn dcqcn_of_mlx5_roce_devices() {
    let (_, r) = poll_fixture();
    let cc = fixture().join("kernel/debug/mlx5/0000:5e:00.0/cc_params");
    let d = &device(&r, "mlx5_1").info;
    assert_eq!(d.dcqcn.len(), 22);
    for (name, v) in &d.dcqcn {
        let text = std::fs::read_to_string(cc.join(name)).unwrap();
        assert_eq!(text.trim().parse::<u64>().unwrap(), *v, "{name}");
    }
    // IB mlx5, and mlx4 with an Ethernet port: none.
    assert!(device(&r, "mlx5_0").info.dcqcn.is_empty());
    assert!(device(&r, "mlx4_0").info.dcqcn.is_empty());
    assert!(r.errors.iter().all(|e| !e.path.contains("cc_params")));
}

#[test]
fn a_counter_name_is_one_allocation_for_every_port() {
    let (mut s, first) = poll_fixture();
    let names = |r: &NodeReading| -> Vec<Arc<str>> {
        r.devices
            .iter()
            .flat_map(|d| &d.ports)
            .flat_map(|p| &p.counters)
            .filter(|c| &*c.name == "port_xmit_data")
            .map(|c| c.name.clone())
            .collect()
    };
    let a = names(&first);
    assert!(
        a.len() >= 2,
        "the fixture has several ports with PMA counters"
    );
    assert!(a.iter().all(|n| Arc::ptr_eq(n, &a[0])), "{a:?}");
    // The next cycle hands out the same name (the snapshot's deltas
    // compare it by pointer first).
    let b = names(&s.poll(Instant::now()));
    assert!(Arc::ptr_eq(&a[0], &b[0]));
}

/// Netlink's device list (names and indices), unchanged since the last
/// listing, stands for the directory listing until a rescan is due; a list
/// that differs sends sysfs back to its own listing, and the same names
/// under another index (a device registered again) rediscover.
#[test]
fn a_device_list_read_elsewhere_saves_the_listing() {
    let (dir, mut s) = copied_fixture();
    let names: Vec<String> = s
        .poll(Instant::now())
        .devices
        .iter()
        .map(|d| d.info.name.to_string())
        .collect();
    let listed = |index_of_mlx4: u32| {
        let mut c = Covered::default();
        c.set_devices(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let index = if n == "mlx4_0" {
                        index_of_mlx4
                    } else {
                        i as u32
                    };
                    (n.clone(), index)
                })
                .collect(),
        );
        c
    };
    // The first list is checked against a listing of its own.
    assert_eq!(s.poll_covered(Instant::now(), &listed(7)).devices.len(), 6);
    // The class directory loses mlx4_0: the same list again is believed.
    std::fs::remove_file(dir.path().join("class/infiniband/mlx4_0")).unwrap();
    let r = s.poll_covered(Instant::now(), &listed(7));
    assert_eq!(r.devices.len(), 6);
    assert!(r.class_present);
    // mlx4_0 under a new index: listed again and rediscovered (gone from the class dir).
    let rescans = s.stats().rescans;
    assert_eq!(s.poll_covered(Instant::now(), &listed(8)).devices.len(), 5);
    assert_eq!(s.stats().rescans, rescans + 1);
    // A rescan that is due lists whatever the other source said.
    let mut s = SysfsSource::new(dir.path(), DeviceFilter::default(), Duration::ZERO);
    s.poll_covered(Instant::now(), &listed(7));
    std::os::unix::fs::symlink(
        "../../devices/pci0000:00/0000:00:02.0/0000:af:00.0/infiniband/mlx4_0",
        dir.path().join("class/infiniband/mlx4_0"),
    )
    .unwrap();
    assert_eq!(s.poll_covered(Instant::now(), &listed(7)).devices.len(), 6);
}

/// A port netlink covers keeps the rate it read while netlink's state and
/// the port's link_downed stay the same; either changing reads it again.
#[test]
fn the_rate_is_read_again_when_the_link_may_have_trained() {
    let dir = tempfile::tempdir().unwrap();
    crate::testutil::copy_tree(&fixture(), dir.path());
    let port = dir.path().join("class/infiniband/mlx5_0/ports/1");
    let mut s = SysfsSource::new(
        dir.path(),
        DeviceFilter::default(),
        Duration::from_secs(3600),
    );
    let covered = |state: u8| {
        let mut c = Covered::default();
        c.insert("mlx5_0", 1, state);
        c
    };
    let rate = |r: &NodeReading| {
        device(r, "mlx5_0").ports[0]
            .rate
            .clone()
            .map(|r| r.gbit_per_sec)
    };
    let write = |rel: &str, text: &str| {
        // In place, as sysfs regenerates (held fds see it).
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(port.join(rel))
            .unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    };
    s.poll(Instant::now());
    let first = rate(&s.poll_covered(Instant::now(), &covered(4)));
    assert!(first.is_some());
    write("rate", "25 Gb/sec (1X EDR)\n");
    assert_eq!(
        rate(&s.poll_covered(Instant::now(), &covered(4))),
        first,
        "kept"
    );
    assert_eq!(
        rate(&s.poll_covered(Instant::now(), &covered(1))),
        Some(25.0),
        "state changed"
    );
    write("rate", "50 Gb/sec (2X EDR)\n");
    assert_eq!(
        rate(&s.poll_covered(Instant::now(), &covered(1))),
        Some(25.0),
        "kept"
    );
    write("counters/link_downed", "9\n");
    assert_eq!(
        rate(&s.poll_covered(Instant::now(), &covered(1))),
        Some(50.0),
        "link went down"
    );
    // Without netlink's state the rate is read every cycle.
    write("rate", "100 Gb/sec (4X EDR)\n");
    assert_eq!(rate(&s.poll(Instant::now())), Some(100.0));
    // A saturated link_downed (255) cannot tell a retrain: read every cycle.
    write("counters/link_downed", "255\n");
    s.poll_covered(Instant::now(), &covered(1));
    write("rate", "200 Gb/sec (4X HDR)\n");
    assert_eq!(
        rate(&s.poll_covered(Instant::now(), &covered(1))),
        Some(200.0)
    );
}

/// A covered port without link_downed (no PMA counters: EFA, rxe) reads its
/// rate every cycle.
#[test]
fn a_port_without_link_downed_reads_its_rate_every_cycle() {
    let (dir, mut s) = copied_fixture();
    let mut covered = Covered::default();
    covered.insert("efa_0", 1, 4);
    s.poll(Instant::now());
    s.poll_covered(Instant::now(), &covered);
    let f = dir.path().join("class/infiniband/efa_0/ports/1/rate");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(f)
        .unwrap();
    std::io::Write::write_all(&mut file, b"50 Gb/sec (2X EDR)\n").unwrap();
    let r = s.poll_covered(Instant::now(), &covered);
    assert_eq!(
        device(&r, "efa_0").ports[0]
            .rate
            .clone()
            .map(|r| r.gbit_per_sec),
        Some(50.0)
    );
}

/// A reading written over an earlier one (the loop hands the reading of two
/// cycles back to the source) is the reading a fresh one would be, whatever
/// changed in between: a device gone (every later device lands on another
/// device's storage), a state renamed, a rate without its speed, a counter
/// file gone, a device back.
#[test]
fn a_reading_written_over_is_the_fresh_reading() {
    let (dir, mut reused) = copied_fixture();
    let mut fresh = SysfsSource::new(
        dir.path(),
        DeviceFilter::default(),
        Duration::from_secs(3600),
    );
    let class = dir.path().join("class/infiniband");
    let port = class.join("mlx5_1/ports/1");
    let mut spare = [NodeReading::default(), NodeReading::default()];
    let mut check = |step: &str, i: usize| {
        reused.poll_into(Instant::now(), &Covered::default(), &mut spare[i % 2]);
        assert_eq!(spare[i % 2], fresh.poll(Instant::now()), "{step}");
    };
    check("first", 0);
    check("second", 1);
    check("steady", 2);
    let moved = dir.path().join("efa_0-away");
    std::fs::rename(class.join("efa_0"), &moved).unwrap();
    check("first device gone", 3);
    check("first device gone, steady", 4);
    std::fs::write(port.join("state"), "1: DOWN\n").unwrap();
    std::fs::write(port.join("rate"), "10 Gb/sec (4X)\n").unwrap();
    std::fs::remove_file(port.join("counters/symbol_error")).unwrap();
    check("state, rate and a counter changed", 5);
    check("changed, steady", 6);
    std::fs::rename(&moved, class.join("efa_0")).unwrap();
    check("device back", 7);
    check("device back, steady", 8);
}

/// A RoCE port without link_downed (irdma, rxe): its rate is its netdev's
/// speed (`ib_get_eth_speed`), which changes only when the link trains
/// again, and that moves the netdev's carrier. While netlink's state, the
/// port's netdev and that netdev's carrier count stay, the rate stands.
#[test]
fn a_roce_port_reads_its_rate_again_when_its_netdev_retrained() {
    let (dir, mut s) = copied_fixture();
    let covered = |device: &str, carrier: Option<(u32, u32)>| {
        let mut c = Covered::default();
        c.insert(device, 1, 4);
        if let Some(carrier) = carrier {
            c.set_carrier(device, 1, carrier);
        }
        c
    };
    let write = |device: &str, text: &str| {
        let f = dir
            .path()
            .join(format!("class/infiniband/{device}/ports/1/rate"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(f)
            .unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    };
    let mut rate =
        |device: &str, c: &Covered| device_rate(&s.poll_covered(Instant::now(), c), device);
    let first = rate("irdma0", &covered("irdma0", Some((5, 10))));
    assert!(first.is_some());
    write("irdma0", "50 Gb/sec (2X EDR)\n");
    assert_eq!(
        rate("irdma0", &covered("irdma0", Some((5, 10)))),
        first,
        "kept"
    );
    assert_eq!(
        rate("irdma0", &covered("irdma0", Some((5, 12)))),
        Some(50.0),
        "the carrier moved"
    );
    write("irdma0", "100 Gb/sec (4X EDR)\n");
    assert_eq!(
        rate("irdma0", &covered("irdma0", Some((6, 12)))),
        Some(100.0),
        "bound to another netdev"
    );
    write("irdma0", "200 Gb/sec (4X HDR)\n");
    assert_eq!(
        rate("irdma0", &covered("irdma0", None)),
        Some(200.0),
        "no carrier to tell: every cycle"
    );
    // A port that is not Ethernet is not its netdev's speed.
    rate("efa_0", &covered("efa_0", Some((7, 1))));
    write("efa_0", "50 Gb/sec (2X EDR)\n");
    assert_eq!(rate("efa_0", &covered("efa_0", Some((7, 1)))), Some(50.0));
}

fn device_rate(r: &NodeReading, name: &str) -> Option<f64> {
    device(r, name).ports[0]
        .rate
        .clone()
        .map(|r| r.gbit_per_sec)
}

/// A sysfs root with a NUL byte cannot be opened: a read error, not a node
/// without RDMA.
#[test]
fn a_root_with_a_nul_byte_is_an_error_not_an_absent_class() {
    use std::os::unix::ffi::OsStrExt;
    let root = Path::new(std::ffi::OsStr::from_bytes(b"/sys\0/x"));
    let mut s = SysfsSource::new(root, DeviceFilter::default(), Duration::from_secs(60));
    let r = s.poll(Instant::now());
    assert!(!r.class_present);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
}

/// A class directory whose listing outgrows dir::MAX_LISTING is refused
/// with an error (bounded memory), not read whole.
#[test]
fn a_listing_larger_than_the_bound_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let class = root.path().join("class/infiniband");
    std::fs::create_dir_all(&class).unwrap();
    // 4,500 entries of ~270 bytes each: over 1 MiB of dirents.
    for i in 0..4_500 {
        std::fs::create_dir(class.join(format!("{i:0>250}"))).unwrap();
    }
    let mut s = SysfsSource::new(
        root.path(),
        DeviceFilter::default(),
        Duration::from_secs(60),
    );
    let r = s.poll(Instant::now());
    assert!(
        r.errors
            .iter()
            .any(|e| e.reason.contains("too large") || e.reason.contains("EFBIG")),
        "{:?}",
        r.errors.first()
    );
}
