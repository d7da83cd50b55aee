//! The controller: a Raft quorum (openraft) whose replicated log holds the metadata
//! records, and the logic of the active controller, which alone decides what records to
//! write. `ops` is that logic (sans-IO); `quorum` is openraft's storage and state machine;
//! `service` runs them on the controller thread.
pub mod observer;
pub mod ops;
pub mod quorum;
pub mod service;
