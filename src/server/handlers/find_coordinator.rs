//! FindCoordinator v0–4 (v4: batched keys). A group's coordinator is the leader of its
//! `__consumer_offsets` partition (Kafka's rule), looked up in the metadata image:
//! COORDINATOR_NOT_AVAILABLE while that partition has no live leader (or the topic does
//! not exist yet). A transactional id's (key type 1) is the leader of its
//! `__transaction_state` partition, created on first use like `__consumer_offsets`.
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::cluster_view::{live_broker, BrokerView};
use super::{respond, HandlerResult};
use crate::group::{offsets_partition, OFFSETS_TOPIC};
use crate::metadata::MetadataImage;
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::Shard;
use crate::txn::{transaction_partition, TRANSACTION_STATE_TOPIC};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 4;

/// The coordinator of `key` (a group id), or why there is none.
fn coordinator(
    shard: &Shard,
    image: &MetadataImage,
    listener: &str,
    key_type: i8,
    key: &str,
) -> Result<BrokerView, ResponseError> {
    let (topic, partition) = match key_type {
        0 => {
            let topic = image.topic(OFFSETS_TOPIC).ok_or(ResponseError::CoordinatorNotAvailable)?;
            (topic, offsets_partition(key, topic.partitions))
        }
        1 => {
            let topic = image.topic(TRANSACTION_STATE_TOPIC).ok_or(ResponseError::CoordinatorNotAvailable)?;
            (topic, transaction_partition(key, topic.partitions))
        }
        _ => return Err(ResponseError::InvalidRequest),
    };
    let leader = topic.placement(partition).and_then(|p| p.leader()).ok_or(ResponseError::CoordinatorNotAvailable)?;
    live_broker(shard, image, leader.0, listener).ok_or(ResponseError::CoordinatorNotAvailable)
}

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: FindCoordinatorRequest = req.decode()?;
    let v = req.version();
    if r.key_type == 0 && shard.image().topic(OFFSETS_TOPIC).is_none() {
        super::ensure_offsets_topic(shard).await;
    }
    if r.key_type == 1 && shard.image().topic(TRANSACTION_STATE_TOPIC).is_none() {
        super::ensure_transaction_state_topic(shard).await;
    }
    let image = shard.image();
    let mut resp = FindCoordinatorResponse::default();
    // DESCRIBE on the group (key type 0) or transactional id (1), as in Kafka.
    let denied = |key: &str| match r.key_type {
        0 => (!ctx.authorized(AclOperation::Describe, ResourceType::Group, key))
            .then_some(ResponseError::GroupAuthorizationFailed),
        1 => (!ctx.authorized(AclOperation::Describe, ResourceType::TransactionalId, key))
            .then_some(ResponseError::TransactionalIdAuthorizationFailed),
        _ => None,
    };
    if v >= 4 {
        resp.coordinators = r
            .coordinator_keys
            .iter()
            .map(|k| {
                let mut c = Coordinator::default();
                c.key = k.clone();
                match denied(k).map_or_else(|| coordinator(shard, &image, &ctx.connection.listener, r.key_type, k), Err)
                {
                    Ok(b) => {
                        c.node_id = BrokerId(b.node_id);
                        c.host = StrBytes::from_string(b.host);
                        c.port = b.port;
                    }
                    Err(e) => {
                        c.error_code = e.code();
                        c.node_id = BrokerId(-1);
                        c.port = -1;
                    }
                }
                c
            })
            .collect();
    } else {
        match denied(&r.key)
            .map_or_else(|| coordinator(shard, &image, &ctx.connection.listener, r.key_type, &r.key), Err)
        {
            Ok(b) => {
                resp.node_id = BrokerId(b.node_id);
                resp.host = StrBytes::from_string(b.host);
                resp.port = b.port;
            }
            Err(e) => {
                resp.error_code = e.code();
                resp.node_id = BrokerId(-1);
                resp.port = -1;
            }
        }
    }
    respond(req, &resp)
}
