//! Followers (DESIGN §6): each shard runs one replica fetcher per leader broker, for the
//! partitions this shard owns that the broker leads. A fetcher sends that broker Kafka
//! Fetch requests with `replica_id` = this node (its long-polls wait on the leader's log
//! end), appends what comes back with the leader's offsets and epochs unchanged, waits
//! until it is written (and on disk, for a topic that flushes) before asking for more, so
//! that its next fetch offset — what the leader counts as this replica's progress — is
//! only ever what this replica really has; and learns the high watermark from the answers.
//! A diverging epoch in an answer truncates the log to the end of the last common epoch.
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures_lite::FutureExt;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Shard;
use crate::model::{LeaderEpoch, NodeId, Offset, TopicPartition};
use crate::server::stream::ConnStream;
use crate::storage::AppendError;
use crate::sync::LocalNotify;

/// The Fetch version followers send: topics by name, `last_fetched_epoch` and
/// `diverging_epoch` (v12), and `replica_id` in the request body.
const FETCH_VERSION: i16 = 12;
/// How long a fetcher waits before retrying a leader it cannot reach or that refused.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// How long connecting to a leader may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How much longer than its long-poll an answer may take before the connection is dropped.
const ANSWER_GRACE: Duration = Duration::from_secs(10);
/// The largest fetch answer a follower accepts.
const ANSWER_BYTES_MAX: usize = 64 << 20;

/// This shard's fetchers, one per leader broker it follows.
#[derive(Default)]
pub struct ReplicaFetchers {
    by_leader: RefCell<HashMap<NodeId, Rc<Fetcher>>>,
}

/// One leader's fetcher: the partitions it fetches (with the leader epoch this replica
/// knows for each), and a wake-up for when that set changes.
struct Fetcher {
    leader: NodeId,
    partitions: RefCell<BTreeMap<TopicPartition, LeaderEpoch>>,
    changed: LocalNotify,
    stopped: Cell<bool>,
}

impl ReplicaFetchers {
    /// Makes the fetchers match `wanted` (partition → (leader, leader epoch)): a fetcher
    /// per leader named, started if new, stopped once it has nothing left to fetch.
    pub fn reconcile(&self, shard: &Rc<Shard>, wanted: BTreeMap<TopicPartition, (NodeId, LeaderEpoch)>) {
        let mut by_leader: HashMap<NodeId, BTreeMap<TopicPartition, LeaderEpoch>> = HashMap::new();
        for (tp, (leader, epoch)) in wanted {
            by_leader.entry(leader).or_default().insert(tp, epoch);
        }
        let mut fetchers = self.by_leader.borrow_mut();
        fetchers.retain(|leader, f| {
            if by_leader.contains_key(leader) {
                return true;
            }
            f.stopped.set(true);
            f.changed.notify_all();
            false
        });
        for (leader, partitions) in by_leader {
            match fetchers.get(&leader) {
                Some(f) => {
                    if *f.partitions.borrow() != partitions {
                        *f.partitions.borrow_mut() = partitions;
                        f.changed.notify_all();
                    }
                }
                None => {
                    let f = Rc::new(Fetcher {
                        leader,
                        partitions: RefCell::new(partitions),
                        changed: LocalNotify::new(),
                        stopped: Cell::new(false),
                    });
                    fetchers.insert(leader, f.clone());
                    let weak = Rc::downgrade(shard);
                    glommio::spawn_local_into(run(weak, f), shard.data_tq).expect("data queue exists").detach();
                }
            }
        }
    }

    /// Stops every fetcher (shutdown).
    pub fn stop_all(&self) {
        for (_, f) in self.by_leader.borrow_mut().drain() {
            f.stopped.set(true);
            f.changed.notify_all();
        }
    }
}

/// What one round of fetching asked for a partition.
struct Asked {
    tp: TopicPartition,
    offset: Offset,
}

