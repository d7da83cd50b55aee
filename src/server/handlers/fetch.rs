//! Fetch v4–12 (by topic name; no fetch sessions: every response is a full one with session
//! id 0, which clients accept). Partitions are read on their owning shards in parallel; if
//! fewer than `min_bytes` came back, the request long-polls: each owning shard wakes it on
//! the first append to any of its partitions, or at `max_wait_ms`.
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::FetchRequest;

use super::{HandlerResult, Reply};
use crate::limits;
use crate::model::{LeaderEpoch, Offset, ShardId, TopicPartition};
use crate::protocol::batch::{self, BatchHeader};
use crate::protocol::fetch_response::{self, PartitionOut, TopicOut};
use crate::protocol::frame::Request;
use crate::protocol::record_set::RecordSet;
use crate::security::operations::{AclOperation, ResourceType};
use crate::security::quota::QuotaKind;
use crate::server::context::RequestContext;
use crate::shard::{FetchError, FetchItem, FetchResult, Shard, ShardMsg};
use crate::storage::ReadError;

pub const MIN_VERSION: i16 = 4;
pub const MAX_VERSION: i16 = 12;

pub async fn handle(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let shard = &ctx.shard;
    let r: FetchRequest = req.decode()?;
    let image = shard.image();
    let max_bytes = r.max_bytes.clamp(1, limits::FETCH_RESPONSE_BYTES_MAX) as usize;
    let max_wait = Duration::from_millis(r.max_wait_ms.clamp(0, limits::FETCH_WAIT_MS_MAX) as u64);
    let deadline = Instant::now() + max_wait;
    let min_bytes = r.min_bytes.max(0) as usize;
    // A follower's fetch (Fetch's replica_id; v15+ would carry it in ReplicaState).
    let replica = (r.replica_id.0 >= 0).then_some(crate::model::NodeId(r.replica_id.0));
    ctx.request_quota_exempt.set(replica.is_some());
    // A follower needs CLUSTER_ACTION; a consumer READ on each topic (Kafka answers
    // TOPIC_AUTHORIZATION_FAILED per partition for either).
    let follower_denied = replica.is_some() && !ctx.cluster_authorized(AclOperation::ClusterAction);

    // (topic index, partition index, what to read or why not)
    let mut slots: Vec<(usize, usize, Result<FetchItem, ResponseError>)> = Vec::new();
    for (ti, t) in r.topics.iter().enumerate() {
        let meta = image.topic(t.topic.0.as_str());
        let denied = follower_denied
            || (replica.is_none() && !ctx.authorized(AclOperation::Read, ResourceType::Topic, t.topic.0.as_str()));
        for (pi, p) in t.partitions.iter().enumerate() {
            let item = match meta {
                _ if denied => Err(ResponseError::TopicAuthorizationFailed),
                Some(m) if p.partition >= 0 && p.partition < m.partitions => Ok(FetchItem {
                    tp: TopicPartition::new(m.name.clone(), p.partition),
                    offset: Offset(p.fetch_offset),
                    max_bytes: (p.partition_max_bytes.max(0) as usize).min(max_bytes),
                    current_leader_epoch: LeaderEpoch(if req.version() >= 9 { p.current_leader_epoch } else { -1 }),
                    last_fetched_epoch: LeaderEpoch(if req.version() >= 12 { p.last_fetched_epoch } else { -1 }),
                    replica,
                    read_committed: replica.is_none() && r.isolation_level == 1,
                }),
                _ => Err(ResponseError::UnknownTopicOrPartition),
            };
            slots.push((ti, pi, item));
        }
    }

    let mut results: Vec<Option<FetchResult>>;
    loop {
        results = read_all(shard, &slots).await;
        let total: usize = results.iter().flatten().filter_map(|r| r.records.as_ref()).map(|b| b.len()).sum();
        let any_error = results.iter().flatten().any(|r| r.error.is_some()) || slots.iter().any(|s| s.2.is_err());
        // Nothing asked for (what every Java consumer sends when it closes): answer at once,
        // as Kafka does, instead of holding the close for max_wait_ms.
        let nothing_asked = slots.is_empty();
        if min_bytes == 0
            || nothing_asked
            || total >= min_bytes
            || any_error
            || Instant::now() >= deadline
            || shard.shutting_down()
        {
            break;
        }
        wait_for_data(shard, &slots, deadline).await;
        if Instant::now() >= deadline {
            results = read_all(shard, &slots).await;
            break;
        }
    }

    let mut topics: Vec<TopicOut<'_>> = r
        .topics
        .iter()
        .map(|t| TopicOut {
            name: t.topic.0.as_str(),
            partitions: t
                .partitions
                .iter()
                .map(|p| PartitionOut {
                    partition_index: p.partition,
                    error_code: 0,
                    high_watermark: -1,
                    last_stable_offset: -1,
                    log_start_offset: -1,
                    records: None,
                    diverging_epoch: None,
                    aborted: Vec::new(),
                })
                .collect(),
        })
        .collect();
    let mut budget = max_bytes;
    let mut first = true;
    let (mut bytes_out, mut messages_out, mut failed) = (0u64, 0u64, false);
    for ((ti, pi, item), result) in slots.iter().zip(results) {
        let pd = &mut topics[*ti].partitions[*pi];
        if let Err(code) = item {
            pd.error_code = code.code();
            failed = true;
            continue;
        }
        let Some(result) = result else {
            pd.error_code = ResponseError::NotLeaderOrFollower.code();
            failed = true;
            continue;
        };
        pd.high_watermark = result.high_watermark.0;
        pd.last_stable_offset = result.last_stable_offset.0;
        pd.aborted = result.aborted.iter().map(|a| (a.producer_id.0, a.first_offset.0)).collect();
        pd.log_start_offset = result.log_start_offset.0;
        if let Some(e) = &result.error {
            pd.error_code = match e {
                FetchError::UnknownPartition => ResponseError::UnknownTopicOrPartition,
                FetchError::NotLeader => ResponseError::NotLeaderOrFollower,
                FetchError::Epoch(e) => super::epoch_error(*e),
                FetchError::Read(ReadError::OutOfRange { .. }) => ResponseError::OffsetOutOfRange,
                FetchError::Read(ReadError::Storage(_)) => ResponseError::KafkaStorageError,
            }
            .code();
            failed = true;
            continue;
        }
        if req.version() >= 12 {
            pd.diverging_epoch = result.diverging_epoch.map(|(e, o)| (e.0, o.0));
        }
        // The response-wide max_bytes: the first non-empty partition always goes whole.
        if let Some(records) = result.records {
            if first || records.len() <= budget {
                budget = budget.saturating_sub(records.len());
                first = false;
                bytes_out += records.len() as u64;
                messages_out += record_count(&records);
                pd.records = Some(records);
            }
        }
    }
    shard.metrics.fetch_bytes.add(bytes_out);
    shard.metrics.fetch_messages.add(messages_out);
    if failed {
        shard.metrics.request_failed(kafka_protocol::messages::ApiKey::Fetch);
    }
    // A consumer over its consumer_byte_rate gets its records and a throttle time, and its
    // connection is read from again only after it (followers are not held to quotas).
    let throttle = if replica.is_none() { ctx.record_quota(QuotaKind::Fetch, bytes_out as f64) } else { 0 };
    let throttle = throttle.min(i32::MAX as u64) as i32;
    Ok(Reply::Chunks(fetch_response::encode(req.version(), req.correlation_id(), throttle, &topics)))
}

