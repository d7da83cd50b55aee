//! FindCoordinator v0–4 (v4: batched keys). Every group's coordinator is this node; only
//! group keys are served (transactions are not implemented).
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::server::context::RequestContext;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 4;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: FindCoordinatorRequest = req.decode()?;
    let v = req.version();
    let node = &shard.node;
    let error = if r.key_type != 0 { ResponseError::CoordinatorNotAvailable.code() } else { 0 };
    let mut resp = FindCoordinatorResponse::default();
    if v >= 4 {
        resp.coordinators = r
            .coordinator_keys
            .iter()
            .map(|k| {
                let mut c = Coordinator::default();
                c.key = k.clone();
                c.error_code = error;
                if error == 0 {
                    c.node_id = BrokerId(node.node_id);
                    c.host = StrBytes::from_string(node.advertised_host.clone());
                    c.port = node.advertised_port as i32;
                } else {
                    c.node_id = BrokerId(-1);
                    c.port = -1;
                }
                c
            })
            .collect();
    } else {
        resp.error_code = error;
        if error == 0 {
            resp.node_id = BrokerId(node.node_id);
            resp.host = StrBytes::from_string(node.advertised_host.clone());
            resp.port = node.advertised_port as i32;
        } else {
            resp.node_id = BrokerId(-1);
            resp.port = -1;
        }
    }
    respond(req, &resp)
}
