//! The exporter-toolkit web config end to end: mutual TLS plus basic auth
//! against curl, a real Prometheus and node_exporter (the reference
//! implementation of the file format), with certificates made here by the
//! openssl CLI.
//!
//! The agent's server runs in this process on the library API, fed by one
//! real cycle on the bundled tree; the flag and the startup error run the
//! binary.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdma_monitor::agent::Agent;
use rdma_monitor::config::{Config, Endpoints};
use rdma_monitor::exporters::web_config::WebConfigSource;
use rdma_monitor::exporters::{Published, prometheus};

const PASSWORD: &str = "scrape-me";

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all
/// P-256, in `dir`.
fn make_certs(dir: &Path) {
    let ossl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(dir));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    ossl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=test-ca",
            ],
        ]
        .concat(),
    );
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "subjectAltName=DNS:prometheus\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        ossl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &format!("/CN={name}"),
                ],
            ]
            .concat(),
        );
        ossl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
}

/// The web.yml used by every test here: relative paths, resolved against
/// its own directory (as exporter-toolkit does).
fn web_yml(dir: &Path) -> PathBuf {
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let p = dir.join("web.yml");
    std::fs::write(
        &p,
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_ca_file: ca.pem\n  \
             client_auth_type: RequireAndVerifyClientCert\n  min_version: TLS12\n  \
             cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]\n\
             http_server_config:\n  http2: false\n  headers:\n    X-Content-Type-Options: nosniff\n\
             basic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    )
    .unwrap();
    p
}

/// The agent's server with `web.yml`, after one cycle on the bundled tree.
fn serve(web: &Path, endpoints: Endpoints) -> (Agent, SocketAddr) {
    let (agent, addr, _) = serve_tree("node-mixed", web, endpoints);
    (agent, addr)
}

/// An agent on the bundled `tree` after one cycle, and its server.
fn serve_tree(tree: &str, web: &Path, endpoints: Endpoints) -> (Agent, SocketAddr, Arc<Published>) {
    let mut config = Config::defaults();
    config.general.sysfs_root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sysfs")
        .join(tree);
    let published = Arc::new(Published::new(config.poll_interval()));
    let web = Arc::new(WebConfigSource::open(web).unwrap());
    let server = prometheus::spawn_with(
        "127.0.0.1:0".parse().unwrap(),
        published.clone(),
        Some(web),
        endpoints,
    )
    .unwrap();
    let mut agent = Agent::with_netlink(config, published.clone(), None);
    agent.cycle();
    (agent, server.local_addr, published)
}

struct Curl {
    code: u16,
    head: String,
    ok: bool,
}

/// curl against `url` with the extra `args`; the status code, the response
/// head, and whether curl itself succeeded (a failed handshake is not).
fn curl(dir: &Path, url: &str, args: &[&str]) -> Curl {
    let out = Command::new("curl")
        .current_dir(dir)
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = text
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0);
    Curl {
        code,
        head: text,
        ok: out.status.success(),
    }
}

const CLIENT: [&str; 6] = [
    "--cacert",
    "ca.pem",
    "--cert",
    "client.pem",
    "--key",
    "client.key",
];

fn all_on() -> Endpoints {
    Endpoints {
        snapshot: true,
        analysis: true,
    }
}

