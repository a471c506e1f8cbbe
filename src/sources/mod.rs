//! Sources: one kernel interface each, decoded into typed values. No policy,
//! no metrics here.

pub mod attribution;
pub mod cgroup;
pub mod ethtool;
pub mod file;
pub mod ibnetdiscover;
pub mod kmod;
pub mod kmsg;
pub mod mad;
pub mod netdev;
pub mod netlink;
pub mod sysfs;
