//! The messages shards send each other. Everything here is `Send`: payloads are `Bytes`
//! (refcounted, never copied) or small values, and each request carries its reply channel.
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::channel::oneshot;

use super::controller::{ControllerOp, ControllerResult};
use super::groups::{GroupOp, GroupReply};
use crate::metadata::MetadataImage;
use crate::protocol::record_set::RecordSet;
use crate::storage::{AppendError, AppendOutcome, ReadError};
use crate::types::TopicPartition;

pub enum ShardMsg {
    Produce {
        tp: TopicPartition,
        records: Bytes,
        acks: i16,
        reply: oneshot::Sender<ProduceResult>,
    },
    Fetch {
        items: Vec<FetchItem>,
        reply: oneshot::Sender<Vec<FetchResult>>,
    },
    WaitForData {
        items: Vec<(TopicPartition, i64)>,
        deadline: Instant,
        reply: oneshot::Sender<()>,
    },
    ListOffset {
        tp: TopicPartition,
        timestamp: i64,
        reply: oneshot::Sender<ListOffsetResult>,
    },
    /// `None`: the partition is not here.
    DeleteRecords {
        tp: TopicPartition,
        offset: i64,
        reply: oneshot::Sender<Option<Result<i64, ReadError>>>,
    },
    ApplyMetadata {
        image: Arc<MetadataImage>,
        reply: oneshot::Sender<()>,
    },
    Controller {
        op: ControllerOp,
        reply: oneshot::Sender<ControllerResult>,
    },
    Group {
        op: GroupOp,
        reply: oneshot::Sender<GroupReply>,
    },
    /// A metrics scrape: the shard's partition, cache and group state, copied out. Handled
    /// in the background task queue.
    Stats {
        reply: oneshot::Sender<crate::metrics::ShardStats>,
    },
}

#[derive(Debug)]
pub enum ProduceError {
    UnknownPartition,
    Append(AppendError),
}
pub type ProduceResult = Result<AppendOutcome, ProduceError>;

#[derive(Debug, Clone)]
pub struct FetchItem {
    pub tp: TopicPartition,
    pub offset: i64,
    pub max_bytes: usize,
}

#[derive(Debug)]
pub enum FetchError {
    UnknownPartition,
    Read(ReadError),
}

#[derive(Debug)]
pub struct FetchResult {
    pub error: Option<FetchError>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub records: Option<RecordSet>,
}

#[derive(Debug)]
pub enum ListOffsetError {
    UnknownPartition,
    UnsupportedTimestamp(i64),
    Read(ReadError),
}
/// `Some((offset, timestamp))`, or `None` when no record has a timestamp that late.
pub type ListOffsetResult = Result<Option<(i64, i64)>, ListOffsetError>;
