//! Metadata v0–12: this broker, the cluster id, the controller, and the requested topics
//! (all of them for a null list, or an empty one at v0). Unknown topics are created when
//! `auto.create.topics.enable` and the request allow it. With ACLs, a topic the principal
//! may not DESCRIBE is left out of the full list and answered TOPIC_AUTHORIZATION_FAILED
//! when named (whether it exists or not); creating one also needs CREATE.
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{cluster_view, controller_call, respond, HandlerResult};
use crate::metadata::{validate_topic_name, MetadataImage, TopicMeta};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType, CLUSTER_NAME};
use crate::server::context::RequestContext;
use crate::shard::controller::{ControllerOp, ControllerResult, NewTopic};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 12;

enum Wanted {
    Name(String),
    Id(Uuid),
}

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: MetadataRequest = req.decode()?;
    let v = req.version();
    let mut image = shard.image();
    let wanted: Option<Vec<Wanted>> = match &r.topics {
        None => None,
        Some(list) if v == 0 && list.is_empty() => None,
        Some(list) => Some(
            list.iter()
                .map(|t| match &t.name {
                    Some(n) => Wanted::Name(n.0.to_string()),
                    None => Wanted::Id(t.topic_id),
                })
                .collect(),
        ),
    };
    let allow_create = shard.config.auto_create_topics_enable && (v < 4 || r.allow_auto_topic_creation);
    let may_describe = |name: &str| ctx.authorized(AclOperation::Describe, ResourceType::Topic, name);
    let may_create = |name: &str| {
        ctx.cluster_authorized(AclOperation::Create) || ctx.authorized(AclOperation::Create, ResourceType::Topic, name)
    };
    if let (Some(list), true) = (&wanted, allow_create) {
        let missing: Vec<NewTopic> = list
            .iter()
            .filter_map(|w| match w {
                Wanted::Name(n)
                    if image.topic(n).is_none()
                        && validate_topic_name(n).is_ok()
                        && may_describe(n)
                        && may_create(n) =>
                {
                    Some(NewTopic {
                        name: n.clone(),
                        partitions: shard.config.num_partitions,
                        replication_factor: shard.config.default_replication_factor,
                        assignments: Vec::new(),
                        configs: Default::default(),
                    })
                }
                _ => None,
            })
            .collect();
        if !missing.is_empty() {
            if let Ok(ControllerResult::Created(_)) =
                controller_call(shard, ControllerOp::CreateTopics { topics: missing, validate_only: false }).await
            {
                image = shard.image();
            }
        }
    }
    let mut resp = MetadataResponse::default();
    resp.brokers = cluster_view::live_brokers(shard, &image, &ctx.connection.listener)
        .into_iter()
        .map(|b| {
            let mut broker = MetadataResponseBroker::default();
            broker.node_id = BrokerId(b.node_id);
            broker.host = StrBytes::from_string(b.host);
            broker.port = b.port;
            if v >= 1 {
                broker.rack = b.rack.map(StrBytes::from_string);
            }
            broker
        })
        .collect();
    if v >= 2 {
        resp.cluster_id = Some(StrBytes::from_string(shard.node.cluster_id.clone()));
    }
    if v >= 1 {
        resp.controller_id = BrokerId(cluster_view::controller_id(shard, &image, &ctx.connection.listener));
    }
    // v8–10 only; Kafka asks DescribeCluster from v11 on.
    resp.cluster_authorized_operations = ctx.authorized_operations(
        ResourceType::Cluster,
        CLUSTER_NAME,
        (8..=10).contains(&v) && r.include_cluster_authorized_operations,
    );
    let with_ops = v >= 8 && r.include_topic_authorized_operations;
    let topic_ops = |name: &str| ctx.authorized_operations(ResourceType::Topic, name, with_ops);
    let denied = ResponseError::TopicAuthorizationFailed;
    resp.topics = match wanted {
        None => image
            .topics
            .values()
            .filter(|t| may_describe(&t.name))
            .map(|t| describe(&image, t, v, topic_ops(&t.name)))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|w| match w {
                Wanted::Name(n) if !may_describe(&n) => error_topic(Some(n), Uuid::nil(), denied),
                Wanted::Name(n) => match image.topic(&n) {
                    Some(t) => describe(&image, t, v, topic_ops(&n)),
                    None if allow_create && !may_create(&n) => error_topic(Some(n), Uuid::nil(), denied),
                    None => {
                        let code = if validate_topic_name(&n).is_err() {
                            ResponseError::InvalidTopicException
                        } else {
                            ResponseError::UnknownTopicOrPartition
                        };
                        error_topic(Some(n), Uuid::nil(), code)
                    }
                },
                Wanted::Id(id) => match image.topic_by_id(id) {
                    Some(t) if !may_describe(&t.name) => error_topic(None, id, denied),
                    Some(t) => describe(&image, t, v, topic_ops(&t.name)),
                    None => error_topic(None, id, ResponseError::UnknownTopicId),
                },
            })
            .collect(),
    };
    respond(req, &resp)
}

fn error_topic(name: Option<String>, id: Uuid, code: ResponseError) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.error_code = code.code();
    t.name = name.map(|n| TopicName(StrBytes::from_string(n)));
    t.topic_id = id;
    t.topic_authorized_operations = i32::MIN;
    t
}

fn describe(image: &MetadataImage, topic: &Arc<TopicMeta>, v: i16, authorized_ops: i32) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(StrBytes::from_string(topic.name.to_string())));
    if v >= 10 {
        t.topic_id = topic.id;
    }
    if v >= 1 {
        t.is_internal = topic.is_internal();
    }
    t.topic_authorized_operations = authorized_ops;
    t.partitions = (0..topic.partitions)
        .map(|p| {
            let mut mp = MetadataResponsePartition::default();
            mp.partition_index = p;
            match topic.placement(p) {
                Some(pl) => {
                    mp.leader_id = BrokerId(pl.leader);
                    if pl.leader < 0 {
                        mp.error_code = ResponseError::LeaderNotAvailable.code();
                    }
                    if v >= 7 {
                        mp.leader_epoch = pl.leader_epoch;
                    }
                    mp.replica_nodes = pl.replicas.iter().map(|&n| BrokerId(n)).collect();
                    mp.isr_nodes = pl.isr.iter().map(|&n| BrokerId(n)).collect();
                    if v >= 5 {
                        mp.offline_replicas =
                            cluster_view::offline_replicas(image, &pl.replicas).into_iter().map(BrokerId).collect();
                    }
                }
                None => {
                    mp.error_code = ResponseError::LeaderNotAvailable.code();
                    mp.leader_id = BrokerId(-1);
                    mp.leader_epoch = -1;
                }
            }
            mp
        })
        .collect();
    t
}
