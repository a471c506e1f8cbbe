//! rdma-monitor: a host agent that watches the RDMA devices (InfiniBand and
//! RoCE) of a node, natively, and serves what it sees to Prometheus and as
//! JSON snapshots.
//!
//! Data flows one way: `sources` (one kernel interface each, decode only) →
//! `collectors` (one area each, metric families) → `exporters`
//! (Prometheus text, JSON files); `analysis` reads snapshots.

// Every `unsafe` block carries a SAFETY comment saying why it holds, and
// an unsafe fn's body is no blanket licence.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod agent;
pub mod allocator;
pub mod analysis;
pub mod catalog;
pub mod clock;
pub mod collectors;
pub mod config;
pub mod detect;
pub mod exporters;
pub mod mad_worker;
pub mod merge;
pub mod metrics;
pub mod model;
pub mod resident;
pub mod snapshot;
pub mod sources;
pub mod sys;
#[cfg(test)]
pub(crate) mod testutil;
pub mod top;
