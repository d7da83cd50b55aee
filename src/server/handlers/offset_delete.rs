//! OffsetDelete v0: removes a group's commits for partitions it no longer subscribes to.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::group_common::{call, code};
use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::groups::{GroupOp, GroupReply};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 0;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: OffsetDeleteRequest = req.decode()?;
    let group = r.group_id.0.to_string();
    let partitions: Vec<(String, i32)> = r
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index)))
        .collect();
    let mut resp = OffsetDeleteResponse::default();
    if !ctx.authorized(AclOperation::Delete, ResourceType::Group, &group) {
        resp.error_code = ResponseError::GroupAuthorizationFailed.code();
        return respond(req, &resp);
    }
    // A topic the principal may not READ keeps its offsets (TOPIC_AUTHORIZATION_FAILED).
    let denied = |topic: &str| !ctx.authorized(AclOperation::Read, ResourceType::Topic, topic);
    let partitions: Vec<(String, i32)> = partitions.into_iter().filter(|(t, _)| !denied(t)).collect();
    let results = match call(shard, &group, GroupOp::DeleteOffsets { group: group.clone(), partitions }).await {
        Some(GroupReply::DeleteOffsets(Ok(results))) => results,
        Some(GroupReply::DeleteOffsets(Err(e))) => {
            resp.error_code = code(&e).code();
            return respond(req, &resp);
        }
        _ => {
            resp.error_code = ResponseError::CoordinatorNotAvailable.code();
            return respond(req, &resp);
        }
    };
    let mut results = results.into_iter();
    resp.topics = r
        .topics
        .iter()
        .map(|t| {
            let topic_denied = denied(t.name.0.as_str());
            let mut tr = OffsetDeleteResponseTopic::default();
            tr.name = t.name.clone();
            tr.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut pr = OffsetDeleteResponsePartition::default();
                    pr.partition_index = p.partition_index;
                    pr.error_code = match if topic_denied { None } else { results.next() } {
                        _ if topic_denied => ResponseError::TopicAuthorizationFailed.code(),
                        Some(Err(e)) => code(&e).code(),
                        _ => 0,
                    };
                    pr
                })
                .collect();
            tr
        })
        .collect();
    respond(req, &resp)
}
