//! Produce v3–9 (record batch v2 only). Each partition's records go to the shard that owns
//! it; the response waits for every partition (acks=1/all: bytes in the kernel, plus
//! fdatasync when the topic's flush policy asks). acks=0 gets no response at all.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{respond, HandlerResult, Reply};
use crate::model::TopicPartition;
use crate::protocol::batch::BatchError;
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::security::quota::QuotaKind;
use crate::server::context::RequestContext;
use crate::shard::{ProduceError, ProduceResult, Shard, ShardMsg, TxnVerification};
use crate::storage::producer_state::SequenceError;
use crate::storage::AppendError;

pub const MIN_VERSION: i16 = 3;
pub const MAX_VERSION: i16 = 9;

/// Takes the request body by value: once the request is decoded, the body and everything
/// else pointing into the frame are dropped, so that a one-partition request's records are
/// the frame's only owner and the log keeps that buffer instead of copying it.
pub async fn handle(ctx: &RequestContext, req: &Request, mut body: Bytes) -> HandlerResult {
    let shard = &ctx.shard;
    let mut r: ProduceRequest = req.decode_from(&mut body)?;
    drop(body);
    let acks = r.acks;
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(r.timeout_ms.max(0) as u64);
    let image = shard.image();
    // The response skeleton, with topic names copied out of the frame.
    let mut resp = ProduceResponse::default();
    let mut work = Vec::new();
    // A transactional id needs WRITE on it; each topic needs WRITE (checked before whether
    // it exists, so that names cannot be probed), as in Kafka.
    // Transactional batches need a transactional id (Kafka answers a request without one
    // with TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
    let transaction_denied = match &r.transactional_id {
        Some(id) => !ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, id.0.as_str()),
        None => r.topic_data.iter().flat_map(|t| t.partition_data.iter()).any(|p| {
            p.records
                .as_ref()
                .and_then(|b| crate::protocol::batch::BatchHeader::read(b))
                .is_some_and(|h| h.producer_id.get() >= 0 && crate::protocol::control::is_transactional(h))
        }),
    };
    for (ti, topic) in r.topic_data.iter_mut().enumerate() {
        let denied = if transaction_denied {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        } else if !ctx.authorized(AclOperation::Write, ResourceType::Topic, topic.name.0.as_str()) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else {
            None
        };
        let meta = image.topic(topic.name.0.as_str()).cloned();
        let mut tr = TopicProduceResponse::default();
        tr.name = TopicName(StrBytes::from_string(topic.name.0.to_string()));
        for (pi, part) in topic.partition_data.iter_mut().enumerate() {
            let mut pr = PartitionProduceResponse::default();
            pr.index = part.index;
            pr.base_offset = -1;
            pr.log_append_time_ms = -1;
            pr.log_start_offset = -1;
            tr.partition_responses.push(pr);
            work.push((ti, pi, denied, meta.clone(), part.index, part.records.take()));
        }
        resp.responses.push(tr);
    }
    // KIP-890: a transactional request's batches that would open a transaction on a
    // partition wait for the coordinator's word (`txn_verification`).
    let transactional_id = r.transactional_id.as_ref().map(|t| t.0.to_string());
    let txn = match transactional_id {
        Some(_) if shard.config.transaction_partition_verification_enable => TxnVerification::Ask,
        _ => TxnVerification::Off,
    };
    drop(r);
    let calls = work.into_iter().map(|(ti, pi, denied, meta, index, records)| {
        let shard = shard.clone();
        let bytes = records.as_ref().map_or(0, |r| r.len() as u64);
        async move {
            let result: Result<ProduceResult, ResponseError> = match (meta, records) {
                _ if !matches!(acks, -1..=1) => Err(ResponseError::InvalidRequiredAcks),
                _ if denied.is_some() => Err(denied.expect("checked")),
                // Internal topics are written by the broker only.
                (Some(meta), _) if meta.is_internal() => Err(ResponseError::InvalidTopicException),
                (Some(meta), Some(records)) if index >= 0 && index < meta.partitions => {
                    let tp = TopicPartition::new(meta.name.clone(), index);
                    let owner = shard.owner_in(&meta, index);
                    send(&shard, owner, tp, records, acks, deadline, txn).await
                }
                (Some(_), None) => Err(ResponseError::CorruptMessage),
                _ => Err(ResponseError::UnknownTopicOrPartition),
            };
            (ti, pi, result, bytes)
        }
    });
    let mut results = futures::future::join_all(calls).await;
    if let Some(id) = &transactional_id {
        verify_and_resend(shard, &resp, id, acks, deadline, &mut results).await;
    }
    count(shard, &results);
    // Every byte sent counts against producer_byte_rate, accepted or not (as in Kafka).
    let sent: u64 = results.iter().map(|(_, _, _, bytes)| *bytes).sum();
    let throttle = ctx.record_quota(QuotaKind::Produce, sent as f64).min(i32::MAX as u64) as i32;
    resp.throttle_time_ms = throttle;
    if acks == 0 {
        return Ok(Reply::None);
    }
    for (ti, pi, result, _) in results {
        let pr = &mut resp.responses[ti].partition_responses[pi];
        match result {
            Ok(Ok(outcome)) => {
                pr.base_offset = outcome.base_offset.0;
                pr.log_append_time_ms = outcome.log_append_time_ms;
                if req.version() >= 5 {
                    pr.log_start_offset = outcome.log_start_offset.0;
                }
            }
            Ok(Err(e)) => {
                let (code, message) = produce_error(&e);
                pr.error_code = code.code();
                if req.version() >= 8 {
                    if let ProduceError::Append(AppendError::KeylessRecords { indexes }) = &e {
                        pr.record_errors = indexes
                            .iter()
                            .map(|&i| {
                                let mut r = BatchIndexAndErrorMessage::default();
                                r.batch_index = i;
                                r.batch_index_error_message = Some(StrBytes::from_static_str(
                                    "Compacted topic cannot accept message without key",
                                ));
                                r
                            })
                            .collect();
                    }
                    pr.error_message = Some(StrBytes::from_string(message));
                }
            }
            Err(code) => pr.error_code = code.code(),
        }
    }
    respond(req, &resp)
}

