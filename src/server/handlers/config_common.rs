//! What the config APIs share: Kafka's resource types, config sources and types, and the
//! one path that changes topic configs (validate every value, then one controller call).
use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;

use super::controller_call;
use crate::config::{validate_dynamic_broker_config, validate_topic_config};
use crate::limits;
use crate::shard::controller::{ControllerError, ControllerOp, ControllerResult};
use crate::shard::Shard;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

pub const SOURCE_DYNAMIC_TOPIC_CONFIG: i8 = 1;
pub const SOURCE_DYNAMIC_BROKER_CONFIG: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
pub const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
pub const SOURCE_DEFAULT_CONFIG: i8 = 5;

/// Kafka's ConfigType for the keys Sluice knows (DescribeConfigs v3+).
pub fn config_type(key: &str, value: &str) -> i8 {
    const BOOLEAN: i8 = 1;
    const STRING: i8 = 2;
    const INT: i8 = 3;
    const LONG: i8 = 5;
    const LIST: i8 = 7;
    match key {
        "cleanup.policy" | "log.cleanup.policy" | "listeners" | "advertised.listeners" | "log.dirs" => LIST,
        "max.message.bytes"
        | "segment.bytes"
        | "min.insync.replicas"
        | "message.max.bytes"
        | "log.segment.bytes"
        | "num.partitions"
        | "node.id"
        | "offsets.topic.num.partitions" => INT,
        _ if value == "true" || value == "false" => BOOLEAN,
        _ if value.parse::<i64>().is_ok() => LONG,
        _ => STRING,
    }
}

/// The outcome for one resource: success, or the error code and a message naming the key.
pub type ResourceResult = Result<(), (ResponseError, String)>;

