//! The `rdma-monitor` binary: arguments, logging, signals, exit codes.

use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use rdma_monitor::agent::{Agent, Control};
use rdma_monitor::clock;
use rdma_monitor::config::{Config, LogLevel, escape};
use rdma_monitor::exporters::web_config::{self, WebConfigSource};
use rdma_monitor::exporters::{Published, prometheus};
use rdma_monitor::snapshot::SnapshotDoc;

/// The static (musl) build's allocator (rdma_monitor::allocator says why);
/// glibc builds keep glibc's.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: rdma_monitor::allocator::Allocator = rdma_monitor::allocator::Allocator;

const USAGE: &str = "\
usage: rdma-monitor [--config PATH] [--once | --check-config | topology | check [--npd]] [--version]
       rdma-monitor hash-password < password
       rdma-monitor top [--help]   the live view (see rdma-monitor top --help)

  --config PATH    YAML file layered over the built-in defaults
                   (RDMA_MON_<SECTION>__<KEY> environment variables override both)
  --web.config.file PATH
                   TLS, basic auth and headers for the HTTP endpoint, in the
                   Prometheus exporter-toolkit format (prometheus.web_config_file)
  --once           run one collection cycle, print the JSON snapshot, exit
  --check-config   print the effective configuration (secrets redacted), exit
  topology         sweep the IB fabric from the local port and print it in
                   ibnetdiscover's topology format, exit
  check            run one cycle, print the node's verdict and one line per
                   finding, exit 0 healthy, 1 degraded (a warning), 2 unhealthy
                   (a critical finding), 3 cannot judge (bad arguments or
                   configuration, nothing read, stdout failed); for Slurm NHC
  check --npd      the same for Kubernetes node-problem-detector's custom
                   plugins: exit 0 healthy or degraded, 1 unhealthy, 2 cannot judge
  --version        print the version, exit
  hash-password    read a password on stdin, print its bcrypt hash for
                   basic_auth_users in the web config, exit

signals: SIGTERM, SIGINT, SIGQUIT write a last snapshot and exit (a second
  one, or a last snapshot not written within 5 s, exits at once); SIGHUP
  reads the configuration again; SIGUSR1, SIGUSR2, SIGALRM are ignored

exit status: 0 ok, 1 runtime failure (also: last snapshot not written within
  5 s of the stop signal), 2 bad arguments or configuration, 3 --once read
  nothing at all, 4 topology sweep cut short by fabric.sweep_budget (the tree
  printed is partial), 128+N a second stop signal N; `check` has its own
  (above)
";

/// Exit status of `--once` when nothing at all could be read.
const EXIT_NOTHING_READ: u8 = 3;
/// Exit status of `check` (and of `check --npd`) when it cannot judge the node.
const EXIT_CHECK_UNKNOWN: u8 = 3;
const EXIT_CHECK_UNKNOWN_NPD: u8 = 2;
/// How long the last snapshot may take after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

struct Args {
    config: Option<PathBuf>,
    web_config: Option<String>,
    once: bool,
    check_config: bool,
    topology: bool,
    hash_password: bool,
    check: bool,
    npd: bool,
}

fn parse_args() -> Result<Option<Args>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        config: None,
        web_config: None,
        once: false,
        check_config: false,
        topology: false,
        hash_password: false,
        check: false,
        npd: false,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("config") | Short('c') => args.config = Some(parser.value()?.into()),
            Long("web.config.file") => args.web_config = Some(parser.value()?.string()?),
            Long("once") => args.once = true,
            Long("check-config") => args.check_config = true,
            Value(v) if v == "topology" => args.topology = true,
            Value(v) if v == "hash-password" => args.hash_password = true,
            Value(v) if v == "check" => args.check = true,
            Long("npd") => args.npd = true,
            Long("version") | Short('V') => {
                println!("rdma-monitor {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            Long("help") | Short('h') => {
                print!("{USAGE}");
                return Ok(None);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Some(args))
}

/// Writes `rdma-monitor: <level>: <message>` lines to stderr, control
/// characters escaped: one record is one line, whatever a value holds. The
/// level is the global `log::max_level`, so a reload can change it.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let msg = r.args().to_string();
            let _ = writeln!(
                std::io::stderr(),
                "rdma-monitor: {}: {}",
                r.level().as_str().to_lowercase(),
                escape(&msg)
            );
        }
    }
    fn flush(&self) {}
}

fn init_logging(level: LogLevel) {
    static LOGGER: StderrLogger = StderrLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level.filter());
    }
}

