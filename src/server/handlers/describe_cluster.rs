//! DescribeCluster v0–2: the live brokers, the cluster id, a live broker as the controller
//! (as KRaft brokers answer), and (KIP-430) the authorized cluster operations when asked.
//! v2 asks about fenced brokers too: they are listed with `is_fenced`.
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::{ResourceType, CLUSTER_NAME};
use crate::server::context::RequestContext;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 2;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: DescribeClusterRequest = req.decode()?;
    let mut resp = DescribeClusterResponse::default();
    resp.endpoint_type = r.endpoint_type.max(1);
    resp.cluster_id = StrBytes::from_string(shard.node.cluster_id.clone());
    let image = shard.image();
    resp.controller_id = BrokerId(super::cluster_view::controller_id(shard, &image, &ctx.connection.listener));
    resp.cluster_authorized_operations =
        ctx.authorized_operations(ResourceType::Cluster, CLUSTER_NAME, r.include_cluster_authorized_operations);
    let view = |id: i32, host: String, port: i32, rack: Option<String>, fenced: bool| {
        let mut b = DescribeClusterBroker::default();
        b.broker_id = BrokerId(id);
        b.host = StrBytes::from_string(host);
        b.port = port;
        b.rack = rack.map(StrBytes::from_string);
        b.is_fenced = fenced;
        b
    };
    resp.brokers = super::cluster_view::live_brokers(shard, &image, &ctx.connection.listener)
        .into_iter()
        .map(|b| view(b.node_id, b.host, b.port, b.rack, false))
        .collect();
    if req.version() >= 2 && r.include_fenced_brokers {
        for (&id, b) in image.brokers.iter().filter(|(_, b)| b.fenced) {
            resp.brokers.push(view(id, b.host.clone(), b.port as i32, b.rack.clone(), true));
        }
    }
    respond(req, &resp)
}
