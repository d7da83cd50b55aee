//! Heartbeat v0–4: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::group_common::{call, code};
use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::groups::{GroupOp, GroupReply};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 4;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: HeartbeatRequest = req.decode()?;
    let group = r.group_id.0.to_string();
    let op = GroupOp::Heartbeat {
        group: group.clone(),
        member: r.member_id.to_string(),
        instance: r.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: r.generation_id,
    };
    let mut resp = HeartbeatResponse::default();
    if !ctx.authorized(AclOperation::Read, ResourceType::Group, &group) {
        resp.error_code = ResponseError::GroupAuthorizationFailed.code();
        return respond(req, &resp);
    }
    resp.error_code = match call(shard, &group, op).await {
        Some(GroupReply::Done(Ok(()))) => 0,
        Some(GroupReply::Done(Err(e))) => code(&e).code(),
        _ => ResponseError::CoordinatorNotAvailable.code(),
    };
    respond(req, &resp)
}
