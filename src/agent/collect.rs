//! Running the collectors' table over one cycle: each in turn, a panic or
//! an error costing its own area for one cycle, not the agent.

use std::panic::AssertUnwindSafe;
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
    /// The cycle counter at the cycle's start, at each collector's start
    /// and at the end, kept from run to run.
    stamps: Vec<u64>,
}

impl Collectors {
    pub fn new(config: &Config) -> Collectors {
        Collectors::of(
            collectors::REGISTRY
                .iter()
                .map(|r| (r.name, r.reads, (r.factory)(config)))
                .collect(),
        )
    }

    fn of(
        table: Vec<(
            &'static str,
            &'static [collectors::inputs::Input],
            Box<dyn Collector>,
        )>,
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
        }
    }

    /// Runs every collector; a collector whose inputs failed lately
    /// (`failures`) is reported failed even when it rendered.
    ///
    /// The clock is read once, at the end: where the clocksource has no
    /// vDSO read (hpet, under virtualisation) each read is a syscall, and
    /// the table has a dozen collectors. The span measured from the cycle's
    /// start (`from`, the loop's read) is shared out by the CPU's cycle
    /// counter read at each collector's start ([`ticks`]): the part before
    /// the collectors and each collector's add up to the span, each in
    /// proportion to the cycles it took. The returned [`Clocked`] tells
    /// later instants of the cycle by the same counter.
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
            self.stamps.push(ticks(from.at));
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
        let end = Mark::at(Instant::now());
        self.stamps.push(end.ticks);
        let span = end.at.duration_since(from.at);
        // The first lap is the cycle's part before the collectors.
        let shares = apportion(span, &self.stamps).skip(1);
        for (status, share) in statuses.iter_mut().zip(shares) {
            status.duration_seconds = share.as_secs_f64();
        }
        (statuses, Clocked { from, end })
    }
}

/// A clock reading and the cycle counter read right after it.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub at: Instant,
    ticks: u64,
}

impl Mark {
    pub fn at(at: Instant) -> Mark {
        Mark {
            at,
            ticks: ticks(at),
        }
    }
}

/// Two marks of one cycle: the cycle counter's rate between them in
/// nanoseconds, measured in that cycle.
#[derive(Debug, Clone, Copy)]
pub struct Clocked {
    from: Mark,
    end: Mark,
}

impl Clocked {
    /// Now, as the cycle counter tells it from the end mark at the rate
    /// measured from `from` to the end, without a clock read: for the few
    /// milliseconds after the collectors that end the cycle.
    pub fn now(&self) -> Instant {
        let span = self.end.at.duration_since(self.from.at).as_nanos();
        let measured = u128::from(self.end.ticks.saturating_sub(self.from.ticks));
        let since = u128::from(ticks(self.from.at).saturating_sub(self.end.ticks));
        let ns = (span * since).checked_div(measured).unwrap_or(0);
        let later = Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX));
        crate::clock::after(self.end.at, later)
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

/// The CPU's cycle counter: x86_64's time-stamp counter, aarch64's virtual
/// counter (both read without a syscall and constant-rate on the CPUs this
/// runs on). Elsewhere the nanoseconds since `origin`, a clock read each.
#[cfg(target_arch = "x86_64")]
fn ticks(_origin: Instant) -> u64 {
    // SAFETY: RDTSC has no operands and no memory effects; every x86_64
    // CPU has it, and Linux leaves it readable in user mode.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(target_arch = "aarch64")]
fn ticks(_origin: Instant) -> u64 {
    let t: u64;
    // SAFETY: CNTVCT_EL0 is readable at EL0 under Linux (the vDSO clock
    // reads it; kernels that must trap it emulate the read); the
    // instruction writes one register and touches no memory.
    unsafe {
        core::arch::asm!("mrs {t}, cntvct_el0", t = out(reg) t, options(nomem, nostack, preserves_flags));
    }
    t
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn ticks(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
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

    /// Burns its cycles until `hold` has passed (no timing is asserted on).
    struct Busy(Duration);

    impl Collector for Busy {
        fn collect(&mut self, _: &Cycle, _: &mut Builder) -> Result<(), CollectError> {
            let t = Instant::now();
            let mut x = 0u64;
            while t.elapsed() < self.0 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
            Ok(())
        }
    }

    #[test]
    fn a_busy_collector_gets_the_larger_share_and_the_shares_make_the_span() {
        let mut c = Collectors::of(vec![
            ("idle", &[], Box::new(Busy(Duration::ZERO))),
            ("busy", &[], Box::new(Busy(Duration::from_millis(60)))),
            ("idle2", &[], Box::new(Busy(Duration::ZERO))),
        ]);
        let node = NodeReading::default();
        let snapshot = test_snapshot(&node);
        let before = Instant::now();
        let (statuses, clocked) = c.run(
            &test_cycle(&node, &snapshot),
            &Default::default(),
            &mut Builder::new(),
            Mark::at(before),
        );
        let spent = before.elapsed().as_secs_f64();
        // Later instants of the cycle come from the cycle counter: never
        // before the run's end, never past a clock read made after them.
        let told = clocked.now();
        assert!(told >= clocked.end.at && told <= Instant::now() + Duration::from_millis(1));
        let d: Vec<f64> = statuses.iter().map(|s| s.duration_seconds).collect();
        assert!(statuses.iter().all(|s| s.success));
        assert!(d[1] >= 0.050 && d[1] > d[0] && d[1] > d[2], "{d:?}");
        let sum: f64 = d.iter().sum();
        assert!(sum <= spent + 1e-9 && sum >= 0.050, "{sum} of {spent}");
    }
}
