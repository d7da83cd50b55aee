//! ElectLeaders v0–2 (`kafka-leader-election.sh`): PREFERRED moves each partition's
//! leadership back to its first replica where that one is alive and in sync; UNCLEAN gives
//! a leaderless partition any live replica (losing what only the dead ones had). No
//! partitions named: every partition (preferred elections that are not needed are not
//! reported, as Kafka does).
use std::collections::BTreeMap;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::config_common::controller_error;
use super::{controller_call, respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::AclOperation;
use crate::server::context::RequestContext;
use crate::shard::controller::{ControllerError, ControllerOp, ControllerResult};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 2;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: ElectLeadersRequest = req.decode()?;
    if !ctx.cluster_authorized(AclOperation::Alter) {
        let mut resp = ElectLeadersResponse::default();
        resp.error_code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        return respond(req, &resp);
    }
    let unclean = req.version() >= 1 && r.election_type == 1;
    let all = r.topic_partitions.is_none();
    let wanted: Vec<(String, i32)> = match &r.topic_partitions {
        Some(list) => list.iter().flat_map(|t| t.partitions.iter().map(|&p| (t.topic.0.to_string(), p))).collect(),
        None => {
            let image = ctx.shard.image();
            image.topics.values().flat_map(|t| t.placement.keys().map(|&p| (t.name.to_string(), p))).collect()
        }
    };
    let results =
        match controller_call(&ctx.shard, ControllerOp::ElectLeaders { partitions: Some(wanted.clone()), unclean })
            .await
        {
            Ok(ControllerResult::Changed(results)) => results,
            Ok(_) => vec![Err(ControllerError::NotAvailable("unexpected answer".into())); wanted.len()],
            Err(e) => vec![Err(e); wanted.len()],
        };
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for ((topic, partition), result) in wanted.into_iter().zip(results) {
        if all && matches!(result, Err(ControllerError::ElectionNotNeeded)) {
            continue;
        }
        let mut pr = PartitionResult::default();
        pr.partition_id = partition;
        if let Err(e) = result {
            let (code, message) = controller_error(e);
            pr.error_code = code.code();
            pr.error_message = Some(StrBytes::from_string(message));
        }
        by_topic.entry(topic).or_default().push(pr);
    }
    let mut resp = ElectLeadersResponse::default();
    resp.replica_election_results = by_topic
        .into_iter()
        .map(|(topic, partition_result)| {
            let mut t = ReplicaElectionResult::default();
            t.topic = TopicName(StrBytes::from_string(topic));
            t.partition_result = partition_result;
            t
        })
        .collect();
    respond(req, &resp)
}
