//! Transactions (issue 22): the transaction coordinator as a state machine without I/O
//! (`coordinator`), and the `__transaction_state` record formats it persists (`records`),
//! Kafka's own, so the topic reads the same to Kafka's tools. The coordinator of a
//! transactional id is the leader of its `__transaction_state` partition (DESIGN §6).
pub mod coordinator;
pub mod records;

#[cfg(test)]
mod coordinator_tests;

pub use coordinator::{TxnCoordinator, TxnError, TxnState};

/// The internal topic holding transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Kafka's placement of a transactional id on a `__transaction_state` partition: the same
/// rule as a group's (`abs(id.hashCode()) % partitions`).
pub fn transaction_partition(transactional_id: &str, partitions: i32) -> i32 {
    crate::group::offsets_partition(transactional_id, partitions)
}
