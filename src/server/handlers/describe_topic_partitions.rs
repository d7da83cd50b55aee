//! DescribeTopicPartitions v0 (KIP-966): topics and their partitions, paged by a cursor,
//! as the Java AdminClient (`describeTopics`) and Kafka's 4.x tools ask for them. Topics
//! come sorted by name, partitions by index, at most `response_partition_limit` partitions
//! (bounded by `limits::DESCRIBE_TOPIC_PARTITIONS_MAX`) per response; `next_cursor` names
//! the first partition left out. One node: it leads every partition, and there are no
//! eligible leader replicas (ELR), so those lists are empty, as on a Kafka without ELR.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{respond, HandlerResult};
use crate::limits;
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType, NOT_REQUESTED};
use crate::server::context::RequestContext;

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 0;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: DescribeTopicPartitionsRequest = req.decode()?;
    let image = shard.image();
    let may_describe = |name: &str| ctx.authorized(AclOperation::Describe, ResourceType::Topic, name);
    let mut names: Vec<String> = if r.topics.is_empty() {
        image.topics.values().filter(|t| may_describe(&t.name)).map(|t| t.name.to_string()).collect()
    } else {
        r.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let mut resp = DescribeTopicPartitionsResponse::default();
    if let Some(c) = &r.cursor {
        // Kafka refuses a cursor on a topic the request does not name.
        if !names.iter().any(|n| n.as_str() == c.topic_name.0.as_str()) || c.partition_index < 0 {
            for name in &names {
                let mut t = DescribeTopicPartitionsResponseTopic::default();
                t.name = Some(TopicName(StrBytes::from_string(name.clone())));
                t.error_code = ResponseError::InvalidRequest.code();
                t.topic_authorized_operations = NOT_REQUESTED;
                resp.topics.push(t);
            }
            return respond(req, &resp);
        }
    }
    let limit = (r.response_partition_limit.max(1) as usize).min(limits::DESCRIBE_TOPIC_PARTITIONS_MAX);
    let mut budget = limit;
    let (cursor_topic, cursor_partition) =
        r.cursor.as_ref().map_or((None, 0), |c| (Some(c.topic_name.0.to_string()), c.partition_index));
    for name in names.iter().filter(|n| cursor_topic.as_ref().is_none_or(|c| n.as_str() >= c.as_str())) {
        let mut t = DescribeTopicPartitionsResponseTopic::default();
        t.name = Some(TopicName(StrBytes::from_string(name.clone())));
        let meta = image.topic(name).filter(|_| may_describe(name));
        let Some(meta) = meta else {
            t.error_code = if may_describe(name) {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                ResponseError::TopicAuthorizationFailed.code()
            };
            t.topic_id = Uuid::nil();
            t.topic_authorized_operations = NOT_REQUESTED;
            resp.topics.push(t);
            continue;
        };
        let first = if cursor_topic.as_deref() == Some(name.as_str()) { cursor_partition } else { 0 };
        if budget == 0 {
            // The page is full at a topic boundary: the next one starts with this topic.
            let mut next = Cursor::default();
            next.topic_name = TopicName(StrBytes::from_string(name.clone()));
            next.partition_index = first;
            resp.next_cursor = Some(next);
            break;
        }
        t.topic_id = meta.id;
        t.is_internal = meta.is_internal();
        t.topic_authorized_operations = ctx.authorized_operations(ResourceType::Topic, name, true);
        for p in first..meta.partitions {
            if budget == 0 {
                let mut next = Cursor::default();
                next.topic_name = TopicName(StrBytes::from_string(name.clone()));
                next.partition_index = p;
                resp.next_cursor = Some(next);
                break;
            }
            budget -= 1;
            let mut dp = DescribeTopicPartitionsResponsePartition::default();
            dp.partition_index = p;
            match meta.placement(p) {
                Some(pl) => {
                    dp.leader_id = BrokerId(pl.leader);
                    dp.leader_epoch = pl.leader_epoch;
                    dp.replica_nodes = pl.replicas.iter().map(|&n| BrokerId(n)).collect();
                    dp.isr_nodes = pl.isr.iter().map(|&n| BrokerId(n)).collect();
                }
                None => {
                    dp.error_code = kafka_protocol::error::ResponseError::LeaderNotAvailable.code();
                    dp.leader_id = BrokerId(-1);
                    dp.leader_epoch = -1;
                }
            }
            dp.eligible_leader_replicas = Some(Vec::new());
            dp.last_known_elr = Some(Vec::new());
            dp.offline_replicas = Vec::new();
            t.partitions.push(dp);
        }
        resp.topics.push(t);
        if resp.next_cursor.is_some() {
            break;
        }
    }
    respond(req, &resp)
}
