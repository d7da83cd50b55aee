//! ListGroups v0–5 (v4: filter by state; v5: by type, KIP-848, every group here being
//! `classic`): asks every shard for the groups it coordinates.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::groups::{GroupOp, GroupReply};
use crate::shard::ShardMsg;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 5;

/// The only group type Sluice has: the classic protocol (KIP-848's `consumer` is not here).
const GROUP_TYPE: &str = "classic";

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: ListGroupsRequest = req.decode()?;
    let v = req.version();
    let calls = shard.all_shards().map(|to| shard.call(to, |reply| ShardMsg::Group { op: GroupOp::List, reply }));
    let mut resp = ListGroupsResponse::default();
    // DESCRIBE on the cluster lists every group; else those the principal may DESCRIBE.
    let all = ctx.cluster_authorized(AclOperation::Describe);
    for reply in futures::future::join_all(calls).await {
        let Some(GroupReply::List(groups)) = reply else { continue };
        for (id, protocol_type, state) in groups {
            if !all && !ctx.authorized(AclOperation::Describe, ResourceType::Group, &id) {
                continue;
            }
            if v >= 4 && !r.states_filter.is_empty() && !r.states_filter.iter().any(|s| s.eq_ignore_ascii_case(state)) {
                continue;
            }
            if v >= 5
                && !r.types_filter.is_empty()
                && !r.types_filter.iter().any(|t| t.eq_ignore_ascii_case(GROUP_TYPE))
            {
                continue;
            }
            let mut g = ListedGroup::default();
            g.group_id = GroupId(StrBytes::from_string(id));
            g.protocol_type = StrBytes::from_string(protocol_type);
            if v >= 4 {
                g.group_state = StrBytes::from_static_str(state);
            }
            if v >= 5 {
                g.group_type = StrBytes::from_static_str(GROUP_TYPE);
            }
            resp.groups.push(g);
        }
    }
    respond(req, &resp)
}
