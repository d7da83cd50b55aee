//! ListOffsets v1–10: earliest (-2; also earliest local, -4), latest (-1, the high
//! watermark; with `isolation_level=read_committed`, the last stable offset), the record with
//! the largest timestamp (-3, v7+, KIP-734), latest tiered (-5: none, -1 as Kafka without
//! remote storage), or the first offset with a timestamp at or after the one given, found
//! through the time index. v10's timeout is not needed: every answer is local.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::epoch_error;
use super::{respond, HandlerResult};
use crate::model::{LeaderEpoch, TopicPartition};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::{ListOffsetError, ShardMsg};
use crate::storage::ReadError;

pub const MIN_VERSION: i16 = 1;
pub const MAX_VERSION: i16 = 10;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: ListOffsetsRequest = req.decode()?;
    let image = shard.image();
    let mut calls = Vec::new();
    for (ti, t) in r.topics.iter().enumerate() {
        let meta = image.topic(t.name.0.as_str()).cloned();
        let denied = !ctx.authorized(AclOperation::Describe, ResourceType::Topic, t.name.0.as_str());
        for (pi, p) in t.partitions.iter().enumerate() {
            let shard = shard.clone();
            let meta = meta.clone();
            let (partition, timestamp) = (p.partition_index, p.timestamp);
            // v4+ carries the client's view of the leader epoch.
            let current_leader_epoch = LeaderEpoch(if req.version() >= 4 { p.current_leader_epoch } else { -1 });
            let read_committed = req.version() >= 2 && r.isolation_level == 1;
            calls.push(async move {
                let res = match meta {
                    _ if denied => Err(ResponseError::TopicAuthorizationFailed),
                    Some(m) if partition >= 0 && partition < m.partitions => {
                        let tp = TopicPartition::new(m.name.clone(), partition);
                        let owner = shard.owner_in(&m, partition);
                        match shard
                            .call(owner, |reply| ShardMsg::ListOffset {
                                tp,
                                timestamp,
                                current_leader_epoch,
                                read_committed,
                                reply,
                            })
                            .await
                        {
                            Some(Ok(found)) => Ok(found),
                            Some(Err(ListOffsetError::NotLeader)) => Err(ResponseError::NotLeaderOrFollower),
                            Some(Err(ListOffsetError::Epoch(e))) => Err(epoch_error(e)),
                            Some(Err(ListOffsetError::UnknownPartition)) => Err(ResponseError::UnknownTopicOrPartition),
                            Some(Err(ListOffsetError::UnsupportedTimestamp(_))) => Err(ResponseError::InvalidRequest),
                            Some(Err(ListOffsetError::OffsetNotAvailable)) => Err(ResponseError::OffsetNotAvailable),
                            Some(Err(ListOffsetError::Read(ReadError::OutOfRange { .. }))) => {
                                Err(ResponseError::OffsetOutOfRange)
                            }
                            Some(Err(ListOffsetError::Read(ReadError::Storage(_)))) => {
                                Err(ResponseError::KafkaStorageError)
                            }
                            None => Err(ResponseError::NotLeaderOrFollower),
                        }
                    }
                    _ => Err(ResponseError::UnknownTopicOrPartition),
                };
                (ti, pi, partition, res)
            });
        }
    }
    let results = futures::future::join_all(calls).await;
    let mut resp = ListOffsetsResponse::default();
    resp.topics = r
        .topics
        .iter()
        .map(|t| {
            let mut tr = ListOffsetsTopicResponse::default();
            tr.name = t.name.clone();
            tr.partitions = t.partitions.iter().map(|_| ListOffsetsPartitionResponse::default()).collect();
            tr
        })
        .collect();
    for (ti, pi, partition, res) in results {
        let pr = &mut resp.topics[ti].partitions[pi];
        pr.partition_index = partition;
        pr.timestamp = -1;
        pr.offset = -1;
        pr.leader_epoch = -1;
        match res {
            Ok(Some(found)) => {
                pr.offset = found.offset.0;
                pr.timestamp = found.timestamp;
                if req.version() >= 4 {
                    pr.leader_epoch = found.leader_epoch.0;
                }
            }
            Ok(None) => {}
            Err(code) => pr.error_code = code.code(),
        }
    }
    respond(req, &resp)
}
