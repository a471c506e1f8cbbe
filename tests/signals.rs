//! The agent under signals: SIGHUP reloads (an invalid file keeps the running
//! configuration), SIGQUIT stops with a last snapshot, SIGUSR1/SIGUSR2/SIGALRM
//! do not kill it, a second stop signal or a shutdown stuck for 5 s ends the
//! process anyway, a failure repeating at every snapshot is said once.
//!
//! No test asserts a duration: each waits for an event (a log line, a metric,
//! the exit) with a generous limit that only a hang reaches.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rdma-monitor");
/// Only a hang gets here.
const LIMIT: Duration = Duration::from_secs(60);

fn tree() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed")
}

fn command(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("RDMA_MON_GENERAL__SYSFS_ROOT", tree())
        .env("RDMA_MON_GENERAL__POLL_INTERVAL", "0.1")
        .env("RDMA_MON_PROMETHEUS__ENABLED", "false")
        .envs(env.iter().copied())
        .stdout(Stdio::null());
    cmd
}

/// The agent with its stderr lines arriving on a channel.
struct Agent {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(cmd: &mut Command) -> Agent {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let agent = Agent {
        child,
        lines,
        seen: Vec::new(),
    };
    wait_for_handler(agent.child.id(), libc::SIGTERM);
    agent
}

impl Agent {
    /// Waits for a stderr line containing `text`.
    fn line(&mut self, text: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(text) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no line with {text:?}: {:#?}", self.seen),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("stderr closed before {text:?}: {:#?}", self.seen)
                }
            }
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// The exit status and every stderr line.
    fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let status = wait(&mut self.child);
        let mut seen = std::mem::take(&mut self.seen);
        // The reader ends with the pipe.
        seen.extend(self.lines.iter());
        (status, seen)
    }
}

fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("the agent did not exit");
}

/// Waits until the process catches `sig` (its handlers are installed), so a
/// signal sent next is not met by the default action of a starting process.
fn wait_for_handler(pid: u32, sig: i32) {
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .unwrap_or(0);
        if caught & (1 << (sig - 1)) != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("signal {sig} never handled");
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn usr1_usr2_alrm_are_noted_and_sigquit_stops_with_a_last_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snaps");
    let mut agent = start(&mut command(&[
        ("RDMA_MON_GENERAL__SNAPSHOT_DIR", snaps.to_str().unwrap()),
        ("RDMA_MON_GENERAL__SNAPSHOT_INTERVAL", "3600"),
    ]));
    for sig in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM] {
        agent.signal(sig);
        agent.line(&format!("signal {sig} ignored"));
    }
    agent.signal(libc::SIGQUIT);
    let (status, lines) = agent.finish();
    assert_eq!(status.code(), Some(0), "{status:?} {lines:#?}");
    assert_eq!(
        names(&snaps).len(),
        1,
        "a last snapshot: {:?}",
        names(&snaps)
    );
}

#[test]
fn sighup_reloads_and_an_invalid_file_keeps_the_running_config() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    let config = dir.path().join("config.yaml");
    let write = |text: String| std::fs::write(&config, text).unwrap();
    write(format!(
        "general:\n  snapshot_dir: {}\n  snapshot_interval: 3600\n",
        first.display()
    ));
    let mut agent = start(command(&[]).args(["--config", config.to_str().unwrap()]));
    write("llm:\n  timeout: 1e30\n".into());
    agent.signal(libc::SIGHUP);
    let l = agent.line("configuration not reloaded");
    assert!(l.contains("llm.timeout"), "{l}");
    write(format!(
        "general:\n  snapshot_dir: {}\n  snapshot_interval: 3600\n  log_level: debug\nprometheus:\n  port: 9999\n",
        second.display()
    ));
    agent.signal(libc::SIGHUP);
    let l = agent.line("configuration reloaded");
    assert!(l.contains("after a restart only: prometheus.port"), "{l}");
    agent.signal(libc::SIGTERM);
    let (status, lines) = agent.finish();
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    // log_level took effect: the last snapshot is reported at debug level.
    assert!(
        lines.iter().any(|l| l.contains("debug: snapshot written")),
        "{lines:#?}"
    );
    assert_eq!(names(&first), Vec::<String>::new());
    assert_eq!(names(&second).len(), 1, "{:?}", names(&second));
}

/// A stderr nobody reads, already full: the agent blocks at its first log
/// line, after its signal handlers are installed — a shutdown that hangs.
fn stalled_stderr() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array we own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and are owned only here.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let wfd = fds[1];
    // SAFETY: fcntl on a descriptor we own; O_NONBLOCK only while filling.
    unsafe { libc::fcntl(wfd, libc::F_SETFL, libc::O_NONBLOCK) };
    let mut file = std::fs::File::from(w.try_clone().unwrap());
    let chunk = [b'x'; 4096];
    while file.write(&chunk).is_ok() {}
    // SAFETY: as above; the child inherits a blocking pipe.
    unsafe { libc::fcntl(wfd, libc::F_SETFL, 0) };
    (r, w)
}

fn start_stalled() -> (Child, OwnedFd) {
    let (r, w) = stalled_stderr();
    let child = command(&[]).stderr(Stdio::from(w)).spawn().unwrap();
    wait_for_handler(child.id(), libc::SIGTERM);
    (child, r)
}

#[test]
fn a_shutdown_stuck_for_5_seconds_exits_anyway() {
    let (mut child, _reader) = start_stalled();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(1), "{status:?}");
}

