//! Failures that repeat every cycle, said once and once more when they clear.

/// A failure that may repeat every cycle: logged the first time (and when
/// its kind changes) with how often the previous kind repeated, then once
/// more when it clears, instead of a line per occurrence.
#[derive(Default)]
pub struct Repeated {
    current: Option<(String, u64)>,
}

/// What to say about one occurrence.
#[derive(Debug, PartialEq, Eq)]
pub enum Say {
    /// A new kind of failure; `previous` is the kind it replaces and its count.
    First {
        previous: Option<(String, u64)>,
    },
    /// The same kind again: nothing to log.
    Again,
    /// It worked after `count` failures of `kind`.
    Cleared {
        kind: String,
        count: u64,
    },
    Nothing,
}

impl Repeated {
    pub fn fail(&mut self, kind: &str) -> Say {
        if let Some((k, n)) = &mut self.current
            && k == kind
        {
            *n += 1;
            return Say::Again;
        }
        let previous = self.current.replace((kind.to_string(), 1));
        Say::First { previous }
    }

    pub fn ok(&mut self) -> Say {
        match self.current.take() {
            Some((kind, count)) => Say::Cleared { kind, count },
            None => Say::Nothing,
        }
    }

    /// Logs `msg` for a failure of `kind` under `what`, as [`Repeated::fail`] decides.
    pub(super) fn log_fail(&mut self, what: &str, kind: &str, msg: &dyn std::fmt::Display) {
        if let Say::First { previous } = self.fail(kind) {
            if let Some((k, n)) = previous {
                log::warn!("{what}: the previous failure ({k}) happened {n} time(s)");
            }
            log::error!("{msg} (said once: repeats are counted until it clears)");
        }
    }

    pub(super) fn log_ok(&mut self, what: &str) {
        if let Say::Cleared { kind, count } = self.ok() {
            log::info!("{what}: working again after {count} failure(s) ({kind})");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_failure_is_said_once_then_when_it_clears() {
        let mut r = Repeated::default();
        assert_eq!(r.ok(), Say::Nothing);
        assert_eq!(r.fail("StorageFull"), Say::First { previous: None });
        for _ in 0..97 {
            assert_eq!(r.fail("StorageFull"), Say::Again);
        }
        // A different kind is news, with the count of the one before.
        assert_eq!(
            r.fail("PermissionDenied"),
            Say::First {
                previous: Some(("StorageFull".into(), 98))
            }
        );
        assert_eq!(
            r.ok(),
            Say::Cleared {
                kind: "PermissionDenied".into(),
                count: 1
            }
        );
        assert_eq!(r.ok(), Say::Nothing);
    }
}
