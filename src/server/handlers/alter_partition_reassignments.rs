//! AlterPartitionReassignments v0–1 (KIP-455; `kafka-reassign-partitions.sh --execute`,
//! `Admin.alterPartitionReassignments`): moves partitions to new replica sets, or cancels
//! a move (`replicas` null). The new replicas fetch and join the ISR as followers do; the
//! controller completes the move once every target replica is in sync.
use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse};
use kafka_protocol::protocol::StrBytes;

use super::config_common::controller_error;
use super::{controller_call, respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::AclOperation;
use crate::server::context::RequestContext;
use crate::shard::controller::{ControllerError, ControllerOp, ControllerResult};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 1;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: AlterPartitionReassignmentsRequest = req.decode()?;
    if !ctx.cluster_authorized(AclOperation::Alter) {
        let mut resp = AlterPartitionReassignmentsResponse::default();
        resp.error_code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        return respond(req, &resp);
    }
    // v1: a move that changes the replication factor may be refused (KIP-860).
    let rf_may_change = req.version() < 1 || r.allow_replication_factor_change;
    let image = ctx.shard.image();
    let mut refused: BTreeMap<(String, i32), (ResponseError, String)> = BTreeMap::new();
    let mut asked = Vec::new();
    let mut order = Vec::new();
    for t in &r.topics {
        for p in &t.partitions {
            let (topic, partition) = (t.name.0.to_string(), p.partition_index);
            order.push((topic.clone(), partition));
            let target: Option<Vec<i32>> = p.replicas.as_ref().map(|rs| rs.iter().map(|b| b.0).collect());
            let current = image.topic(&topic).and_then(|t| t.placement(partition));
            if let (Some(target), Some(current), false) = (&target, current, rf_may_change) {
                if target.len() != current.target().len() {
                    let message = format!(
                        "The replication factor is changed from {} to {}",
                        current.target().len(),
                        target.len()
                    );
                    refused.insert((topic, partition), (ResponseError::InvalidReplicationFactor, message));
                    continue;
                }
            }
            asked.push((topic, partition, target));
        }
    }
    let results = if asked.is_empty() {
        Vec::new()
    } else {
        match controller_call(&ctx.shard, ControllerOp::Reassign { partitions: asked.clone() }).await {
            Ok(ControllerResult::Changed(results)) => results,
            Ok(_) => vec![Err(ControllerError::NotAvailable("unexpected answer".into())); asked.len()],
            Err(e) => vec![Err(e); asked.len()],
        }
    };
    let mut outcome: BTreeMap<(String, i32), Option<(ResponseError, String)>> =
        refused.into_iter().map(|(k, v)| (k, Some(v))).collect();
    for ((topic, partition, _), result) in asked.into_iter().zip(results) {
        outcome.insert((topic, partition), result.err().map(controller_error));
    }
    let mut by_topic: Vec<(String, Vec<ReassignablePartitionResponse>)> = Vec::new();
    for (topic, partition) in order {
        let mut pr = ReassignablePartitionResponse::default();
        pr.partition_index = partition;
        if let Some(Some((code, message))) = outcome.get(&(topic.clone(), partition)) {
            pr.error_code = code.code();
            pr.error_message = Some(StrBytes::from_string(message.clone()));
        }
        match by_topic.last_mut() {
            Some((t, list)) if *t == topic => list.push(pr),
            _ => by_topic.push((topic, vec![pr])),
        }
    }
    let mut resp = AlterPartitionReassignmentsResponse::default();
    resp.allow_replication_factor_change = rf_may_change;
    resp.responses = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            let mut t = ReassignableTopicResponse::default();
            t.name = kafka_protocol::messages::TopicName(StrBytes::from_string(name));
            t.partitions = partitions;
            t
        })
        .collect();
    respond(req, &resp)
}
