//! Deadlines that cannot overflow. `Instant + Duration` panics when the sum
//! does not fit (a configured `1e30` s, a `Retry-After` of 2^64-1); every
//! deadline in the agent is made here instead.

use std::time::{Duration, Instant};

/// `t + d`, or the latest instant the platform can represent past `t` when
/// the sum overflows: a wait that long is "never" either way.
pub fn after(t: Instant, d: Duration) -> Instant {
    let mut d = d;
    loop {
        if let Some(x) = t.checked_add(d) {
            return x;
        }
        // Halving reaches a representable sum in at most ~100 steps (d = 0 always fits).
        d /= 2;
    }
}

/// `Instant::now() + d`, without the overflow.
pub fn from_now(d: Duration) -> Instant {
    after(Instant::now(), d)
}

/// Milliseconds since the Unix epoch (0 for a clock set before it).
pub fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_saturates_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        let far = after(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(86_400 * 365));
        assert!(from_now(Duration::from_secs(u64::MAX)) > now);
        assert_eq!(after(now, Duration::ZERO), now);
    }
}