async fn send(
    shard: &std::rc::Rc<Shard>,
    owner: crate::model::ShardId,
    tp: TopicPartition,
    records: Bytes,
    acks: i16,
    deadline: std::time::Instant,
    txn: TxnVerification,
) -> Result<ProduceResult, ResponseError> {
    shard
        .call(owner, |reply| ShardMsg::Produce { tp, records, acks, deadline, txn, reply })
        .await
        .ok_or(ResponseError::NotLeaderOrFollower)
}

type Sent = (usize, usize, Result<ProduceResult, ResponseError>, u64);

/// KIP-890: asks the coordinator about the partitions whose batch would open the
/// transaction (one question for all of them), and sends the verified ones again with
/// their guards.
async fn verify_and_resend(
    shard: &std::rc::Rc<Shard>,
    resp: &ProduceResponse,
    transactional_id: &str,
    acks: i16,
    deadline: std::time::Instant,
    results: &mut [Sent],
) {
    let pending: Vec<usize> = (0..results.len())
        .filter(|&i| matches!(results[i].2, Ok(Err(ProduceError::NeedsVerification { .. }))))
        .collect();
    let Some(&first) = pending.first() else { return };
    let Ok(Err(ProduceError::NeedsVerification { producer_id, epoch, .. })) = &results[first].2 else {
        unreachable!("pending holds verification requests only")
    };
    let (producer_id, epoch) = (*producer_id, *epoch);
    let tps: Vec<TopicPartition> = pending
        .iter()
        .map(|&i| {
            let t = &resp.responses[results[i].0];
            TopicPartition::new(t.name.0.as_str(), t.partition_responses[results[i].1].index)
        })
        .collect();
    let partitions: Vec<(String, i32)> = tps.iter().map(|tp| (tp.topic.to_string(), tp.partition)).collect();
    let verdicts = super::txn_verification::verify(shard, transactional_id, producer_id.0, epoch, partitions).await;
    let mut resends = Vec::with_capacity(pending.len());
    for ((&i, verdict), tp) in pending.iter().zip(verdicts).zip(tps) {
        let taken = std::mem::replace(&mut results[i].2, Err(ResponseError::UnknownServerError));
        let Ok(Err(ProduceError::NeedsVerification { producer_id: p, epoch: e, guard, records })) = taken else {
            unreachable!("pending holds verification requests only")
        };
        let shard = shard.clone();
        resends.push(async move {
            let result = match verdict {
                // One producer per request, as in Kafka.
                _ if (p, e) != (producer_id, epoch) => Err(ResponseError::InvalidProducerIdMapping),
                Err(e) => Err(e),
                Ok(()) => {
                    let owner = shard.owner_of(&tp.topic, tp.partition);
                    send(&shard, owner, tp, records, acks, deadline, TxnVerification::Verified(guard)).await
                }
            };
            (i, result)
        });
    }
    for (i, result) in futures::future::join_all(resends).await {
        results[i].2 = result;
    }
}

