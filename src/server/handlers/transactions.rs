//! The transaction APIs (KIP-98, transaction version 1): InitProducerId with a
//! transactional id (from `init_producer_id`), AddPartitionsToTxn v0–3, AddOffsetsToTxn
//! v0–3, EndTxn v0–3 and DescribeTransactions / ListTransactions go to the coordinator of
//! the id (the leader of its `__transaction_state` partition, `shard::txns`);
//! TxnOffsetCommit v0–3 to the group's coordinator; WriteTxnMarkers v1 (from other
//! brokers' coordinators) writes markers to the partitions this broker leads.
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState as DescribedState};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, ListTransactionsRequest,
    ListTransactionsResponse, ProducerId, TopicName, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{respond, HandlerResult};
use crate::group::{offsets_partition, OFFSETS_TOPIC};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::groups::{CommitEntry, CommitError};
use crate::shard::txns::{TxnOp, TxnReply};
use crate::shard::{Shard, ShardMsg};
use crate::txn::coordinator::Answer;
use crate::txn::{transaction_partition, TxnError, TRANSACTION_STATE_TOPIC};

/// Versions served (transaction version 1: clients send the id and epoch themselves).
/// AddPartitionsToTxn v4 is brokers' (KIP-890: a partition leader verifying a write).
pub const ADD_PARTITIONS_MAX_VERSION: i16 = 4;
pub const ADD_OFFSETS_MAX_VERSION: i16 = 3;
pub const END_TXN_MAX_VERSION: i16 = 3;
pub const TXN_OFFSET_COMMIT_MAX_VERSION: i16 = 3;

/// Runs `op` on the coordinator of `transactional_id`; `None` if this node is not it.
pub async fn call(shard: &Rc<Shard>, transactional_id: &str, op: TxnOp) -> Option<TxnReply> {
    let owner = super::coordinator_shard(shard, TRANSACTION_STATE_TOPIC, transactional_id, transaction_partition)?;
    shard.call(owner, |reply| ShardMsg::Txn { op, reply }).await
}

/// The coordinator's answer to a request for `transactional_id`, as a Kafka error.
pub async fn answer(shard: &Rc<Shard>, transactional_id: &str, op: TxnOp) -> Result<Answer, TxnError> {
    match call(shard, transactional_id, op).await {
        Some(TxnReply::Answer(a)) => a,
        _ => Err(TxnError::NotCoordinator),
    }
}

/// A coordinator error as the client's version knows it: PRODUCER_FENCED is new with
/// KIP-588, and older clients get INVALID_PRODUCER_EPOCH instead.
pub fn code(e: TxnError, fenced_known: bool) -> ResponseError {
    match e {
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        TxnError::ProducerFenced if fenced_known => ResponseError::ProducerFenced,
        TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
        TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
        TxnError::NotCoordinator => ResponseError::NotCoordinator,
    }
}

fn error_of(r: Result<Answer, TxnError>, fenced_known: bool) -> i16 {
    r.err().map_or(0, |e| code(e, fenced_known).code())
}

pub async fn add_partitions(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: AddPartitionsToTxnRequest = req.decode()?;
    if req.version() >= 4 {
        return add_partitions_for_brokers(ctx, req, r).await;
    }
    let id = r.v3_and_below_transactional_id.0.to_string();
    let image = shard.image();
    let mut resp = AddPartitionsToTxnResponse::default();
    // Kafka: WRITE on the transactional id, then WRITE on each topic; any failure fails
    // all (the others OPERATION_NOT_ATTEMPTED).
    let id_denied = !ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, &id);
    let mut per_partition: Vec<(String, i32, Option<ResponseError>)> = Vec::new();
    for t in &r.v3_and_below_topics {
        let name = t.name.0.as_str();
        let known = image.topic(name);
        let denied = !ctx.authorized(AclOperation::Write, ResourceType::Topic, name);
        for &p in &t.partitions {
            let e = if id_denied {
                Some(ResponseError::TransactionalIdAuthorizationFailed)
            } else if denied {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if known.is_none_or(|m| p < 0 || p >= m.partitions) {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                None
            };
            per_partition.push((name.to_string(), p, e));
        }
    }
    let outcome: Vec<(String, i32, i16)> = if per_partition.iter().any(|(_, _, e)| e.is_some()) {
        per_partition
            .into_iter()
            .map(|(t, p, e)| (t, p, e.unwrap_or(ResponseError::OperationNotAttempted).code()))
            .collect()
    } else {
        let partitions: Vec<(String, i32)> = per_partition.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        let op = TxnOp::AddPartitions {
            transactional_id: id.clone(),
            producer_id: r.v3_and_below_producer_id.0,
            epoch: r.v3_and_below_producer_epoch,
            partitions: partitions.clone(),
        };
        let c = error_of(answer(shard, &id, op).await, req.version() >= 2);
        partitions.into_iter().map(|(t, p)| (t, p, c)).collect()
    };
    resp.results_by_topic_v3_and_below = topic_results(outcome.into_iter());
    respond(req, &resp)
}

