//! OffsetCommit v2–8: checked against the member's generation, persisted to
//! `__consumer_offsets`, answered once durable.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::group_common::{call, code};
use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::server::context::RequestContext;
use crate::shard::groups::{CommitEntry, CommitError, GroupOp, GroupReply};

pub const MIN_VERSION: i16 = 2;
pub const MAX_VERSION: i16 = 8;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: OffsetCommitRequest = req.decode()?;
    let group = r.group_id.0.to_string();
    let entries: Vec<CommitEntry> = r
        .topics
        .iter()
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
    let codes: Vec<i16> = match call(shard, &group, op).await {
        Some(GroupReply::Commit(Ok(results))) => results
            .iter()
            .map(|res| match res {
                Ok(()) => 0,
                Err(CommitError::UnknownTopicOrPartition) => ResponseError::UnknownTopicOrPartition.code(),
                Err(CommitError::MetadataTooLarge) => ResponseError::OffsetMetadataTooLarge.code(),
                Err(CommitError::Storage) => ResponseError::CoordinatorNotAvailable.code(),
            })
            .collect(),
        Some(GroupReply::Commit(Err(e))) => vec![code(&e).code(); r.topics.iter().map(|t| t.partitions.len()).sum()],
        _ => vec![ResponseError::CoordinatorNotAvailable.code(); r.topics.iter().map(|t| t.partitions.len()).sum()],
    };
    let mut codes = codes.into_iter();
    let mut resp = OffsetCommitResponse::default();
    resp.topics = r
        .topics
        .iter()
        .map(|t| {
            let mut tr = OffsetCommitResponseTopic::default();
            tr.name = t.name.clone();
            tr.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut pr = OffsetCommitResponsePartition::default();
                    pr.partition_index = p.partition_index;
                    pr.error_code = codes.next().unwrap_or(0);
                    pr
                })
                .collect();
            tr
        })
        .collect();
    respond(req, &resp)
}
