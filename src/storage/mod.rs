//! Partition storage (DESIGN §4): per partition a directory of segments (`<base>.log` with
//! record batches exactly as produced, offsets assigned; `.index`; `.timeindex`), appended
//! with O_DIRECT through glommio, recovered on open, and a per-shard cache of recent
//! batches that serves tail fetches. Lives on the shard that owns the partition.
pub mod background_io;
pub mod cache;
pub mod cleaner;
#[cfg(test)]
pub mod faults;
pub mod index;
pub mod io;
pub mod io_workers;
pub mod partition_log;
pub mod producer_state;
mod scan;
#[cfg(test)]
mod simulation_tests;
pub mod sync_log;
pub mod txn_index;
pub mod txn_verification;

/// The segment files (`*.log`) in a partition directory, oldest first.
#[cfg(test)]
pub(crate) fn segment_logs(partition_dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(partition_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Storage tests that run a glommio executor hold this, so that at most one runs at a time
/// in the test process (they measure and inject faults by path, process-wide). Two
/// executors side by side once hung asleep in io_uring_enter with work pending: most
/// likely glommio 0.9.0 parking with runnable tasks, fixed in vendor/glommio.
#[cfg(test)]
pub(crate) fn executor_test_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

use std::path::PathBuf;

use crate::model::Offset;

pub use cache::ShardCache;
pub use partition_log::{now_ms, AppendOutcome, CompactionStats, LogTaskQueues, PartitionLog, ReadOutcome, TxnCheck};
pub use scan::producer_batch;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("{op} {path}: {reason}")]
    Io { op: &'static str, path: PathBuf, reason: String },
    #[error("corrupt batch in {path} at position {position}: {reason}")]
    Corrupt { path: PathBuf, position: u64, reason: String },
    /// The file system is full: appends are refused until the writer gets space again.
    #[error("{op} {path}: no space left on device")]
    NoSpace { op: &'static str, path: PathBuf },
    #[error("partition is offline after an earlier storage failure: {0}")]
    Offline(String),
    #[error("partition log is closed")]
    Closed,
}

/// Why an append was refused (each maps to a Kafka error code in the produce handler).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("invalid record batch: {0}")]
    Invalid(crate::protocol::batch::BatchError),
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    #[error("records are empty or have trailing bytes")]
    Malformed,
    /// A compacted topic needs a key on every record (Kafka: INVALID_RECORD with the
    /// failing records' indexes).
    #[error("compacted topic cannot accept a record without a key (records {indexes:?})")]
    KeylessRecords { indexes: Vec<i32> },
    /// A client sent a control batch: only a transaction coordinator writes markers
    /// (Kafka: INVALID_RECORD).
    #[error("control batches are written by transaction coordinators only")]
    ControlBatch,
    /// KIP-890: a transactional batch that would open a transaction here, without the
    /// coordinator's confirmation that this partition is in the producer's ongoing
    /// transaction (or one given before the transaction ended). Kafka: INVALID_TXN_STATE.
    #[error("the partition is not in the producer's ongoing transaction")]
    NotInTransaction,
    #[error(transparent)]
    Sequence(#[from] producer_state::SequenceError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a read was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} is out of range [{start}, {end}]")]
    OutOfRange { offset: Offset, start: Offset, end: Offset },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub fn segment_file_name(base_offset: Offset, ext: &str) -> String {
    format!("{:020}.{ext}", base_offset.0)
}