/// AddPartitionsToTxn v4+, from another broker (CLUSTER_ACTION): per transaction, with
/// `verify_only` whether its partitions are in the ongoing transaction (KIP-890), else
/// adding them.
async fn add_partitions_for_brokers(
    ctx: &RequestContext,
    req: &Request,
    r: AddPartitionsToTxnRequest,
) -> HandlerResult {
    let shard = &ctx.shard;
    let mut resp = AddPartitionsToTxnResponse::default();
    if !ctx.cluster_authorized(AclOperation::ClusterAction) {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return respond(req, &resp);
    }
    for t in r.transactions {
        let id = t.transactional_id.0.to_string();
        let partitions: Vec<(String, i32)> =
            t.topics.iter().flat_map(|x| x.partitions.iter().map(move |p| (x.name.0.to_string(), *p))).collect();
        let (producer_id, epoch) = (t.producer_id.0, t.producer_epoch);
        let codes: Vec<i16> = if t.verify_only {
            match verify(shard, &id, producer_id, epoch, partitions.clone()).await {
                Ok(inside) => {
                    inside.into_iter().map(|i| if i { 0 } else { ResponseError::InvalidTxnState.code() }).collect()
                }
                Err(e) => vec![code(e, true).code(); partitions.len()],
            }
        } else {
            let op = TxnOp::AddPartitions {
                transactional_id: id.clone(),
                producer_id,
                epoch,
                partitions: partitions.clone(),
            };
            vec![error_of(answer(shard, &id, op).await, true); partitions.len()]
        };
        let mut result = kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResult::default();
        result.transactional_id = t.transactional_id;
        result.topic_results = topic_results(partitions.into_iter().zip(codes).map(|((t, p), c)| (t, p, c)));
        resp.results_by_transaction.push(result);
    }
    respond(req, &resp)
}

/// KIP-890: asks the coordinator of `transactional_id`, on this broker, which of
/// `partitions` are in the ongoing transaction of `producer_id` at `epoch`.
pub async fn verify(
    shard: &Rc<Shard>,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: Vec<(String, i32)>,
) -> Result<Vec<bool>, TxnError> {
    let op = TxnOp::Verify { transactional_id: transactional_id.to_string(), producer_id, epoch, partitions };
    match call(shard, transactional_id, op).await {
        Some(TxnReply::Verify(r)) => r,
        _ => Err(TxnError::NotCoordinator),
    }
}

/// Per-partition codes grouped by topic, in the order given.
fn topic_results(outcome: impl Iterator<Item = (String, i32, i16)>) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for (t, p, c) in outcome {
        let mut pr = AddPartitionsToTxnPartitionResult::default();
        pr.partition_index = p;
        pr.partition_error_code = c;
        match topics.iter_mut().find(|x| x.name.0.as_str() == t) {
            Some(x) => x.results_by_partition.push(pr),
            None => {
                let mut x = AddPartitionsToTxnTopicResult::default();
                x.name = TopicName(StrBytes::from_string(t));
                x.results_by_partition.push(pr);
                topics.push(x);
            }
        }
    }
    topics
}

pub async fn add_offsets(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: AddOffsetsToTxnRequest = req.decode()?;
    let id = r.transactional_id.0.to_string();
    let mut resp = AddOffsetsToTxnResponse::default();
    if !ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, &id) {
        resp.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return respond(req, &resp);
    }
    if !ctx.authorized(AclOperation::Read, ResourceType::Group, r.group_id.0.as_str()) {
        resp.error_code = ResponseError::GroupAuthorizationFailed.code();
        return respond(req, &resp);
    }
    if shard.image().topic(OFFSETS_TOPIC).is_none() {
        super::ensure_offsets_topic(shard).await;
    }
    let Some(partitions) = shard.image().topic(OFFSETS_TOPIC).map(|t| t.partitions) else {
        resp.error_code = ResponseError::CoordinatorNotAvailable.code();
        return respond(req, &resp);
    };
    // The group's `__consumer_offsets` partition joins the transaction.
    let partition = offsets_partition(r.group_id.0.as_str(), partitions);
    let op = TxnOp::AddPartitions {
        transactional_id: id.clone(),
        producer_id: r.producer_id.0,
        epoch: r.producer_epoch,
        partitions: vec![(OFFSETS_TOPIC.to_string(), partition)],
    };
    resp.error_code = error_of(answer(shard, &id, op).await, req.version() >= 2);
    respond(req, &resp)
}