#[test]
fn a_second_stop_signal_exits_at_once() {
    let (mut child, _reader) = start_stalled();
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = wait(&mut child);
    // 128 + the signal seen second (the two may be taken in either order).
    assert!(matches!(status.code(), Some(130) | Some(143)), "{status:?}");
}

fn scrape(port: u16, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn wait_metric(port: u16, name: &str, at_least: f64) {
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        if scrape(port, name).is_some_and(|v| v >= at_least) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{name} never reached {at_least}");
}

#[test]
fn a_repeating_snapshot_failure_is_said_once_then_when_it_clears() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "a file where a directory should be").unwrap();
    let snaps = blocker.join("snaps");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let agent = start(&mut command(&[
        ("RDMA_MON_GENERAL__SNAPSHOT_DIR", snaps.to_str().unwrap()),
        ("RDMA_MON_GENERAL__SNAPSHOT_INTERVAL", "0.05"),
        ("RDMA_MON_GENERAL__POLL_INTERVAL", "0.05"),
        ("RDMA_MON_PROMETHEUS__ENABLED", "true"),
        ("RDMA_MON_PROMETHEUS__LISTEN_ADDRESS", "127.0.0.1"),
        ("RDMA_MON_PROMETHEUS__PORT", &port.to_string()),
    ]));
    wait_metric(port, "rdma_monitor_snapshot_errors_total", 10.0);
    std::fs::remove_file(&blocker).unwrap();
    wait_metric(port, "rdma_monitor_snapshots_written_total", 1.0);
    agent.signal(libc::SIGTERM);
    let (status, lines) = agent.finish();
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    let failures: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("snapshot") && l.contains(": error: "))
        .collect();
    assert_eq!(failures.len(), 1, "{lines:#?}");
    let cleared: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("working again"))
        .collect();
    assert_eq!(cleared.len(), 1, "{lines:#?}");
    assert!(cleared[0].contains("NotADirectory"), "{}", cleared[0]);
}

#[test]
fn leftover_temporary_files_are_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        ".snapshot-20261125T180000.000Z.json.tmp",
        ".snapshot-00000003-20261125T180000.000Z.json.tmp",
    ] {
        std::fs::write(dir.path().join(name), "partial").unwrap();
    }
    let mut agent = start(&mut command(&[
        (
            "RDMA_MON_GENERAL__SNAPSHOT_DIR",
            dir.path().to_str().unwrap(),
        ),
        ("RDMA_MON_GENERAL__SNAPSHOT_INTERVAL", "3600"),
        ("RDMA_MON_GENERAL__LOG_LEVEL", "info"),
    ]));
    agent.line("left by an interrupted write");
    agent.signal(libc::SIGTERM);
    let (status, _) = agent.finish();
    assert!(status.success());
    let left = names(dir.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].starts_with("snapshot-") && left[0].ends_with(".json"),
        "{left:?}"
    );
}

/// The executable's pages the loop no longer runs are unmapped after the
/// second cycle and again after a reload (src/resident.rs), each time some.
#[test]
fn the_executables_unused_pages_are_released_after_start_and_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start(&mut command(&[
        ("RDMA_MON_GENERAL__LOG_LEVEL", "debug"),
        (
            "RDMA_MON_GENERAL__SNAPSHOT_DIR",
            dir.path().to_str().unwrap(),
        ),
    ]));
    let released = |line: String| -> u64 {
        let kib = line
            .split("unmapped ")
            .nth(1)
            .and_then(|r| r.split(' ').next());
        kib.and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    let first = released(agent.line("KiB of the executable's pages"));
    agent.signal(libc::SIGHUP);
    agent.line("configuration reloaded");
    let again = released(agent.line("KiB of the executable's pages"));
    agent.signal(libc::SIGTERM);
    let (status, lines) = agent.finish();
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    assert!(
        first > 0 && again > 0,
        "released {first} KiB, then {again} KiB"
    );
}

/// A reload that finds the loop's queue full of notes of ignored signals
/// (the loop stuck on a full stderr) waits for room: it is applied once the
/// loop moves on, not dropped. The notes beyond the queue's room are counted.
#[test]
fn a_reload_behind_a_full_queue_is_applied_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let snaps = dir.path().join("snaps");
    let text = format!(
        "general:\n  snapshot_interval: 3600\n  snapshot_dir: {}\n",
        snaps.display()
    );
    std::fs::write(&config, &text).unwrap();
    let (r, w) = stalled_stderr();
    let mut cmd = command(&[]);
    cmd.args(["--config", config.to_str().unwrap()]);
    let child = cmd.stderr(Stdio::from(w)).spawn().unwrap();
    // The pipe's write end is the child's alone: its exit ends the reader.
    drop(cmd);
    wait_for_handler(child.id(), libc::SIGHUP);
    let mut agent = Agent {
        child,
        lines: std::sync::mpsc::channel().1,
        seen: Vec::new(),
    };
    // The loop is blocked on its first log line: each note queues (one at
    // a time: the signal thread takes a signal before the next is sent).
    for _ in 0..100 {
        agent.signal(libc::SIGUSR1);
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(&config, text + "  snapshot_keep: 7\n").unwrap();
    agent.signal(libc::SIGHUP);
    // Let the reload worker read the file and meet the full queue.
    std::thread::sleep(Duration::from_millis(200));
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(std::fs::File::from(r))
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    agent.lines = lines;
    agent.line("configuration reloaded");
    agent.signal(libc::SIGTERM);
    let (status, _) = agent.finish();
    assert_eq!(status.code(), Some(0));
}
