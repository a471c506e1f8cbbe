//! Running the loop: the cadence of cycles and snapshot files, signals,
//! reloads.

use std::time::{Duration, Instant};

use super::Agent;
use crate::config::Config;
use crate::exporters::snapshot::SnapshotWriter;

/// What the loop is told from outside (signals). The signal thread never
/// logs itself (a blocked stderr must not keep it from a second SIGTERM):
/// the loop says what happened.
pub enum Control {
    /// Write a last snapshot and return.
    Stop,
    /// The configuration file read again (SIGHUP): the new configuration, or
    /// why it was refused (the running one is kept).
    Reload(Result<Box<Config>, String>),
    /// A signal that is only noted (its default action would kill the
    /// agent), and how many such notes before it found the queue full.
    Ignored { signal: i32, unsaid: u64 },
}

/// The configuration keys a reload applies; every other key takes effect
/// at the next start (the listener, the sources and the workers are built
/// once, and `/healthz` judges staleness by the starting `poll_interval`).
/// The web config file's content is not a key: it is re-read when it
/// changes (and on SIGHUP); only its path needs a restart.
pub const RELOADABLE_KEYS: &[&str] = &[
    "general.log_level",
    "general.snapshot_interval",
    "general.snapshot_dir",
    "general.snapshot_keep",
];

impl Agent {
    /// Applies what a reload can change (see [`RELOADABLE_KEYS`]) and keeps
    /// the new configuration; returns the changed keys that need a restart.
    pub fn reload(&mut self, new: Config) -> Vec<String> {
        let changed = crate::config::changed_keys(&self.config, &new);
        let g = &new.general;
        log::set_max_level(g.log_level.filter());
        if g.snapshot_dir != self.config.general.snapshot_dir
            || g.snapshot_keep != self.config.general.snapshot_keep
        {
            self.stats.prune_failures_before += self.writer.prune_failures();
            self.writer = SnapshotWriter::new(&g.snapshot_dir, g.snapshot_keep);
            self.writer.remove_leftovers();
        }
        let restart: Vec<String> = changed
            .into_iter()
            .filter(|k| !RELOADABLE_KEYS.contains(&k.as_str()))
            .collect();
        // What is not applied stays as it runs, so the agent reports (and
        // its next reload compares against) the configuration in effect.
        let mut effective = self.config.clone();
        effective.general.log_level = g.log_level;
        effective.general.snapshot_interval = g.snapshot_interval;
        effective.general.snapshot_dir = g.snapshot_dir.clone();
        effective.general.snapshot_keep = g.snapshot_keep;
        self.config = effective;
        restart
    }

    /// Cycles until told to stop: every `poll_interval`, a snapshot file
    /// every `snapshot_interval`, and a last snapshot on the way out.
    pub fn run(&mut self, control: &crate::clock::Receiver<Control>) {
        // Temporary files of a write cut short by a crash.
        self.writer.remove_leftovers();
        let poll = self.config.poll_interval();
        let mut snapshot_every = self.config.snapshot_interval();
        let mut next_cycle = Instant::now();
        let mut next_snapshot = crate::clock::from_now(snapshot_every);
        let mut last = None;
        let mut reloaded = false;
        let mut next_release = None;
        loop {
            // The clock is read once per step (a syscall where the
            // clocksource has no vDSO): a cycle and a snapshot write take
            // milliseconds, the schedule is in seconds. A cycle begins at
            // this read and tells when it ended.
            let mut now = Instant::now();
            if now >= next_cycle {
                let (doc, ended) = self.cycle_at(now);
                last = Some(doc);
                now = ended;
                if self.stats.cycles == RELEASE_AFTER_CYCLES
                    || std::mem::take(&mut reloaded)
                    || next_release.is_some_and(|t| now >= t)
                {
                    release_unused_pages();
                    next_release = Some(crate::clock::after(now, RELEASE_EVERY));
                }
                // Fixed cadence; after a stall, skip missed cycles instead of bursting.
                next_cycle = crate::clock::after(next_cycle, poll);
                if next_cycle <= now {
                    next_cycle = crate::clock::after(now, poll);
                }
            }
            if now >= next_snapshot {
                if let Some(doc) = &last {
                    self.write_snapshot(doc);
                    now = Instant::now();
                }
                next_snapshot = crate::clock::after(next_snapshot, snapshot_every);
                if next_snapshot <= now {
                    next_snapshot = crate::clock::after(now, snapshot_every);
                }
            }
            let wait = next_cycle.min(next_snapshot).saturating_duration_since(now);
            match control.recv_timeout(wait.max(Duration::from_millis(1))) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Ok(Control::Ignored { signal, unsaid }) => {
                    log::info!(
                        "signal {signal} ignored (SIGHUP reloads the configuration, SIGTERM/SIGINT/SIGQUIT stop)"
                    );
                    if unsaid > 0 {
                        log::info!(
                            "{unsaid} more ignored signals before it, not noted one by one: the loop was busy"
                        );
                    }
                }
                Ok(Control::Reload(Err(why))) => {
                    log::error!("configuration not reloaded, the running one is kept: {why}");
                }
                Ok(Control::Reload(Ok(new))) => {
                    let restart = self.reload(*new);
                    reloaded = true;
                    if self.config.snapshot_interval() != snapshot_every {
                        snapshot_every = self.config.snapshot_interval();
                        next_snapshot = crate::clock::from_now(snapshot_every);
                    }
                    if restart.is_empty() {
                        log::info!("configuration reloaded");
                    } else {
                        log::warn!(
                            "configuration reloaded; changes that take effect after a restart only: {}",
                            restart.join(", ")
                        );
                    }
                }
                // Told to stop, or the sender gone: write what we have and leave.
                Ok(Control::Stop) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    log::info!("stopping: writing a last snapshot");
                    break;
                }
            }
        }
        let doc = match last {
            Some(doc) => doc,
            None => self.cycle(),
        };
        self.write_snapshot(&doc);
        if let Some(stop) = self.mad_stop.take() {
            let _ = stop.send(());
        }
        // The AI thread is not waited for: an HTTP call in flight must not hold up the exit.
        if let Some(ai) = &self.ai {
            ai.stop();
        }
    }
}

/// The cycle after which the code that only startup ran is unmapped: the
/// first cycle discovers, the second is a steady one.
const RELEASE_AFTER_CYCLES: u64 = 2;

/// Then again this often (and after a reload), so what ran once since (a
/// reload, the HTTP workers' first requests, an error path) does not stay
/// mapped for the life of the agent. A release costs about 2 ms (a smaps
/// read and two madvise calls, `strace -T`) and a few dozen minor faults.
const RELEASE_EVERY: Duration = Duration::from_secs(600);

/// Unmaps the executable's pages (crate::resident); what the cycles and
/// scrapes use faults back from the page cache.
fn release_unused_pages() {
    match crate::resident::release_file_pages() {
        Ok(r) => log::debug!(
            "unmapped {} KiB of the executable's pages ({} mappings)",
            r.kib,
            r.mappings
        ),
        Err(e) => log::debug!("could not unmap the executable's pages: {e}"),
    }
}
