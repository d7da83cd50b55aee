//! OffsetForLeaderEpoch v2–4 (KIP-101, KIP-279, KIP-320; Kafka 4 dropped v0–1, KIP-896):
//! for each partition, the largest leader epoch at or below the one asked for and the
//! offset where it ended (the log end for the current epoch). Consumers send it (librdkafka at v2 only) after a leader epoch
//! changes, to learn whether the log they read was truncated; followers will send it to
//! find where to truncate. `current_leader_epoch` (v2+) is checked as Fetch checks it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{epoch_error, respond, HandlerResult};
use crate::model::{LeaderEpoch, TopicPartition};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::{EpochEndError, ShardMsg};

pub const MIN_VERSION: i16 = 2;
pub const MAX_VERSION: i16 = 4;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: OffsetForLeaderEpochRequest = req.decode()?;
    let image = shard.image();
    let mut calls = Vec::new();
    // A follower (v3+ replica_id) needs CLUSTER_ACTION, a consumer DESCRIBE on the topic.
    let follower = req.version() >= 3 && r.replica_id.0 >= 0;
    let follower_denied = follower && !ctx.cluster_authorized(AclOperation::ClusterAction);
    for (ti, t) in r.topics.iter().enumerate() {
        let meta = image.topic(t.topic.0.as_str()).cloned();
        let denied = follower_denied
            || (!follower && !ctx.authorized(AclOperation::Describe, ResourceType::Topic, t.topic.0.as_str()));
        for (pi, p) in t.partitions.iter().enumerate() {
            let (shard, meta) = (shard.clone(), meta.clone());
            let (partition, leader_epoch) = (p.partition, LeaderEpoch(p.leader_epoch));
            let current_leader_epoch = LeaderEpoch(p.current_leader_epoch);
            calls.push(async move {
                let res = match meta {
                    _ if denied => Err(ResponseError::TopicAuthorizationFailed),
                    Some(m) if partition >= 0 && partition < m.partitions => {
                        let tp = TopicPartition::new(m.name.clone(), partition);
                        let owner = shard.owner_in(&m, partition);
                        let answer = shard
                            .call(owner, |reply| ShardMsg::EpochEndOffset {
                                tp,
                                current_leader_epoch,
                                leader_epoch,
                                reply,
                            })
                            .await;
                        match answer {
                            Some(Ok(found)) => Ok(found),
                            Some(Err(EpochEndError::UnknownPartition)) => Err(ResponseError::UnknownTopicOrPartition),
                            Some(Err(EpochEndError::NotLeader)) | None => Err(ResponseError::NotLeaderOrFollower),
                            Some(Err(EpochEndError::Epoch(e))) => Err(epoch_error(e)),
                        }
                    }
                    _ => Err(ResponseError::UnknownTopicOrPartition),
                };
                (ti, pi, partition, res)
            });
        }
    }
    let results = futures::future::join_all(calls).await;
    let mut resp = OffsetForLeaderEpochResponse::default();
    resp.topics = r
        .topics
        .iter()
        .map(|t| {
            let mut tr = OffsetForLeaderTopicResult::default();
            tr.topic = t.topic.clone();
            tr.partitions = t.partitions.iter().map(|_| EpochEndOffset::default()).collect();
            tr
        })
        .collect();
    for (ti, pi, partition, res) in results {
        let pr = &mut resp.topics[ti].partitions[pi];
        pr.partition = partition;
        match res {
            Ok((epoch, end_offset)) => {
                pr.leader_epoch = epoch.0;
                pr.end_offset = end_offset.0;
            }
            Err(code) => {
                pr.error_code = code.code();
                pr.leader_epoch = -1;
                pr.end_offset = -1;
            }
        }
    }
    respond(req, &resp)
}
