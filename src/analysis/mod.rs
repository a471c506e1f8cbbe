//! Analysis of snapshots (findings, LLM and Dify posting) lives here. It
//! reads the published [`crate::snapshot::SnapshotDoc`] and never runs on the
//! collection path; nothing in the agent calls into it yet.
