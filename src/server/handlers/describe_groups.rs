//! DescribeGroups v0–6: state, protocol and members (metadata and assignment) of groups.
//! An unknown group is Dead with no members before v6, GROUP_ID_NOT_FOUND from v6 on (as
//! Kafka 4.x, with its message: the 4.x tools print it).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::group_common::call;
use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType, NOT_REQUESTED};
use crate::server::context::RequestContext;
use crate::shard::groups::{GroupOp, GroupReply};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 6;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: DescribeGroupsRequest = req.decode()?;
    let v = req.version();
    let mut resp = DescribeGroupsResponse::default();
    for gid in &r.groups {
        let group = gid.0.to_string();
        let mut g = DescribedGroup::default();
        g.group_id = gid.clone();
        g.authorized_operations =
            ctx.authorized_operations(ResourceType::Group, &group, v >= 3 && r.include_authorized_operations);
        if !ctx.authorized(AclOperation::Describe, ResourceType::Group, &group) {
            g.error_code = ResponseError::GroupAuthorizationFailed.code();
            g.authorized_operations = NOT_REQUESTED;
            resp.groups.push(g);
            continue;
        }
        match call(shard, &group, GroupOp::Describe { group: group.clone() }).await {
            Some(GroupReply::Describe(Some(d))) => {
                g.group_state = StrBytes::from_static_str(d.state);
                g.protocol_type = StrBytes::from_string(d.protocol_type);
                g.protocol_data = StrBytes::from_string(d.protocol);
                g.members = d
                    .members
                    .into_iter()
                    .map(|(id, instance, client_id, host, meta, assignment)| {
                        let mut m = DescribedGroupMember::default();
                        m.member_id = StrBytes::from_string(id);
                        if v >= 4 {
                            m.group_instance_id = instance.map(StrBytes::from_string);
                        }
                        m.client_id = StrBytes::from_string(client_id);
                        m.client_host = StrBytes::from_string(host);
                        m.member_metadata = meta;
                        m.member_assignment = assignment;
                        m
                    })
                    .collect();
            }
            Some(GroupReply::Describe(None)) if v >= 6 => {
                g.error_code = ResponseError::GroupIdNotFound.code();
                g.error_message = Some(StrBytes::from_string(format!("Group {group} not found.")));
            }
            // Before v6 Kafka describes an unknown group as Dead with no members.
            Some(GroupReply::Describe(None)) => g.group_state = StrBytes::from_static_str("Dead"),
            _ => g.error_code = ResponseError::CoordinatorNotAvailable.code(),
        }
        resp.groups.push(g);
    }
    respond(req, &resp)
}
