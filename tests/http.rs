//! The HTTP endpoint against careless and hostile clients: answers before the
//! first cycle and on a stalled loop, gzip, bare-LF request heads, methods,
//! slowloris, many concurrent scrapers, and accept errors (EMFILE); and the
//! server alone with a test handler: who writes an answer, the busy queue.
//!
//! The server runs in this process on the library API, fed by real cycles on
//! the bundled tree; the EMFILE test runs the binary so that its file limit
//! can be lowered without touching this process.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::Sender;

use rdma_monitor::agent::Agent;
use rdma_monitor::config::Config;
use rdma_monitor::exporters::http::{self, Handler, Part, Request, Responder};
use rdma_monitor::exporters::{Published, prometheus};

fn tree() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed")
}

/// An agent on the bundled tree (no cycle run yet) and a server on a free port.
fn setup(poll_interval: f64) -> (Agent, Arc<Published>, SocketAddr) {
    setup_on(tree(), poll_interval)
}

fn setup_on(root: PathBuf, poll_interval: f64) -> (Agent, Arc<Published>, SocketAddr) {
    let mut config = Config::defaults();
    config.general.sysfs_root = root;
    config.general.poll_interval = poll_interval;
    let published = Arc::new(Published::new(config.poll_interval()));
    let server = prometheus::spawn("127.0.0.1:0".parse().unwrap(), published.clone()).unwrap();
    let agent = Agent::with_netlink(config, published.clone(), None);
    (agent, published, server.local_addr)
}

struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Sends `request` as is and reads the whole answer (the server closes).
fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no head in {resp:?}")))?;
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(Reply {
        status,
        head,
        body: resp[split + 4..].to_vec(),
    })
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
    .unwrap()
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

fn text(r: &Reply) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

#[test]
fn before_the_first_cycle_metrics_is_503_with_a_reason() {
    let (mut agent, _, addr) = setup(10.0);
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 503, "{}", r.head);
    assert_eq!(text(&r), "no collection cycle has completed yet\n");
    let r = get(addr, "/healthz");
    assert_eq!(r.status, 503);
    assert_eq!(
        text(&r),
        "collection: FAILING: no cycle has completed yet\n"
    );
    agent.cycle();
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    let t = text(&r);
    assert_eq!(value(&t, "rdma_monitor_scrape_stale"), Some(0.0), "{t}");
    assert!(value(&t, "rdma_monitor_last_cycle_timestamp_seconds").is_some());
    assert_eq!(get(addr, "/healthz").status, 200);
}

