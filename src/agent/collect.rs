//! Running the collectors' table over one cycle: each in turn, a panic or
//! an error costing its own area for one cycle, not the agent.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use super::repeated::Repeated;
use crate::collectors::{self, Collector, Cycle};
use crate::config::Config;
use crate::metrics::Builder;
use crate::snapshot::CollectorStatus;

struct Registered {
    name: &'static str,
    reads: &'static [collectors::inputs::Input],
    collector: Box<dyn Collector>,
    failure: Repeated,
}

/// The collectors of [`collectors::REGISTRY`], built once.
pub struct Collectors {
    table: Vec<Registered>,
    /// Failed runs of each collector since start, in table order.
    pub errors_total: Vec<u64>,
    /// The ticks at the cycle's start, at each collector's start and at
    /// the end, kept from run to run.
    stamps: Vec<u64>,
    ticker: Ticker,
}

impl Collectors {
    pub fn new(config: &Config) -> Collectors {
        let ticker = Ticker::choose(&config.general.sysfs_root);
        log::debug!("collectors timed by {}", ticker.read.name());
        Collectors::of(
            collectors::REGISTRY
                .iter()
                .map(|r| (r.name, r.reads, (r.factory)(config)))
                .collect(),
            ticker,
        )
    }

    fn of(
        table: Vec<(
            &'static str,
            &'static [collectors::inputs::Input],
            Box<dyn Collector>,
        )>,
        ticker: Ticker,
    ) -> Collectors {
        let table: Vec<Registered> = table
            .into_iter()
            .map(|(name, reads, collector)| Registered {
                name,
                reads,
                collector,
                failure: Repeated::default(),
            })
            .collect();
        Collectors {
            errors_total: vec![0; table.len()],
            stamps: Vec::with_capacity(table.len() + 2),
            table,
            ticker,
        }
    }

    /// The cycle's start: `at` (the loop's clock read) and the ticks then.
    pub fn mark(&self, at: Instant) -> Mark {
        self.ticker.mark(at)
    }

    /// Runs every collector; a collector whose inputs failed lately
    /// (`failures`) is reported failed even when it rendered.
    ///
    /// The span from the cycle's start (`from`, the loop's read) to a clock
    /// read at the end is shared out by the [`Ticker`] read at each
    /// collector's start: the part before the collectors and each
    /// collector's add up to the span, each in proportion to its ticks. The
    /// returned [`Clocked`] tells later instants of the cycle.
    pub fn run(
        &mut self,
        cycle: &Cycle,
        failures: &collectors::inputs::Failures,
        out: &mut Builder,
        from: Mark,
    ) -> (Vec<CollectorStatus>, Clocked) {
        let mut statuses = Vec::with_capacity(self.table.len());
        self.stamps.clear();
        self.stamps.push(from.ticks);
        for (c, errors_total) in self.table.iter_mut().zip(&mut self.errors_total) {
            self.stamps.push(self.ticker.ticks());
            let result =
                std::panic::catch_unwind(AssertUnwindSafe(|| c.collector.collect(cycle, out)));
            let error = match result {
                Ok(Ok(())) => failures.failure_of(c.reads),
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("collector panicked".to_string()),
            };
            match &error {
                Some(e) => {
                    *errors_total += 1;
                    let what = format!("collector {}", c.name);
                    c.failure.log_fail(&what, e, &format_args!("{what}: {e}"));
                }
                None => c.failure.log_ok(&format!("collector {}", c.name)),
            }
            statuses.push(CollectorStatus {
                name: c.name,
                success: error.is_none(),
                duration_seconds: 0.0,
                error,
            });
        }
        let end = self.ticker.mark(Instant::now());
        self.stamps.push(end.ticks);
        let span = end.at.duration_since(from.at);
        // The first lap is the cycle's part before the collectors.
        let shares = apportion(span, &self.stamps).skip(1);
        for (status, share) in statuses.iter_mut().zip(shares) {
            status.duration_seconds = share.as_secs_f64();
        }
        (
            statuses,
            Clocked {
                from,
                end,
                ticker: self.ticker,
            },
        )
    }
}

/// A clock reading and the ticks then.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub at: Instant,
    ticks: u64,
}

/// Two marks of one cycle, and what ticked between them.
#[derive(Debug, Clone, Copy)]
pub struct Clocked {
    from: Mark,
    end: Mark,
    ticker: Ticker,
}

