//! Sources: one kernel interface each, decoded into typed values. No policy,
//! no metrics here.

pub mod ethtool;
pub mod file;
pub mod genl;
mod into_model;
pub mod kmod;
pub mod mad;
pub mod netdev;
pub mod rdma_netlink;
pub mod rtnetlink;
pub mod sysfs;