pub async fn end_txn(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: EndTxnRequest = req.decode()?;
    let id = r.transactional_id.0.to_string();
    let mut resp = EndTxnResponse::default();
    if !ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, &id) {
        resp.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return respond(req, &resp);
    }
    let op = TxnOp::End {
        transactional_id: id.clone(),
        producer_id: r.producer_id.0,
        epoch: r.producer_epoch,
        commit: r.committed,
    };
    resp.error_code = error_of(answer(shard, &id, op).await, req.version() >= 2);
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    respond(req, &resp)
}

pub async fn txn_offset_commit(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: TxnOffsetCommitRequest = req.decode()?;
    let id = r.transactional_id.0.to_string();
    let group = r.group_id.0.to_string();
    let topic_denied = |t: &str| !ctx.authorized(AclOperation::Read, ResourceType::Topic, t);
    let whole = if !ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, &id) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !ctx.authorized(AclOperation::Read, ResourceType::Group, &group) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    let mut entries = Vec::new();
    let mut slots: Vec<(usize, usize, Option<ResponseError>)> = Vec::new();
    for (ti, t) in r.topics.iter().enumerate() {
        for (pi, p) in t.partitions.iter().enumerate() {
            let e =
                whole.or_else(|| topic_denied(t.name.0.as_str()).then_some(ResponseError::TopicAuthorizationFailed));
            if e.is_none() {
                entries.push(CommitEntry {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
                });
            }
            slots.push((ti, pi, e));
        }
    }
    let results: Result<Vec<Result<(), CommitError>>, ResponseError> = if entries.is_empty() {
        Ok(Vec::new())
    } else {
        group_txn_commit(shard, &group, r.producer_id.0, r.producer_epoch, entries).await
    };
    let mut resp = TxnOffsetCommitResponse::default();
    let mut results = results.map(|v| v.into_iter());
    for (ti, t) in r.topics.iter().enumerate() {
        let mut tr = TxnOffsetCommitResponseTopic::default();
        tr.name = t.name.clone();
        for (pi, p) in t.partitions.iter().enumerate() {
            let mut pr = TxnOffsetCommitResponsePartition::default();
            pr.partition_index = p.partition_index;
            let slot = slots.iter().find(|(a, b, _)| *a == ti && *b == pi).expect("every partition has a slot");
            pr.error_code = match (&slot.2, &mut results) {
                (Some(e), _) => e.code(),
                (None, Err(e)) => e.code(),
                (None, Ok(it)) => match it.next() {
                    Some(Ok(())) => 0,
                    Some(Err(CommitError::UnknownTopicOrPartition)) => ResponseError::UnknownTopicOrPartition.code(),
                    Some(Err(CommitError::MetadataTooLarge)) => ResponseError::OffsetMetadataTooLarge.code(),
                    Some(Err(CommitError::Storage)) | None => ResponseError::CoordinatorNotAvailable.code(),
                },
            };
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    respond(req, &resp)
}

/// The group's coordinator writes the offsets into the transaction.
async fn group_txn_commit(
    shard: &Rc<Shard>,
    group: &str,
    producer_id: i64,
    epoch: i16,
    entries: Vec<CommitEntry>,
) -> Result<Vec<Result<(), CommitError>>, ResponseError> {
    if shard.image().topic(OFFSETS_TOPIC).is_none() {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    let owner = super::coordinator_shard(shard, OFFSETS_TOPIC, group, offsets_partition)
        .ok_or(ResponseError::NotCoordinator)?;
    let group = group.to_string();
    shard
        .call(owner, |reply| ShardMsg::GroupTxnCommit { group, producer_id, epoch, entries, reply })
        .await
        .ok_or(ResponseError::CoordinatorNotAvailable)
}

pub async fn write_txn_markers(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: WriteTxnMarkersRequest = req.decode()?;
    let allowed = ctx.cluster_authorized(AclOperation::ClusterAction);
    let mut resp = WriteTxnMarkersResponse::default();
    for m in &r.markers {
        let mut mr = WritableTxnMarkerResult::default();
        mr.producer_id = m.producer_id;
        for t in &m.topics {
            let mut tr = WritableTxnMarkerTopicResult::default();
            tr.name = t.name.clone();
            let tps: Vec<(String, i32)> = t.partition_indexes.iter().map(|p| (t.name.0.to_string(), *p)).collect();
            let failed = if allowed {
                let marker = crate::shard::txn_markers::Marker {
                    producer_id: crate::model::ProducerId(m.producer_id.0),
                    epoch: m.producer_epoch,
                    coordinator_epoch: m.coordinator_epoch,
                    commit: m.transaction_result,
                };
                crate::shard::txns::write_local(shard, &tps, marker).await
            } else {
                tps.clone()
            };
            for (_, p) in &tps {
                let mut pr = WritableTxnMarkerPartitionResult::default();
                pr.partition_index = *p;
                pr.error_code = if !allowed {
                    ResponseError::ClusterAuthorizationFailed.code()
                } else if failed.iter().any(|(_, f)| f == p) {
                    ResponseError::NotLeaderOrFollower.code()
                } else {
                    0
                };
                tr.partitions.push(pr);
            }
            mr.topics.push(tr);
        }
        resp.markers.push(mr);
    }
    respond(req, &resp)
}

pub async fn describe_transactions(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: DescribeTransactionsRequest = req.decode()?;
    let mut resp = DescribeTransactionsResponse::default();
    for id in &r.transactional_ids {
        let id = id.0.to_string();
        let mut s = DescribedState::default();
        s.transactional_id = kafka_protocol::messages::TransactionalId(StrBytes::from_string(id.clone()));
        s.producer_id = ProducerId(-1);
        s.producer_epoch = -1;
        if !ctx.authorized(AclOperation::Describe, ResourceType::TransactionalId, &id) {
            s.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
            resp.transaction_states.push(s);
            continue;
        }
        let op = TxnOp::Describe { transactional_ids: vec![id.clone()] };
        match call(shard, &id, op).await {
            Some(TxnReply::Describe(mut found)) => match found.pop().and_then(|(_, v)| v) {
                Some(v) => {
                    s.transaction_state = StrBytes::from_static_str(v.state.name());
                    s.transaction_timeout_ms = v.timeout_ms;
                    s.transaction_start_time_ms = v.start_ms;
                    s.producer_id = ProducerId(v.producer_id);
                    s.producer_epoch = v.producer_epoch;
                    for (t, p) in v.partitions {
                        match s.topics.iter_mut().find(|x| x.topic.0.as_str() == t) {
                            Some(x) => x.partitions.push(p),
                            None => {
                                let mut x = TopicData::default();
                                x.topic = TopicName(StrBytes::from_string(t));
                                x.partitions.push(p);
                                s.topics.push(x);
                            }
                        }
                    }
                }
                None => s.error_code = ResponseError::TransactionalIdNotFound.code(),
            },
            _ => s.error_code = ResponseError::NotCoordinator.code(),
        }
        resp.transaction_states.push(s);
    }
    respond(req, &resp)
}

/// ListTransactions: the ids coordinated here (each broker answers for its own, as in
/// Kafka: tools ask every broker).
pub async fn list_transactions(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: ListTransactionsRequest = req.decode()?;
    let states: Vec<String> = r.state_filters.iter().map(|s| s.to_string()).collect();
    let producer_ids: Vec<i64> = r.producer_id_filters.iter().map(|p| p.0).collect();
    let mut resp = ListTransactionsResponse::default();
    const KNOWN: &[&str] = &[
        "Empty",
        "Ongoing",
        "PrepareCommit",
        "PrepareAbort",
        "CompleteCommit",
        "CompleteAbort",
        "Dead",
        "PrepareEpochFence",
    ];
    resp.unknown_state_filters =
        states.iter().filter(|s| !KNOWN.contains(&s.as_str())).map(|s| StrBytes::from_string(s.clone())).collect();
    let image = shard.image();
    let mut found = Vec::new();
    if let Some(topic) = image.topic(TRANSACTION_STATE_TOPIC) {
        // Every shard leading a partition of the topic here holds some ids.
        let owners: std::collections::BTreeSet<_> = (0..topic.partitions)
            .filter(|p| {
                topic.placement(*p).and_then(|pl| pl.leader()) == Some(crate::model::NodeId(shard.node.node_id))
            })
            .map(|p| shard.owner_in(topic, p))
            .collect();
        for owner in owners {
            let op = TxnOp::List { states: states.clone(), producer_ids: producer_ids.clone() };
            if let Some(TxnReply::List(l)) = shard.call(owner, |reply| ShardMsg::Txn { op, reply }).await {
                found.extend(l);
            }
        }
    }
    for (id, pid, state) in found {
        if !ctx.authorized(AclOperation::Describe, ResourceType::TransactionalId, &id) {
            continue;
        }
        let mut s = ListedState::default();
        s.transactional_id = kafka_protocol::messages::TransactionalId(StrBytes::from_string(id));
        s.producer_id = ProducerId(pid);
        s.transaction_state = StrBytes::from_static_str(state.name());
        resp.transaction_states.push(s);
    }
    respond(req, &resp)
}
