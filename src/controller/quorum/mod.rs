//! The controller quorum's glue to openraft (0.9, stable, on the controller thread's
//! current-thread tokio runtime; see `controller::service` for why). openraft owns the
//! consensus; Sluice provides the three things it asks for: a durable log (`log_store`),
//! the state machine (`state_machine`: the metadata image), and the transport
//! (`crate::rpc`). Nothing else in Sluice imports openraft, so swapping the library
//! (raft-rs is the fallback) touches only this module and the service.
pub mod files;
pub mod log_store;
pub mod state_machine;

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::metadata::MetadataRecord;

/// One metadata log entry's payload: records the controller decided together (a topic and
/// its partitions; a registration and what it re-elects), applied together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataCommand {
    pub records: Vec<MetadataRecord>,
}

/// What applying an entry answers: the log index it was applied at, which a broker waits
/// for before it answers the request that proposed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub index: u64,
}

openraft::declare_raft_types!(
    /// Sluice's metadata quorum: node ids are Kafka's `node.id`; a node's address is its
    /// controller listener.
    pub TypeConfig:
        D = MetadataCommand,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type LogId = openraft::LogId<u64>;
pub type Vote = openraft::Vote<u64>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<u64>;
pub type Raft = openraft::Raft<TypeConfig>;