/// Bytes and records accepted, and whether any partition failed, in the shard's metrics.
fn count(shard: &Shard, results: &[(usize, usize, Result<ProduceResult, ResponseError>, u64)]) {
    let (mut bytes, mut messages, mut failed) = (0u64, 0u64, false);
    for (_, _, result, len) in results {
        match result {
            Ok(Ok(outcome)) => {
                bytes += len;
                messages += (outcome.end_offset.0 - outcome.base_offset.0).max(0) as u64;
            }
            _ => failed = true,
        }
    }
    shard.metrics.produce_bytes.add(bytes);
    shard.metrics.produce_messages.add(messages);
    if failed {
        shard.metrics.request_failed(kafka_protocol::messages::ApiKey::Produce);
    }
}

fn produce_error(e: &ProduceError) -> (ResponseError, String) {
    let code = match e {
        ProduceError::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        ProduceError::NotLeader => ResponseError::NotLeaderOrFollower,
        ProduceError::NotEnoughReplicas => ResponseError::NotEnoughReplicas,
        ProduceError::NotEnoughReplicasAfterAppend => ResponseError::NotEnoughReplicasAfterAppend,
        ProduceError::TimedOut => ResponseError::RequestTimedOut,
        ProduceError::Append(AppendError::TooLarge { .. }) => ResponseError::MessageTooLarge,
        ProduceError::Append(AppendError::Invalid(BatchError::TooLarge { .. })) => ResponseError::MessageTooLarge,
        ProduceError::Append(AppendError::Invalid(BatchError::BadMagic(_))) => ResponseError::InvalidRecord,
        ProduceError::Append(AppendError::KeylessRecords { .. } | AppendError::ControlBatch) => {
            ResponseError::InvalidRecord
        }
        ProduceError::Append(AppendError::NotInTransaction) => ResponseError::InvalidTxnState,
        // Only if the coordinator's answer was lost on the way: the client retries.
        ProduceError::NeedsVerification { .. } => ResponseError::NotEnoughReplicas,
        ProduceError::Append(AppendError::Invalid(_)) | ProduceError::Append(AppendError::Malformed) => {
            ResponseError::CorruptMessage
        }
        ProduceError::Append(AppendError::Storage(crate::storage::StorageError::Closed)) => {
            ResponseError::NotLeaderOrFollower
        }
        ProduceError::Append(AppendError::Storage(_)) => ResponseError::KafkaStorageError,
        ProduceError::Append(AppendError::Sequence(SequenceError::OutOfOrder { .. })) => {
            ResponseError::OutOfOrderSequenceNumber
        }
        ProduceError::Append(AppendError::Sequence(SequenceError::FencedEpoch { .. })) => {
            ResponseError::InvalidProducerEpoch
        }
    };
    let message = match e {
        ProduceError::UnknownPartition => "unknown partition".to_string(),
        ProduceError::NotLeader => "this broker is not the partition's leader".to_string(),
        ProduceError::Append(a) => a.to_string(),
        ProduceError::NotEnoughReplicas => "fewer in-sync replicas than min.insync.replicas".to_string(),
        ProduceError::NotEnoughReplicasAfterAppend => {
            "written, but the in-sync replicas fell below min.insync.replicas".to_string()
        }
        ProduceError::TimedOut => "the in-sync replicas did not confirm the write in time".to_string(),
        ProduceError::NeedsVerification { .. } => "the transaction coordinator did not verify the write".to_string(),
    };
    (code, message)
}
