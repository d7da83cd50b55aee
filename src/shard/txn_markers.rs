//! Transaction markers on the partition side: a marker written to a partition this shard
//! leads (for this broker's coordinators, or another's WriteTxnMarkers), and WriteTxnMarkers
//! sent to another broker for the partitions it leads, over the inter-broker listener
//! (`broker_link`).
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{ApiKey, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::StrBytes;

use super::partition::AckError;
use super::Shard;
use crate::model::{NodeId, ProducerId, TopicPartition};
use crate::storage::producer_state::SequenceError;
use crate::storage::{AppendError, StorageError};

const ANSWER_MAX: usize = 1 << 20;

/// One transaction's end, as a marker carries it to each partition.
#[derive(Debug, Clone, Copy)]
pub struct Marker {
    pub producer_id: ProducerId,
    pub epoch: i16,
    /// The coordinator's `__transaction_state` leader epoch.
    pub coordinator_epoch: i32,
    pub commit: bool,
}
const WRITE_TXN_MARKERS_VERSION: i16 = 1;

impl Shard {
    /// Writes a marker to `tp` (which this shard must lead) and waits for every in-sync
    /// replica, as Kafka appends markers with acks=all. A Kafka error code, 0 when written.
    pub async fn write_marker_local(self: &Rc<Self>, tp: &TopicPartition, m: Marker) -> i16 {
        let Marker { producer_id, epoch, coordinator_epoch, commit } = m;
        let Some(p) = self.partition(tp) else { return ResponseError::UnknownTopicOrPartition.code() };
        if !p.is_leader() {
            return ResponseError::NotLeaderOrFollower.code();
        }
        let outcome = match p.log.append_marker(producer_id, epoch, coordinator_epoch, commit) {
            Ok(o) => o,
            Err(AppendError::Sequence(e @ SequenceError::FencedEpoch { .. })) => {
                // The producer moved on under a newer epoch: this transaction's data was
                // written under the old one, and there is nothing left for it to end.
                tracing::warn!(partition = %tp, error = %e, "transaction marker older than its producer; skipped");
                return 0;
            }
            Err(AppendError::Storage(StorageError::Closed)) => return ResponseError::NotLeaderOrFollower.code(),
            Err(e) => {
                tracing::warn!(partition = %tp, error = %e, "cannot write a transaction marker");
                return ResponseError::KafkaStorageError.code();
            }
        };
        match p.wait_acknowledged(outcome.end_offset, -1, outcome.needs_sync).await {
            Ok(()) => {
                if &*tp.topic == crate::group::OFFSETS_TOPIC {
                    self.groups.complete_txn(producer_id.0, commit);
                }
                0
            }
            Err(AckError::NotLeader) => ResponseError::NotLeaderOrFollower.code(),
            Err(AckError::Storage(_)) => ResponseError::KafkaStorageError.code(),
        }
    }
}

/// WriteTxnMarkers to broker `leader` for `tps`; gives back the partitions not written.
pub async fn send(shard: &Rc<Shard>, leader: NodeId, tps: &[(String, i32)], m: Marker) -> Vec<(String, i32)> {
    match exchange(shard, leader, tps, m).await {
        Ok(failed) => failed,
        Err(e) => {
            tracing::debug!(leader = leader.0, error = %e, "WriteTxnMarkers failed; retrying");
            tps.to_vec()
        }
    }
}

async fn exchange(
    shard: &Rc<Shard>,
    leader: NodeId,
    tps: &[(String, i32)],
    m: Marker,
) -> Result<Vec<(String, i32)>, String> {
    let mut marker = WritableTxnMarker::default();
    marker.producer_id = kafka_protocol::messages::ProducerId(m.producer_id.0);
    marker.producer_epoch = m.epoch;
    marker.transaction_result = m.commit;
    marker.coordinator_epoch = m.coordinator_epoch;
    let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
    for (t, p) in tps {
        match topics.iter_mut().find(|x| x.name.0.as_str() == t) {
            Some(x) => x.partition_indexes.push(*p),
            None => {
                let mut x = WritableTxnMarkerTopic::default();
                x.name = TopicName(StrBytes::from_string(t.clone()));
                x.partition_indexes = vec![*p];
                topics.push(x);
            }
        }
    }
    marker.topics = topics;
    let mut req = WriteTxnMarkersRequest::default();
    req.markers = vec![marker];
    let resp: WriteTxnMarkersResponse =
        shard.links.call(shard, leader, ApiKey::WriteTxnMarkers, WRITE_TXN_MARKERS_VERSION, &req, ANSWER_MAX).await?;
    let mut failed = Vec::new();
    let mut answered = 0usize;
    for m in resp.markers {
        for t in m.topics {
            for p in t.partitions {
                answered += 1;
                if p.error_code != 0 {
                    failed.push((t.name.0.to_string(), p.partition_index));
                }
            }
        }
    }
    if answered < tps.len() {
        return Err(format!("{answered} answers for {} partitions", tps.len()));
    }
    Ok(failed)
}
