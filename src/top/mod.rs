//! `rdma-monitor top`: a live view of the node's RDMA ports, their
//! consumers, the findings and the fabric, in a terminal (ratatui on
//! crossterm) or as plain-text frames (`--batch N`).
//!
//! Frames are snapshot JSON documents: from the agent's cycle run in this
//! process, or from a running agent's `/snapshot` (`--url`). Rates are
//! computed here from two documents' absolute counters (`model`).

pub mod app;
pub mod doc;
pub mod model;
pub mod render;
pub mod source;

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyEventKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use app::App;
use model::Model;
use source::{Frames, Local, Remote, RemoteOptions};

/// The environment variable `--user`'s password is read from (never a flag:
/// a flag shows in `ps` and shell history).
pub const PASSWORD_ENV: &str = "RDMA_MONITOR_PASSWORD";

pub const USAGE: &str = "\
usage: rdma-monitor top [--config PATH | --url URL [TLS/auth options]]
                        [--refresh SECONDS] [--batch N] [--bits]

  --config PATH   the agent's configuration (sources, sysfs_root; the
                  RDMA_MON_* environment variables apply as for the agent)
  --url URL       show a running agent: http[s]://host:port (its /snapshot)
  --ca-file PATH  CA certificates to verify the agent's TLS certificate
  --cert PATH, --key PATH
                  client certificate and key (mutual TLS)
  --user NAME     basic auth user; the password is read from $RDMA_MONITOR_PASSWORD
  --refresh SECS  time between samples (default 1)
  --batch N       print N plain-text frames (rates need a sample before the
                  first) and exit; COLUMNS sets the width (default 120)
  --bits          throughput in bits/s instead of bytes/s
  --detail        with --batch: after each frame, every counter of every
                  port with its value and its rate per second
  --view VIEW     the view to show (first): ports (default), consumers,
                  findings or fabric

exit status: 0 ok, 1 no frame could be had (--batch) or the terminal
  failed, 2 bad arguments or configuration
";

#[derive(Debug, Default)]
struct Args {
    config: Option<PathBuf>,
    url: Option<String>,
    remote: RemoteOptions,
    refresh: Option<f64>,
    batch: Option<u64>,
    bits: bool,
    detail: bool,
    view: Option<app::View>,
}

fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args::default();
    let mut p = lexopt::Parser::from_args(raw);
    while let Some(arg) = p.next()? {
        match arg {
            Long("config") | Short('c') => a.config = Some(p.value()?.into()),
            Long("url") => a.url = Some(p.value()?.string()?),
            Long("ca-file") => a.remote.ca_file = Some(p.value()?.string()?),
            Long("cert") => a.remote.cert = Some(p.value()?.string()?),
            Long("key") => a.remote.key = Some(p.value()?.string()?),
            Long("user") => a.remote.user = Some(p.value()?.string()?),
            Long("refresh") | Short('d') => {
                let v: f64 = p.value()?.parse()?;
                if !(0.1..=3600.0).contains(&v) {
                    return Err("--refresh: between 0.1 and 3600 seconds".into());
                }
                a.refresh = Some(v);
            }
            Long("batch") | Short('b') => a.batch = Some(p.value()?.parse()?),
            Long("bits") => a.bits = true,
            Long("detail") => a.detail = true,
            Long("view") => {
                let v = p.value()?.string()?;
                a.view = Some(app::View::from_name(&v).ok_or_else(|| {
                    format!("--view: {v:?} is not one of ports, consumers, findings, fabric")
                })?);
            }
            Long("help") | Short('h') => {
                print!("{USAGE}");
                return Ok(None);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Some(a))
}

/// Runs `top` with the arguments after `top`.
pub fn main(raw: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = match parse_args(raw) {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rdma-monitor top: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut frames: Box<dyn Frames> = match &args.url {
        Some(url) => {
            let mut o = args.remote.clone();
            o.password = std::env::var(PASSWORD_ENV).ok();
            match Remote::new(url, &o) {
                Ok(r) => Box::new(r),
                Err(e) => {
                    eprintln!("rdma-monitor top: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => match crate::config::Config::load(args.config.as_deref(), std::env::vars()) {
            Ok(c) => Box::new(Local::new(c)),
            Err(e) => {
                eprintln!("rdma-monitor top: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let refresh = Duration::from_secs_f64(args.refresh.unwrap_or(1.0));
    // NO_COLOR (no-color.org): set and not empty means no colour.
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut app = App::new(frames.origin(), refresh.as_secs_f64(), color);
    app.bits = args.bits;
    app.detail = args.detail;
    if let Some(v) = args.view {
        app.view = v;
    }
    match args.batch {
        Some(n) => batch(frames.as_mut(), &mut app, n, refresh),
        None => interactive(frames.as_mut(), &mut app, refresh),
    }
}

fn take(frames: &mut dyn Frames, app: &mut App, model: &mut Model) {
    match frames.next() {
        Ok(doc) => {
            app.error = None;
            model.update(doc);
        }
        Err(e) => app.error = Some(e),
    }
}

/// One frame as text, `width` columns wide, every row shown.
pub fn frame_text(app: &App, model: &Model, width: u16) -> String {
    let height = render::batch_height(app, model);
    let mut term = match Terminal::new(TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(e) => return format!("rdma-monitor top: {e}\n"),
    };
    let _ = term.draw(|f| render::draw(f, app, model, true));
    render::buffer_text(term.backend().buffer())
}

fn batch(frames: &mut dyn Frames, app: &mut App, n: u64, refresh: Duration) -> ExitCode {
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|w| (40..=1000).contains(w))
        .unwrap_or(120);
    app.color = false;
    let mut model = Model::default();
    // A first sample, so that the first frame printed has rates.
    take(frames, app, &mut model);
    let mut out = std::io::stdout().lock();
    for i in 0..n {
        std::thread::sleep(refresh);
        take(frames, app, &mut model);
        if model.frames == 0 {
            eprintln!(
                "rdma-monitor top: {}",
                app.error.as_deref().unwrap_or("no frame")
            );
            return ExitCode::from(1);
        }
        let sep = if i == 0 { "" } else { "\n" };
        let mut text = frame_text(app, &model, width);
        if app.detail {
            text.push_str(&render::detail_text(app, &model));
        }
        if write!(out, "{sep}{text}")
            .and_then(|_| out.flush())
            .is_err()
        {
            // stdout closed (a pipe into head): nothing more to say.
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}

fn interactive(frames: &mut dyn Frames, app: &mut App, refresh: Duration) -> ExitCode {
    // SIGTERM/SIGHUP (a closed SSH session) end the loop, so the terminal is restored.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("rdma-monitor top: cannot handle signal {sig}: {e}");
            return ExitCode::from(1);
        }
    }
    let mut term = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rdma-monitor top: cannot use the terminal: {e}");
            return ExitCode::from(1);
        }
    };
    let result = event_loop(&mut term, frames, app, refresh, &stop);
    ratatui::restore();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rdma-monitor top: terminal: {e}");
            ExitCode::from(1)
        }
    }
}

fn event_loop(
    term: &mut ratatui::DefaultTerminal,
    frames: &mut dyn Frames,
    app: &mut App,
    refresh: Duration,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut model = Model::default();
    let mut next = Instant::now();
    let mut dirty = true;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next {
            if !app.paused {
                take(frames, app, &mut model);
                dirty = true;
            }
            next = crate::clock::after(next, refresh);
            if next <= now {
                next = crate::clock::from_now(refresh);
            }
        }
        if dirty {
            if app.selected.is_none() {
                app.selected = app.rows(&model.ports).first().map(|r| r.key());
            }
            term.draw(|f| render::draw(f, app, &model, false))?;
            dirty = false;
        }
        // Wake at the next sample, and at least every 250 ms to see a signal.
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(250));
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    if app.key(k, &model.ports) {
                        return Ok(());
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
    Ok(())
}
