//! Congestion: transmit wait and discards, buffer overruns, and the RoCE
//! ECN/CNP counters the drivers keep in `hw_counters/`.

use super::inputs::Input;
use super::{CollectError, Collector, Cycle, Registration, export_known};
use crate::catalog::Area;
use crate::config::Config;
use crate::metrics::Builder;

pub const REGISTRATION: Registration = Registration {
    name: "congestion",
    reads: &[Input::Counters, Input::RdmaNetlink],
    factory: |_: &Config| Box::new(Congestion),
};

struct Congestion;

impl Collector for Congestion {
    fn collect(&mut self, cycle: &Cycle, out: &mut Builder) -> Result<(), CollectError> {
        export_known(cycle, out, Area::Congestion);
        Ok(())
    }
}
