//! The `rdma-monitor` binary: arguments, logging, signals, exit codes.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use rdma_monitor::agent::Agent;
use rdma_monitor::config::{Config, LogLevel};
use rdma_monitor::exporters::web_config::WebConfigSource;
use rdma_monitor::exporters::{Published, prometheus};

const USAGE: &str = "\
usage: rdma-monitor [--config PATH] [--once | --check-config | topology] [--version]

  --config PATH    YAML file layered over the built-in defaults
                   (RDMA_MON_<SECTION>__<KEY> environment variables override both)
  --web.config.file PATH
                   TLS, basic auth and headers for the HTTP endpoint, in the
                   Prometheus exporter-toolkit format (prometheus.web_config_file)
  --once           run one collection cycle, print the JSON snapshot, exit
  --check-config   print the effective configuration (secrets redacted), exit
  topology         sweep the IB fabric from the local port and print it in
                   ibnetdiscover's topology format, exit
  --version        print the version, exit

exit status: 0 ok, 1 runtime failure, 2 bad arguments or configuration
";

struct Args {
    config: Option<PathBuf>,
    web_config: Option<String>,
    once: bool,
    check_config: bool,
    topology: bool,
}

fn parse_args() -> Result<Option<Args>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        config: None,
        web_config: None,
        once: false,
        check_config: false,
        topology: false,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("config") | Short('c') => args.config = Some(parser.value()?.into()),
            Long("web.config.file") => args.web_config = Some(parser.value()?.string()?),
            Long("once") => args.once = true,
            Long("check-config") => args.check_config = true,
            Value(v) if v == "topology" => args.topology = true,
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

struct StderrLogger(log::LevelFilter);

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.0
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let _ = writeln!(
                std::io::stderr(),
                "rdma-monitor: {}: {}",
                r.level().as_str().to_lowercase(),
                r.args()
            );
        }
    }
    fn flush(&self) {}
}

fn init_logging(level: LogLevel) {
    let filter = match level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
    };
    let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger(filter)));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(filter);
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
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rdma-monitor: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut config = match Config::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rdma-monitor: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(f) = args.web_config {
        config.prometheus.web_config_file = f;
    }
    // A broken web config is a configuration error, found by --check-config too.
    let web = match config.prometheus.web_config_file.as_str() {
        "" => None,
        f => match WebConfigSource::open(f.as_ref()) {
            Ok(w) => Some(Arc::new(w)),
            Err(e) => {
                eprintln!("rdma-monitor: web config {e}");
                return ExitCode::from(2);
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
    if args.once {
        let mut agent = Agent::new(config, published);
        agent.start_mad(false);
        let doc = agent.cycle();
        let mut out = std::io::stdout().lock();
        return match out.write_all(doc.json()).and_then(|_| out.flush()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rdma-monitor: writing the snapshot to stdout: {e}");
                ExitCode::from(1)
            }
        };
    }
    run(config, published, web)
}

fn run(config: Config, published: Arc<Published>, web: Option<Arc<WebConfigSource>>) -> ExitCode {
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    log::info!("signal {sig}: writing a last snapshot and exiting");
                    let _ = stop_tx.send(());
                }
            });
        }
        Err(e) => {
            eprintln!("rdma-monitor: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
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
    agent.run(&stop_rx);
    ExitCode::SUCCESS
}

/// One sweep, printed as ibnetdiscover prints a fabric.
fn topology(config: &Config) -> ExitCode {
    let (mut workers, unavailable) = rdma_monitor::mad_worker::open_workers(config);
    let Some(w) = workers.first_mut() else {
        match unavailable.first() {
            Some(why) => eprintln!("rdma-monitor: topology: {why}"),
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
    if fabric.nodes.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