/// Records in the batches of `set`, from their headers (one header read per batch).
fn record_count(set: &RecordSet) -> u64 {
    let mut n = 0u64;
    for chunk in set.chunks() {
        for (_, b) in batch::BatchIter::new(chunk) {
            if let Some(h) = BatchHeader::read(b) {
                n += h.records_count.get().max(0) as u64;
            }
        }
    }
    n
}

/// Reads every readable slot on its owning shard, one message per shard, in parallel.
async fn read_all(
    shard: &Rc<Shard>,
    slots: &[(usize, usize, Result<FetchItem, ResponseError>)],
) -> Vec<Option<FetchResult>> {
    let mut by_shard: BTreeMap<ShardId, Vec<(usize, FetchItem)>> = BTreeMap::new();
    for (i, (_, _, item)) in slots.iter().enumerate() {
        if let Ok(item) = item {
            by_shard.entry(shard.owner_of(&item.tp.topic, item.tp.partition)).or_default().push((i, item.clone()));
        }
    }
    let calls = by_shard.into_iter().map(|(owner, entries)| async move {
        let (indexes, items): (Vec<usize>, Vec<FetchItem>) = entries.into_iter().unzip();
        let out = shard.call(owner, |reply| ShardMsg::Fetch { items, reply }).await;
        (indexes, out)
    });
    let mut results: Vec<Option<FetchResult>> = (0..slots.len()).map(|_| None).collect();
    for (indexes, out) in futures::future::join_all(calls).await {
        if let Some(out) = out {
            for (i, r) in indexes.into_iter().zip(out) {
                results[i] = Some(r);
            }
        }
    }
    results
}

/// Returns when any partition in `slots` gets new data, or at `deadline`.
async fn wait_for_data(
    shard: &Rc<Shard>,
    slots: &[(usize, usize, Result<FetchItem, ResponseError>)],
    deadline: Instant,
) {
    let mut by_shard: BTreeMap<ShardId, Vec<(TopicPartition, Offset, bool)>> = BTreeMap::new();
    for (_, _, item) in slots {
        if let Ok(item) = item {
            by_shard.entry(shard.owner_of(&item.tp.topic, item.tp.partition)).or_default().push((
                item.tp.clone(),
                item.offset,
                item.replica.is_some(),
            ));
        }
    }
    if by_shard.is_empty() {
        let now = Instant::now();
        if deadline > now {
            glommio::timer::sleep(deadline - now).await;
        }
        return;
    }
    let waits: Vec<_> = by_shard
        .into_iter()
        .map(|(owner, items)| {
            Box::pin(async move { shard.call(owner, |reply| ShardMsg::WaitForData { items, deadline, reply }).await })
        })
        .collect();
    let timer = async {
        let now = Instant::now();
        if deadline > now {
            glommio::timer::sleep(deadline - now).await;
        }
    };
    async {
        futures::future::select_all(waits).await;
    }
    .or(timer)
    .await;
}
