//! DescribeCluster v0–2: this node, the cluster id, the controller, and (KIP-430) the
//! authorized cluster operations when asked. v2's fenced brokers: none is fenced.
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::{authorized_operations, ResourceType};
use crate::server::context::RequestContext;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 2;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: DescribeClusterRequest = req.decode()?;
    let mut resp = DescribeClusterResponse::default();
    resp.endpoint_type = r.endpoint_type.max(1);
    resp.cluster_id = StrBytes::from_string(shard.node.cluster_id.clone());
    resp.controller_id = BrokerId(shard.node.node_id);
    resp.cluster_authorized_operations =
        authorized_operations(ResourceType::Cluster, r.include_cluster_authorized_operations);
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(shard.node.node_id);
    b.host = StrBytes::from_string(shard.node.advertised_host.clone());
    b.port = shard.node.advertised_port as i32;
    resp.brokers = vec![b];
    respond(req, &resp)
}
