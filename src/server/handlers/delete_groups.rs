//! DeleteGroups v0–2: removes empty groups and all their committed offsets.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::group_common::{call, code};
use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::groups::{GroupOp, GroupReply};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 2;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: DeleteGroupsRequest = req.decode()?;
    let mut resp = DeleteGroupsResponse::default();
    for gid in &r.groups_names {
        let group = gid.0.to_string();
        let mut res = DeletableGroupResult::default();
        res.group_id = gid.clone();
        if !ctx.authorized(AclOperation::Delete, ResourceType::Group, &group) {
            res.error_code = ResponseError::GroupAuthorizationFailed.code();
            resp.results.push(res);
            continue;
        }
        res.error_code = match call(shard, &group, GroupOp::Delete { group: group.clone() }).await {
            Some(GroupReply::Done(Ok(()))) => 0,
            Some(GroupReply::Done(Err(e))) => code(&e).code(),
            _ => ResponseError::CoordinatorNotAvailable.code(),
        };
        resp.results.push(res);
    }
    respond(req, &resp)
}
