//! Any bytes as an rtnetlink link or DCB reply, a generic netlink (ethtool,
//! devlink, nlctrl) payload or whole reply, or a module EEPROM: decoded or
//! rejected, never a panic. Seeds: fixtures/netlink/rxe-6.1-net/*.bin.
//! The same bytes also drive a driver whose ethtool statistic count changes
//! under the agent's GSTRINGS/GSTATS reads (`ethtool_driver`).
#![no_main]

mod ethtool_driver;

use libfuzzer_sys::fuzz_target;
use rdma_monitor::sources::ethtool::module;
use rdma_monitor::sources::netlink::{Replay, dcb, devlink, ethtool_nl, genl, rtnetlink};

/// linux/netlink.h protocol numbers (the fuzz crate does not link libc itself).
const NETLINK_ROUTE: i32 = 0;
const NETLINK_GENERIC: i32 = 16;

fuzz_target!(|data: &[u8]| {
    // Payloads, as each decoder gets them.
    let _ = rtnetlink::decode_link(data);
    let _ = dcb::decode_dcb(data);
    let mut e = ethtool_nl::EthtoolNl::default();
    let _ = ethtool_nl::decode_pause(data, &mut e);
    let _ = ethtool_nl::decode_fec(data, &mut e);
    let _ = ethtool_nl::decode_linkstate(data, &mut e);
    let _ = ethtool_nl::decode_strset_count(data, 1); // ETH_SS_STATS
    let _ = devlink::decode_devlink_info(data);
    let _ = ethtool_nl::decode_module_page(data);
    let _ = module::decode(data);
    ethtool_driver::run(data);
    // Whole replies (the recorded seeds are), through the exchange and walk.
    let replay = || Replay::new(std::iter::repeat_n(data.to_vec(), 2));
    let _ = rtnetlink::links(&mut replay().protocol(NETLINK_ROUTE), 1);
    let _ = dcb::dcb(&mut replay().protocol(NETLINK_ROUTE), 1, "eth0");
    let mut g = replay().protocol(NETLINK_GENERIC);
    let _ = genl::family_id(&mut g, "ethtool", 1);
    if let Ok(replies) = genl::run(&mut g, &ethtool_nl::fec_request(20, 2, "eth0"), "FEC_GET") {
        for p in replies {
            let _ = ethtool_nl::decode_fec(&p, &mut e);
        }
    }
});
