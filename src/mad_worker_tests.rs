use std::time::Duration;

use super::*;
use crate::sources::mad::sim::SimFabric;

fn worker(sim: SimFabric) -> PortWorker<SimFabric> {
    PortWorker::new(
        "/dev/infiniband/umad0".into(),
        Some("mlx5_0".into()),
        sim,
        Limits {
            max_outstanding: 4,
            timeout: Duration::from_millis(20),
            retries: 0,
            budget: Duration::from_secs(5),
        },
    )
}

fn no_saturation(_: &str) -> &'static [u64] {
    &[]
}

/// The sim's switch is a Switch-IB 2 (DeviceID 0xcf08) on a 4x EDR link
/// that answers PortSamplesControl with Tick 31; the local CA refuses it.
#[test]
fn the_peer_gets_its_asic_tick_and_link_the_local_port_no_tick() {
    let mut w = worker(SimFabric {
        switch_tick: Some(31),
        ..SimFabric::default()
    });
    let l = w.read_local(Duration::from_secs(60), false, no_saturation);
    assert_eq!(l.wait_clock, None, "the CA answered no tick");
    let peer = l.peer.expect("the switch port");
    assert_eq!(
        peer.wait_clock,
        Some(WaitClock {
            vendor_id: 0x2c9,
            device_id: 0xcf08,
            tick: 31,
            width_active: 2,
            speed_active: 1,
            speed_ext_active: 2,
        })
    );
    let reading = peer.counters.ok().expect("counters");
    assert!(reading.read_at.is_some());
    // The tick is asked once: a second round sends only the counters.
    let sent = w.stats().sent;
    w.read_local(Duration::from_secs(60), false, no_saturation);
    let again = w.stats().sent - sent;
    assert_eq!(again, 4, "PortCounters and Extended, local and peer");
}
