//! The thin driver around the group coordinator state machine on one shard: it gives the
//! machine request ids and the time, parks JoinGroup/SyncGroup replies until the machine
//! releases them, persists commits and group metadata to this shard's
//! `__consumer_offsets` partitions (and only then answers), loads them back when those
//! partitions open, and ticks the machine for session and rebalance timeouts.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;

use super::Shard;
use crate::group::coordinator::{CommittedOffset, JoinRequest, JoinResponse, Output, ReqId, SyncRequest, SyncResponse};
use crate::group::{offsets_partition, records, GroupCoordinator, GroupError, GroupState, OFFSETS_TOPIC};
use crate::model::TopicPartition;
use crate::protocol::batch;
use crate::storage::{now_ms, PartitionLog};

/// One partition's commit in an OffsetCommit.
#[derive(Debug, Clone)]
pub struct CommitEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

#[derive(Debug)]
pub enum GroupOp {
    Join(JoinRequest),
    Sync(SyncRequest),
    Heartbeat {
        group: String,
        member: String,
        instance: Option<String>,
        generation: i32,
    },
    Leave {
        group: String,
        members: Vec<(String, Option<String>)>,
    },
    Commit {
        group: String,
        member: String,
        instance: Option<String>,
        generation: i32,
        entries: Vec<CommitEntry>,
    },
    /// `topics: None` = every committed partition of the group.
    FetchOffsets {
        group: String,
        topics: Option<Vec<(String, Vec<i32>)>>,
        /// OffsetFetch v7+ `require_stable`: partitions with offsets inside an open
        /// transaction are named as unstable instead.
        require_stable: bool,
    },
    DeleteOffsets {
        group: String,
        partitions: Vec<(String, i32)>,
    },
    Describe {
        group: String,
    },
    List,
    Delete {
        group: String,
    },
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

#[derive(Debug)]
pub enum GroupReply {
    Join(JoinResponse),
    Sync(SyncResponse),
    Done(Result<(), GroupError>),
    Leave(Result<Vec<Result<(), GroupError>>, GroupError>),
    /// Per entry: Ok or the reason; the group-level error first.
    Commit(Result<Vec<Result<(), CommitError>>, GroupError>),
    /// The offsets, and the partitions whose offsets an open transaction holds (only
    /// with `require_stable`).
    Offsets(Vec<(String, i32, Option<CommittedOffset>)>, Vec<(String, i32)>),
    DeleteOffsets(Result<Vec<Result<(), GroupError>>, GroupError>),
    Describe(Option<GroupDescription>),
    List(Vec<(String, String, &'static str)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    UnknownTopicOrPartition,
    MetadataTooLarge,
    /// The commit could not be persisted.
    Storage,
}

pub struct GroupDriver {
    coordinator: RefCell<GroupCoordinator>,
    /// Offsets committed inside open transactions (TxnOffsetCommit), by producer id: they
    /// take effect with the transaction's COMMIT marker, and vanish with an ABORT.
    pending_txn: RefCell<HashMap<i64, Vec<(String, (String, i32), CommittedOffset)>>>,
    next_req: Cell<ReqId>,
    joins: RefCell<HashMap<ReqId, oneshot::Sender<JoinResponse>>>,
    syncs: RefCell<HashMap<ReqId, oneshot::Sender<SyncResponse>>>,
    epoch: Instant,
}

impl GroupDriver {
    pub fn new(config: &crate::config::BrokerConfig) -> GroupDriver {
        let mut c = GroupCoordinator::new();
        c.initial_rebalance_delay_ms = config.group_initial_rebalance_delay_ms;
        c.session_timeout_min_ms = config.group_min_session_timeout_ms;
        c.session_timeout_max_ms = config.group_max_session_timeout_ms;
        c.group_max_size = config.group_max_size;
        GroupDriver {
            coordinator: RefCell::new(c),
            pending_txn: RefCell::new(HashMap::new()),
            next_req: Cell::new(1),
            joins: RefCell::new(HashMap::new()),
            syncs: RefCell::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn req_id(&self) -> ReqId {
        let id = self.next_req.get();
        self.next_req.set(id + 1);
        id
    }

    pub async fn execute(&self, shard: &Rc<Shard>, op: GroupOp) -> GroupReply {
        let now = self.now();
        match op {
            GroupOp::Join(j) => {
                let req = self.req_id();
                let (tx, rx) = oneshot::channel();
                self.joins.borrow_mut().insert(req, tx);
                let out = self.coordinator.borrow_mut().join(req, j, now);
                self.process(shard, out);
                GroupReply::Join(rx.await.unwrap_or_else(|_| JoinResponse::error(GroupError::RebalanceInProgress, "")))
            }
            GroupOp::Sync(s) => {
                let req = self.req_id();
                let (tx, rx) = oneshot::channel();
                self.syncs.borrow_mut().insert(req, tx);
                let out = self.coordinator.borrow_mut().sync(req, s, now);
                self.process(shard, out);
                GroupReply::Sync(rx.await.unwrap_or_else(|_| SyncResponse::error(GroupError::RebalanceInProgress)))
            }
            GroupOp::Heartbeat { group, member, instance, generation } => GroupReply::Done(
                self.coordinator.borrow_mut().heartbeat(&group, &member, instance.as_deref(), generation, now),
            ),
            GroupOp::Leave { group, members } => {
                let (results, out) = self.coordinator.borrow_mut().leave(&group, &members, now);
                self.process(shard, out);
                GroupReply::Leave(Ok(results))
            }
            GroupOp::Commit { group, member, instance, generation, entries } => {
                GroupReply::Commit(self.commit(shard, &group, &member, instance.as_deref(), generation, entries).await)
            }
            GroupOp::FetchOffsets { group, topics, require_stable } => {
                let c = self.coordinator.borrow();
                let committed = c.committed(&group);
                let out: Vec<(String, i32, Option<CommittedOffset>)> = match topics {
                    None => committed
                        .map(|m| m.iter().map(|((t, p), o)| (t.clone(), *p, Some(o.clone()))).collect())
                        .unwrap_or_default(),
                    Some(topics) => topics
                        .into_iter()
                        .flat_map(|(t, parts)| parts.into_iter().map(move |p| (t.clone(), p)))
                        .map(|(t, p)| {
                            let o = committed.and_then(|m| m.get(&(t.clone(), p))).cloned();
                            (t, p, o)
                        })
                        .collect(),
                };
                let unstable = if require_stable {
                    out.iter().map(|(t, p, _)| (t.clone(), *p)).filter(|tp| self.has_pending(&group, tp)).collect()
                } else {
                    Vec::new()
                };
                GroupReply::Offsets(out, unstable)
            }
            GroupOp::DeleteOffsets { group, partitions } => {
                GroupReply::DeleteOffsets(self.delete_offsets(shard, &group, partitions).await)
            }
            GroupOp::Describe { group } => GroupReply::Describe(self.describe(&group)),
            GroupOp::List => {
                let c = self.coordinator.borrow();
                let list = c
                    .group_ids()
                    .into_iter()
                    .map(|id| match c.group(&id) {
                        Some(g) => (id, g.protocol_type.clone().unwrap_or_else(|| "consumer".into()), g.state.name()),
                        None => (id, "consumer".into(), GroupState::Empty.name()),
                    })
                    .collect();
                GroupReply::List(list)
            }
            GroupOp::Delete { group } => {
                let removed = self.coordinator.borrow_mut().delete_group(&group);
                match removed {
                    Err(e) => GroupReply::Done(Err(e)),
                    Ok(tps) => {
                        let mut recs: Vec<(Vec<u8>, Option<Vec<u8>>)> =
                            tps.iter().map(|(t, p)| (records::offset_key(&group, t, *p), None)).collect();
                        recs.push((records::group_key(&group), None));
                        let ok = self.persist(shard, &group, recs).await;
                        GroupReply::Done(if ok { Ok(()) } else { Err(GroupError::CoordinatorNotAvailable) })
                    }
                }
            }
        }
    }

    fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let c = self.coordinator.borrow();
        match c.group(group_id) {
            Some(g) => {
                let protocol = g.protocol_name.clone().unwrap_or_default();
                Some(GroupDescription {
                    group_id: group_id.to_string(),
                    state: g.state.name(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    protocol: protocol.clone(),
                    members: g
                        .members
                        .iter()
                        .map(|m| {
                            let meta = m
                                .protocols
                                .iter()
                                .find(|(n, _)| *n == protocol)
                                .map(|(_, b)| b.clone())
                                .unwrap_or_default();
                            (
                                m.member_id.clone(),
                                m.instance_id.clone(),
                                m.client_id.clone(),
                                m.client_host.clone(),
                                meta,
                                m.assignment.clone(),
                            )
                        })
                        .collect(),
                })
            }
            None if c.committed(group_id).is_some() => Some(GroupDescription {
                group_id: group_id.to_string(),
                state: GroupState::Empty.name(),
                protocol_type: "consumer".into(),
                protocol: String::new(),
                members: Vec::new(),
            }),
            None => None,
        }
    }

    async fn commit(
        &self,
        shard: &Rc<Shard>,
        group: &str,
        member: &str,
        instance: Option<&str>,
        generation: i32,
        entries: Vec<CommitEntry>,
    ) -> Result<Vec<Result<(), CommitError>>, GroupError> {
        self.coordinator.borrow().validate_commit(group, member, instance, generation)?;
        let (results, written) = self.write_offsets(shard, group, entries, None).await;
        if let Some(accepted) = written {
            self.coordinator.borrow_mut().apply_commit(group, accepted);
        }
        Ok(results)
    }

    async fn delete_offsets(
        &self,
        shard: &Rc<Shard>,
        group: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let results: Vec<Result<(), GroupError>> = {
            let c = self.coordinator.borrow();
            if c.group(group).is_none() && c.committed(group).is_none() {
                return Err(GroupError::GroupIdNotFound);
            }
            partitions
                .iter()
                .map(|(t, _)| if c.subscribed_to(group, t) { Err(GroupError::GroupSubscribedToTopic) } else { Ok(()) })
                .collect()
        };
        let doomed: Vec<(String, i32)> =
            partitions.iter().zip(&results).filter(|(_, r)| r.is_ok()).map(|(tp, _)| tp.clone()).collect();
        let removed = self.coordinator.borrow_mut().remove_offsets(group, &doomed);
        if !removed.is_empty() {
            let recs = removed.iter().map(|(t, p)| (records::offset_key(group, t, *p), None)).collect();
            self.persist(shard, group, recs).await;
        }
        Ok(results)
    }

    /// Delivers released responses and persists changed groups. SyncGroup answers wait
    /// until the group records of the same step are durable, as Kafka answers SyncGroup
    /// only after its append: an assignment a member was told of survives a crash. A
    /// failed append answers them COORDINATOR_NOT_AVAILABLE, and the members rejoin.
    fn process(&self, shard: &Rc<Shard>, outputs: Vec<Output>) {
        let mut persists = Vec::new();
        let mut syncs = Vec::new();
        for o in outputs {
            match o {
                Output::Join { req, resp } => {
                    if let Some(tx) = self.joins.borrow_mut().remove(&req) {
                        let _ = tx.send(resp);
                    }
                }
                Output::Sync { req, resp } => {
                    if let Some(tx) = self.syncs.borrow_mut().remove(&req) {
                        syncs.push((tx, resp));
                    }
                }
                Output::PersistGroup { group_id } => {
                    let value = self.coordinator.borrow().group(&group_id).map(|g| records::group_value(g, now_ms()));
                    persists.push((group_id, value));
                }
            }
        }
        if persists.is_empty() {
            for (tx, resp) in syncs {
                let _ = tx.send(resp);
            }
            return;
        }
        let shard2 = shard.clone();
        glommio::spawn_local_into(
            async move {
                let driver = shard2.groups.clone();
                let mut ok = true;
                for (group_id, value) in persists {
                    let recs = vec![(records::group_key(&group_id), value)];
                    ok &= driver.persist(&shard2, &group_id, recs).await;
                }
                for (tx, resp) in syncs {
                    let _ = tx.send(if ok { resp } else { SyncResponse::error(GroupError::CoordinatorNotAvailable) });
                }
            },
            shard.data_tq,
        )
        .expect("data queue exists")
        .detach();
    }

    /// TxnOffsetCommit: the offsets are written to the group's partition as part of the
    /// producer's transaction (a transactional batch under its id and epoch), and become
    /// the group's committed offsets only when the transaction commits.
    pub async fn txn_commit(
        &self,
        shard: &Rc<Shard>,
        group: &str,
        producer_id: i64,
        producer_epoch: i16,
        entries: Vec<CommitEntry>,
    ) -> Vec<Result<(), CommitError>> {
        let (results, written) = self.write_offsets(shard, group, entries, Some((producer_id, producer_epoch))).await;
        if let Some(accepted) = written {
            let pending = accepted.into_iter().map(|(tp, o)| (group.to_string(), tp, o));
            self.pending_txn.borrow_mut().entry(producer_id).or_default().extend(pending);
        }
        results
    }

    /// Checks each entry (a known partition, metadata within `offset.metadata.max.bytes`)
    /// and writes the accepted ones to the group's partition, as part of the producer's
    /// transaction when `txn` names it. Per entry Ok or why not (Storage for all accepted
    /// ones if the write failed), and the offsets written, if they were.
    async fn write_offsets(
        &self,
        shard: &Rc<Shard>,
        group: &str,
        entries: Vec<CommitEntry>,
        txn: Option<(i64, i16)>,
    ) -> (Vec<Result<(), CommitError>>, Option<Vec<((String, i32), CommittedOffset)>>) {
        let image = shard.image();
        let max_meta = shard.config.offset_metadata_max_bytes;
        let wall = now_ms();
        let mut results = Vec::with_capacity(entries.len());
        let mut accepted = Vec::new();
        for e in entries {
            let known = image.topic(&e.topic).is_some_and(|t| e.partition >= 0 && e.partition < t.partitions);
            if !known {
                results.push(Err(CommitError::UnknownTopicOrPartition));
            } else if e.metadata.len() > max_meta {
                results.push(Err(CommitError::MetadataTooLarge));
            } else {
                results.push(Ok(()));
                let o = CommittedOffset {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata: e.metadata,
                    commit_timestamp_ms: wall,
                };
                accepted.push(((e.topic, e.partition), o));
            }
        }
        if accepted.is_empty() {
            return (results, None);
        }
        let recs = accepted
            .iter()
            .map(|((t, p), o)| (records::offset_key(group, t, *p), Some(records::offset_value(o))))
            .collect();
        if self.persist_as(shard, group, recs, txn).await {
            return (results, Some(accepted));
        }
        for r in results.iter_mut().filter(|r| r.is_ok()) {
            *r = Err(CommitError::Storage);
        }
        (results, None)
    }

    /// A transaction marker was written to a `__consumer_offsets` partition of this shard:
    /// the producer's pending offsets there take effect (COMMIT) or are dropped (ABORT).
    pub fn complete_txn(&self, producer_id: i64, commit: bool) {
        let Some(pending) = self.pending_txn.borrow_mut().remove(&producer_id) else { return };
        if !commit {
            return;
        }
        let mut by_group: HashMap<String, Vec<((String, i32), CommittedOffset)>> = HashMap::new();
        for (group, tp, o) in pending {
            by_group.entry(group).or_default().push((tp, o));
        }
        let mut c = self.coordinator.borrow_mut();
        for (group, offsets) in by_group {
            c.apply_commit(&group, offsets);
        }
    }

    /// Whether `group` has offsets for `tp` inside an open transaction (OffsetFetch with
    /// `require_stable` answers UNSTABLE_OFFSET_COMMIT then, as Kafka does).
    pub fn has_pending(&self, group: &str, tp: &(String, i32)) -> bool {
        self.pending_txn.borrow().values().flatten().any(|(g, t, _)| g == group && t == tp)
    }

    /// Appends records to the group's `__consumer_offsets` partition and waits until they
    /// are durable by the topic's policy. False if the partition is unavailable or failed.
    async fn persist(&self, shard: &Rc<Shard>, group: &str, recs: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> bool {
        self.persist_as(shard, group, recs, None).await
    }

    /// [`Self::persist`], as part of a producer's transaction when `txn` names it.
    async fn persist_as(
        &self,
        shard: &Rc<Shard>,
        group: &str,
        recs: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        txn: Option<(i64, i16)>,
    ) -> bool {
        let partitions =
            shard.image().topic(OFFSETS_TOPIC).map_or(shard.config.offsets_topic_num_partitions, |t| t.partitions);
        let partition = offsets_partition(group, partitions);
        let Some(p) = shard.partition(&TopicPartition::new(OFFSETS_TOPIC, partition)) else {
            tracing::error!(group, partition, "group coordinator has no __consumer_offsets partition here");
            return false;
        };
        // Only the partition's leader coordinates its groups: a replica that lost the
        // leadership (fenced, or the partition moved) must not write into its log.
        if !p.is_leader() {
            tracing::warn!(group, partition, "not the leader of the group's partition any more; not written");
            return false;
        }
        let log = p.log.clone();
        if let Some(ms) = test_persist_delay() {
            glommio::timer::sleep(ms).await;
        }
        let refs: Vec<(Option<&[u8]>, Option<&[u8]>)> =
            recs.iter().map(|(k, v)| (Some(k.as_slice()), v.as_deref())).collect();
        let mut batch = batch::encode_batch(0, &refs, now_ms());
        if let Some((pid, epoch)) = txn {
            crate::protocol::control::make_transactional(&mut batch, pid, epoch);
        }
        match log.append(batch.into()) {
            // As Kafka's `offsets.commit.required.acks=-1`: on every in-sync replica, so a
            // new coordinator elected from the ISR has it; `offsets.commit.timeout.ms`.
            Ok(outcome) => {
                let acked = p.wait_acknowledged(outcome.end_offset, -1, outcome.needs_sync);
                let timer = async {
                    glommio::timer::sleep(OFFSETS_COMMIT_TIMEOUT).await;
                    None
                };
                use futures_lite::FutureExt;
                match async { Some(acked.await) }.or(timer).await {
                    Some(Ok(())) => true,
                    Some(Err(e)) => {
                        tracing::error!(group, error = ?e, "persisting group state failed");
                        false
                    }
                    None => {
                        tracing::warn!(group, "the in-sync replicas did not confirm the group state in time");
                        false
                    }
                }
            }
            Err(e) => {
                tracing::error!(group, error = %e, "persisting group state failed");
                false
            }
        }
    }

    /// For a metrics scrape: how many groups are coordinated here, and at most `limit` of
    /// their committed offsets.
    pub fn stats(&self, limit: usize) -> (usize, Vec<crate::metrics::GroupOffset>) {
        let c = self.coordinator.borrow();
        let ids = c.group_ids();
        let mut offsets = Vec::new();
        'groups: for id in &ids {
            for ((topic, partition), o) in c.committed(id).into_iter().flatten() {
                if offsets.len() >= limit {
                    break 'groups;
                }
                offsets.push(crate::metrics::GroupOffset {
                    group: id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    offset: o.offset,
                });
            }
        }
        (ids.len(), offsets)
    }

    /// Rebuilds offsets and groups from one `__consumer_offsets` partition (at open).
    pub async fn load(&self, log: &PartitionLog) {
        let now = self.now();
        let mut loaded = 0usize;
        super::replay::each_batch(log, "group state", |h, b, records| {
            if crate::protocol::control::is_control(h) {
                // A transaction's end: its offsets written before take effect, or not.
                if let Some(commit) = crate::protocol::control::marker_type(b) {
                    self.complete_txn(h.producer_id.get(), commit);
                }
                return;
            }
            let txn_producer = crate::protocol::control::is_transactional(h).then(|| h.producer_id.get());
            for r in records {
                let Some(key) = r.key.as_deref().and_then(records::decode_key) else { continue };
                if let (Some(pid), records::OffsetsKey::Offset { group, topic, partition }) = (txn_producer, &key) {
                    if let Some(o) = r.value.as_deref().and_then(records::decode_offset_value) {
                        let entry = (group.clone(), (topic.clone(), *partition), o);
                        self.pending_txn.borrow_mut().entry(pid).or_default().push(entry);
                    }
                    continue;
                }
                loaded += 1;
                let mut c = self.coordinator.borrow_mut();
                match key {
                    records::OffsetsKey::Offset { group, topic, partition } => {
                        let value = r.value.as_deref().and_then(records::decode_offset_value);
                        c.restore_offset(&group, (topic, partition), value);
                    }
                    records::OffsetsKey::Group { group } => {
                        match r.value.as_deref().and_then(|v| records::decode_group_value(&group, v)) {
                            Some(g) => c.restore_group(g, now),
                            None => c.forget_group(&group),
                        }
                    }
                }
            }
        })
        .await;
        if loaded > 0 {
            tracing::info!(partition = %log.topic_partition(), records = loaded, "loaded group state");
        }
    }

    /// Session expiry, rebalance deadlines and offset retention, on a timer.
    pub async fn run_timers(self: Rc<Self>, shard: Rc<Shard>) {
        let mut last_retention = Instant::now();
        while !shard.shutting_down() {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            let out = self.coordinator.borrow_mut().tick(self.now());
            self.process(&shard, out);
            if last_retention.elapsed() >= Duration::from_secs(60) {
                last_retention = Instant::now();
                let expired = self.coordinator.borrow().expired_offsets(shard.config.offsets_retention_ms, now_ms());
                for (group, tps) in expired {
                    tracing::info!(group = %group, partitions = tps.len(), "expiring committed offsets (offsets.retention.minutes)");
                    let _ = self.delete_offsets(&shard, &group, tps).await;
                }
            }
        }
    }
}

/// Kafka's `offsets.commit.timeout.ms` default.
const OFFSETS_COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(5_000);

/// Tests only (`SLUICE_TEST_DELAY_GROUP_PERSIST_MS`): holds every group append this long
/// before it starts, so that a test can kill the broker between an answer and an append
/// that the answer must not precede (tests/groups.rs).
fn test_persist_delay() -> Option<std::time::Duration> {
    static DELAY: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        std::env::var("SLUICE_TEST_DELAY_GROUP_PERSIST_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(std::time::Duration::from_millis)
    })
}
