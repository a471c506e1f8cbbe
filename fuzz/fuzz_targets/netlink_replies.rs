//! Any bytes as the kernel's reply to each NLDEV request: decoding returns a
//! value or an error, never panics. Seeds: fixtures/netlink/rxe-6.1/*.bin.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdma_monitor::sources::netlink::Replay;
use rdma_monitor::sources::netlink::nldev::Client;

fuzz_target!(|data: &[u8]| {
    let mut c = Client::new(Replay::new(std::iter::repeat_n(data.to_vec(), 8)));
    let _ = c.devices();
    let _ = c.ports(0);
    let _ = c.port_stats(0, 1);
    let _ = c.stat_status(0, 1);
    let _ = c.resources();
    let _ = c.sys();
    let _ = c.bound_counters(0);
});
