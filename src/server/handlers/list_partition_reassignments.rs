//! ListPartitionReassignments v0 (`kafka-reassign-partitions.sh --verify`,
//! `Admin.listPartitionReassignments`): the moves in progress, from this broker's copy of
//! the metadata (the controller's, as of the last image it applied).
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{respond, HandlerResult};
use crate::cluster::placement::PartitionPlacement;
use crate::protocol::frame::Request;
use crate::security::operations::AclOperation;
use crate::server::context::RequestContext;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 0;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: ListPartitionReassignmentsRequest = req.decode()?;
    if !ctx.cluster_authorized(AclOperation::Describe) {
        let mut resp = ListPartitionReassignmentsResponse::default();
        resp.error_code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        return respond(req, &resp);
    }
    let image = ctx.shard.image();
    let ongoing = |p: &PartitionPlacement, index: i32| {
        let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
        let mut o = OngoingPartitionReassignment::default();
        o.partition_index = index;
        o.replicas = ids(&p.replicas);
        o.adding_replicas = ids(&p.adding);
        o.removing_replicas = ids(&p.removing);
        o
    };
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    let mut add = |name: &str, partitions: Vec<OngoingPartitionReassignment>| {
        if !partitions.is_empty() {
            let mut t = OngoingTopicReassignment::default();
            t.name = TopicName(StrBytes::from_string(name.to_string()));
            t.partitions = partitions;
            topics.push(t);
        }
    };
    match &r.topics {
        None => {
            for t in image.topics.values() {
                let moving = t.placement.iter().filter(|(_, p)| p.reassigning()).map(|(&i, p)| ongoing(p, i)).collect();
                add(&t.name, moving);
            }
        }
        Some(wanted) => {
            // Partitions named that are not moving (or do not exist) are left out, as Kafka does.
            for w in wanted {
                let Some(t) = image.topic(&w.name.0) else { continue };
                let moving = w
                    .partition_indexes
                    .iter()
                    .filter_map(|&i| t.placement(i).filter(|p| p.reassigning()).map(|p| ongoing(p, i)))
                    .collect();
                add(&t.name, moving);
            }
        }
    }
    let mut resp = ListPartitionReassignmentsResponse::default();
    resp.topics = topics;
    respond(req, &resp)
}
