//! Sources: one kernel interface each, decoded into typed values. No policy,
//! no metrics here.

pub mod sysfs;
