//! JoinGroup v0–9: parked on the coordinator until the join phase completes.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::group_common::{call, opt_code};
use super::{respond, HandlerResult};
use crate::group::coordinator::JoinRequest;
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::groups::{GroupOp, GroupReply};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 9;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let client_host: &str = ctx.connection.client_host();
    let r: JoinGroupRequest = req.decode()?;
    let v = req.version();
    let group_id = r.group_id.0.to_string();
    let j = JoinRequest {
        group_id: group_id.clone(),
        member_id: r.member_id.to_string(),
        instance_id: r.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id().to_string(),
        client_host: client_host.to_string(),
        session_timeout_ms: r.session_timeout_ms.max(0) as u64,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if v >= 1 { r.rebalance_timeout_ms } else { r.session_timeout_ms }.max(0) as u64,
        protocol_type: r.protocol_type.to_string(),
        protocols: r.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
        require_known_member_id: v >= 4,
    };
    let mut resp = JoinGroupResponse::default();
    let reply = if ctx.authorized(AclOperation::Read, ResourceType::Group, &group_id) {
        call(shard, &group_id, GroupOp::Join(j)).await
    } else {
        resp.error_code = ResponseError::GroupAuthorizationFailed.code();
        None
    };
    match reply {
        Some(GroupReply::Join(j)) => {
            resp.error_code = opt_code(&j.error);
            resp.generation_id = j.generation;
            if v >= 7 {
                resp.protocol_type = j.protocol_type.map(StrBytes::from_string);
                resp.protocol_name = j.protocol_name.map(StrBytes::from_string);
            } else {
                resp.protocol_name = Some(StrBytes::from_string(j.protocol_name.unwrap_or_default()));
            }
            resp.leader = StrBytes::from_string(j.leader);
            resp.member_id = StrBytes::from_string(j.member_id);
            resp.members = j
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    let mut m = JoinGroupResponseMember::default();
                    m.member_id = StrBytes::from_string(id);
                    if v >= 5 {
                        m.group_instance_id = instance.map(StrBytes::from_string);
                    }
                    m.metadata = metadata;
                    m
                })
                .collect();
        }
        _ => {
            if resp.error_code == 0 {
                resp.error_code = ResponseError::CoordinatorNotAvailable.code();
            }
            resp.generation_id = -1;
            if v < 7 {
                resp.protocol_name = Some(StrBytes::default());
            }
        }
    }
    respond(req, &resp)
}
