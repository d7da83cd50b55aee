//! DeleteRecords v0–2: moves each partition's log start offset forward (offset -1: to the
//! high watermark), as `kafka-delete-records` does; whole segments below it are deleted at
//! once, the rest is hidden. Answers with each partition's new low watermark.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{respond, HandlerResult};
use crate::model::{Offset, TopicPartition};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::ShardMsg;
use crate::storage::{ReadError, StorageError};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 2;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: DeleteRecordsRequest = req.decode()?;
    let image = shard.image();
    let mut calls = Vec::new();
    for (ti, t) in r.topics.iter().enumerate() {
        let meta = image.topic(t.name.0.as_str()).cloned();
        let denied = !ctx.authorized(AclOperation::Delete, ResourceType::Topic, t.name.0.as_str());
        for (pi, p) in t.partitions.iter().enumerate() {
            let (shard, meta, partition, offset) = (shard.clone(), meta.clone(), p.partition_index, p.offset);
            calls.push(async move {
                let result = match meta {
                    _ if denied => Err(ResponseError::TopicAuthorizationFailed),
                    Some(m) if partition >= 0 && partition < m.partitions => {
                        let tp = TopicPartition::new(m.name.clone(), partition);
                        let owner = shard.owner_in(&m, partition);
                        // -1: up to the high watermark.
                        let to = (offset != -1).then_some(Offset(offset));
                        match shard.call(owner, |reply| ShardMsg::DeleteRecords { tp, to, reply }).await {
                            Some(Some(Ok(low))) => Ok(low.0),
                            Some(Some(Err(ReadError::OutOfRange { .. }))) => Err(ResponseError::OffsetOutOfRange),
                            Some(Some(Err(ReadError::Storage(StorageError::Closed)))) | None => {
                                Err(ResponseError::NotLeaderOrFollower)
                            }
                            Some(Some(Err(ReadError::Storage(_)))) => Err(ResponseError::KafkaStorageError),
                            Some(None) => Err(ResponseError::UnknownTopicOrPartition),
                        }
                    }
                    _ => Err(ResponseError::UnknownTopicOrPartition),
                };
                (ti, pi, result)
            });
        }
    }
    let results = futures::future::join_all(calls).await;
    let mut resp = DeleteRecordsResponse::default();
    resp.topics = r
        .topics
        .iter()
        .map(|t| {
            let mut tr = DeleteRecordsTopicResult::default();
            tr.name = t.name.clone();
            tr.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut pr = DeleteRecordsPartitionResult::default();
                    pr.partition_index = p.partition_index;
                    pr.low_watermark = -1;
                    pr
                })
                .collect();
            tr
        })
        .collect();
    for (ti, pi, result) in results {
        let pr = &mut resp.topics[ti].partitions[pi];
        match result {
            Ok(low) => pr.low_watermark = low,
            Err(code) => pr.error_code = code.code(),
        }
    }
    respond(req, &resp)
}