async fn run(shard: Weak<Shard>, f: Rc<Fetcher>) {
    let mut conn: Option<ConnStream> = None;
    let mut correlation = 0i32;
    loop {
        let Some(shard) = shard.upgrade() else { return };
        if f.stopped.get() || shard.shutting_down() {
            return;
        }
        let changed = f.changed.notified();
        let partitions: Vec<(TopicPartition, LeaderEpoch)> =
            f.partitions.borrow().iter().map(|(tp, e)| (tp.clone(), *e)).collect();
        if partitions.is_empty() {
            drop(shard);
            changed.await;
            continue;
        }
        let (request, asked) = build_request(&shard, &partitions);
        if asked.is_empty() {
            drop(shard);
            sleep_or(RETRY_BACKOFF, changed).await;
            continue;
        }
        if conn.is_none() {
            conn = connect(&shard, f.leader).await;
            if conn.is_none() {
                drop(shard);
                sleep_or(RETRY_BACKOFF, changed).await;
                continue;
            }
        }
        correlation = correlation.wrapping_add(1);
        let wait = Duration::from_millis(shard.config.replica_fetch_wait_max_ms) + ANSWER_GRACE;
        let stream = conn.as_mut().expect("connected above");
        let answer = exchange(stream, &shard, correlation, &request).or(async {
            glommio::timer::sleep(wait).await;
            Err("no answer in time".to_string())
        });
        // A change of the partitions (a new leader epoch, a move) should not wait out the
        // long-poll: drop the request and start over.
        let outcome = answer.or(async {
            f.changed.notified().await;
            Err(String::new())
        });
        match outcome.await {
            Ok(response) => {
                let progressed = apply_response(&shard, &f, &asked, response).await;
                if !progressed {
                    sleep_or(RETRY_BACKOFF, f.changed.notified()).await;
                }
            }
            Err(why) => {
                if !why.is_empty() {
                    tracing::debug!(leader = f.leader.0, error = %why, "replica fetch failed; reconnecting");
                    drop(shard);
                    sleep_or(RETRY_BACKOFF, f.changed.notified()).await;
                }
                conn = None;
            }
        }
    }
}

async fn sleep_or(d: Duration, changed: crate::sync::Notified<'_>) {
    glommio::timer::sleep(d).or(changed).await;
}

/// The Fetch request for this round, from each followed partition's log end and last epoch.
fn build_request(shard: &Shard, partitions: &[(TopicPartition, LeaderEpoch)]) -> (FetchRequest, Vec<Asked>) {
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(shard.config.node_id);
    req.max_wait_ms = shard.config.replica_fetch_wait_max_ms as i32;
    req.min_bytes = 1;
    req.max_bytes = ANSWER_BYTES_MAX as i32;
    req.session_id = 0;
    req.session_epoch = -1;
    let mut topics: BTreeMap<&str, FetchTopic> = BTreeMap::new();
    let mut asked = Vec::new();
    for (tp, epoch) in partitions {
        let Some(p) = shard.partition(tp) else { continue };
        if p.is_leader() {
            continue;
        }
        let offset = p.log.log_end_offset();
        let mut fp = FetchPartition::default();
        fp.partition = tp.partition;
        fp.current_leader_epoch = epoch.0;
        fp.fetch_offset = offset.0;
        fp.last_fetched_epoch = p.log.latest_epoch().map_or(-1, |e| e.0);
        fp.log_start_offset = p.log.log_start_offset().0;
        fp.partition_max_bytes = shard.config.replica_fetch_max_bytes as i32;
        topics
            .entry(&tp.topic)
            .or_insert_with(|| {
                let mut t = FetchTopic::default();
                t.topic = TopicName(StrBytes::from_string(tp.topic.to_string()));
                t
            })
            .partitions
            .push(fp);
        asked.push(Asked { tp: tp.clone(), offset });
    }
    req.topics = topics.into_values().collect();
    (req, asked)
}

async fn connect(shard: &Shard, leader: NodeId) -> Option<ConnStream> {
    let image = shard.image();
    let Some(b) = image.brokers.get(&leader.0) else {
        tracing::debug!(leader = leader.0, "leader not registered; cannot fetch from it yet");
        return None;
    };
    // The leader's endpoint on this broker's inter-broker listener name (Kafka's rule:
    // every broker of a cluster has the listener named by `inter.broker.listener.name`).
    let listener = &shard.config.inter_broker_listener().name;
    let Some((host, port)) = b.endpoint(listener) else {
        tracing::warn!(leader = leader.0, %listener, "the leader has no such listener; cannot fetch from it");
        return None;
    };
    let addr = format!("{host}:{port}");
    // TLS and SASL as the inter-broker listener's protocol says (security::outbound).
    match crate::security::outbound::connect(&shard.config, listener, host, port, CONNECT_TIMEOUT).await {
        Ok(s) => {
            tracing::info!(leader = leader.0, %addr, %listener, "replica fetcher connected");
            Some(s)
        }
        Err(e) => {
            tracing::debug!(leader = leader.0, %addr, error = %e, "cannot reach the leader");
            None
        }
    }
}

