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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_device;
    use crate::metrics::Value;
    use crate::model::NodeReading;

    /// The CNPs mlx5 slow restart generated land in their own congestion
    /// family, apart from the notification point's CNPs sent.
    #[test]
    fn slow_restart_cnps_are_packets_of_their_own_family() {
        let node = NodeReading {
            devices: vec![test_device(
                "mlx5_0",
                None,
                &[],
                &[("roce_slow_restart_cnps", 13), ("np_cnp_sent", 5)],
            )],
            ..NodeReading::default()
        };
        let set = crate::collectors::test_collect(&mut Congestion, &node);
        let port = [("device", "mlx5_0"), ("port", "1")];
        assert_eq!(
            set.get("rdma_congestion_slow_restart_cnps_total", &port),
            Some(Value::U64(13))
        );
        assert_eq!(
            set.get("rdma_congestion_cnp_sent_total", &port),
            Some(Value::U64(5))
        );
    }
}