/// Validates the new config map of each topic and, for those that pass, replaces their
/// configs in one controller call. `changes` holds (topic, new map or the error found
/// while building it); the results come back in the same order.
pub async fn set_topic_configs(
    shard: &Rc<Shard>,
    changes: Vec<(String, Result<BTreeMap<String, String>, (ResponseError, String)>)>,
    validate_only: bool,
) -> Vec<ResourceResult> {
    let image = shard.image();
    let mut results: Vec<Option<ResourceResult>> = Vec::with_capacity(changes.len());
    let mut accepted = Vec::new();
    let mut accepted_at = Vec::new();
    for (i, (topic, configs)) in changes.into_iter().enumerate() {
        let checked = configs.and_then(|configs| {
            if image.topic(&topic).is_none() {
                return Err((ResponseError::UnknownTopicOrPartition, format!("Topic {topic} does not exist.")));
            }
            if configs.len() > limits::TOPIC_CONFIGS_MAX {
                return Err((ResponseError::InvalidConfig, format!("more than {} configs", limits::TOPIC_CONFIGS_MAX)));
            }
            for (k, v) in &configs {
                validate_topic_config(k, v).map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
            }
            Ok(configs)
        });
        match checked {
            Ok(configs) => {
                accepted.push((topic, configs));
                accepted_at.push(i);
                results.push(None);
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    if !accepted.is_empty() {
        let op = ControllerOp::SetTopicConfigs { topics: accepted, validate_only };
        let outcome = match controller_call(shard, op).await {
            Ok(ControllerResult::Changed(v)) => v,
            Ok(_) => vec![Err(ControllerError::Storage("unexpected controller answer".into())); accepted_at.len()],
            Err(e) => vec![Err(e); accepted_at.len()],
        };
        for (i, r) in accepted_at.into_iter().zip(outcome) {
            results[i] = Some(r.map_err(controller_error));
        }
    }
    results.into_iter().map(|r| r.expect("every resource has a result")).collect()
}

/// The dynamic broker config entity a broker resource name stands for: "" (the
/// cluster-wide defaults) or this node's id; an error for another broker.
pub fn broker_entity(shard: &Shard, name: &str) -> Result<String, (ResponseError, String)> {
    let me = shard.node.node_id.to_string();
    if name.is_empty() || name == me {
        Ok(name.to_string())
    } else {
        Err((ResponseError::InvalidRequest, format!("unknown broker {name}: this cluster has broker {me}")))
    }
}

/// Validates the new dynamic config map of each broker entity and, for those that pass,
/// replaces them in one controller call; results in the same order.
async fn set_broker_configs(
    shard: &Rc<Shard>,
    changes: Vec<Result<(String, BTreeMap<String, String>), (ResponseError, String)>>,
    validate_only: bool,
) -> Vec<ResourceResult> {
    let mut results: Vec<Option<ResourceResult>> = Vec::with_capacity(changes.len());
    let mut accepted = Vec::new();
    let mut accepted_at = Vec::new();
    for (i, change) in changes.into_iter().enumerate() {
        let checked = change.and_then(|(entity, configs)| {
            for (k, v) in &configs {
                validate_dynamic_broker_config(k, v).map_err(|e| (ResponseError::InvalidRequest, e.to_string()))?;
            }
            Ok((entity, configs))
        });
        match checked {
            Ok(c) => {
                accepted.push(c);
                accepted_at.push(i);
                results.push(None);
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    if !accepted.is_empty() {
        let op = ControllerOp::SetBrokerConfigs { entities: accepted, validate_only };
        let outcome = match controller_call(shard, op).await {
            Ok(ControllerResult::Changed(v)) => v,
            Ok(_) => vec![Err(ControllerError::Storage("unexpected controller answer".into())); accepted_at.len()],
            Err(e) => vec![Err(e); accepted_at.len()],
        };
        for (i, r) in accepted_at.into_iter().zip(outcome) {
            results[i] = Some(r.map_err(controller_error));
        }
    }
    results.into_iter().map(|r| r.expect("every resource has a result")).collect()
}

/// A planned change of one resource of an AlterConfigs-style request: a topic or a broker
/// entity with its new config map (or the error found while building it), or another
/// resource type (refused: Sluice has no group or client-metrics configs).
pub enum Planned {
    Topic(String, Result<BTreeMap<String, String>, (ResponseError, String)>),
    Broker(Result<(String, BTreeMap<String, String>), (ResponseError, String)>),
    Other(i8),
    /// The principal may not alter this resource's configs.
    Denied((ResponseError, String)),
}

/// Whether the principal may do `op` (DESCRIBE_CONFIGS, ALTER_CONFIGS) on a config
/// resource: a topic's own, a broker's through the cluster resource, as Kafka checks.
pub fn config_refusal(
    ctx: &crate::server::context::RequestContext,
    resource_type: i8,
    name: &str,
    op: crate::security::operations::AclOperation,
) -> Option<(ResponseError, String)> {
    use crate::security::operations::ResourceType;
    match resource_type {
        RESOURCE_TOPIC if !ctx.authorized(op, ResourceType::Topic, name) => {
            Some((ResponseError::TopicAuthorizationFailed, "Authorization failed.".into()))
        }
        RESOURCE_TOPIC => None,
        _ if !ctx.cluster_authorized(op) => {
            Some((ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.".into()))
        }
        _ => None,
    }
}

/// Applies the topic changes and the broker changes in one controller call each and
/// refuses the rest; one result per resource, in request order.
pub async fn alter_resources(shard: &Rc<Shard>, plans: Vec<Planned>, validate_only: bool) -> Vec<ResourceResult> {
    enum Slot {
        Topic,
        Broker,
        Refused((ResponseError, String)),
    }
    let mut slots = Vec::with_capacity(plans.len());
    let mut topics = Vec::new();
    let mut brokers = Vec::new();
    for p in plans {
        match p {
            Planned::Topic(name, configs) => {
                topics.push((name, configs));
                slots.push(Slot::Topic);
            }
            Planned::Broker(change) => {
                brokers.push(change);
                slots.push(Slot::Broker);
            }
            Planned::Other(t) => slots
                .push(Slot::Refused((ResponseError::InvalidRequest, format!("resource type {t} is not supported")))),
            Planned::Denied(why) => slots.push(Slot::Refused(why)),
        }
    }
    let mut topic_results = set_topic_configs(shard, topics, validate_only).await.into_iter();
    let mut broker_results = set_broker_configs(shard, brokers, validate_only).await.into_iter();
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Topic => topic_results.next().expect("one result per topic"),
            Slot::Broker => broker_results.next().expect("one result per broker entity"),
            Slot::Refused(e) => Err(e),
        })
        .collect()
}

pub fn controller_error(e: ControllerError) -> (ResponseError, String) {
    let code = match &e {
        ControllerError::UnknownTopic => ResponseError::UnknownTopicOrPartition,
        ControllerError::AlreadyExists => ResponseError::TopicAlreadyExists,
        ControllerError::PartitionsNotIncreased { .. } => ResponseError::InvalidPartitions,
        ControllerError::Storage(_) => ResponseError::KafkaStorageError,
        ControllerError::NotAvailable(_) => ResponseError::RequestTimedOut,
        ControllerError::InvalidReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
        ControllerError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        ControllerError::StaleBroker(_) => ResponseError::StaleBrokerEpoch,
        ControllerError::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
        ControllerError::InvalidUpdateVersion => ResponseError::InvalidUpdateVersion,
        ControllerError::InvalidIsr(_) => ResponseError::InvalidRequest,
        ControllerError::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        ControllerError::ElectionNotNeeded => ResponseError::ElectionNotNeeded,
        ControllerError::PreferredLeaderNotAvailable => ResponseError::PreferredLeaderNotAvailable,
        ControllerError::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
        ControllerError::ResourceNotFound(_) => ResponseError::ResourceNotFound,
    };
    (code, e.to_string())
}
