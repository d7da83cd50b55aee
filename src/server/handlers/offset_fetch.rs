//! OffsetFetch v1–8 (v8: several groups per request). A partition without a commit gets
//! offset -1, as in Kafka. With ACLs the group needs DESCRIBE (else
//! GROUP_AUTHORIZATION_FAILED) and each topic DESCRIBE: a topic the principal may not
//! describe is left out of "all topics" and answered TOPIC_AUTHORIZATION_FAILED when named.
//! With `require_stable` (v7+), a partition whose offset an open transaction holds is
//! answered UNSTABLE_OFFSET_COMMIT, and the client asks again, as with Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::group_common::call;
use super::{respond, HandlerResult};
use crate::group::coordinator::CommittedOffset;
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::groups::{GroupOp, GroupReply};

pub const MIN_VERSION: i16 = 1;
pub const MAX_VERSION: i16 = 8;

type Fetched = Option<Vec<(String, i32, Option<CommittedOffset>)>>;

async fn fetch(
    ctx: &RequestContext,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
    unstable: &mut Vec<(String, i32)>,
) -> Fetched {
    let all = topics.is_none();
    let op = GroupOp::FetchOffsets { group: group.to_string(), topics, require_stable };
    let mut rows = match call(&ctx.shard, group, op).await {
        Some(GroupReply::Offsets(o, u)) => {
            *unstable = u;
            o
        }
        _ => return None,
    };
    if all {
        rows.retain(|(t, _, _)| !topic_denied(ctx, t));
    } else {
        rows.iter_mut().filter(|(t, _, _)| topic_denied(ctx, t)).for_each(|(_, _, o)| *o = None);
    }
    Some(rows)
}

fn topic_denied(ctx: &RequestContext, topic: &str) -> bool {
    !ctx.authorized(AclOperation::Describe, ResourceType::Topic, topic)
}

fn group_denied(ctx: &RequestContext, group: &str) -> bool {
    !ctx.authorized(AclOperation::Describe, ResourceType::Group, group)
}

/// Groups the flat result by topic, keeping first-seen order.
fn by_topic(rows: Vec<(String, i32, Option<CommittedOffset>)>) -> Vec<(String, Vec<(i32, Option<CommittedOffset>)>)> {
    let mut out: Vec<(String, Vec<(i32, Option<CommittedOffset>)>)> = Vec::new();
    for (t, p, o) in rows {
        match out.iter_mut().find(|(name, _)| *name == t) {
            Some((_, v)) => v.push((p, o)),
            None => out.push((t, vec![(p, o)])),
        }
    }
    out
}

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: OffsetFetchRequest = req.decode()?;
    let v = req.version();
    let mut resp = OffsetFetchResponse::default();
    if v >= 8 {
        for g in &r.groups {
            let group = g.group_id.0.to_string();
            let topics = g
                .topics
                .as_ref()
                .map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect());
            let mut gr = OffsetFetchResponseGroup::default();
            gr.group_id = g.group_id.clone();
            if group_denied(ctx, &group) {
                gr.error_code = ResponseError::GroupAuthorizationFailed.code();
                resp.groups.push(gr);
                continue;
            }
            let mut unstable = Vec::new();
            match fetch(ctx, &group, topics, r.require_stable, &mut unstable).await {
                Some(rows) => {
                    gr.topics = by_topic(rows)
                        .into_iter()
                        .map(|(t, parts)| {
                            let denied = topic_denied(ctx, &t);
                            let mut tr = OffsetFetchResponseTopics::default();
                            tr.name = TopicName(StrBytes::from_string(t));
                            tr.partitions = parts
                                .into_iter()
                                .map(|(p, o)| {
                                    let mut pr = OffsetFetchResponsePartitions::default();
                                    pr.partition_index = p;
                                    let (offset, epoch, meta) = unpack(o);
                                    pr.committed_offset = offset;
                                    pr.committed_leader_epoch = epoch;
                                    pr.metadata = Some(StrBytes::from_string(meta));
                                    if denied {
                                        pr.error_code = ResponseError::TopicAuthorizationFailed.code();
                                    } else if unstable.iter().any(|(ut, up)| ut == tr.name.0.as_str() && *up == p) {
                                        pr.error_code = ResponseError::UnstableOffsetCommit.code();
                                        pr.committed_offset = -1;
                                    }
                                    pr
                                })
                                .collect();
                            tr
                        })
                        .collect();
                }
                None => gr.error_code = ResponseError::CoordinatorNotAvailable.code(),
            }
            resp.groups.push(gr);
        }
        return respond(req, &resp);
    }
    let group = r.group_id.0.to_string();
    let topics =
        r.topics.as_ref().map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect());
    if group_denied(ctx, &group) {
        if v >= 2 {
            resp.error_code = ResponseError::GroupAuthorizationFailed.code();
        }
        return respond(req, &resp);
    }
    let mut unstable = Vec::new();
    let require_stable = v >= 7 && r.require_stable;
    match fetch(ctx, &group, topics, require_stable, &mut unstable).await {
        Some(rows) => {
            resp.topics = by_topic(rows)
                .into_iter()
                .map(|(t, parts)| {
                    let denied = topic_denied(ctx, &t);
                    let mut tr = OffsetFetchResponseTopic::default();
                    tr.name = TopicName(StrBytes::from_string(t));
                    tr.partitions = parts
                        .into_iter()
                        .map(|(p, o)| {
                            let mut pr = OffsetFetchResponsePartition::default();
                            pr.partition_index = p;
                            let (offset, epoch, meta) = unpack(o);
                            pr.committed_offset = offset;
                            if v >= 5 {
                                pr.committed_leader_epoch = epoch;
                            }
                            pr.metadata = Some(StrBytes::from_string(meta));
                            if denied {
                                pr.error_code = ResponseError::TopicAuthorizationFailed.code();
                            } else if unstable.iter().any(|(ut, up)| ut == tr.name.0.as_str() && *up == p) {
                                pr.error_code = ResponseError::UnstableOffsetCommit.code();
                                pr.committed_offset = -1;
                            }
                            pr
                        })
                        .collect();
                    tr
                })
                .collect();
        }
        None if v >= 2 => resp.error_code = ResponseError::CoordinatorNotAvailable.code(),
        None => {}
    }
    respond(req, &resp)
}

fn unpack(o: Option<CommittedOffset>) -> (i64, i32, String) {
    match o {
        Some(o) => (o.offset, o.leader_epoch, o.metadata),
        None => (-1, -1, String::new()),
    }
}
