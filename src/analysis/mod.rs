//! Analysis: deterministic findings every cycle (cheap, testable,
//! alertable), and AI analysis posted from a side thread that never touches
//! the collection path.

pub mod ai;
pub mod context;
pub mod events;
pub mod findings;
pub mod health;
pub mod kernel_log;
pub mod state;
