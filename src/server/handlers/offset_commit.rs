//! OffsetCommit v2–8: checked against the member's generation, persisted to
//! `__consumer_offsets`, answered once durable.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::group_common::{call, code};
use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::groups::{CommitEntry, CommitError, GroupOp, GroupReply};

pub const MIN_VERSION: i16 = 2;
pub const MAX_VERSION: i16 = 8;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: OffsetCommitRequest = req.decode()?;
    let group = r.group_id.0.to_string();
    // Kafka: without READ on the group nothing is committed; without READ on a topic,
    // that topic's partitions are refused and the rest committed.
    let group_denied = !ctx.authorized(AclOperation::Read, ResourceType::Group, &group);
    let topic_denied: Vec<bool> =
        r.topics.iter().map(|t| !ctx.authorized(AclOperation::Read, ResourceType::Topic, t.name.0.as_str())).collect();
    let entries: Vec<CommitEntry> = r
        .topics
        .iter()
        .zip(&topic_denied)
        .filter(|(_, denied)| !**denied)
        .map(|(t, _)| t)
        .flat_map(|t| {
            t.partitions.iter().map(move |p| CommitEntry {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
            })
        })
        .collect();
    let op = GroupOp::Commit {
        group: group.clone(),
        member: r.member_id.to_string(),
        instance: r.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: r.generation_id_or_member_epoch,
        entries,
    };
    let asked = r.topics.iter().zip(&topic_denied).filter(|(_, d)| !**d).map(|(t, _)| t.partitions.len()).sum();
    let codes: Vec<i16> = match if group_denied || asked == 0 { None } else { call(shard, &group, op).await } {
        _ if group_denied => vec![ResponseError::GroupAuthorizationFailed.code(); asked],
        Some(GroupReply::Commit(Ok(results))) => results
            .iter()
            .map(|res| match res {
                Ok(()) => 0,
                Err(CommitError::UnknownTopicOrPartition) => ResponseError::UnknownTopicOrPartition.code(),
                Err(CommitError::MetadataTooLarge) => ResponseError::OffsetMetadataTooLarge.code(),
                Err(CommitError::Storage) => ResponseError::CoordinatorNotAvailable.code(),
            })
            .collect(),
        Some(GroupReply::Commit(Err(e))) => vec![code(&e).code(); asked],
        _ => vec![ResponseError::CoordinatorNotAvailable.code(); asked],
    };
    let mut codes = codes.into_iter();
    let mut resp = OffsetCommitResponse::default();
    resp.topics = r
        .topics
        .iter()
        .zip(&topic_denied)
        .map(|(t, denied)| {
            let mut tr = OffsetCommitResponseTopic::default();
            tr.name = t.name.clone();
            tr.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut pr = OffsetCommitResponsePartition::default();
                    pr.partition_index = p.partition_index;
                    pr.error_code = if group_denied {
                        ResponseError::GroupAuthorizationFailed.code()
                    } else if *denied {
                        ResponseError::TopicAuthorizationFailed.code()
                    } else {
                        codes.next().unwrap_or(0)
                    };
                    pr
                })
                .collect();
            tr
        })
        .collect();
    respond(req, &resp)
}
