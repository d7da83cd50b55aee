//! CreatePartitions v0–3: grows topics; the new partitions are open for produce and fetch
//! on their owning shards before the response goes out (the controller installs the new
//! metadata on every shard first). Internal topics keep their count: group-to-partition
//! placement in `__consumer_offsets` depends on it.
use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::config_common::controller_error;
use super::{controller_call, respond, HandlerResult};
use crate::limits;
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::controller::{ControllerOp, ControllerResult};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 3;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: CreatePartitionsRequest = req.decode()?;
    let image = shard.image();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &r.topics {
        *counts.entry(t.name.0.as_str()).or_default() += 1;
    }
    let mut results: Vec<Option<Result<(), (ResponseError, String)>>> = Vec::new();
    let mut wanted = Vec::new();
    let mut wanted_at = Vec::new();
    for (i, t) in r.topics.iter().enumerate() {
        let name = t.name.0.as_str();
        let checked = (|| {
            if counts[name] > 1 {
                return Err((ResponseError::InvalidRequest, format!("topic {name} appears more than once")));
            }
            if !ctx.authorized(AclOperation::Alter, ResourceType::Topic, name) {
                return Err((ResponseError::TopicAuthorizationFailed, "Authorization failed.".to_string()));
            }
            let meta = image
                .topic(name)
                .ok_or((ResponseError::UnknownTopicOrPartition, format!("Topic {name} does not exist.")))?;
            if meta.is_internal() {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("the partition count of internal topic {name} is fixed"),
                ));
            }
            if t.count > limits::PARTITIONS_PER_TOPIC_MAX {
                return Err((
                    ResponseError::InvalidPartitions,
                    format!("number of partitions must be at most {}", limits::PARTITIONS_PER_TOPIC_MAX),
                ));
            }
            if t.count <= meta.partitions {
                return Err((
                    ResponseError::InvalidPartitions,
                    format!(
                        "Topic currently has {} partitions, which is higher than the requested {}.",
                        meta.partitions, t.count
                    ),
                ));
            }
            if let Some(assignments) = &t.assignments {
                let added = (t.count - meta.partitions) as usize;
                let node = shard.node.node_id;
                if assignments.len() != added || assignments.iter().any(|a| a.broker_ids.iter().map(|b| b.0).ne([node]))
                {
                    return Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!("expected {added} assignments, each of broker {node} only"),
                    ));
                }
            }
            Ok(())
        })();
        match checked {
            Ok(()) => {
                wanted.push((name.to_string(), t.count));
                wanted_at.push(i);
                results.push(None);
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    if !wanted.is_empty() {
        let n = wanted.len();
        let op = ControllerOp::CreatePartitions { topics: wanted, validate_only: r.validate_only };
        let outcome = match controller_call(shard, op).await {
            Ok(ControllerResult::Changed(v)) => v,
            Ok(_) => {
                vec![Err(crate::shard::controller::ControllerError::Storage("unexpected controller answer".into())); n]
            }
            Err(e) => vec![Err(e); n],
        };
        for (i, res) in wanted_at.into_iter().zip(outcome) {
            results[i] = Some(res.map_err(controller_error));
        }
    }
    let mut resp = CreatePartitionsResponse::default();
    for (t, res) in r.topics.iter().zip(results) {
        let mut out = CreatePartitionsTopicResult::default();
        out.name = t.name.clone();
        if let Some(Err((code, message))) = res {
            out.error_code = code.code();
            out.error_message = Some(StrBytes::from_string(message));
        }
        resp.results.push(out);
    }
    respond(req, &resp)
}
