//! `rdma-monitor top` in a real terminal: tmux runs it on a copy of the
//! 16-HCA fixture tree whose counters this test advances. The screen must
//! show the throughput the test drives, a finding the test provokes, the
//! sort the test asks for, and `q` must exit 0 with the terminal restored.
//! The same through `--url` against a running agent.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rdma-monitor");
/// The port the test drives: 62.5 M words/s = 250 MB/s transmitted.
const DRIVEN: &str = "mlx5_3";
const WORDS_PER_SEC: u64 = 62_500_000;
const BYTES_PER_SEC: f64 = 250e6;

fn has_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A private copy of the 16-HCA tree (symlinks kept, as on a node).
fn tree_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sysfs/node-16hca/.");
    let ok = Command::new("cp")
        .args(["-a", src])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(ok.success());
    dir
}

fn counter(root: &Path, dev: &str, name: &str) -> PathBuf {
    root.join(format!("class/infiniband/{dev}/ports/1/counters/{name}"))
}

/// Writes `value` over the file in place: the agent keeps attribute files
/// open and reads them again at offset 0, as kernfs makes it. The values
/// only grow, so the new text covers the old.
fn poke(path: &Path, value: u64) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(format!("{value}\n").as_bytes(), 0).unwrap();
}

/// Advances one counter at a steady rate until dropped.
struct Driver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Driver {
    fn start(path: PathBuf, per_sec: u64) -> Driver {
        let base: u64 = std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let n = (t0.elapsed().as_secs_f64() * per_sec as f64) as u64;
                poke(&path, base + n);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Driver {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A tmux server of its own (a socket named for this test), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, shell_cmd: &str) -> Tmux {
        let t = Tmux {
            socket: format!("rdma-top-{name}-{}", std::process::id()),
        };
        let ok = t
            .cmd()
            .args(["new-session", "-d", "-s", "top", "-x", "120", "-y", "36"])
            .arg(shell_cmd)
            .status()
            .unwrap();
        assert!(ok.success(), "tmux new-session");
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "top"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let ok = self
            .cmd()
            .args(["send-keys", "-t", "top"])
            .args(keys)
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// The screen once `ok` holds for it; panics with the last screen after a minute.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// `250M` → 250e6.
fn parse_human(s: &str) -> Option<f64> {
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1e3),
        'M' => (&s[..s.len() - 1], 1e6),
        'G' => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    num.parse::<f64>().ok().map(|n| n * mult)
}

/// The table rows (device first), in screen order.
fn rows(screen: &str) -> Vec<Vec<&str>> {
    screen
        .lines()
        .skip_while(|l| !l.starts_with("DEVICE"))
        .skip(1)
        .take_while(|l| l.starts_with("mlx5_"))
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// TX B/s of `dev`: columns DEVICE PORT NETDEV LL STATE SPEED(2 words) TX.
fn tx_of(screen: &str, dev: &str) -> Option<f64> {
    rows(screen)
        .into_iter()
        .find(|r| r[0] == dev)
        .and_then(|r| parse_human(r.get(7)?))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs `top_cmd` in tmux with `root` driven, and walks the checks.
fn drive(name: &str, root: &Path, top_cmd: &str) {
    let status = root.parent().unwrap().join(format!("{name}.status"));
    // The shell reports how top ended and whether the terminal is cooked
    // again (canonical mode and echo back on) once it has.
    let shell = format!(
        "printf 'shell before top\\n'; {top_cmd}; echo \"top exited $?\" > {st}; \
         stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' ' >> {st}; \
         echo 'shell after top'; sleep 600",
        st = shell_quote(&status.display().to_string()),
    );
    let _traffic = Driver::start(counter(root, DRIVEN, "port_xmit_data"), WORDS_PER_SEC);
    let tmux = Tmux::start(name, &shell);
    // The driven port at its rate (within 3 %: the writer and top's
    // samples are not in step), the others idle.
    let screen = tmux.wait("250 MB/s on the driven port", |s| {
        tx_of(s, DRIVEN).is_some_and(|tx| (tx - BYTES_PER_SEC).abs() <= BYTES_PER_SEC * 0.03)
    });
    assert!(screen.contains("rdma-monitor top"), "{screen}");
    assert_eq!(tx_of(&screen, "mlx5_0"), Some(0.0), "{screen}");
    assert_eq!(rows(&screen).len(), 16, "one row per port: {screen}");
    assert_eq!(rows(&screen)[0][0], "mlx5_0", "sorted by name first");
    // Sort by TX: the driven port comes first.
    tmux.keys(&["t"]);
    tmux.wait("the driven port on top", |s| {
        rows(s).first().is_some_and(|r| r[0] == DRIVEN) && s.contains("sort TX B/s")
    });
    // mlx5_5 receives 2 bad packets a second (120/min, over the default
    // 10/min): a finding in the strip, and the port's ERR/s.
    let _errors = Driver::start(counter(root, "mlx5_5", "port_rcv_errors"), 2);
    let screen = tmux.wait("the receive_errors finding", |s| {
        s.lines()
            .any(|l| l.contains("receive_errors") && l.contains("mlx5_5/1"))
    });
    assert!(screen.contains("Findings ("), "{screen}");
    // Quit: exit status 0, terminal back in cooked mode, top's screen gone.
    tmux.keys(&["q"]);
    let screen = tmux.wait("the shell after top", |s| s.contains("shell after top"));
    assert!(
        screen.contains("shell before top"),
        "alternate screen left: {screen}"
    );
    assert!(!screen.contains("DEVICE"), "top's screen is gone: {screen}");
    let st = std::fs::read_to_string(&status).unwrap();
    assert_eq!(st, "top exited 0\nicanon echo ", "status and tty modes");
}

#[test]
fn top_local_in_tmux() {
    if !has_tmux() {
        return common::skip("tests/top.rs top_local_in_tmux", "tmux not installed");
    }
    let tree = tree_copy();
    let cmd = format!(
        "env RDMA_MON_GENERAL__SYSFS_ROOT={} {} top --refresh 1",
        shell_quote(&tree.path().display().to_string()),
        shell_quote(BIN)
    );
    drive("local", tree.path(), &cmd);
}

/// The agent serving `root` on a free local port, a cycle a second.
struct Agent {
    child: Child,
    port: u16,
    _snapshots: tempfile::TempDir,
}

impl Agent {
    fn start(root: &Path, args: &[String]) -> Agent {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let snapshots = tempfile::tempdir().unwrap();
        let child = Command::new(BIN)
            .env_clear()
            .args(args)
            .env("RDMA_MON_GENERAL__SYSFS_ROOT", root)
            .env("RDMA_MON_GENERAL__SNAPSHOT_DIR", snapshots.path())
            .env("RDMA_MON_GENERAL__POLL_INTERVAL", "1")
            .env("RDMA_MON_PROMETHEUS__LISTEN_ADDRESS", "127.0.0.1")
            .env("RDMA_MON_PROMETHEUS__PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Agent {
            child,
            port,
            _snapshots: snapshots,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn top_url_in_tmux() {
    if !has_tmux() {
        return common::skip("tests/top.rs top_url_in_tmux", "tmux not installed");
    }
    let tree = tree_copy();
    let agent = Agent::start(tree.path(), &[]);
    let cmd = format!(
        "{} top --url http://127.0.0.1:{} --refresh 1",
        shell_quote(BIN),
        agent.port
    );
    drive("url", tree.path(), &cmd);
}

/// A CA, and a server (127.0.0.1) and a client certificate it signed, made
/// by the openssl CLI in `dir`.
fn certificates(dir: &Path) -> bool {
    let script = "set -e
        key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $1.key; }
        key ca
        openssl req -new -x509 -key ca.key -out ca.pem -days 2 -subj /CN=top-test-ca
        for who in server client; do
          key $who
          openssl req -new -key $who.key -out $who.csr -subj /CN=$who
        done
        printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
        printf 'extendedKeyUsage=clientAuth\\n' > client.ext
        for who in server client; do
          openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -days 2 -extfile $who.ext -out $who.pem
        done";
    Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `top --url https://…` with mutual TLS and basic auth against the agent
/// serving a web config; the password only from the environment.
#[test]
fn top_url_over_mutual_tls_with_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    if !certificates(dir.path()) {
        return common::skip(
            "tests/top.rs top_url_over_mutual_tls_with_basic_auth",
            "openssl could not make the certificates",
        );
    }
    let hash = bcrypt::hash("top-secret", 4).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  \
             client_ca_file: ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n\
             basic_auth_users:\n  operator: '{hash}'\n"
        ),
    )
    .unwrap();
    let tree = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sysfs/node-16hca"
    ));
    let agent = Agent::start(tree, &[format!("--web.config.file={}", web.display())]);
    let url = format!("https://127.0.0.1:{}", agent.port);
    let top = |password: &str, client_cert: bool| {
        let mut c = Command::new(BIN);
        c.args(["top", "--url", &url, "--batch", "1", "--refresh", "0.5"])
            .arg("--ca-file")
            .arg(dir.path().join("ca.pem"))
            .args(["--user", "operator"])
            .env("RDMA_MONITOR_PASSWORD", password);
        if client_cert {
            c.arg("--cert")
                .arg(dir.path().join("client.pem"))
                .arg("--key")
                .arg(dir.path().join("client.key"));
        }
        c.output().unwrap()
    };
    // Until the agent listens and has a snapshot.
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = loop {
        let out = top("top-secret", true);
        if out.status.success() {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "top --url never got a frame: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{url}/snapshot")), "{text}");
    assert_eq!(rows(&text).len(), 16, "{text}");
    // A wrong password is refused, and said.
    let out = top("wrong", true);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP 401"), "{err}");
    // Without the client certificate the handshake fails.
    let out = top("top-secret", false);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stderr.is_empty());
}
