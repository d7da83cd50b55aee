//! One shard per core: an executor that owns a set of partitions, its connections and its
//! cache. Every shard holds a full copy of the metadata image; partition ownership comes
//! from the image's placement table (a table, not a lock). Requests for another
//! shard's partitions travel over the bounded channel mesh carrying `Bytes` and a oneshot
//! for the reply; a full channel is backpressure.
pub mod broker_link;
pub mod controller;
pub mod groups;
pub mod messages;
pub mod partition;
pub mod pump;
pub mod replay;
pub mod replica_fetcher;
pub mod txn_markers;
pub mod txns;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::StreamExt;
use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::TaskQueueHandle;
use uuid::Uuid;

use crate::cluster::placement::{default_shard, PartitionPlacement};
use crate::config::{BrokerConfig, TopicConfig};
use crate::metadata::MetadataImage;
use crate::model::TopicPartition;
use crate::model::{LeaderEpoch, NodeId, Offset, ShardId};
use crate::storage::{PartitionLog, ReadError, ShardCache, TxnCheck};
use controller::ControllerOp;
pub use messages::*;
use partition::Partition;

/// Facts about this node that every shard needs and that never change while it runs.
#[derive(Debug)]
pub struct NodeIdentity {
    pub node_id: i32,
    pub cluster_id: String,
    pub advertised_host: String,
    pub advertised_port: u16,
}

/// Process-wide flags the shards poll (signal handling runs on a plain thread).
#[derive(Default)]
pub struct Lifecycle {
    pub shutdown: AtomicBool,
    pub loaded_shards: AtomicUsize,
    pub drained_shards: AtomicUsize,
    /// The producer ids this broker may still hand out (InitProducerId): the rest of the
    /// block the controller gave it, `next..end`.
    pub producer_ids: std::sync::Mutex<std::ops::Range<i64>>,
    /// The broker's client quota sensors (shared: quotas are per broker, not per shard).
    pub quota_sensors: crate::security::quota::QuotaSensors,
    /// Open client connections, for `max.connections` and `max.connections.per.ip`.
    pub admission: Arc<crate::server::admission::Admission>,
}

impl Lifecycle {
    /// A producer id from this broker's block, if any is left.
    pub fn take_producer_id(&self) -> Option<i64> {
        let mut ids = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.next()
    }

    /// A new block from the controller (an older one, if any, is dropped).
    pub fn set_producer_ids(&self, ids: std::ops::Range<i64>) {
        *self.producer_ids.lock().unwrap_or_else(|p| p.into_inner()) = ids;
    }
}

pub struct Shard {
    pub id: ShardId,
    pub count: usize,
    pub config: Arc<BrokerConfig>,
    pub node: Arc<NodeIdentity>,
    pub lifecycle: Arc<Lifecycle>,
    image: RefCell<Arc<MetadataImage>>,
    partitions: RefCell<HashMap<TopicPartition, Rc<Partition>>>,
    peers: Senders<ShardMsg>,
    pub cache: Rc<ShardCache>,
    pub data_tq: TaskQueueHandle,
    pub background_tq: TaskQueueHandle,
    pub controller: Option<Rc<controller::Controller>>,
    pub groups: Rc<groups::GroupDriver>,
    pub txns: Rc<txns::TxnDriver>,
    /// Kept connections to other brokers, for transaction markers and verification.
    pub links: broker_link::BrokerLinks,
    /// This shard's counters; written only here, read by the admin listener's scrape.
    pub metrics: Arc<crate::metrics::ShardMetrics>,
    /// Fired once when shutdown is seen, so connections can stop without a timer each.
    shutdown: crate::sync::LocalNotify,
    /// One `apply_metadata` at a time, and the version it last applied. It awaits between
    /// closing and opening logs; an image arriving meanwhile must wait, and an older one
    /// arriving late (the startup image, applied after the controller's broadcast of a
    /// newer one had already been handled) must not win: it would close and delete the
    /// partitions only the newer image has.
    metadata_applied: futures::lock::Mutex<Option<u64>>,
    /// The replica fetchers of the partitions this shard follows, one per leader broker.
    fetchers: replica_fetcher::ReplicaFetchers,
}