/// Sends one Fetch request and reads its answer.
async fn exchange(
    stream: &mut ConnStream,
    shard: &Shard,
    correlation: i32,
    req: &FetchRequest,
) -> Result<FetchResponse, String> {
    let client_id = format!("sluice-replica-{}", shard.config.node_id);
    let max = ANSWER_BYTES_MAX + (1 << 20);
    crate::security::outbound::call(stream, ApiKey::Fetch, FETCH_VERSION, correlation, &client_id, req, max).await
}

/// Applies one answer: appends, truncations, high watermarks. True if the answer was
/// usable for at least one partition (else the fetcher backs off before asking again).
async fn apply_response(shard: &Rc<Shard>, f: &Fetcher, asked: &[Asked], resp: FetchResponse) -> bool {
    if resp.error_code != 0 {
        tracing::debug!(leader = f.leader.0, error = resp.error_code, "replica fetch refused");
        return false;
    }
    let mut usable = false;
    for topic in resp.responses {
        for pd in topic.partitions {
            let tp = TopicPartition::new(topic.topic.0.as_str(), pd.partition_index);
            let Some(a) = asked.iter().find(|a| a.tp == tp) else { continue };
            // Stale if the partition was replaced (truncated) or left since the request.
            let Some(p) = shard.partition(&tp) else { continue };
            if p.is_leader() || p.log.log_end_offset() != a.offset {
                continue;
            }
            match pd.error_code {
                0 => {}
                // 1: OFFSET_OUT_OF_RANGE. This replica is past the leader's log end (it held
                // more under an epoch the leader does not know of): it starts again from the
                // leader's high watermark, which every in-sync replica had.
                1 if pd.high_watermark >= 0 && a.offset.0 > pd.high_watermark => {
                    tracing::warn!(partition = %tp, offset = a.offset.0, leader_hw = pd.high_watermark,
                        "fetch offset past the leader's log; truncating to its high watermark");
                    shard.truncate_replica(&tp, Offset(pd.high_watermark)).await;
                    usable = true;
                    continue;
                }
                code => {
                    tracing::debug!(partition = %tp, leader = f.leader.0, error = code, "replica fetch of a partition refused");
                    continue;
                }
            }
            usable = true;
            if pd.diverging_epoch.epoch >= 0 && pd.diverging_epoch.end_offset >= 0 {
                let (epoch, end) = (LeaderEpoch(pd.diverging_epoch.epoch), Offset(pd.diverging_epoch.end_offset));
                let (_, own_end) = p.log.end_offset_for_epoch(epoch);
                let to = if own_end.0 >= 0 { end.min(own_end) } else { end };
                tracing::info!(partition = %tp, epoch = epoch.0, leader_end = end.0, truncate_to = to.0,
                    "log diverges from the leader's; truncating");
                shard.truncate_replica(&tp, to).await;
                continue;
            }
            if let Some(records) = pd.records.filter(|r| !r.is_empty()) {
                match p.log.append_replicated(records).await {
                    Ok(outcome) => {
                        // What the next fetch offset reports must be true: written (and on
                        // disk if the topic flushes) before asking again.
                        if let Err(e) = p.log.wait_durable(outcome.end_offset, outcome.needs_sync).await {
                            tracing::warn!(partition = %tp, error = %e, "replicated batches not written");
                            continue;
                        }
                    }
                    Err(AppendError::Malformed) => {
                        tracing::warn!(partition = %tp, offset = a.offset.0, "leader's batches do not follow this log; refetching");
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(partition = %tp, error = %e, "cannot append the leader's batches");
                        continue;
                    }
                }
            }
            p.learn_high_watermark(Offset(pd.high_watermark));
            // The leader's log start moved (DeleteRecords, retention): so does this one's,
            // within what this replica has and the high watermark (as Kafka's follower).
            let leader_start = Offset(pd.log_start_offset);
            if leader_start > p.log.log_start_offset() {
                let to = leader_start.min(p.high_watermark());
                if to > p.log.log_start_offset() {
                    if let Err(e) = p.log.delete_records(to, p.high_watermark()).await {
                        tracing::warn!(partition = %tp, error = %e, "cannot follow the leader's log start");
                    }
                }
            }
        }
    }
    usable
}