/// Raises the soft open-file limit to the hard one (at most 65536): the
/// sysfs source keeps attribute files open to read them with one syscall.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a struct we own.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "top") {
        return rdma_monitor::top::main(std::env::args_os().skip(2));
    }
    // `check`'s callers read 1 and 2 as a verdict: its own failures must not look like one.
    let checking = std::env::args_os().skip(1).any(|a| a == "check");
    let npd = std::env::args_os().skip(1).any(|a| a == "--npd");
    let cannot_judge = |usual: u8| match (checking, npd) {
        (true, true) => ExitCode::from(EXIT_CHECK_UNKNOWN_NPD),
        (true, false) => ExitCode::from(EXIT_CHECK_UNKNOWN),
        _ => ExitCode::from(usual),
    };
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rdma-monitor: {}\n{USAGE}", escape(&e.to_string()));
            return cannot_judge(2);
        }
    };
    if args.hash_password {
        return hash_password();
    }
    if args.npd && !args.check {
        eprintln!("rdma-monitor: --npd goes with check only (see --help)");
        return ExitCode::from(2);
    }
    let modes = [
        (args.once, "--once"),
        (args.check_config, "--check-config"),
        (args.topology, "topology"),
        (args.check, "check"),
    ];
    let chosen: Vec<&str> = modes.iter().filter(|m| m.0).map(|m| m.1).collect();
    if chosen.len() > 1 {
        eprintln!(
            "rdma-monitor: {} cannot be combined: choose one (see --help)",
            chosen.join(" and ")
        );
        return cannot_judge(2);
    }
    let mut config = match Config::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rdma-monitor: {e}");
            return cannot_judge(2);
        }
    };
    if let Some(f) = &args.web_config {
        config.prometheus.web_config_file = f.clone();
    }
    // A broken web config is a configuration error, found by --check-config too.
    let web = match config.prometheus.web_config_file.as_str() {
        "" => None,
        f => match WebConfigSource::open(f.as_ref()) {
            Ok(w) => Some(Arc::new(w)),
            Err(e) => {
                eprintln!("rdma-monitor: web config {e}");
                return cannot_judge(2);
            }
        },
    };
    if args.check_config {
        print!("{}", config.to_redacted_yaml());
        return ExitCode::SUCCESS;
    }
    init_logging(config.general.log_level);
    raise_fd_limit();
    if args.topology {
        return topology(&config);
    }
    let published = Arc::new(Published::new(config.poll_interval()));
    if args.check {
        return check(config, published, args.npd);
    }
    if args.once {
        return once(config, published);
    }
    let reload = Reload {
        config: args.config,
        web_config_flag: args.web_config,
        web,
    };
    run(config, reload, published)
}

