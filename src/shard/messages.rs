//! The messages shards send each other. Everything here is `Send`: payloads are `Bytes`
//! (refcounted, never copied) or small values, and each request carries its reply channel.
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::channel::oneshot;

use super::controller::{ControllerError, ControllerOp, ControllerResult};
use super::groups::{GroupOp, GroupReply};
use crate::cluster::partition::EpochCheck;
use crate::metadata::MetadataImage;
use crate::model::{LeaderEpoch, Offset, ProducerId, TopicPartition};
use crate::protocol::record_set::RecordSet;
use crate::storage::txn_verification::VerificationGuard;
use crate::storage::{AppendError, AppendOutcome, ReadError};

pub enum ShardMsg {
    Produce {
        tp: TopicPartition,
        records: Bytes,
        acks: i16,
        /// When an acks=all answer stops waiting for the in-sync replicas (the request's
        /// `timeout_ms`).
        deadline: Instant,
        txn: TxnVerification,
        reply: oneshot::Sender<ProduceResult>,
    },
    Fetch {
        items: Vec<FetchItem>,
        reply: oneshot::Sender<Vec<FetchResult>>,
    },
    WaitForData {
        /// (partition, fetch offset, whether the fetcher is a follower)
        items: Vec<(TopicPartition, Offset, bool)>,
        deadline: Instant,
        reply: oneshot::Sender<()>,
    },
    ListOffset {
        tp: TopicPartition,
        timestamp: i64,
        /// `LeaderEpoch::NONE`: not checked.
        current_leader_epoch: LeaderEpoch,
        /// Latest is the last stable offset.
        read_committed: bool,
        reply: oneshot::Sender<ListOffsetResult>,
    },
    /// OffsetForLeaderEpoch for one partition.
    EpochEndOffset {
        tp: TopicPartition,
        current_leader_epoch: LeaderEpoch,
        leader_epoch: LeaderEpoch,
        reply: oneshot::Sender<EpochEndResult>,
    },
    /// `None`: the partition is not here.
    /// `to`: `None` for the high watermark (Kafka's -1).
    DeleteRecords {
        tp: TopicPartition,
        to: Option<Offset>,
        reply: oneshot::Sender<Option<Result<Offset, ReadError>>>,
    },
    ApplyMetadata {
        image: Arc<MetadataImage>,
        reply: oneshot::Sender<()>,
    },
    Controller {
        op: ControllerOp,
        reply: oneshot::Sender<Result<ControllerResult, ControllerError>>,
    },
    Group {
        op: GroupOp,
        reply: oneshot::Sender<GroupReply>,
    },
    /// A request for the transaction coordinator on the shard leading the id's
    /// `__transaction_state` partition.
    Txn {
        op: super::txns::TxnOp,
        reply: oneshot::Sender<super::txns::TxnReply>,
    },
    /// TxnOffsetCommit on the group's coordinator shard.
    GroupTxnCommit {
        group: String,
        producer_id: i64,
        epoch: i16,
        entries: Vec<super::groups::CommitEntry>,
        reply: oneshot::Sender<Vec<Result<(), super::groups::CommitError>>>,
    },
    /// Write a transaction marker to a partition this shard leads (acks=all); the reply
    /// is a Kafka error code (0: written).
    WriteMarker {
        tp: TopicPartition,
        marker: super::txn_markers::Marker,
        reply: oneshot::Sender<i16>,
    },
    /// A metrics scrape: the shard's partition, cache and group state, copied out. Handled
    /// in the background task queue.
    Stats {
        reply: oneshot::Sender<crate::metrics::ShardStats>,
    },
}

/// Where a Produce stands with KIP-890's verification of transactional writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnVerification {
    /// Not a transactional request, or `transaction.partition.verification.enable` is off.
    Off,
    /// Not verified yet: a batch that would open a transaction comes back as
    /// `NeedsVerification`.
    Ask,
    /// The coordinator confirmed the partition under this guard.
    Verified(VerificationGuard),
}

#[derive(Debug)]
pub enum ProduceError {
    /// KIP-890: the batch would open a transaction here; the coordinator must confirm the
    /// partition is in it, then the records (given back) are sent again with the guard.
    NeedsVerification {
        producer_id: ProducerId,
        epoch: i16,
        guard: VerificationGuard,
        records: Bytes,
    },
    UnknownPartition,
    /// This node does not lead the partition (or stopped leading while waiting).
    NotLeader,
    Append(AppendError),
    /// acks=all, and fewer in-sync replicas than `min.insync.replicas`: nothing appended.
    NotEnoughReplicas,
    /// acks=all: appended, but the ISR shrank below `min.insync.replicas` before the high
    /// watermark passed it.
    NotEnoughReplicasAfterAppend,
    /// acks=all: the in-sync replicas did not all have it by the request's timeout.
    TimedOut,
}
pub type ProduceResult = Result<AppendOutcome, ProduceError>;

#[derive(Debug, Clone)]
pub struct FetchItem {
    pub tp: TopicPartition,
    pub offset: Offset,
    pub max_bytes: usize,
    /// The fetcher's view of the leader epoch (`NONE`: not checked).
    pub current_leader_epoch: LeaderEpoch,
    /// The epoch of the last batch the fetcher has (`NONE`: none; Fetch v12+).
    pub last_fetched_epoch: LeaderEpoch,
    /// The follower fetching (Fetch's `replica_id`), `None` for a consumer. A follower
    /// reads past the high watermark, and its fetch offset is its progress.
    pub replica: Option<crate::model::NodeId>,
    /// `isolation_level=read_committed`: read up to the last stable offset, and learn the
    /// aborted transactions in the range.
    pub read_committed: bool,
}

#[derive(Debug)]
pub enum FetchError {
    UnknownPartition,
    NotLeader,
    Epoch(EpochCheck),
    Read(ReadError),
}

#[derive(Debug)]
pub struct FetchResult {
    pub error: Option<FetchError>,
    /// `UNKNOWN` with an error that leaves it unknown.
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
    pub records: Option<RecordSet>,
    /// (epoch, end offset) when the fetcher's log diverges from this one.
    pub diverging_epoch: Option<(LeaderEpoch, Offset)>,
    /// `UNKNOWN` with an error that leaves it unknown.
    pub last_stable_offset: Offset,
    /// read_committed: the aborted transactions in the range read.
    pub aborted: Vec<crate::storage::producer_state::AbortedTxn>,
}

#[derive(Debug)]
pub enum ListOffsetError {
    UnknownPartition,
    NotLeader,
    Epoch(EpochCheck),
    UnsupportedTimestamp(i64),
    Read(ReadError),
    /// A new leader whose high watermark has not reached its epoch's start yet.
    OffsetNotAvailable,
}
/// An offset ListOffsets found, with its record's timestamp (-1 for earliest and latest)
/// and the leader epoch it was written under.
#[derive(Debug, Clone, Copy)]
pub struct ListedOffset {
    pub offset: Offset,
    pub timestamp: i64,
    pub leader_epoch: LeaderEpoch,
}
/// `None` when no record has a timestamp that late.
pub type ListOffsetResult = Result<Option<ListedOffset>, ListOffsetError>;

#[derive(Debug)]
pub enum EpochEndError {
    UnknownPartition,
    NotLeader,
    Epoch(EpochCheck),
}
/// (the largest epoch at or below the one asked for, the offset where it ended).
pub type EpochEndResult = Result<(LeaderEpoch, Offset), EpochEndError>;