impl Clocked {
    /// Now, for the few milliseconds after the collectors that end the
    /// cycle: a clock read where the clocksource has a vDSO read, else the
    /// cycle counter told from the end mark at the rate it ran from `from`
    /// to the end (no clock read, which would be a syscall).
    pub fn now(&self) -> Instant {
        if self.ticker.read == Read::Clock {
            return Instant::now();
        }
        let span = self.end.at.duration_since(self.from.at).as_nanos();
        let measured = u128::from(self.end.ticks.saturating_sub(self.from.ticks));
        let since = u128::from(self.ticker.ticks().saturating_sub(self.end.ticks));
        let ns = (span * since).checked_div(measured).unwrap_or(0);
        let later = Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX));
        crate::clock::after(self.end.at, later)
    }
}

/// What tells the collectors' shares of a cycle, decided once at start.
#[derive(Debug, Clone, Copy)]
pub struct Ticker {
    /// Where [`Read::Clock`]'s ticks (nanoseconds) count from.
    origin: Instant,
    read: Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// A clock read per collector: exact, and no syscall where the
    /// clocksource has a vDSO read.
    Clock,
    /// The CPU's cycle counter ([`counter`]): no syscall, but a share is
    /// only as true as the counter's rate is steady across the cycle and
    /// the CPUs the thread ran on (a counter that went backwards counts as
    /// no ticks, [`apportion`]).
    Counter,
    /// Ticks a test hands out ([`script`]).
    #[cfg(test)]
    Script,
}

impl Read {
    fn name(self) -> &'static str {
        match self {
            Read::Clock => "a clock read each",
            Read::Counter => "the CPU's cycle counter",
            #[cfg(test)]
            Read::Script => "a test's ticks",
        }
    }
}

/// The kernel's clocksource, as `clocksource0` names it.
const CLOCKSOURCE: &str = "devices/system/clocksource/clocksource0/current_clocksource";

/// Clocksources whose clock reads the vDSO serves without a syscall
/// (vclock_mode set by their drivers: x86 tsc, kvm-clock and Xen's pvclock
/// (with a stable TSC), Hyper-V's TSC page; arm64's arch timer). hpet lost
/// its vDSO read in Linux 5.6; acpi_pm and jiffies never had one.
const VDSO_CLOCKSOURCES: &[&str] = &[
    "tsc",
    "kvm-clock",
    "xen",
    "hyperv_clocksource_tsc_page",
    "arch_sys_counter",
];

impl Ticker {
    /// The ticker for this node: see [`Ticker::read_for`].
    pub fn choose(sysfs_root: &Path) -> Ticker {
        Ticker {
            origin: Instant::now(),
            read: Ticker::read_for(sysfs_root),
        }
    }

    /// A clock read per collector where the clocksource (under `sysfs_root`,
    /// else `/sys`) has a vDSO read: exact, and no syscall. Otherwise the
    /// cycle counter where this thread may read it (the threads it starts
    /// inherit that, and only a thread itself changes it), else clock reads.
    fn read_for(sysfs_root: &Path) -> Read {
        let clocksource = [sysfs_root, Path::new("/sys")]
            .iter()
            .find_map(|root| crate::sources::file::read_attr(&root.join(CLOCKSOURCE)).ok());
        decide(clocksource.as_deref(), counter_usable())
    }

    fn ticks(&self) -> u64 {
        match self.read {
            Read::Clock => nanos(self.origin.elapsed()),
            Read::Counter => counter(),
            #[cfg(test)]
            Read::Script => script::next(),
        }
    }