impl Shard {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: ShardId,
        count: usize,
        config: Arc<BrokerConfig>,
        node: Arc<NodeIdentity>,
        lifecycle: Arc<Lifecycle>,
        image: Arc<MetadataImage>,
        peers: Senders<ShardMsg>,
        data_tq: TaskQueueHandle,
        background_tq: TaskQueueHandle,
        controller: Option<Rc<controller::Controller>>,
        metrics: Arc<crate::metrics::ShardMetrics>,
    ) -> Rc<Shard> {
        let cache = Rc::new(ShardCache::new(config.fetch_cache_bytes));
        let groups = Rc::new(groups::GroupDriver::new(&config));
        let txns = Rc::new(txns::TxnDriver::new(&config));
        Rc::new(Shard {
            id,
            count,
            config,
            node,
            lifecycle,
            image: RefCell::new(image),
            partitions: RefCell::new(HashMap::new()),
            peers,
            cache,
            data_tq,
            background_tq,
            controller,
            groups,
            txns,
            links: Default::default(),
            metrics,
            shutdown: crate::sync::LocalNotify::new(),
            metadata_applied: futures::lock::Mutex::new(None),
            fetchers: Default::default(),
        })
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    /// The current image, borrowed (no reference count touched): for checks that do not
    /// await while they hold it.
    pub fn image_ref(&self) -> std::cell::Ref<'_, Arc<MetadataImage>> {
        self.image.borrow()
    }

    /// The shard that owns a partition on this node: its placement table entry, or (a
    /// topic or partition the image does not have) the default spread.
    pub fn owner_of(&self, topic: &str, partition: i32) -> ShardId {
        let image = self.image.borrow();
        match image.topic(topic) {
            Some(t) => self.owner_in(t, partition),
            None => default_shard(topic, partition, self.count),
        }
    }

    /// `owner_of` for a topic the caller has already looked up (no second lookup by name).
    pub fn owner_in(&self, topic: &crate::metadata::TopicMeta, partition: i32) -> ShardId {
        match topic.placement(partition) {
            Some(p) => p.shard_on(self.count),
            None => default_shard(&topic.name, partition, self.count),
        }
    }

    /// Every shard of this node, for messages to all of them.
    pub fn all_shards(&self) -> impl Iterator<Item = ShardId> {
        (0..self.count).map(ShardId)
    }

    /// Logs write in the produce queue and finalize segments in the background one.
    fn log_queues(&self) -> crate::storage::LogTaskQueues {
        crate::storage::LogTaskQueues { writes: self.data_tq, maintenance: self.background_tq }
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<Rc<Partition>> {
        self.partitions.borrow().get(tp).cloned()
    }

    pub fn log(&self, tp: &TopicPartition) -> Option<Rc<PartitionLog>> {
        self.partitions.borrow().get(tp).map(|p| p.log.clone())
    }

    pub fn owned_logs(&self) -> Vec<Rc<PartitionLog>> {
        self.partitions.borrow().values().map(|p| p.log.clone()).collect()
    }

    /// Runs `msg` on shard `to`: inline when it is this shard, else over the mesh.
    pub async fn dispatch(self: &Rc<Self>, to: ShardId, msg: ShardMsg) {
        if to == self.id {
            self.clone().handle(msg).await;
        } else {
            match self.peers.send_to(to.0, msg).await {
                Ok(()) => self.metrics.cross_shard_sent(to.0),
                // The peer is gone (shutting down): dropping the message drops its reply
                // sender, which the caller sees as a cancelled reply.
                Err(msg) => drop(msg),
            }
        }
    }

    /// Sends a request built around a fresh reply channel and waits for the reply.
    pub async fn call<T>(
        self: &Rc<Self>,
        to: ShardId,
        build: impl FnOnce(oneshot::Sender<T>) -> ShardMsg,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.dispatch(to, build(tx)).await;
        rx.await.ok()
    }

    /// Serves messages from the other shards until the mesh closes, with at most
    /// `SHARD_MESSAGES_IN_FLIGHT_MAX` of them running at once (see `pump`).
    pub fn spawn_receivers(self: &Rc<Self>, mut receivers: Receivers<ShardMsg>) {
        let permits = Rc::new(pump::PumpPermits::new(
            crate::limits::SHARD_MESSAGES_IN_FLIGHT_MAX,
            crate::limits::SHARD_WAITS_IN_FLIGHT_MAX,
        ));
        for (_peer, stream) in receivers.streams() {
            let shard = self.clone();
            let permits = permits.clone();
            glommio::spawn_local_into(
                async move {
                    let counted = shard.clone();
                    let messages = futures::stream::unfold(stream, |s| async move { s.recv().await.map(|m| (m, s)) })
                        .inspect(move |_| counted.metrics.cross_shard_received.add(1));
                    let (data_tq, background_tq) = (shard.data_tq, shard.background_tq);
                    permits
                        .pump(
                            Box::pin(messages),
                            |m| matches!(m, ShardMsg::WaitForData { .. }),
                            // A scrape's request stays out of the latency-sensitive queue.
                            move |m| if matches!(m, ShardMsg::Stats { .. }) { background_tq } else { data_tq },
                            move |m| shard.clone().handle(m),
                        )
                        .await
                },
                self.data_tq,
            )
            .expect("data queue exists")
            .detach();
        }
    }

    /// Handles one message addressed to this shard.
    pub async fn handle(self: Rc<Self>, msg: ShardMsg) {
        match msg {
            ShardMsg::Produce { tp, records, acks, deadline, txn, reply } => {
                let _ = reply.send(self.produce_local(&tp, records, acks, deadline, txn).await);
            }
            ShardMsg::Fetch { items, reply } => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.fetch_local(&item).await);
                }
                let _ = reply.send(out);
            }
            ShardMsg::WaitForData { items, deadline, reply } => {
                self.wait_for_data_local(&items, deadline).await;
                let _ = reply.send(());
            }
            ShardMsg::ListOffset { tp, timestamp, current_leader_epoch, read_committed, reply } => {
                let _ = reply.send(self.list_offset_local(&tp, timestamp, current_leader_epoch, read_committed).await);
            }
            ShardMsg::EpochEndOffset { tp, current_leader_epoch, leader_epoch, reply } => {
                let _ = reply.send(self.epoch_end_offset_local(&tp, current_leader_epoch, leader_epoch));
            }
            ShardMsg::DeleteRecords { tp, to, reply } => {
                let result = match self.partition(&tp) {
                    Some(p) => {
                        let hw = p.high_watermark();
                        Some(p.log.delete_records(to.unwrap_or(hw), hw).await)
                    }
                    None => None,
                };
                let _ = reply.send(result);
            }
            ShardMsg::ApplyMetadata { image, reply } => {
                self.apply_metadata(image).await;
                let _ = reply.send(());
            }
            ShardMsg::Group { op, reply } => {
                let _ = reply.send(self.groups.execute(&self, op).await);
            }
            ShardMsg::GroupTxnCommit { group, producer_id, epoch, entries, reply } => {
                let _ = reply.send(self.groups.txn_commit(&self, &group, producer_id, epoch, entries).await);
            }
            ShardMsg::Txn { op, reply } => {
                let _ = reply.send(self.txns.execute(&self, op).await);
            }
            ShardMsg::WriteMarker { tp, marker, reply } => {
                let _ = reply.send(self.write_marker_local(&tp, marker).await);
            }
            ShardMsg::Stats { reply } => {
                let _ = reply.send(self.stats());
            }
            ShardMsg::Controller { op, reply } => {
                let result = match &self.controller {
                    Some(c) => c.execute(op).await,
                    None => panic!("controller operation sent to shard {} which is not the controller", self.id),
                };
                let _ = reply.send(result);
            }
        }
    }

    /// This shard's state for a metrics scrape.
    fn stats(&self) -> crate::metrics::ShardStats {
        let partitions = self
            .partitions
            .borrow()
            .iter()
            .map(|(tp, p)| crate::metrics::PartitionStats {
                tp: tp.clone(),
                log: p.log.stats(),
                high_watermark: p.high_watermark().0,
                leader_epoch: p.leader_epoch().0,
                leader: p.leader().map_or(-1, |l| l.0),
                replicas: p.replica_count(),
                isr: p.isr_len(),
                is_leader: p.is_leader(),
                follower_lag: p.follower_lag(),
            })
            .collect();
        let (cache_hits, cache_misses) = self.cache.hits_misses();
        let (groups, group_offsets) = self.groups.stats(crate::limits::METRICS_GROUP_OFFSETS_MAX);
        crate::metrics::ShardStats {
            shard: self.id.0,
            partitions,
            cache_used_bytes: self.cache.used_bytes(),
            cache_budget_bytes: self.cache.budget_bytes(),
            cache_hits,
            cache_misses,
            groups,
            group_offsets,
        }
    }

    async fn produce_local(
        &self,
        tp: &TopicPartition,
        records: bytes::Bytes,
        acks: i16,
        deadline: Instant,
        txn: TxnVerification,
    ) -> ProduceResult {
        let p = self.partition(tp).ok_or(ProduceError::UnknownPartition)?;
        if !p.is_leader() {
            return Err(ProduceError::NotLeader);
        }
        let min_insync = if acks == -1 { p.log.min_insync_replicas().max(1) as usize } else { 0 };
        if p.isr_len() < min_insync {
            return Err(ProduceError::NotEnoughReplicas);
        }
        let check = match txn {
            TxnVerification::Off => TxnCheck::Off,
            TxnVerification::Ask => match p.log.start_txn_verification(&records) {
                Some((producer_id, epoch, guard)) => {
                    return Err(ProduceError::NeedsVerification { producer_id, epoch, guard, records })
                }
                None => TxnCheck::Verified(None),
            },
            TxnVerification::Verified(guard) => TxnCheck::Verified(Some(guard)),
        };
        let outcome = p.log.append_checked(records, check).map_err(ProduceError::Append)?;
        if acks != 0 {
            let wait = p.wait_acknowledged(outcome.end_offset, acks, outcome.needs_sync);
            // Only a wait on followers needs the request's timeout (and its timer): the
            // leader's own write ends by itself.
            let waited = if acks == -1 && p.isr_len() > 1 {
                use futures_lite::FutureExt;
                let timer = async {
                    glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
                    None
                };
                async { Some(wait.await) }.or(timer).await
            } else {
                Some(wait.await)
            };
            match waited {
                Some(Ok(())) => {}
                Some(Err(partition::AckError::NotLeader)) => return Err(ProduceError::NotLeader),
                Some(Err(partition::AckError::Storage(e))) => return Err(ProduceError::Append(e.into())),
                None => return Err(ProduceError::TimedOut),
            }
            if p.isr_len() < min_insync {
                return Err(ProduceError::NotEnoughReplicasAfterAppend);
            }
        }
        Ok(outcome)
    }

    async fn fetch_local(&self, item: &FetchItem) -> FetchResult {
        let failed = |error, hw, start| FetchResult {
            error: Some(error),
            high_watermark: hw,
            log_start_offset: start,
            records: None,
            diverging_epoch: None,
            last_stable_offset: hw,
            aborted: Vec::new(),
        };
        let unknown = Offset::UNKNOWN;
        let Some(p) = self.partition(&item.tp) else {
            return failed(FetchError::UnknownPartition, unknown, unknown);
        };
        let (hw, start) = (p.high_watermark(), p.log.log_start_offset());
        if let Err(e) = p.check_epoch(item.current_leader_epoch) {
            return failed(FetchError::Epoch(e), unknown, unknown);
        }
        if !p.is_leader() {
            return failed(FetchError::NotLeader, unknown, unknown);
        }
        // A fetcher that says which epoch it last fetched learns whether its log diverges
        // from ours there (KIP-320; followers truncate by it): the epoch's end here is
        // before its fetch offset, or the epoch is unknown and an older one ends here.
        if item.last_fetched_epoch.0 >= 0 {
            let (epoch, end) = p.log.end_offset_for_epoch(item.last_fetched_epoch);
            if end.0 < 0 || epoch.0 < 0 {
                let e = ReadError::OutOfRange { offset: item.offset, start, end: hw };
                return failed(FetchError::Read(e), hw, start);
            }
            if end < item.offset || epoch < item.last_fetched_epoch {
                return FetchResult {
                    error: None,
                    high_watermark: hw,
                    log_start_offset: start,
                    records: None,
                    diverging_epoch: Some((epoch, end)),
                    last_stable_offset: p.log.last_stable_offset(hw),
                    aborted: Vec::new(),
                };
            }
        }
        // A follower reads everything written, and what it asks for says what it has; a
        // read_committed consumer reads up to the last stable offset.
        let lso = p.log.last_stable_offset(hw);
        let up_to = match (item.replica, item.read_committed) {
            (Some(_), _) => Offset(i64::MAX),
            (None, true) => lso,
            (None, false) => hw,
        };
        let read = p.log.read(item.offset, up_to, item.max_bytes).await;
        let hw = match item.replica {
            Some(node) if read.is_ok() => {
                p.follower_fetched(node, item.offset);
                p.high_watermark()
            }
            _ => hw,
        };
        match read {
            Ok(r) => FetchResult {
                error: None,
                high_watermark: hw,
                log_start_offset: r.log_start_offset,
                // Served from the index, without looking into the batches read.
                aborted: if item.read_committed && r.records.is_some() {
                    p.log.aborted_between(item.offset, r.up_to)
                } else {
                    Vec::new()
                },
                records: r.records,
                diverging_epoch: None,
                // A follower's fetch may have moved the high watermark: its bound again.
                last_stable_offset: if item.replica.is_some() { p.log.last_stable_offset(hw) } else { lso },
            },
            Err(e) => failed(FetchError::Read(e), hw, p.log.log_start_offset()),
        }
    }

    async fn wait_for_data_local(&self, items: &[(TopicPartition, Offset, bool)], deadline: Instant) {
        let waits: Vec<_> =
            items.iter().filter_map(|(tp, offset, r)| self.partition(tp).map(|p| (p, *offset, *r))).collect();
        if waits.is_empty() {
            return;
        }
        let futs: Vec<_> = waits.iter().map(|(p, o, r)| Box::pin(p.wait_for_data(*o, *r, deadline))).collect();
        futures::future::select_all(futs).await;
    }

    async fn list_offset_local(
        &self,
        tp: &TopicPartition,
        timestamp: i64,
        current_leader_epoch: LeaderEpoch,
        read_committed: bool,
    ) -> ListOffsetResult {
        let p = self.partition(tp).ok_or(ListOffsetError::UnknownPartition)?;
        p.check_epoch(current_leader_epoch).map_err(ListOffsetError::Epoch)?;
        if !p.is_leader() {
            return Err(ListOffsetError::NotLeader);
        }
        if !p.high_watermark_settled() {
            return Err(ListOffsetError::OffsetNotAvailable);
        }
        let log = &p.log;
        let hw = p.high_watermark();
        let found = match timestamp {
            // Earliest, and earliest local (-4, KIP-405): every segment is local.
            -2 | -4 => Some((log.log_start_offset(), -1)),
            -1 if read_committed => Some((log.last_stable_offset(hw), -1)),
            -1 => Some((hw, -1)),
            // Latest tiered (-5, KIP-1005): nothing is tiered; Kafka answers -1 then.
            -5 => None,
            ts if ts < 0 && ts != -3 => return Err(ListOffsetError::UnsupportedTimestamp(ts)),
            // The record with the largest timestamp (-3, KIP-734), or the first at or after `ts`.
            ts => {
                let found =
                    if ts == -3 { log.max_timestamp_offset(hw).await } else { log.offset_for_timestamp(ts, hw).await };
                found.map_err(|e| {
                    tracing::warn!(partition = %tp, error = %e, timestamp = ts, "timestamp lookup failed");
                    ListOffsetError::Read(e)
                })?
            }
        };
        // The epoch of the offset found (Kafka: the latest epoch for the log end).
        Ok(found.map(|(offset, ts)| {
            let epoch = if timestamp == -1 { log.latest_epoch() } else { log.epoch_at(offset) };
            let epoch = epoch.unwrap_or(LeaderEpoch::NONE);
            ListedOffset { offset, timestamp: ts, leader_epoch: epoch }
        }))
    }

    /// OffsetForLeaderEpoch for one partition: the largest epoch at or below `leader_epoch`
    /// and the offset where it ended.
    fn epoch_end_offset_local(
        &self,
        tp: &TopicPartition,
        current_leader_epoch: LeaderEpoch,
        leader_epoch: LeaderEpoch,
    ) -> EpochEndResult {
        let p = self.partition(tp).ok_or(EpochEndError::UnknownPartition)?;
        p.check_epoch(current_leader_epoch).map_err(EpochEndError::Epoch)?;
        if !p.is_leader() {
            return Err(EpochEndError::NotLeader);
        }
        Ok(p.log.end_offset_for_epoch(leader_epoch))
    }

    /// Installs a new image and reconciles this shard's logs with it: opens the partitions
    /// it now owns, closes and deletes those whose topic is gone or was re-created.
    pub async fn apply_metadata(self: &Rc<Self>, image: Arc<MetadataImage>) {
        let mut applied = self.metadata_applied.lock().await;
        if applied.is_some_and(|v| image.version < v) {
            tracing::debug!(version = image.version, applied = ?*applied, "older metadata image ignored");
            return;
        }
        *applied = Some(image.version);
        *self.image.borrow_mut() = image.clone();
        let broker = self.config.with_dynamic(&image.broker_config_layers(self.config.node_id));
        let local = NodeId(self.config.node_id);
        let mut wanted: HashMap<TopicPartition, (Uuid, TopicConfig, PartitionPlacement)> = HashMap::new();
        for topic in image.topics.values() {
            for (&p, placement) in &topic.placement {
                if placement.shard_on(self.count) == self.id && placement.replicas.contains(&local.0) {
                    wanted.insert(
                        TopicPartition::new(topic.name.clone(), p),
                        (topic.id, TopicConfig::resolve(&broker, &topic.configs), placement.clone()),
                    );
                }
            }
        }
        let stale: Vec<(TopicPartition, Rc<Partition>)> = self
            .partitions
            .borrow()
            .iter()
            .filter(|(tp, p)| wanted.get(*tp).is_none_or(|(wid, _, _)| *wid != p.topic_id))
            .map(|(tp, p)| (tp.clone(), p.clone()))
            .collect();
        for (tp, p) in stale {
            self.partitions.borrow_mut().remove(&tp);
            // Deleted, or moved off this node: acks=all waits on it end (NOT_LEADER).
            p.abandon();
            let log = &p.log;
            log.close().await;
            if let Err(e) = std::fs::remove_dir_all(log.dir()) {
                tracing::warn!(partition = %tp, error = %e, "could not remove the deleted partition's directory");
            } else {
                tracing::info!(partition = %tp, "deleted partition");
            }
        }
        for (tp, (id, config, placement)) in wanted {
            let held = self.partition(&tp);
            if let Some(p) = held {
                p.log.set_config(config);
                match p.apply_placement(&placement).await {
                    // The group coordinator of a `__consumer_offsets` partition is its leader:
                    // a new leader loads the groups from the log and takes them over.
                    Ok(true) if &*tp.topic == crate::group::OFFSETS_TOPIC => self.groups.load(&p.log).await,
                    // Likewise the transaction coordinator of a `__transaction_state` partition.
                    Ok(true) if &*tp.topic == crate::txn::TRANSACTION_STATE_TOPIC => self.txns.load(self, &p.log).await,
                    Ok(_) => {}
                    Err(e) => tracing::error!(partition = %tp, error = %e, "cannot take the new leader epoch"),
                }
                continue;
            }
            let dir = self.config.log_dir.join(tp.dir_name());
            let opened = match PartitionLog::open(tp.clone(), dir, config, self.cache.clone(), self.log_queues()).await
            {
                Ok(log) => Partition::open(id, log, local, &placement).await,
                Err(e) => Err(e),
            };
            match opened {
                Ok(p) => {
                    if &*tp.topic == crate::group::OFFSETS_TOPIC {
                        self.groups.load(&p.log).await;
                    }
                    if &*tp.topic == crate::txn::TRANSACTION_STATE_TOPIC && p.is_leader() {
                        self.txns.load(self, &p.log).await;
                    }
                    self.partitions.borrow_mut().insert(tp, Rc::new(p));
                }
                Err(e) => tracing::error!(partition = %tp, error = %e, "cannot open partition; it stays offline"),
            }
        }
        self.reconcile_fetchers();
    }

    /// Starts, retargets or stops the replica fetchers so that every partition this shard
    /// follows is fetched from its current leader.
    fn reconcile_fetchers(self: &Rc<Self>) {
        let local = NodeId(self.config.node_id);
        let wanted = self
            .partitions
            .borrow()
            .iter()
            .filter(|(_, p)| !p.is_leader())
            .filter_map(|(tp, p)| p.leader().filter(|l| *l != local).map(|l| (tp.clone(), (l, p.leader_epoch()))))
            .collect();
        self.fetchers.reconcile(self, wanted);
    }

    /// Truncates a followed partition's log to `to` (its divergence from the leader's, or
    /// the leader's high watermark): closed, cut, and opened again by recovery's code,
    /// with the high watermark it had (up to the new end). Under the metadata lock, so no
    /// image is applied to it meanwhile.
    pub async fn truncate_replica(self: &Rc<Self>, tp: &TopicPartition, to: Offset) {
        let _applying = self.metadata_applied.lock().await;
        let Some(p) = self.partition(tp) else { return };
        if p.is_leader() {
            return;
        }
        let image = self.image();
        let Some(placement) = image.topic(&tp.topic).and_then(|t| t.placement(tp.partition)).cloned() else {
            return;
        };
        let (config, dir, hw) = (p.log.config(), p.log.dir().to_path_buf(), p.high_watermark());
        self.partitions.borrow_mut().remove(tp);
        p.log.close().await;
        let local = NodeId(self.config.node_id);
        let reopened = async {
            PartitionLog::truncate_closed(tp, &dir, to).await?;
            let log = PartitionLog::open(tp.clone(), dir, config, self.cache.clone(), self.log_queues()).await?;
            Partition::open(p.topic_id, log, local, &placement).await
        }
        .await;
        match reopened {
            Ok(p) => {
                p.learn_high_watermark(hw);
                self.partitions.borrow_mut().insert(tp.clone(), Rc::new(p));
            }
            Err(e) => tracing::error!(partition = %tp, error = %e, "cannot truncate the replica; it stays offline"),
        }
    }

    /// The leader's side of the ISR rules: every `replica.lag.time.max.ms / 2` (at most
    /// every half second, so that a caught-up follower rejoins soon), each partition this
    /// shard leads asks the controller for the ISR change its followers' progress calls for.
    pub async fn run_isr_checks(self: Rc<Self>) {
        let lag_max = self.config.replica_lag_time_max_ms;
        let every = Duration::from_millis((lag_max / 2).clamp(10, 500));
        while self.sleep_unless_shutdown(every).await {
            let led: Vec<(TopicPartition, Rc<Partition>)> = self
                .partitions
                .borrow()
                .iter()
                .filter(|(_, p)| p.is_leader())
                .map(|(t, p)| (t.clone(), p.clone()))
                .collect();
            let mut shrinking = Vec::new();
            let changes: Vec<controller::IsrChangeRequest> = led
                .iter()
                .filter_map(|(tp, p)| {
                    let change = p.isr_change(lag_max as i64)?;
                    shrinking.push(change.isr.len() < p.isr_len());
                    Some(controller::IsrChangeRequest {
                        topic: tp.topic.to_string(),
                        partition: tp.partition,
                        leader: self.config.node_id,
                        leader_epoch: p.leader_epoch().0,
                        partition_epoch: change.partition_epoch,
                        isr: change.isr.iter().map(|n| n.0).collect(),
                    })
                })
                .collect();
            if changes.is_empty() {
                continue;
            }
            let asked = changes.clone();
            match crate::server::handlers::controller_call(&self, ControllerOp::AlterPartition { changes }).await {
                Ok(controller::ControllerResult::Changed(results)) => {
                    for ((c, r), shrink) in asked.iter().zip(results).zip(shrinking) {
                        match r {
                            Ok(()) => {
                                let counter =
                                    if shrink { &self.metrics.isr_shrinks } else { &self.metrics.isr_expands };
                                counter.add(1);
                                tracing::info!(topic = c.topic, partition = c.partition, isr = ?c.isr, "ISR changed")
                            }
                            Err(e) => {
                                tracing::info!(topic = c.topic, partition = c.partition, isr = ?c.isr, error = %e, "ISR change refused")
                            }
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(changes = asked.len(), error = %e, "ISR changes not made"),
            }
        }
    }

    /// Closes every log: pending bytes written, active segments trimmed and synced.
    pub async fn close_logs(&self) {
        self.fetchers.stop_all();
        let logs: Vec<_> = self.partitions.borrow_mut().drain().map(|(_, p)| p.log.clone()).collect();
        for log in logs {
            log.close().await;
        }
    }

    pub fn shutting_down(&self) -> bool {
        self.lifecycle.shutdown.load(Ordering::Acquire)
    }

    /// Watches for shutdown (signals arrive on a plain thread, so this polls) and wakes
    /// everything waiting in `shutdown_requested`. One per shard.
    pub async fn watch_shutdown(&self) {
        while !self.shutting_down() {
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        self.shutdown.notify_all();
    }

    /// Applies retention to this shard's logs every `log.retention.check.interval.ms`. Runs
    /// in the background task queue.
    pub async fn run_retention(self: Rc<Self>) {
        let every = Duration::from_millis(self.config.log_retention_check_interval_ms);
        while self.sleep_unless_shutdown(every).await {
            let now = crate::storage::now_ms();
            for log in self.owned_logs() {
                if let Err(e) = log.enforce_retention(now).await {
                    tracing::warn!(partition = %log.topic_partition(), error = %e, "retention failed");
                }
            }
        }
    }

    /// Compacts this shard's compacted logs every `log.cleaner.backoff.ms`, one log at a
    /// time. Runs in the background task queue.
    pub async fn run_cleaner(self: Rc<Self>) {
        let every = Duration::from_millis(self.config.log_cleaner_backoff_ms);
        while self.sleep_unless_shutdown(every).await {
            let now = crate::storage::now_ms();
            for log in self.owned_logs() {
                if let Err(e) = log.compact(now).await {
                    tracing::warn!(partition = %log.topic_partition(), error = %e, "compaction failed");
                }
            }
        }
    }

    /// Sleeps `d`; false if shutdown was requested meanwhile.
    async fn sleep_unless_shutdown(&self, d: Duration) -> bool {
        use futures_lite::FutureExt;
        let tick = async {
            glommio::timer::sleep(d).await;
            true
        };
        let stop = async {
            self.shutdown_requested().await;
            false
        };
        tick.or(stop).await
    }

    /// Completes when shutdown is requested. No timer or I/O of its own: cheap enough to
    /// race against every read of every connection.
    pub async fn shutdown_requested(&self) {
        loop {
            let n = self.shutdown.notified();
            if self.shutting_down() {
                return;
            }
            n.await;
        }
    }
}
