//! CreateTopics v0–7, including `validate_only`, topic configs and replica assignments.
//! The active controller places the replicas; a replication factor above the live broker
//! count is INVALID_REPLICATION_FACTOR (its check, its message).
use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{controller_call, respond, HandlerResult};
use crate::config::{validate_topic_config, TopicConfig};
use crate::limits;
use crate::metadata::validate_topic_name;
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::controller::{ControllerError, ControllerOp, ControllerResult, NewTopic};
use crate::shard::Shard;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 7;

/// Checks one topic of the request; the error is the code and the message to return.
fn check(
    shard: &Shard,
    t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
) -> Result<NewTopic, (ResponseError, String)> {
    let name = t.name.0.to_string();
    validate_topic_name(&name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    let mut partitions = t.num_partitions;
    let mut replication = t.replication_factor;
    let mut assignments: Vec<Vec<i32>> = Vec::new();
    if !t.assignments.is_empty() {
        if partitions != -1 || replication != -1 {
            return Err((
                ResponseError::InvalidRequest,
                "both assignments and num_partitions/replication_factor were given".into(),
            ));
        }
        let mut seen: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
        seen.sort_unstable();
        if seen.iter().enumerate().any(|(i, &p)| p != i as i32) {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                "partition indexes in assignments must be 0..n".into(),
            ));
        }
        let mut sorted: Vec<_> = t.assignments.iter().collect();
        sorted.sort_by_key(|a| a.partition_index);
        assignments = sorted.iter().map(|a| a.broker_ids.iter().map(|b| b.0).collect()).collect();
        partitions = t.assignments.len() as i32;
        replication = assignments.first().map_or(1, |a: &Vec<i32>| a.len() as i16);
        if assignments.iter().any(|a| a.len() != replication as usize) {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                "every partition must have the same number of replicas".into(),
            ));
        }
    }
    if partitions == -1 {
        partitions = shard.config.num_partitions;
    }
    if replication == -1 {
        replication = shard.config.default_replication_factor;
    }
    if partitions < 1 || partitions > limits::PARTITIONS_PER_TOPIC_MAX {
        return Err((
            ResponseError::InvalidPartitions,
            format!("number of partitions must be in [1, {}]", limits::PARTITIONS_PER_TOPIC_MAX),
        ));
    }
    if replication < 1 {
        return Err((ResponseError::InvalidReplicationFactor, "replication factor must be at least 1".into()));
    }
    if t.configs.len() > limits::TOPIC_CONFIGS_MAX {
        return Err((ResponseError::InvalidConfig, "too many configs".into()));
    }
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        let Some(value) = &c.value else { continue };
        validate_topic_config(&c.name, value).map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
        configs.insert(c.name.to_string(), value.to_string());
    }
    Ok(NewTopic { name, partitions, replication_factor: replication, assignments, configs })
}

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: CreateTopicsRequest = req.decode()?;
    let v = req.version();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &r.topics {
        *counts.entry(t.name.0.as_str()).or_default() += 1;
    }
    let mut results: Vec<CreatableTopicResult> = Vec::with_capacity(r.topics.len());
    let mut to_create = Vec::new();
    let mut slots = Vec::new();
    // CREATE on the cluster, or on the topic (Kafka's rule).
    let cluster_create = ctx.cluster_authorized(AclOperation::Create);
    for t in &r.topics {
        let mut res = CreatableTopicResult::default();
        res.name = t.name.clone();
        res.num_partitions = -1;
        res.replication_factor = -1;
        if counts[t.name.0.as_str()] > 1 {
            res.error_code = ResponseError::InvalidRequest.code();
            if v >= 1 {
                res.error_message = Some(StrBytes::from_static_str("duplicate topic name in request"));
            }
        } else if !cluster_create && !ctx.authorized(AclOperation::Create, ResourceType::Topic, t.name.0.as_str()) {
            res.error_code = ResponseError::TopicAuthorizationFailed.code();
            if v >= 1 {
                res.error_message = Some(StrBytes::from_static_str("Authorization failed."));
            }
        } else {
            match check(shard, t) {
                Ok(new) => {
                    slots.push(results.len());
                    to_create.push(new);
                }
                Err((code, msg)) => {
                    res.error_code = code.code();
                    if v >= 1 {
                        res.error_message = Some(StrBytes::from_string(msg));
                    }
                }
            }
        }
        results.push(res);
    }
    if !to_create.is_empty() {
        let outcome =
            controller_call(shard, ControllerOp::CreateTopics { topics: to_create, validate_only: r.validate_only })
                .await;
        let created = match outcome {
            Ok(ControllerResult::Created(c)) => c,
            Ok(_) => {
                slots.iter().map(|_| Err(ControllerError::Storage("unexpected controller answer".into()))).collect()
            }
            Err(e) => slots.iter().map(|_| Err(e.clone())).collect(),
        };
        for (slot, c) in slots.into_iter().zip(created) {
            let res = &mut results[slot];
            match c {
                Ok(meta) => {
                    if v >= 7 {
                        res.topic_id = meta.id;
                    }
                    if v >= 5 {
                        res.num_partitions = meta.partitions;
                        res.replication_factor = meta.placement(0).map_or(1, |p| p.replicas.len() as i16);
                        res.configs = Some(
                            TopicConfig::describe(&shard.config, &meta.configs)
                                .into_iter()
                                .map(|(name, value, set)| {
                                    let mut c = CreatableTopicConfigs::default();
                                    c.name = StrBytes::from_string(name);
                                    c.value = Some(StrBytes::from_string(value));
                                    c.config_source = if set { 1 } else { 5 };
                                    c
                                })
                                .collect(),
                        );
                    }
                }
                Err(ControllerError::AlreadyExists) => {
                    res.error_code = ResponseError::TopicAlreadyExists.code();
                    if v >= 1 {
                        res.error_message =
                            Some(StrBytes::from_string(format!("Topic '{}' already exists.", res.name.0)));
                    }
                }
                Err(e) => {
                    res.error_code = match &e {
                        ControllerError::InvalidReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
                        ControllerError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
                        ControllerError::NotAvailable(_) => ResponseError::RequestTimedOut,
                        _ => ResponseError::UnknownServerError,
                    }
                    .code();
                    if v >= 1 {
                        res.error_message = Some(StrBytes::from_string(e.to_string()));
                    }
                }
            }
        }
    }
    let mut resp = CreateTopicsResponse::default();
    resp.topics = results;
    respond(req, &resp)
}
