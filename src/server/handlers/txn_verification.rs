//! KIP-890 part 1, the partition leader's side of a Produce: before a transactional batch
//! opens a transaction on a partition, the coordinator of the request's transactional id
//! confirms that the partition is in the producer's ongoing transaction. It is asked on
//! this broker through its shard, or on another with AddPartitionsToTxn v4 (`verify_only`)
//! over the kept broker connections. Its answer becomes the error Kafka's produce path
//! gives: INVALID_TXN_STATE for a partition not in the transaction, NOT_ENOUGH_REPLICAS
//! (which every client retries without a metadata refresh) while the coordinator cannot
//! answer or the transaction is ending, and INVALID_PRODUCER_EPOCH for a fenced producer.
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::model::NodeId;
use crate::shard::Shard;
use crate::txn::{transaction_partition, TRANSACTION_STATE_TOPIC};

/// The version brokers verify with (the first with `verify_only`).
const VERIFY_VERSION: i16 = 4;
const ANSWER_MAX: usize = 1 << 20;

/// For each of `partitions`: whether the leader may append the producer's batch that
/// opens the transaction there, or the produce error.
pub async fn verify(
    shard: &Rc<Shard>,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: Vec<(String, i32)>,
) -> Vec<Result<(), ResponseError>> {
    let n = partitions.len();
    let answers = match coordinator(shard, transactional_id) {
        None => Err(ResponseError::CoordinatorNotAvailable),
        Some(node) if node.0 == shard.node.node_id => {
            match super::transactions::verify(shard, transactional_id, producer_id, epoch, partitions).await {
                Ok(inside) => Ok(inside
                    .into_iter()
                    .map(|i| if i { Ok(()) } else { Err(ResponseError::InvalidTxnState) })
                    .collect()),
                Err(e) => Err(super::transactions::code(e, true)),
            }
        }
        Some(node) => ask_broker(shard, node, transactional_id, producer_id, epoch, partitions).await,
    };
    match answers {
        Ok(v) if v.len() == n => v.into_iter().map(|r| r.map_err(for_produce)).collect(),
        Ok(_) => vec![Err(for_produce(ResponseError::NetworkException)); n],
        Err(e) => vec![Err(for_produce(e)); n],
    }
}

/// The broker leading the id's `__transaction_state` partition.
fn coordinator(shard: &Shard, transactional_id: &str) -> Option<NodeId> {
    let image = shard.image_ref();
    let t = image.topic(TRANSACTION_STATE_TOPIC)?;
    t.placement(transaction_partition(transactional_id, t.partitions))?.leader()
}

/// A coordinator's answer as the producer is told it (Kafka's `ReplicaManager`).
fn for_produce(e: ResponseError) -> ResponseError {
    match e {
        ResponseError::NetworkException
        | ResponseError::CoordinatorLoadInProgress
        | ResponseError::CoordinatorNotAvailable
        | ResponseError::NotCoordinator
        | ResponseError::ConcurrentTransactions => ResponseError::NotEnoughReplicas,
        // Producers handle a fenced epoch on Produce as INVALID_PRODUCER_EPOCH (fatal for a
        // transactional one); PRODUCER_FENCED there is only abortable to librdkafka.
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        other => other,
    }
}

async fn ask_broker(
    shard: &Rc<Shard>,
    node: NodeId,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: Vec<(String, i32)>,
) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
    let mut t = AddPartitionsToTxnTransaction::default();
    t.transactional_id = kafka_protocol::messages::TransactionalId(StrBytes::from_string(transactional_id.to_string()));
    t.producer_id = kafka_protocol::messages::ProducerId(producer_id);
    t.producer_epoch = epoch;
    t.verify_only = true;
    for (name, p) in &partitions {
        match t.topics.iter_mut().find(|x| x.name.0.as_str() == name) {
            Some(x) => x.partitions.push(*p),
            None => {
                let mut x = AddPartitionsToTxnTopic::default();
                x.name = TopicName(StrBytes::from_string(name.clone()));
                x.partitions = vec![*p];
                t.topics.push(x);
            }
        }
    }
    let mut req = AddPartitionsToTxnRequest::default();
    req.transactions = vec![t];
    let resp: AddPartitionsToTxnResponse =
        shard.links.call(shard, node, ApiKey::AddPartitionsToTxn, VERIFY_VERSION, &req, ANSWER_MAX).await.map_err(
            |e| {
                tracing::debug!(coordinator = node.0, error = %e, "transaction verification failed");
                ResponseError::NetworkException
            },
        )?;
    if let Some(e) = ResponseError::try_from_code(resp.error_code) {
        tracing::warn!(coordinator = node.0, error = ?e, "transaction verification refused");
        return Err(e);
    }
    let result = resp.results_by_transaction.into_iter().next().ok_or(ResponseError::NetworkException)?;
    partitions
        .iter()
        .map(|(name, p)| {
            let code = result
                .topic_results
                .iter()
                .filter(|x| x.name.0.as_str() == name)
                .flat_map(|x| x.results_by_partition.iter())
                .find(|x| x.partition_index == *p)
                .map(|x| x.partition_error_code)
                .ok_or(ResponseError::NetworkException)?;
            Ok(match ResponseError::try_from_code(code) {
                None => Ok(()),
                Some(e) => Err(e),
            })
        })
        .collect()
}
