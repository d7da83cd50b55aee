//! OffsetFetch v1–8 (v8: several groups per request). A partition without a commit gets
//! offset -1, as in Kafka.
use std::rc::Rc;

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
use crate::server::context::RequestContext;
use crate::shard::groups::{GroupOp, GroupReply};
use crate::shard::Shard;

pub const MIN_VERSION: i16 = 1;
pub const MAX_VERSION: i16 = 8;

type Fetched = Option<Vec<(String, i32, Option<CommittedOffset>)>>;

async fn fetch(shard: &Rc<Shard>, group: &str, topics: Option<Vec<(String, Vec<i32>)>>) -> Fetched {
    match call(shard, group, GroupOp::FetchOffsets { group: group.to_string(), topics }).await {
        Some(GroupReply::Offsets(o)) => Some(o),
        _ => None,
    }
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
    let shard = &ctx.shard;
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
            match fetch(shard, &group, topics).await {
                Some(rows) => {
                    gr.topics = by_topic(rows)
                        .into_iter()
                        .map(|(t, parts)| {
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
    match fetch(shard, &group, topics).await {
        Some(rows) => {
            resp.topics = by_topic(rows)
                .into_iter()
                .map(|(t, parts)| {
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
