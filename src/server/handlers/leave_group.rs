//! LeaveGroup v0–5 (v3+: several members at once, each with its own result).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::group_common::{call, code};
use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::groups::{GroupOp, GroupReply};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 5;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: LeaveGroupRequest = req.decode()?;
    let v = req.version();
    let group = r.group_id.0.to_string();
    let members: Vec<(String, Option<String>)> = if v >= 3 {
        r.members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|s| s.to_string())))
            .collect()
    } else {
        vec![(r.member_id.to_string(), None)]
    };
    let mut resp = LeaveGroupResponse::default();
    if !ctx.authorized(AclOperation::Read, ResourceType::Group, &group) {
        resp.error_code = ResponseError::GroupAuthorizationFailed.code();
        return respond(req, &resp);
    }
    match call(shard, &group, GroupOp::Leave { group: group.clone(), members: members.clone() }).await {
        Some(GroupReply::Leave(Ok(results))) => {
            if v >= 3 {
                resp.members = r
                    .members
                    .iter()
                    .zip(&results)
                    .map(|(m, res)| {
                        let mut mr = MemberResponse::default();
                        mr.member_id = m.member_id.clone();
                        mr.group_instance_id = m.group_instance_id.clone();
                        mr.error_code = res.as_ref().err().map(|e| code(e).code()).unwrap_or(0);
                        mr
                    })
                    .collect();
            } else if let Some(Err(e)) = results.first() {
                resp.error_code = code(e).code();
            }
        }
        Some(GroupReply::Leave(Err(e))) => resp.error_code = code(&e).code(),
        _ => resp.error_code = ResponseError::CoordinatorNotAvailable.code(),
    }
    respond(req, &resp)
}