    /// `at` and the ticks then (for clock reads, `at` itself: no second read).
    fn mark(&self, at: Instant) -> Mark {
        let ticks = match self.read {
            Read::Clock => nanos(at.saturating_duration_since(self.origin)),
            _ => self.ticks(),
        };
        Mark { at, ticks }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn decide(clocksource: Option<&str>, counter_usable: bool) -> Read {
    match clocksource {
        Some(c) if VDSO_CLOCKSOURCES.contains(&c) => Read::Clock,
        _ if counter_usable => Read::Counter,
        _ => Read::Clock,
    }
}

/// Splits `span` over the laps between consecutive `stamps`, in proportion
/// to each lap's ticks; the shares add up to `span` to the nanosecond (the
/// rounding goes to the last lap). A lap whose counter went backwards (a
/// counter not synchronised between the CPUs the thread ran on) counts as
/// none; when no lap has ticks, the span is shared equally.
fn apportion(span: Duration, stamps: &[u64]) -> impl Iterator<Item = Duration> + '_ {
    let lap = |w: &[u64]| u128::from(w[1].saturating_sub(w[0]));
    let laps = stamps.len().saturating_sub(1);
    let total: u128 = stamps.windows(2).map(lap).sum();
    let span_ns = span.as_nanos();
    let mut given = 0u128;
    stamps.windows(2).enumerate().map(move |(i, w)| {
        let share = if i + 1 == laps {
            span_ns - given
        } else {
            (span_ns * lap(w))
                .checked_div(total)
                .unwrap_or(span_ns / laps as u128)
        };
        given += share;
        Duration::from_nanos(u64::try_from(share).unwrap_or(u64::MAX))
    })
}

/// Whether this thread may read the time-stamp counter: a thread under
/// `prctl(PR_SET_TSC, PR_TSC_SIGSEGV)` (kept across fork and exec; set by rr
/// and some sandboxes) gets SIGSEGV from RDTSC.
#[cfg(target_arch = "x86_64")]
fn counter_usable() -> bool {
    let mut mode: libc::c_int = 0;
    // SAFETY: PR_GET_TSC writes one int through the pointer, which points to
    // `mode` on this stack, alive for the call.
    let r = unsafe { libc::prctl(libc::PR_GET_TSC, &mut mode as *mut libc::c_int) };
    r == 0 && mode == libc::PR_TSC_ENABLE
}

/// CNTVCT_EL0 is readable at EL0 under Linux, or trapped and emulated by
/// the kernel where an erratum needs it (arm64 traps.c, cntvct_read_handler):
/// never a signal.
#[cfg(target_arch = "aarch64")]
fn counter_usable() -> bool {
    true
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn counter_usable() -> bool {
    false
}

/// x86_64's time-stamp counter, after the instructions before it (LFENCE:
/// RDTSC alone may run ahead of them), constant-rate on the CPUs this
/// runs on. Only read where [`counter_usable`] said so.
#[cfg(target_arch = "x86_64")]
fn counter() -> u64 {
    // SAFETY: LFENCE and RDTSC have no operands and no memory effects;
    // every x86_64 CPU has both (SSE2), and counter_usable checked that
    // this thread may run RDTSC.
    unsafe {
        core::arch::x86_64::_mm_lfence();
        core::arch::x86_64::_rdtsc()
    }
}

/// aarch64's virtual counter, after the instructions before it (ISB: the
/// read is not ordered otherwise).
#[cfg(target_arch = "aarch64")]
fn counter() -> u64 {
    let t: u64;
    // SAFETY: ISB and a read of CNTVCT_EL0 (readable at EL0 under Linux, or
    // emulated: see counter_usable) write one register and touch no memory.
    unsafe {
        core::arch::asm!("isb", "mrs {t}, cntvct_el0", t = out(reg) t, options(nomem, nostack, preserves_flags));
    }
    t
}

/// No cycle counter here: [`counter_usable`] is false, so never read.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn counter() -> u64 {
    0
}

/// Ticks handed out to this thread's [`Read::Script`] ticker, in order.
#[cfg(test)]
mod script {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    thread_local! {
        static TICKS: RefCell<VecDeque<u64>> = const { RefCell::new(VecDeque::new()) };
    }

    pub fn set(ticks: &[u64]) {
        TICKS.with(|t| *t.borrow_mut() = ticks.iter().copied().collect());
    }

