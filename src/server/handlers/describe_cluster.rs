//! DescribeCluster v0–1: this node, the cluster id, the controller.
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::{respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::shard::Shard;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 1;

pub async fn handle(shard: &Shard, req: &Request) -> HandlerResult {
    let r: DescribeClusterRequest = req.decode()?;
    let mut resp = DescribeClusterResponse::default();
    resp.endpoint_type = r.endpoint_type.max(1);
    resp.cluster_id = StrBytes::from_string(shard.node.cluster_id.clone());
    resp.controller_id = BrokerId(shard.node.node_id);
    resp.cluster_authorized_operations = i32::MIN;
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(shard.node.node_id);
    b.host = StrBytes::from_string(shard.node.advertised_host.clone());
    b.port = shard.node.advertised_port as i32;
    resp.brokers = vec![b];
    respond(req, &resp)
}
