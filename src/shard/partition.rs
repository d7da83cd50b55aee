//! A partition on its owning shard: the log (storage) and the replication state
//! (`cluster::partition`, sans-IO) side by side. Produce, Fetch, ListOffsets and
//! OffsetForLeaderEpoch go through here: the high watermark bounds what consumers read and
//! releases acks=all answers, and `current_leader_epoch` is checked against the epoch this
//! replica acts under.
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use futures_lite::FutureExt;
use uuid::Uuid;

use crate::cluster::partition::{EpochCheck, PartitionState};
use crate::cluster::placement::PartitionPlacement;
use crate::model::{LeaderEpoch, NodeId, Offset, TopicPartition};
use crate::storage::{PartitionLog, StorageError};
use crate::sync::LocalNotify;

pub struct Partition {
    pub topic_id: Uuid,
    pub log: Rc<PartitionLog>,
    state: RefCell<PartitionState>,
    /// The high watermark moved for a reason other than this log's own writes (a
    /// follower's progress, once followers exist).
    replica_progress: LocalNotify,
    /// On a follower: the leader's high watermark as the last fetch answer gave it.
    leader_high_watermark: std::cell::Cell<Offset>,
}

impl Partition {
    /// Takes `log` (just opened) under `placement`: as leader, its epoch is assigned
    /// (and saved) before any append.
    pub async fn open(
        topic_id: Uuid,
        log: Rc<PartitionLog>,
        local: NodeId,
        placement: &PartitionPlacement,
    ) -> Result<Partition, StorageError> {
        let state = PartitionState::new(local, placement, log.written_offset());
        if state.is_leader() {
            log.assign_epoch(state.leader_epoch()).await?;
        }
        Ok(Partition {
            topic_id,
            log,
            state: RefCell::new(state),
            replica_progress: LocalNotify::new(),
            leader_high_watermark: std::cell::Cell::new(Offset(0)),
        })
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        self.log.topic_partition()
    }

    /// Takes a new placement entry from a metadata image. True if this replica became the
    /// leader by it (it was not before).
    pub async fn apply_placement(&self, placement: &PartitionPlacement) -> Result<bool, StorageError> {
        let (changed, was_leader, leader, epoch) = {
            let mut st = self.state.borrow_mut();
            let was_leader = st.is_leader();
            let changed = st.apply_placement(placement);
            (changed, was_leader, st.is_leader(), st.leader_epoch())
        };
        if changed {
            self.replica_progress.notify_all();
            if leader {
                self.log.assign_epoch(epoch).await?;
            }
        }
        Ok(leader && !was_leader)
    }

    /// This node no longer hosts the partition (its topic was deleted, or a reassignment
    /// moved it away): it leads nothing, and acks=all waits on it end.
    pub fn abandon(&self) {
        self.state.borrow_mut().abandon();
        self.replica_progress.notify_all();
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.state.borrow().leader_epoch()
    }

    pub fn is_leader(&self) -> bool {
        self.state.borrow().is_leader()
    }

    pub fn check_epoch(&self, current: LeaderEpoch) -> Result<(), EpochCheck> {
        self.state.borrow().check_epoch(current)
    }

    /// The replication state, first taking in how far this replica's own log has been
    /// written: what every reading of the high watermark or the followers' progress needs.
    fn current_state(&self) -> std::cell::RefMut<'_, PartitionState> {
        let mut st = self.state.borrow_mut();
        st.local_progress(self.log.written_offset());
        st
    }

    /// The high watermark.
    pub fn high_watermark(&self) -> Offset {
        self.current_state().high_watermark()
    }

    /// The in-sync replicas, as the controller last wrote them.
    pub fn isr_len(&self) -> usize {
        self.state.borrow().isr().len()
    }

    /// On a follower, how far its log end is behind the leader's high watermark as last
    /// learned (0 on a leader).
    pub fn follower_lag(&self) -> i64 {
        if self.is_leader() {
            return 0;
        }
        (self.leader_high_watermark.get().0 - self.log.log_end_offset().0).max(0)
    }

    /// Replicas of the partition, in sync or not.
    pub fn replica_count(&self) -> usize {
        self.state.borrow().replica_count()
    }

    /// The current leader, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.state.borrow().leader()
    }

    /// A follower fetched from `fetch_offset` (it has everything before it): its progress
    /// moves the high watermark and the ISR rules' clock. Wakes acks=all waits if the high
    /// watermark moved.
    pub fn follower_fetched(&self, node: NodeId, fetch_offset: Offset) {
        let moved = self.current_state().follower_fetch(node, fetch_offset, crate::storage::now_ms());
        if moved {
            self.replica_progress.notify_all();
        }
    }

    /// A follower learned the leader's high watermark from a fetch answer.
    pub fn learn_high_watermark(&self, leader_hw: Offset) {
        self.leader_high_watermark.set(leader_hw);
        self.current_state().learn_high_watermark(leader_hw);
    }

    /// Where the current leader epoch began in this log (where the previous one ended).
    pub fn epoch_start(&self) -> Offset {
        self.log.end_offset_for_epoch(LeaderEpoch(self.leader_epoch().0 - 1)).1
    }

    /// Whether this leader's high watermark has reached its epoch's start: until then it
    /// does not know where the committed log ends, and ListOffsets answers
    /// OFFSET_NOT_AVAILABLE (as Kafka's new leader does).
    pub fn high_watermark_settled(&self) -> bool {
        self.high_watermark() >= self.epoch_start()
    }

    /// The ISR change this leader should ask the controller for now, if any.
    pub fn isr_change(&self, lag_max_ms: i64) -> Option<crate::cluster::partition::IsrChange> {
        let start = self.epoch_start();
        self.current_state().isr_change(crate::storage::now_ms(), lag_max_ms, start)
    }

    /// Waits until the append ending at `end_offset` is acknowledged as `acks` asks: in
    /// this replica's kernel (and on its disk if `sync`), and for acks=all also below the
    /// high watermark (in every in-sync replica), while this replica still leads.
    pub async fn wait_acknowledged(&self, end_offset: Offset, acks: i16, sync: bool) -> Result<(), AckError> {
        self.log.wait_durable(end_offset, sync).await.map_err(AckError::Storage)?;
        if acks != -1 {
            return Ok(());
        }
        loop {
            let (local, replicas) = (self.log.progressed(), self.replica_progress.notified());
            if self.high_watermark() >= end_offset {
                return Ok(());
            }
            if !self.is_leader() {
                return Err(AckError::NotLeader);
            }
            if self.log.stopped() {
                return Err(AckError::Storage(StorageError::Closed));
            }
            local.or(replicas).await;
        }
    }

    /// Waits until there is data past `offset` for the fetcher: below the high watermark
    /// for a consumer, anywhere in the written log for a follower (`replica`). Returns at
    /// that, when the log fails or closes, or at `deadline`.
    pub async fn wait_for_data(&self, offset: Offset, replica: bool, deadline: Instant) {
        loop {
            let (local, replicas) = (self.log.progressed(), self.replica_progress.notified());
            let ready = if replica { self.log.written_offset() > offset } else { self.high_watermark() > offset };
            if ready || self.log.stopped() {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let timer = async {
                glommio::timer::sleep(deadline - now).await;
            };
            local.or(replicas).or(timer).await;
        }
    }
}

/// Why an acknowledgement wait ended without the acknowledgement.
#[derive(Debug)]
pub enum AckError {
    Storage(StorageError),
    /// This replica stopped leading before the high watermark passed the append.
    NotLeader,
}