#[test]
fn a_stalled_loop_makes_scrapes_stale_and_healthz_fail() {
    // Three intervals: stale after 6 s, room for a loaded machine to scrape
    // a fresh set; staleness is waited for, not slept into.
    let (mut agent, _published, addr) = setup(2.0);
    let stale_after = 6.0;
    agent.cycle();
    let t = text(&get(addr, "/metrics"));
    assert_eq!(value(&t, "rdma_monitor_scrape_stale"), Some(0.0), "{t}");
    assert_eq!(
        value(&t, "rdma_monitor_stale_after_seconds"),
        Some(stale_after)
    );
    assert_eq!(get(addr, "/healthz").status, 200);
    // No cycle for longer than that: the loop "hangs". Old data is still
    // served, marked stale once it is older than stale_after.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = get(addr, "/metrics");
        assert_eq!(r.status, 200, "{}", r.head);
        let t = text(&r);
        let age = value(&t, "rdma_monitor_last_cycle_age_seconds").unwrap();
        match value(&t, "rdma_monitor_scrape_stale") {
            Some(1.0) => {
                assert!(age > stale_after, "stale at {age} s: {t}");
                break;
            }
            Some(0.0) => assert!(age <= stale_after, "not stale at {age} s: {t}"),
            other => panic!("rdma_monitor_scrape_stale {other:?}: {t}"),
        }
        assert!(Instant::now() < deadline, "never stale: {t}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = get(addr, "/healthz");
    assert_eq!(r.status, 503);
    let h = text(&r);
    assert!(
        h.starts_with("collection: FAILING: last cycle completed")
            && h.contains("stale after 6.0 s"),
        "{h}"
    );
    // The loop comes back.
    agent.cycle();
    let t = text(&get(addr, "/metrics"));
    assert_eq!(value(&t, "rdma_monitor_scrape_stale"), Some(0.0), "{t}");
    assert_eq!(get(addr, "/healthz").status, 200);
}

/// Lines that differ between two scrapes of one set: the scrape-time series.
fn without_scrape_time(t: &str) -> String {
    t.lines()
        .filter(|l| {
            !l.starts_with("rdma_monitor_last_cycle_age_seconds ")
                && !l.starts_with("rdma_monitor_http_requests_total ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn gzip_scrape_decompresses_to_the_plain_one() {
    let (mut agent, _, addr) = setup(10.0);
    agent.cycle();
    let plain = get(addr, "/metrics");
    assert!(!plain.head.to_ascii_lowercase().contains("content-encoding"));
    for _ in 0..2 {
        // The second one comes from the cached compressed set.
        let r = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert!(
            r.head.contains("\r\nContent-Encoding: gzip\r\n"),
            "{}",
            r.head
        );
        assert!(
            r.body.len() * 3 < plain.body.len(),
            "{} bytes",
            r.body.len()
        );
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&r.body[..])
            .read_to_string(&mut unzipped)
            .unwrap();
        assert_eq!(
            without_scrape_time(&unzipped),
            without_scrape_time(&text(&plain))
        );
    }
    // HEAD: the same head, no body.
    let r = exchange(
        addr,
        b"HEAD /metrics HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

#[test]
fn bare_lf_heads_and_methods() {
    let (mut agent, _, addr) = setup(10.0);
    agent.cycle();
    let r = exchange(addr, b"GET /healthz HTTP/1.1\nHost: x\n\n").unwrap();
    assert_eq!(r.status, 200);
    let r = exchange(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(r.status, 405);
    assert!(r.head.contains("\r\nAllow: GET, HEAD"), "{}", r.head);
    let r = exchange(addr, b"GET /metrics\r\n\r\n").unwrap();
    assert_eq!(r.status, 400);
    let r = exchange(addr, &[b'a'; 10_000]).unwrap();
    assert_eq!(r.status, 431);
}

/// 64 connections send half a request head, then a byte every second; all
/// the while, scrapes are answered, and the slow ones are cut off at the head
/// deadline.
/// A client that reads slowly: a 1 KiB receive buffer and 536-byte segments,
/// set before connect so that even loopback's large MTU cannot buffer a
/// whole answer in the kernel.
fn slow_reader(addr: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only")
    };
    let fd = tcp_socket();
    set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 1024);
    set_int(fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG, 536);
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    connect(fd, &sin);
    // SAFETY: `fd` is a connected socket this function opened and owns.
    unsafe { TcpStream::from_raw_fd(fd) }
}

/// `n` slow readers, each having asked for `path`.
fn slow_readers(addr: SocketAddr, n: usize, path: &str) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = slow_reader(addr);
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .unwrap();
            s
        })
        .collect()
}

fn tcp_socket() -> libc::c_int {
    // SAFETY: socket(2) takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    fd
}

fn set_int(fd: libc::c_int, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: the option value points to a live c_int and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", std::io::Error::last_os_error());
}

fn connect(fd: libc::c_int, sin: &libc::sockaddr_in) {
    // SAFETY: `sin` is a live sockaddr_in and its size is passed.
    let rc = unsafe {
        libc::connect(
            fd,
            (sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
}

#[test]
fn slow_readers_do_not_hold_the_workers() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-16hca");
    let (mut agent, _, addr) = setup_on(root, 10.0);
    agent.cycle();
    let snapshot = get(addr, "/snapshot");
    assert_eq!(snapshot.status, 200);
    // Twice as many readers as workers, each leaving most of a ~130 KB
    // answer unread.
    let slow = slow_readers(addr, 8, "/snapshot");
    for _ in 0..4 {
        let r = get(addr, "/metrics");
        assert_eq!(r.status, 200, "{}", r.head);
    }
    // No slow answer was cut off to let the scrapes through: each reader
    // still gets its whole answer now that it reads.
    let t = text(&get(addr, "/metrics"));
    for reason in ["timeout", "evicted"] {
        let series = format!("rdma_monitor_http_write_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(value(&t, &series), Some(0.0), "{series}");
    }
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        assert!(resp.starts_with(b"HTTP/1.1 200 "));
        assert!(resp.ends_with(&snapshot.body), "{} bytes", resp.len());
    }
}

/// A metrics answer goes out as its families' texts, a piece each, over
/// many partial writes to a slow reader: what arrives is the set's text,
/// whole and in order, then the scrape-time series.
#[test]
fn a_slow_reader_gets_the_whole_metrics_text_in_order() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-16hca");
    let (mut agent, published, addr) = setup_on(root, 10.0);
    agent.cycle();
    let want = published.metrics.load().text().to_vec();
    assert!(want.len() > 100_000, "{} bytes", want.len());
    for mut s in slow_readers(addr, 3, "/metrics") {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut resp = Vec::new();
        let mut buf = [0u8; 700];
        // A few hundred bytes at a time, with pauses: the server's writes
        // stop at every boundary the socket buffer allows.
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            resp.extend_from_slice(&buf[..n]);
            if resp.len() % 7 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let (head, body) = (&resp[..split], &resp[split + 4..]);
        let head = String::from_utf8_lossy(head);
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        assert_eq!(&body[..want.len()], &want[..]);
        assert!(
            body[want.len()..].starts_with(b"# HELP rdma_monitor_last_cycle_age_seconds "),
            "{}",
            String::from_utf8_lossy(&body[want.len()..])
        );
    }
}

#[test]
fn slowloris_does_not_take_metrics_down() {
    let (mut agent, _, addr) = setup(10.0);
    agent.cycle();
    let mut slow: Vec<TcpStream> = (0..64)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: lor").unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let mut answered = 0;
    for _ in 0..8 {
        for s in &mut slow {
            let _ = s.write_all(b"i");
        }
        let r = get(addr, "/metrics");
        assert_eq!(r.status, 200, "{}", r.head);
        answered += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(answered, 8);
    // Past the head deadline every slow connection was answered 408 and
    // closed, though it kept sending.
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        assert!(
            resp.starts_with(b"HTTP/1.1 408 "),
            "{:?} after {:?}",
            String::from_utf8_lossy(&resp),
            started.elapsed()
        );
    }
    let t = text(&get(addr, "/metrics"));
    assert_eq!(
        value(
            &t,
            "rdma_monitor_http_rejected_total{reason=\"head_timeout\"}"
        ),
        Some(64.0)
    );
}

#[test]
fn two_hundred_concurrent_scrapers_get_answers_not_resets() {
    let (mut agent, _, addr) = setup(10.0);
    agent.cycle();
    let barrier = Arc::new(std::sync::Barrier::new(200));
    let threads: Vec<_> = (0..200)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    barrier.wait();
                    (0..5)
                        .map(|_| exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").map(|r| r.status))
                        .collect::<Vec<_>>()
                })
                .unwrap()
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for t in threads {
        for r in t.join().unwrap() {
            let key = match r {
                Ok(status) => status.to_string(),
                Err(e) => format!("{:?}", e.kind()),
            };
            *statuses.entry(key).or_insert(0) += 1;
        }
    }
    assert_eq!(
        statuses,
        [("200".to_string(), 1000)].into_iter().collect(),
        "answers by status or error"
    );
}

/// With no file descriptor left, accept fails; the server must pause, not
/// spin on the failing accept, and serve again once descriptors are free.
#[test]
fn accept_errors_back_off() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let snapshots = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rdma-monitor"))
        .env_clear()
        .env("RDMA_MON_GENERAL__SYSFS_ROOT", tree())
        .env("RDMA_MON_GENERAL__SNAPSHOT_DIR", snapshots.path())
        .env("RDMA_MON_PROMETHEUS__LISTEN_ADDRESS", "127.0.0.1")
        .env("RDMA_MON_PROMETHEUS__PORT", port.to_string())
        .env("RDMA_MON_GENERAL__POLL_INTERVAL", "5")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(20);
    while exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n")
        .map(|r| r.status)
        .ok()
        != Some(200)
    {
        assert!(Instant::now() < deadline, "agent did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let soft = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let prlimit = |limit: &str| {
        let ok = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={limit}")])
            .status()
            .unwrap()
            .success();
        assert!(ok, "prlimit {limit}");
    };
    prlimit(&format!("{}:", fds + 1));
    // One is accepted into the last descriptor, the rest wait in the backlog
    // while accept fails with EMFILE.
    let clients: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_secs(3));
    prlimit(&format!("{soft}:"));
    drop(clients);
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n")
            && r.status == 200
        {
            text = String::from_utf8(r.body).unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let errors = value(&text, "rdma_monitor_http_accept_errors_total").expect("served again");
    // Back-off from 50 ms doubling to 1 s: a handful in 3 s; a spinning
    // loop makes hundreds of thousands.
    assert!((1.0..=60.0).contains(&errors), "{errors} accept errors");
}

#[test]
fn odd_targets_and_oversized_heads() {
    let (mut agent, _, addr) = setup(10.0);
    agent.cycle();
    let r = exchange(addr, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(r.status, 405, "{}", r.head);
    assert!(r.head.contains("\r\nAllow: GET, HEAD"), "{}", r.head);
    let r = exchange(addr, b"GET http://x:9090/healthz HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(
        exchange(addr, b"GET * HTTP/1.1\r\n\r\n").unwrap().status,
        400
    );
    // Past the limit with its end in the same write: still too large.
    let mut big = b"GET /healthz HTTP/1.1\r\nX-Pad: ".to_vec();
    big.resize(9000, b'a');
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(exchange(addr, &big).unwrap().status, 431);
}

/// A web config with basic auth only (no TLS), the password's bcrypt hash
/// at `cost`.
fn basic_auth_config(dir: &std::path::Path, password: &str, cost: u32) -> PathBuf {
    let p = dir.join("web.yml");
    let hash = bcrypt::hash(password, cost).unwrap();
    std::fs::write(&p, format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap();
    p
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Clients sending new wrong passwords as fast as they are answered: each
/// would cost a bcrypt (cost 12 here, ~0.25 s). The legitimate scraper,
/// whose password was verified before the flood, is answered at once every
/// time, because bcrypt runs one at a time and a password needing it while
/// another runs is answered 503 at once instead of queueing for a worker.
/// Before, 16 flooders kept the 4 workers and the queue busy with bcrypt and
/// a scrape waited seconds behind them.
#[test]
fn a_flood_of_wrong_passwords_does_not_starve_scrapes() {
    let dir = tempfile::tempdir().unwrap();
    let web = basic_auth_config(dir.path(), "right", 12);
    let mut config = Config::defaults();
    config.general.sysfs_root = tree();
    let published = Arc::new(Published::new(config.poll_interval()));
    let source =
        Arc::new(rdma_monitor::exporters::web_config::WebConfigSource::open(&web).unwrap());
    let server = prometheus::spawn_with(
        "127.0.0.1:0".parse().unwrap(),
        published.clone(),
        Some(source),
        config.prometheus.endpoints,
    )
    .unwrap();
    let addr = server.local_addr;
    let mut agent = Agent::with_netlink(config, published, None);
    agent.cycle();
    let scrape = format!(
        "GET /metrics HTTP/1.1\r\nAuthorization: Basic {}\r\n\r\n",
        basic("prometheus", "right")
    );
    assert_eq!(exchange(addr, scrape.as_bytes()).unwrap().status, 200);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..16)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut statuses = std::collections::BTreeMap::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let req = format!(
                        "GET /metrics HTTP/1.1\r\nAuthorization: Basic {}\r\n\r\n",
                        basic("prometheus", &format!("guess-{i}-{n}"))
                    );
                    let status = exchange(addr, req.as_bytes()).map_or(0, |r| r.status);
                    *statuses.entry(status).or_insert(0u32) += 1;
                }
                statuses
            })
        })
        .collect();
    // A generous bound, far above an answer's milliseconds and far below
    // the seconds a scrape waited behind the flood.
    let bound = Duration::from_secs(1);
    let mut slow = Vec::new();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(250));
        let t = Instant::now();
        let r = exchange(addr, scrape.as_bytes()).unwrap();
        let took = t.elapsed();
        assert_eq!(r.status, 200, "{}", r.head);
        if took > bound {
            slow.push(took);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut statuses = std::collections::BTreeMap::new();
    for f in flooders {
        for (status, n) in f.join().unwrap() {
            *statuses.entry(status).or_insert(0) += n;
        }
    }
    assert!(slow.is_empty(), "scrapes slower than {bound:?}: {slow:?}");
    // The flood was answered too: 401 after a bcrypt, 503 while one ran.
    let keys: Vec<u16> = statuses.keys().copied().collect();
    assert_eq!(keys, [401, 503], "flood answers by status: {statuses:?}");
    let t = text(&exchange(addr, scrape.as_bytes()).unwrap());
    let busy = value(&t, "rdma_monitor_http_rejected_total{reason=\"auth_busy\"}");
    assert_eq!(busy, statuses.get(&503).map(|n| f64::from(*n)), "{t}");
}

