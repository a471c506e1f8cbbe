//! End to end: the built binary on a copy of fixtures/sysfs/node-mixed made
//! hostile (issue 10): a FIFO where a file is read at discovery, a module
//! parameter linked to /dev/zero, one of 20 MB, a `state` file gone for a
//! while, and configs that are not files. The agent must keep cycling, stay
//! small, report each bad file, and show the state again once it is back.
//! Deadlines are generous; nothing here times the agent.

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rdma-monitor");
const DEADLINE: Duration = Duration::from_secs(30);

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed")
}

/// A writable copy of the fixture tree (symlinks kept).
fn copy_fixture(to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(fixture())
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a: {st:?}");
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

struct Running {
    child: Child,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status and body of `GET path`; any transport error fails the test.
fn fetch(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to the agent on {port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP reply");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    (status, body.to_string())
}

fn scrape(port: u16) -> String {
    let (status, body) = fetch(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of the series `key` (name and labels exactly as exposed).
fn value(text: &str, key: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// Polls `f` until it holds, failing the test after [`DEADLINE`].
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the agent on `root`, polling every 0.2 s and rescanning every 1 s.
fn start(root: &Path, snapshots: &Path, uid: Option<u32>) -> Running {
    // A port the kernel just handed out, free again once the listener drops.
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    // Another uid may not reach the build tree (a checkout under a 0700 home):
    // it runs a copy beside its snapshots, in a directory it can enter.
    let bin = match uid {
        Some(_) => {
            let copy = snapshots
                .parent()
                .expect("snapshots has a parent")
                .join("rdma-monitor");
            std::fs::copy(BIN, &copy).unwrap();
            copy
        }
        None => PathBuf::from(BIN),
    };
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("RDMA_MON_GENERAL__SYSFS_ROOT", root)
        .env("RDMA_MON_GENERAL__SNAPSHOT_DIR", snapshots)
        .env("RDMA_MON_PROMETHEUS__LISTEN_ADDRESS", "127.0.0.1")
        .env("RDMA_MON_PROMETHEUS__PORT", port.to_string())
        .env("RDMA_MON_GENERAL__POLL_INTERVAL", "0.2")
        .env("RDMA_MON_GENERAL__RESCAN_INTERVAL", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let child = cmd.spawn().unwrap();
    let agent = Running { child, port };
    wait_until("the agent serves /metrics", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
            && value(&fetch(port, "/metrics").1, "rdma_monitor_cycles_total").is_some()
    });
    agent
}

fn cycles(port: u16) -> f64 {
    value(&scrape(port), "rdma_monitor_cycles_total").unwrap()
}

/// Waits for `n` more cycles: the loop is not stuck in a read.
fn keeps_cycling(port: u16, n: f64) {
    let from = cycles(port);
    wait_until(&format!("{n} more cycles after {from}"), || {
        cycles(port) >= from + n
    });
}

/// Peak memory beyond the mapped binary and libraries: the debug binary's
/// own text is ~11 MiB of file-backed pages, which a bounded agent cannot
/// change; what the reads allocate is anonymous.
fn peak_kib_beyond_files(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    field("VmHWM:").saturating_sub(field("RssFile:") + field("RssShmem:"))
}

const STATE: &str = "rdma_port_state{device=\"mlx5_1\",port=\"1\"}";

#[test]
fn hostile_tree_keeps_cycling_small_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sys");
    copy_fixture(&root);
    // A FIFO where discovery reads an IB port's netdev (it hung the loop).
    let dev_port = root.join("class/infiniband/mlx5_0/device/net/ib0/dev_port");
    std::fs::remove_file(&dev_port).unwrap();
    mkfifo(&dev_port);
    // Module parameters: one good, one endless, one of 20 MB.
    let params = root.join("module/mlx5_core/parameters");
    std::fs::create_dir_all(&params).unwrap();
    std::fs::write(params.join("prof_sel"), "2\n").unwrap();
    std::os::unix::fs::symlink("/dev/zero", params.join("debug_mask")).unwrap();
    std::fs::write(params.join("huge"), vec![b'1'; 20 << 20]).unwrap();

    let agent = start(&root, &tmp.path().join("snapshots"), None);
    let pid = agent.child.id();
    keeps_cycling(agent.port, 10.0);

    let text = scrape(agent.port);
    assert!(
        text.contains(
            "rdma_kernel_module_parameter_info{module=\"mlx5_core\",parameter=\"prof_sel\",value=\"2\"} 1"
        ),
        "the good parameter is read"
    );
    assert!(!text.contains("parameter=\"debug_mask\""));
    assert!(!text.contains("parameter=\"huge\""));
    // Two refused parameters at every rescan, counted.
    assert!(value(&text, "rdma_monitor_sysfs_read_errors_total").unwrap() >= 2.0);
    assert_eq!(value(&text, STATE), Some(4.0));
    // The port behind the FIFO is still found, with its netdev.
    assert!(text.contains(
        "rdma_port_info{device=\"mlx5_0\",port=\"1\",link_layer=\"InfiniBand\",transport=\"ib\",netdev=\"ib0\"} 1"
    ));
    let (status, snap) = fetch(agent.port, "/snapshot");
    assert_eq!(status, 200);
    assert!(snap.len() < 1 << 20, "snapshot of {} bytes", snap.len());

    // `state` gone for at least 2 s (a devlink reload): absent, then back.
    let state = root.join("class/infiniband/mlx5_1/ports/1/state");
    let away = tmp.path().join("state.away");
    std::fs::rename(&state, &away).unwrap();
    let gone = Instant::now();
    wait_until("the missing state is absent from the scrape", || {
        value(&scrape(agent.port), STATE).is_none()
    });
    std::thread::sleep(Duration::from_secs(2).saturating_sub(gone.elapsed()));
    std::fs::rename(&away, &state).unwrap();
    wait_until("the state is back after the file returned", || {
        value(&scrape(agent.port), STATE) == Some(4.0)
    });

    keeps_cycling(agent.port, 10.0);
    let peak = peak_kib_beyond_files(pid);
    assert!(peak < 10 * 1024, "peak anonymous memory {peak} KiB");
}

/// `--config` naming an endless device or a FIFO: one clear line, exit 2,
/// at once (it hung, or grew to 1.5 GB, before).
#[test]
fn config_that_is_not_a_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("config.yaml");
    mkfifo(&fifo);
    for (path, kind) in [
        (Path::new("/dev/zero"), "character device"),
        (fifo.as_path(), "FIFO"),
    ] {
        let mut child = Command::new(BIN)
            .env_clear()
            .arg("--config")
            .arg(path)
            .arg("--check-config")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("--config {} hangs", path.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("not a regular file ({kind})")),
            "{err}"
        );
    }
}

/// DCQCN parameters in a debugfs only root may read: "unsupported" for the
/// device (not an error, not 0), said once in the log over many rescans.
#[test]
fn unreadable_dcqcn_is_unsupported_and_said_once() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test drops to uid 65534 and needs to start as root");
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("sys");
    copy_fixture(&root);
    let snapshots = tmp.path().join("snapshots");
    std::fs::create_dir(&snapshots).unwrap();
    let chmod = |p: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    chmod(tmp.path(), 0o755);
    chmod(&snapshots, 0o777);
    // As debugfs is mounted: root's only.
    chmod(&root.join("kernel/debug"), 0o700);

    let mut agent = start(&root, &snapshots, Some(65534));
    // At least three rescans (one a second, five cycles a second).
    keeps_cycling(agent.port, 16.0);
    let text = scrape(agent.port);
    assert!(!text.contains("rdma_dcqcn_parameter{"), "nothing exported");
    assert_eq!(
        value(
            &text,
            "rdma_monitor_unsupported_attributes{device=\"mlx5_1\",port=\"\"}"
        ),
        Some(1.0)
    );
    let _ = agent.child.kill();
    let _ = agent.child.wait();
    let mut err = String::new();
    agent
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let said: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("DCQCN parameters"))
        .collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(said[0].contains("mlx5_1"), "{}", said[0]);
}
