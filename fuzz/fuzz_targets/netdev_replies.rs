//! Any bytes as an rtnetlink link or DCB reply, a generic netlink (ethtool,
//! devlink) payload, or a module EEPROM: decoded or rejected, never a panic.
//! The same bytes also drive a driver whose ethtool statistic count changes
//! under the agent's GSTRINGS/GSTATS reads (`ethtool_driver`).
#![no_main]

mod ethtool_driver;

use libfuzzer_sys::fuzz_target;
use rdma_monitor::sources::ethtool::module;
use rdma_monitor::sources::{genl, rtnetlink};

fuzz_target!(|data: &[u8]| {
    let _ = rtnetlink::decode_link(data);
    let _ = rtnetlink::decode_dcb(data);
    let mut e = genl::EthtoolNl::default();
    let _ = genl::decode_pause(data, &mut e);
    let _ = genl::decode_fec(data, &mut e);
    let _ = genl::decode_linkstate(data, &mut e);
    let _ = genl::decode_devlink_info(data);
    let _ = module::decode(data);
    ethtool_driver::run(data);
});