/// Answers `/big` with a head and three body parts (static, shared, owned),
/// `/block` by waiting until the test lets it go.
struct Parts {
    big: Arc<Vec<u8>>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
    /// `/block` requests that reached the handler.
    blocked: AtomicU64,
}

impl Handler for Parts {
    fn handle(&self, req: &Request, out: &mut Responder<'_>) {
        if req.path == "/block" {
            self.blocked.fetch_add(1, Relaxed);
            let _ = self.release.lock().unwrap().recv();
        }
        out.send(
            200,
            &[("Content-Type", "application/octet-stream")],
            vec![
                Part::Static(b"first\n"),
                Part::Shared(self.big.clone()),
                Part::Owned(b"last\n".to_vec()),
            ],
        );
    }
}

/// A server of [`Parts`] with `workers` workers, its body, and the sender
/// that lets each `/block` request go.
fn parts_server(workers: usize, len: usize) -> (http::Server, Vec<u8>, Arc<Parts>, Sender<()>) {
    let big: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let body = [&b"first\n"[..], &big, b"last\n"].concat();
    let (release, rx) = std::sync::mpsc::channel();
    let handler = Arc::new(Parts {
        big: Arc::new(big),
        release: Mutex::new(rx),
        blocked: AtomicU64::new(0),
    });
    let h = handler.clone();
    let server = http::spawn("test", "127.0.0.1:0".parse().unwrap(), None, workers, |_| h).unwrap();
    (server, body, handler, release)
}

