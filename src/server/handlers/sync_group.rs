//! SyncGroup v0–5: the leader's assignment, handed to every member.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::group_common::{call, opt_code};
use super::{respond, HandlerResult};
use crate::group::coordinator::SyncRequest;
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::groups::{GroupOp, GroupReply};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 5;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: SyncGroupRequest = req.decode()?;
    let group_id = r.group_id.0.to_string();
    let s = SyncRequest {
        group_id: group_id.clone(),
        member_id: r.member_id.to_string(),
        instance_id: r.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: r.generation_id,
        assignments: r.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.clone())).collect(),
    };
    let mut resp = SyncGroupResponse::default();
    if !ctx.authorized(AclOperation::Read, ResourceType::Group, &group_id) {
        resp.error_code = ResponseError::GroupAuthorizationFailed.code();
        return respond(req, &resp);
    }
    match call(shard, &group_id, GroupOp::Sync(s)).await {
        Some(GroupReply::Sync(s)) => {
            resp.error_code = opt_code(&s.error);
            resp.assignment = s.assignment;
            if req.version() >= 5 {
                resp.protocol_type = s.protocol_type.map(StrBytes::from_string);
                resp.protocol_name = s.protocol_name.map(StrBytes::from_string);
            }
        }
        _ => resp.error_code = ResponseError::CoordinatorNotAvailable.code(),
    }
    respond(req, &resp)
}