#[test]
fn curl_needs_the_client_certificate_and_the_password() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (_agent, addr) = serve(&web_yml(dir.path()), all_on());
    let url = format!("https://127.0.0.1:{}/metrics", addr.port());
    let right = format!("prometheus:{PASSWORD}");

    let ok = curl(dir.path(), &url, &[&CLIENT[..], &["-u", &right]].concat());
    assert_eq!(ok.code, 200, "{}", ok.head);
    assert!(
        ok.head.contains("X-Content-Type-Options: nosniff"),
        "{}",
        ok.head
    );
    // Twice: the second is served from the verified-password cache.
    assert_eq!(
        curl(dir.path(), &url, &[&CLIENT[..], &["-u", &right]].concat()).code,
        200
    );

    let wrong = curl(
        dir.path(),
        &url,
        &[&CLIENT[..], &["-u", "prometheus:nope"]].concat(),
    );
    assert_eq!(wrong.code, 401, "{}", wrong.head);
    assert!(
        wrong.head.contains("WWW-Authenticate: Basic"),
        "{}",
        wrong.head
    );
    let none = curl(dir.path(), &url, &CLIENT);
    assert_eq!(none.code, 401, "{}", none.head);
    // Every endpoint is behind the password, /healthz too.
    let health = format!("https://127.0.0.1:{}/healthz", addr.port());
    assert_eq!(curl(dir.path(), &health, &CLIENT).code, 401);

    let no_cert = curl(dir.path(), &url, &["--cacert", "ca.pem", "-u", &right]);
    assert!(
        !no_cert.ok && no_cert.code != 200,
        "no client certificate: {}",
        no_cert.head
    );

    let plain = curl(
        dir.path(),
        &format!("http://127.0.0.1:{}/metrics", addr.port()),
        &["-u", &right],
    );
    assert!(
        plain.code != 200,
        "plain HTTP on the TLS port: {}",
        plain.head
    );

    // The server still answers after those failures.
    assert_eq!(
        curl(dir.path(), &url, &[&CLIENT[..], &["-u", &right]].concat()).code,
        200
    );
}

#[test]
fn a_stalled_handshake_does_not_hold_up_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (_agent, addr) = serve(&web_yml(dir.path()), all_on());
    // More silent connections than workers: each sits in the handshake.
    let idle: Vec<TcpStream> = (0..16).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let url = format!("https://127.0.0.1:{}/metrics", addr.port());
    let right = format!("prometheus:{PASSWORD}");
    assert_eq!(
        curl(dir.path(), &url, &[&CLIENT[..], &["-u", &right]].concat()).code,
        200
    );
    drop(idle);
}

#[test]
fn endpoints_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let off = Endpoints {
        snapshot: false,
        analysis: false,
    };
    let (_agent, addr) = serve(&web_yml(dir.path()), off);
    let right = format!("prometheus:{PASSWORD}");
    let get = |path: &str| {
        let url = format!("https://127.0.0.1:{}{path}", addr.port());
        curl(dir.path(), &url, &[&CLIENT[..], &["-u", &right]].concat()).code
    };
    assert_eq!(get("/snapshot"), 404);
    assert_eq!(
        get("/fabric"),
        404,
        "the fabric detail goes with the snapshot"
    );
    assert_eq!(get("/analysis"), 404);
    assert_eq!(get("/metrics"), 200);
}