/// The whole reply (the server closes), split into head and body.
fn reply(mut s: TcpStream) -> (String, Vec<u8>) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let end = http::head_end(&all, 0).expect("a head");
    (
        String::from_utf8_lossy(&all[..end]).into_owned(),
        all[end..].to_vec(),
    )
}

fn send_get(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s
}

/// An answer the socket takes whole is sent and closed by the worker: the
/// connection thread is not involved (nothing handed back), and every part
/// arrives in order.
#[test]
fn a_complete_answer_is_sent_by_the_worker_not_handed_back() {
    let (server, body, _, _release) = parts_server(2, 120_000);
    for _ in 0..3 {
        let (head, got) = reply(send_get(server.local_addr, "/big"));
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(got == body, "{} bytes of {}", got.len(), body.len());
    }
    let s = &server.stats;
    assert_eq!(s.requests.load(Relaxed), 3);
    assert_eq!(s.handed_back.load(Relaxed), 0);
}

/// A client that reads slowly (a 1 KiB receive buffer, small segments, set
/// before connect): the socket cannot take the answer at once, the worker
/// hands the rest back, and the connection thread finishes it.
#[test]
fn a_partial_write_is_finished_by_the_connection_thread() {
    let (server, body, _, _release) = parts_server(1, 1 << 20);
    let slow = (0..2)
        .map(|_| slow_reader(server.local_addr))
        .collect::<Vec<_>>();
    let slow: Vec<TcpStream> = slow
        .into_iter()
        .map(|mut s| {
            s.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();
            s
        })
        .collect();
    // The only worker is free again for others while the slow ones wait.
    let (_, got) = reply(send_get(server.local_addr, "/big"));
    assert!(got == body);
    for s in slow {
        let (head, got) = reply(s);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(got == body, "{} bytes of {}", got.len(), body.len());
    }
    // The fast one may have been taken whole.
    assert!(server.stats.handed_back.load(Relaxed) >= 2);
    assert_eq!(server.stats.write_timeouts.load(Relaxed), 0);
}

/// With the only worker held and the queue full, one more request is
/// answered 503 at once; the queued ones are all answered once the worker
/// is free.
#[test]
fn a_full_queue_is_answered_busy_and_the_queued_requests_later() {
    let (server, body, handler, release) = parts_server(1, 10);
    let addr = server.local_addr;
    let held = send_get(addr, "/block");
    wait_for("the worker to hold the first request", || {
        handler.blocked.load(Relaxed) > 0
    });
    let queued: Vec<TcpStream> = (0..http::MAX_QUEUED)
        .map(|_| send_get(addr, "/big"))
        .collect();
    // Each counted request is in the queue or with the worker.
    wait_for("every queued request's head", || {
        server.stats.requests.load(Relaxed) > http::MAX_QUEUED as u64
    });
    let (head, _) = reply(send_get(addr, "/big"));
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert_eq!(server.stats.busy.load(Relaxed), 1);
    release.send(()).unwrap();
    for s in std::iter::once(held).chain(queued) {
        let (head, got) = reply(s);
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert!(got == body);
    }
    assert_eq!(server.stats.busy.load(Relaxed), 1);
}

/// Waits until `done`, failing the test after 60 s instead of hanging it.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < give_up, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