    pub fn next() -> u64 {
        TICKS.with(|t| t.borrow_mut().pop_front().expect("a scripted tick"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::{CollectError, test_cycle, test_snapshot};
    use crate::model::NodeReading;

    #[test]
    fn shares_follow_the_ticks_and_add_up_to_the_span() {
        let span = Duration::from_nanos(1_000_000_007);
        let shares: Vec<_> = apportion(span, &[100, 130, 130, 1100, 1100]).collect();
        assert_eq!(shares.iter().sum::<Duration>(), span);
        assert_eq!(shares[1], Duration::ZERO);
        assert!(shares[2] > 30 * shares[0], "{shares:?}");
        // A counter that went backwards (another CPU's) counts as no ticks;
        // none at all: equal shares.
        let shares: Vec<_> = apportion(span, &[500, 400, 700]).collect();
        assert_eq!(shares, [Duration::ZERO, span]);
        let shares: Vec<_> = apportion(Duration::from_nanos(9), &[7, 7, 7, 7]).collect();
        assert_eq!(shares, [Duration::from_nanos(3); 3]);
        assert_eq!(apportion(span, &[7]).count(), 0);
    }

    /// A collector that does nothing: its share comes from the ticks.
    struct Idle;

    impl Collector for Idle {
        fn collect(&mut self, _: &Cycle, _: &mut Builder) -> Result<(), CollectError> {
            Ok(())
        }
    }

    fn scripted() -> Ticker {
        Ticker {
            origin: Instant::now(),
            read: Read::Script,
        }
    }

    /// Each collector's share follows the ticks read at its start (handed
    /// out here, no timing), the shares and the part before the collectors
    /// make the measured span exactly, and later instants of the cycle are
    /// told at the rate the ticks ran.
    #[test]
    fn shares_follow_the_ticks_read_at_each_collector() {
        let mut c = Collectors::of(
            vec![
                ("first", &[], Box::new(Idle)),
                ("busy", &[], Box::new(Idle)),
                ("last", &[], Box::new(Idle)),
            ],
            scripted(),
        );
        let node = NodeReading::default();
        let snapshot = test_snapshot(&node);
        // The start, the three collectors' starts, the end, then `now`.
        script::set(&[1_000, 1_100, 1_200, 2_000, 2_100, 3_200]);
        let from = c.mark(Instant::now());
        let (statuses, clocked) = c.run(
            &test_cycle(&node, &snapshot),
            &Default::default(),
            &mut Builder::new(),
            from,
        );
        assert!(statuses.iter().all(|s| s.success));
        let span = clocked.end.at.duration_since(from.at);
        let d: Vec<Duration> = statuses
            .iter()
            .map(|s| Duration::from_secs_f64(s.duration_seconds))
            .collect();
        let before = span.saturating_sub(d.iter().sum());
        let ns = |d: Duration| d.as_nanos() as i128;
        // Laps of 100 (before), 100, 800 and 100 ticks of 1,100; f64 seconds
        // round to a few nanoseconds (integer shares floor; the difference
        // of f64 sums adds a few more).
        for (got, ticks) in [(before, 100), (d[0], 100), (d[1], 800), (d[2], 100)] {
            let want = ns(span) * ticks / 1_100;
            assert!(
                (ns(got) - want).abs() <= 5,
                "{got:?} for {ticks} ticks of {span:?}"
            );
        }
        // 1,100 ticks after the end: one span later.
        assert_eq!(clocked.now(), clocked.end.at + span);
    }

    /// A clock read per collector where the clocksource has a vDSO read;
    /// else the cycle counter where this thread may read it; else clock reads.
    #[test]
    fn the_ticker_is_the_clock_where_its_read_is_cheap_or_the_counter_is_not_ours() {
        for c in [
            "tsc",
            "kvm-clock",
            "arch_sys_counter",
            "hyperv_clocksource_tsc_page",
        ] {
            assert_eq!(decide(Some(c), true), Read::Clock, "{c}");
        }
        assert_eq!(decide(Some("hpet"), true), Read::Counter);
        assert_eq!(decide(Some("acpi_pm"), false), Read::Clock);
        assert_eq!(decide(None, false), Read::Clock);
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join(CLOCKSOURCE);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "hpet\n").unwrap();
        let want = if counter_usable() {
            Read::Counter
        } else {
            Read::Clock
        };
        assert_eq!(Ticker::read_for(root.path()), want);
    }

    /// A thread under prctl(PR_SET_TSC, PR_TSC_SIGSEGV) (rr, some sandboxes)
    /// would die of RDTSC: its collectors are timed by clock reads. The
    /// thread reads no clock here (the vDSO's own RDTSC would fault too,
    /// where the clocksource is the TSC).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_thread_that_may_not_read_the_tsc_does_not_count_on_it() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join(CLOCKSOURCE);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "hpet\n").unwrap();
        let path = root.path().to_owned();
        let read = std::thread::spawn(move || {
            // SAFETY: PR_SET_TSC takes its mode by value and changes only
            // this thread's TSC access (the thread ends after the check).
            let r = unsafe { libc::prctl(libc::PR_SET_TSC, libc::PR_TSC_SIGSEGV) };
            assert_eq!(r, 0, "PR_SET_TSC: {}", std::io::Error::last_os_error());
            (counter_usable(), Ticker::read_for(&path))
        })
        .join()
        .unwrap();
        assert_eq!(read, (false, Read::Clock));
        assert!(counter_usable(), "this thread's TSC is untouched");
    }
}