fn free_port() -> u16 {
    let addr = TcpListener::bind(("127.0.0.1", 0)).and_then(|l| l.local_addr());
    addr.expect("a free port").port()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` every 250 ms for up to 60 s.
fn wait_for(what: &str, mut f: impl FnMut() -> Option<String>) -> String {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_real_prometheus_scrapes_over_mtls_with_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (_agent, addr) = serve(&web_yml(dir.path()), all_on());
    let d = dir.path().display();
    let pport = free_port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: rdma\n    scheme: https\n    \
             tls_config:\n      ca_file: {d}/ca.pem\n      cert_file: {d}/client.pem\n      key_file: {d}/client.key\n    \
             basic_auth:\n      username: prometheus\n      password: {PASSWORD}\n    \
             static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            addr.port()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prom = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={d}/prometheus.yml"))
            .arg(format!("--storage.tsdb.path={d}/tsdb"))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts"),
    );
    let query = format!("http://127.0.0.1:{pport}/api/v1/query?query=up%7Bjob%3D%22rdma%22%7D");
    let up = wait_for("up{job=\"rdma\"} == 1", || {
        let out = Command::new("curl").args(["-sf", &query]).output().ok()?;
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let value = v["data"]["result"][0]["value"][1].as_str()?.to_string();
        (value == "1").then_some(body)
    });
    assert!(up.contains("\"1\""), "{up}");
}

#[test]
fn node_exporter_takes_the_same_web_config() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let web = web_yml(dir.path());
    let port = free_port();
    let _node = Killed(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.config.file={}", web.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node_exporter starts"),
    );
    let url = format!("https://127.0.0.1:{port}/metrics");
    let right = format!("prometheus:{PASSWORD}");
    wait_for("node_exporter", || {
        (curl(dir.path(), &url, &[&CLIENT[..], &["-u", &right]].concat()).code == 200)
            .then(String::new)
    });
    assert_eq!(
        curl(
            dir.path(),
            &url,
            &[&CLIENT[..], &["-u", "prometheus:nope"]].concat()
        )
        .code,
        401
    );
    let no_cert = curl(dir.path(), &url, &["--cacert", "ca.pem", "-u", &right]);
    assert!(!no_cert.ok && no_cert.code != 200);
}

#[test]
fn the_flag_loads_the_file_and_a_bad_one_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let web = web_yml(dir.path());
    let bin = env!("CARGO_BIN_EXE_rdma-monitor");
    let out = run(Command::new(bin)
        .args(["--check-config", "--web.config.file"])
        .arg(&web));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&web.display().to_string()));

    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS10\n").unwrap();
    let out = Command::new(bin)
        .args(["--check-config", "--web.config.file"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("min_version") && err.contains("TLS 1.2"),
        "{err}"
    );
}

#[test]
fn an_empty_cipher_suite_list_keeps_tls12_on() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let web = web_yml(dir.path());
    let text = std::fs::read_to_string(&web).unwrap();
    let start = text.find("  cipher_suites:").unwrap();
    let end = start + text[start..].find('\n').unwrap();
    std::fs::write(
        &web,
        format!("{}  cipher_suites: []{}", &text[..start], &text[end..]),
    )
    .unwrap();
    let (_agent, addr) = serve(&web, all_on());
    let url = format!("https://127.0.0.1:{}/metrics", addr.port());
    let right = format!("prometheus:{PASSWORD}");
    let tls12 = curl(
        dir.path(),
        &url,
        &[&CLIENT[..], &["-u", &right, "--tls-max", "1.2"]].concat(),
    );
    assert_eq!(
        tls12.code, 200,
        "TLS 1.2 with cipher_suites: []: {}",
        tls12.head
    );
}

fn mkfifo(path: &Path) {
    run(Command::new("mkfifo").arg(path));
}

#[test]
fn check_config_refuses_a_fifo_cert_file_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    mkfifo(&dir.path().join("fifo.pem"));
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: fifo.pem\n  key_file: server.key\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rdma-monitor"))
        .args(["--check-config", "--web.config.file"])
        .arg(&web)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Only a hang reaches the limit; the answer comes at once.
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("--check-config hangs on a FIFO cert_file");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("cert_file") && err.contains("not a regular file (FIFO)"),
        "{err}"
    );
}

/// A metrics answer larger than rustls takes at once (the 16-HCA tree's
/// ~120 KB, a piece per family given to it together) arrives whole and in
/// order over TLS.
#[test]
fn a_large_metrics_answer_arrives_whole_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (_agent, addr, published) = serve_tree("node-16hca", &web_yml(dir.path()), all_on());
    let want = String::from_utf8(published.metrics.load().text().to_vec()).unwrap();
    assert!(want.len() > 100_000, "{} bytes", want.len());
    let url = format!("https://127.0.0.1:{}/metrics", addr.port());
    let body = curl_body(dir.path(), &url);
    assert!(
        body.starts_with(&want),
        "{} of {} bytes",
        body.len(),
        want.len()
    );
    assert!(body[want.len()..].starts_with("# HELP rdma_monitor_last_cycle_age_seconds "));
}

/// `curl` that returns the body (with the client certificate and password).
fn curl_body(dir: &Path, url: &str) -> String {
    let right = format!("prometheus:{PASSWORD}");
    let out = Command::new("curl")
        .current_dir(dir)
        .args(["-sf", "--max-time", "20", "-u", &right])
        .args(CLIENT)
        .arg(url)
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn series(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(str::to_string)
}

/// A new web.yml that names a certificate not there yet fails to load (the
/// previous configuration stays, the metrics say so), and is loaded once the
/// certificate appears, though web.yml itself does not change again.
#[test]
fn a_failed_reload_is_retried_and_shown_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let web = web_yml(dir.path());
    let (_agent, addr) = serve(&web, all_on());
    let url = format!("https://127.0.0.1:{}/metrics", addr.port());
    let t = curl_body(dir.path(), &url);
    assert_eq!(
        series(&t, "rdma_monitor_web_config_last_reload_success").as_deref(),
        Some("1"),
        "{t}"
    );
    assert_eq!(
        series(&t, "rdma_monitor_web_config_reload_failures_total").as_deref(),
        Some("0")
    );
    let text = std::fs::read_to_string(&web).unwrap();
    std::fs::write(&web, text.replace("server.pem", "renewed.pem")).unwrap();
    let failed = wait_for("a failed reload", || {
        let t = curl_body(dir.path(), &url);
        (series(&t, "rdma_monitor_web_config_last_reload_success").as_deref() == Some("0"))
            .then_some(t)
    });
    let n: u64 = series(&failed, "rdma_monitor_web_config_reload_failures_total")
        .unwrap()
        .parse()
        .unwrap();
    assert!(n >= 1, "{failed}");
    std::fs::copy(
        dir.path().join("server.pem"),
        dir.path().join("renewed.pem"),
    )
    .unwrap();
    wait_for("the retried reload", || {
        let t = curl_body(dir.path(), &url);
        (series(&t, "rdma_monitor_web_config_last_reload_success").as_deref() == Some("1"))
            .then_some(t)
    });
}

/// The loopback health listener answers a kubelet's plain httpGet while
/// the scrape port wants TLS and a password; it serves /healthz only.
#[test]
fn the_health_listener_serves_healthz_only_in_plain_http_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (_agent, scrape, published) = serve_tree("node-mixed", &web_yml(dir.path()), all_on());
    let health =
        prometheus::spawn_health("127.0.0.1:0".parse().unwrap(), published.clone()).unwrap();
    let plain = |port: u16, path: &str| {
        curl(dir.path(), &format!("http://127.0.0.1:{port}{path}"), &[]).code
    };
    assert_eq!(plain(health.local_addr.port(), "/healthz"), 200);
    assert_eq!(plain(health.local_addr.port(), "/metrics"), 404);
    assert_eq!(plain(health.local_addr.port(), "/snapshot"), 404);
    assert_ne!(plain(scrape.port(), "/healthz"), 200);
    let Err(e) = prometheus::spawn_health("0.0.0.0:0".parse().unwrap(), published) else {
        panic!("a health listener on 0.0.0.0");
    };
    assert!(e.to_string().contains("loopback"), "{e}");
}

/// SIGHUP with `--web.config.file`: the flag still applies to the file read
/// again, so nothing claims the web config path changed and needs a restart.
#[test]
fn sighup_does_not_report_the_web_config_flag_as_a_change() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let web = web_yml(dir.path());
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "general:\n  log_level: info\n").unwrap();
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_rdma-monitor"))
            .env_clear()
            .env(
                "RDMA_MON_GENERAL__SYSFS_ROOT",
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/node-mixed"),
            )
            .env("RDMA_MON_GENERAL__SNAPSHOT_DIR", dir.path().join("snap"))
            .env("RDMA_MON_PROMETHEUS__LISTEN_ADDRESS", "127.0.0.1")
            .env("RDMA_MON_PROMETHEUS__PORT", free_port().to_string())
            .arg("--config")
            .arg(&config)
            .arg("--web.config.file")
            .arg(&web)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait = |what: &str| loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(l) if l.contains(what) => return l,
            Ok(_) => {}
            Err(e) => panic!("no line with {what:?}: {e}"),
        }
    };
    // The signal handlers are installed before the server starts.
    wait("serving https://");
    // SAFETY: kill(2) on the child this test started and still owns.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGHUP) }, 0);
    let l = wait("configuration reloaded");
    assert!(!l.contains("web_config_file"), "{l}");
}