/// `hash-password`: the bcrypt hash of the password on stdin (one line), for
/// `basic_auth_users`. stdin, not an argument: a flag would land in shell
/// history and in `ps`.
fn hash_password() -> ExitCode {
    let mut line = String::new();
    let read = std::io::stdin().lock().take(4096).read_line(&mut line);
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    let hashed = read
        .map_err(|e| e.to_string())
        .and_then(|_| web_config::hash_password(password).map_err(|e| e.to_string()));
    match hashed {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rdma-monitor: hash-password: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs one cycle (MADs once, in line); also whether it read nothing at all.
fn one_cycle(config: Config, published: Arc<Published>) -> (Arc<SnapshotDoc>, bool) {
    let mut agent = Agent::new(config, published);
    agent.start_mad(false);
    let doc = agent.cycle();
    let s = &doc.snapshot;
    let mad_read = s
        .mad
        .as_ref()
        .is_some_and(|m| !m.local.is_empty() || m.fabric.is_some());
    let nothing = s.devices.is_empty() && s.netdevs.is_empty() && !mad_read;
    (doc, nothing)
}

/// One cycle, its snapshot on stdout; exit 3 (with the reason) when it read nothing at all.
fn once(config: Config, published: Arc<Published>) -> ExitCode {
    let root = config.general.sysfs_root.clone();
    let root_missing = !root.is_dir();
    if root_missing {
        log::warn!(
            "sysfs_root {} does not exist or is not a directory: nothing to read there",
            root.display()
        );
    }
    let (doc, nothing) = one_cycle(config, published);
    let s = &doc.snapshot;
    if nothing && !root_missing {
        log::warn!(
            "no RDMA device, netdev or MAD port read ({}/class/infiniband {})",
            root.display(),
            if s.rdma_class_present {
                "has no device this configuration watches"
            } else {
                "does not exist: RDMA core not loaded, or the wrong sysfs_root"
            }
        );
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(doc.json()).and_then(|_| out.flush()) {
        eprintln!("rdma-monitor: writing the snapshot to stdout: {e}");
        return ExitCode::from(1);
    }
    if nothing {
        ExitCode::from(EXIT_NOTHING_READ)
    } else {
        ExitCode::SUCCESS
    }
}

/// One cycle; the verdict and one line per finding on stdout; the verdict as the exit status.
fn check(config: Config, published: Arc<Published>, npd: bool) -> ExitCode {
    use rdma_monitor::analysis::health::{Verdict, finding_line, verdict_line};
    let unknown = if npd {
        EXIT_CHECK_UNKNOWN_NPD
    } else {
        EXIT_CHECK_UNKNOWN
    };
    let root = config.general.sysfs_root.clone();
    let (doc, nothing) = one_cycle(config, published);
    let findings = &doc.findings;
    // Reading nothing is no verdict by itself, unless an expectation says
    // what should have been there (health.expect: then it is unmet).
    if nothing && !findings.iter().any(|f| f.id == "expectation_unmet") {
        eprintln!(
            "rdma-monitor: check: no RDMA device, netdev or MAD port read under {}: cannot judge",
            root.display()
        );
        return ExitCode::from(unknown);
    }
    let verdict = Verdict::of(findings);
    let mut text = format!("{}\n", verdict_line(findings));
    for f in findings {
        text.push_str(&finding_line(f));
        text.push('\n');
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        eprintln!("rdma-monitor: check: writing to stdout: {e}");
        return ExitCode::from(unknown);
    }
    ExitCode::from(match (npd, verdict) {
        (false, v) => v.exit_code(),
        (true, Verdict::Unhealthy) => 1,
        (true, _) => 0,
    })
}

/// Ends the process now, without running exit handlers or flushing stdio
/// (either could block on the very thing that hangs the shutdown).
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes no pointers and never returns; skipping destructors
    // and atexit handlers is the point (the process is being abandoned).
    unsafe { libc::_exit(code) }
}

/// Says `msg` on stderr if that can be done within a moment, then exits:
/// the message is written from a helper thread, since a stalled stderr
/// (a full pipe) would otherwise hold up the exit it reports.
fn say_and_exit(msg: String, code: i32) -> ! {
    let (tx, rx) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new().spawn(move || {
        log::error!("{msg}");
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_millis(200));
    exit_now(code)
}

/// Handles the signals: stop (once gracefully, then at once), reload,
/// and notes the rest instead of dying of them. Never logs itself.
/// What SIGHUP reads again: the config file (with the `--web.config.file`
/// flag over it, as at startup) and the web config.
struct Reload {
    config: Option<PathBuf>,
    web_config_flag: Option<String>,
    web: Option<Arc<WebConfigSource>>,
}

fn spawn_signal_thread(reload: Reload, control: clock::Sender<Control>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    let mut signals = signal_hook::iterator::Signals::new([
        SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM,
    ])?;
    // Config reads happen on their own thread: a file that blocks must not
    // keep this one from the next SIGTERM. One pending request is enough.
    let (reload_tx, reload_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let to_loop = control.clone();
    std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || reload_worker(reload, &reload_rx, &to_loop))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut stopping = false;
            // Notes of ignored signals that found the queue full: counted
            // and told with the next one.
            let mut unsaid = 0u64;
            for sig in signals.forever() {
                match sig {
                    SIGTERM | SIGINT | SIGQUIT if stopping => {
                        say_and_exit(format!("signal {sig} again: exiting now"), 128 + sig)
                    }
                    SIGTERM | SIGINT | SIGQUIT => {
                        stopping = true;
                        let _ = std::thread::Builder::new()
                            .name("shutdown-deadline".into())
                            .spawn(|| {
                                std::thread::sleep(SHUTDOWN_GRACE);
                                say_and_exit(
                                    format!(
                                        "last snapshot not written within {}s of the stop signal: exiting without it",
                                        SHUTDOWN_GRACE.as_secs()
                                    ),
                                    1,
                                )
                            });
                        // Delivered whatever else is queued (notes of ignored
                        // signals fill the same queue), from its own thread so
                        // this one stays free to see a second signal.
                        let stop = control.clone();
                        let sent = std::thread::Builder::new()
                            .name("stop".into())
                            .spawn(move || stop.send(Control::Stop));
                        if sent.is_err() {
                            let _ = control.try_send(Control::Stop);
                        }
                    }
                    SIGHUP if !stopping => {
                        let _ = reload_tx.try_send(());
                    }
                    SIGHUP => {}
                    signal => match control.try_send(Control::Ignored { signal, unsaid }) {
                        Ok(()) => unsaid = 0,
                        Err(_) => unsaid += 1,
                    },
                }
            }
        })?;
    Ok(())
}

fn reload_worker(reload: Reload, requests: &Receiver<()>, control: &clock::Sender<Control>) {
    while requests.recv().is_ok() {
        let loaded = Config::load(reload.config.as_deref(), std::env::vars())
            .map(|mut c| {
                // The flag still overrides the file, as at startup: without
                // it every SIGHUP reported a changed web_config_file.
                if let Some(f) = &reload.web_config_flag {
                    c.prometheus.web_config_file = f.clone();
                }
                Box::new(c)
            })
            .map_err(|e| e.to_string());
        // The web config's content is re-read when its files change (checked
        // every second); SIGHUP checks at once. Its path needs a restart.
        if let Some(web) = &reload.web {
            web.refresh(std::time::Instant::now(), true);
        }
        // Waits for room (this thread is the reload's own): a reload that
        // found the queue full of notes was lost, and an earlier one, read
        // from an older file, applied in its place. Further SIGHUPs wait in
        // `requests` (one pending) and read the file after this one.
        if control.send(Control::Reload(loaded)).is_err() {
            return;
        }
    }
}

fn run(config: Config, reload: Reload, published: Arc<Published>) -> ExitCode {
    let web = reload.web.clone();
    // Bounded: a flood of signals while the loop is busy cannot grow it.
    let (control_tx, control_rx) = clock::channel(64);
    if let Err(e) = spawn_signal_thread(reload, control_tx) {
        eprintln!("rdma-monitor: cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }
    if !config.general.sysfs_root.is_dir() {
        log::warn!(
            "sysfs_root {} does not exist or is not a directory: nothing to read until it appears",
            config.general.sysfs_root.display()
        );
    }
    if config.prometheus.enabled {
        let addr = SocketAddr::new(config.prometheus.listen_address, config.prometheus.port());
        let scheme = match web.as_ref().is_some_and(|w| w.current().tls.is_some()) {
            true => "https",
            false => "http",
        };
        let endpoints = config.prometheus.endpoints;
        match prometheus::spawn_with(addr, published.clone(), web, endpoints) {
            Ok(server) => log::info!("serving {scheme}://{}/metrics", server.local_addr),
            Err(e) => {
                eprintln!("rdma-monitor: cannot listen on {addr}: {e}");
                return ExitCode::from(1);
            }
        }
        if let Ok(Some(health)) = config.prometheus.health_listen() {
            match prometheus::spawn_health(health, published.clone()) {
                Ok(s) => log::info!("serving http://{}/healthz (no TLS, no auth)", s.local_addr),
                Err(e) => {
                    eprintln!("rdma-monitor: cannot listen on {health}: {e}");
                    return ExitCode::from(1);
                }
            }
        }
    }
    log::info!(
        "watching {}/class/infiniband every {}s, snapshots every {}s into {}",
        config.general.sysfs_root.display(),
        config.general.poll_interval,
        config.general.snapshot_interval,
        config.general.snapshot_dir.display()
    );
    let mut agent = Agent::new(config, published);
    agent.start_mad(true);
    agent.start_ai();
    agent.run(&control_rx);
    ExitCode::SUCCESS
}

/// One sweep, printed as ibnetdiscover prints a fabric.
fn topology(config: &Config) -> ExitCode {
    let (mut workers, unavailable) = rdma_monitor::mad_worker::open_workers(config);
    let Some(w) = workers.first_mut() else {
        match unavailable.first() {
            Some(why) => eprintln!("rdma-monitor: topology: {}", escape(why)),
            None => eprintln!(
                "rdma-monitor: topology: no InfiniBand port here (set fabric.umad_device)"
            ),
        }
        return ExitCode::from(1);
    };
    let fabric = w.sweep(std::time::Duration::from_secs_f64(
        config.fabric.sweep_budget,
    ));
    for e in &fabric.errors {
        eprintln!("rdma-monitor: topology: {e}");
    }
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    print!(
        "{}",
        rdma_monitor::exporters::ibnetdiscover::render(&fabric, &date)
    );
    let incomplete = rdma_monitor::exporters::ibnetdiscover::incomplete(&fabric);
    if let Some(why) = incomplete {
        // The budget message is among the errors above; this line says what it means.
        eprintln!("rdma-monitor: topology: {why}");
        ExitCode::from(rdma_monitor::exporters::ibnetdiscover::EXIT_INCOMPLETE)
    } else if fabric.nodes.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
