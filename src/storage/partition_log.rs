//! One partition's log on its owning shard: assigns offsets, validates and patches batches,
//! hands them to a writer task that appends them to the active segment with O_DIRECT
//! (many produce requests share one write: whatever accumulates while a write is in flight
//! goes in the next), fdatasyncs in a syncer task (group commit), rolls segments, serves
//! reads from the shard cache or the segment files, and recovers on open.
//!
//! Offsets below the written offset have been handed to the kernel; reads never go past it
//! nor past the bound the partition gives (its high watermark, for consumers). The log
//! knows nothing of replicas: the partition (`shard::partition`) decides what is committed.
//! It does keep what recovery needs: the leader epoch cache (`leader-epoch-checkpoint`),
//! and stamps each appended batch with the epoch the partition assigned.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::LocalBoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures_lite::FutureExt;

use super::cache::{CachedBatch, ShardCache};
use super::index::{OffsetIndex, TimeIndex};
use super::io::{read_small_file, write_small_file, SegmentFile};
use super::producer_state::{AbortedTxn, Check, ProducerEvent, ProducerState};
use super::scan::{read_batches, scan_segment};
use super::txn_verification::{VerificationGuard, Verifications};
use super::{segment_file_name, AppendError, ReadError, StorageError};
use crate::cluster::epochs::LeaderEpochCache;
use crate::config::{TimestampType, TopicConfig};
use crate::limits;
use crate::model::{LeaderEpoch, Offset, ProducerId, TopicPartition};
use crate::protocol::batch::{self, BatchHeader};
use crate::protocol::record_set::RecordSet;
use crate::sync::LocalNotify;
use recovery::{
    list_offsets_named, list_segments, load_producer_snapshot, recover_epochs, recover_segment,
    remove_unfinished_files, EPOCH_CHECKPOINT_FILE,
};
use writer::DiskFull;

struct Segment {
    base_offset: Offset,
    /// Opened by the writer when the segment gets its first bytes.
    file: Option<Rc<SegmentFile>>,
    /// Logical bytes appended (written + pending).
    size: u64,
    /// Bytes handed to the kernel.
    written: u64,
    /// Bytes of the partial block at `tail_pos`; the next write starts at `tail_pos` and
    /// rewrites them.
    tail: Vec<u8>,
    tail_pos: u64,
    /// `tail` has not been submitted: it was left behind by a whole-block write issued while
    /// others were in flight, and must be written once they complete even if nothing more
    /// is appended.
    tail_unsubmitted: bool,
    /// Appended, not yet submitted to the writer (the patched batches, shared with the cache).
    pending: Vec<Bytes>,
    index: OffsetIndex,
    timeindex: TimeIndex,
    last_indexed: Option<u64>,
    next_offset: Offset,
    max_timestamp: i64,
    created_ms: i64,
    /// No more appends go here; the writer finalizes it once it is fully written.
    sealed: bool,
    /// Trimmed to its logical size, synced, indexes saved.
    finalized: bool,
    /// Its finalization is running (in a task of its own, beside the writer).
    finalizing: bool,
    /// Idempotent batches and markers found by the recovery scan (the active segment's),
    /// to rebuild the producer state from; emptied at open.
    recovered_producers: Vec<ProducerEvent>,
    /// The producer state as of this segment's end, taken when it was sealed (exact: no
    /// later batch existed yet), for its finalization to save.
    sealed_snapshot: Option<Vec<u8>>,
    /// Where each leader epoch begins in what the recovery scan read; emptied at open.
    recovered_epochs: Vec<(LeaderEpoch, Offset)>,
}

impl Segment {
    fn new_empty(base_offset: Offset, now_ms: i64) -> Segment {
        Segment {
            base_offset,
            file: None,
            size: 0,
            written: 0,
            tail: Vec::new(),
            tail_pos: 0,
            tail_unsubmitted: false,
            pending: Vec::new(),
            index: OffsetIndex::default(),
            timeindex: TimeIndex::default(),
            last_indexed: None,
            next_offset: base_offset,
            max_timestamp: -1,
            created_ms: now_ms,
            sealed: false,
            finalized: false,
            finalizing: false,
            recovered_producers: Vec::new(),
            recovered_epochs: Vec::new(),
            sealed_snapshot: None,
        }
    }
}

/// An append accepted and waiting to be written.
struct Inflight {
    segment_base: Offset,
    end_position: u64,
    next_offset: Offset,
}

struct LogState {
    segments: Vec<Segment>,
    log_start_offset: Offset,
    next_offset: Offset,
    /// Everything before it has been handed to the kernel.
    written_offset: Offset,
    synced_offset: Offset,
    sync_requested: Offset,
    unsynced_messages: u64,
    inflight: VecDeque<Inflight>,
    producers: ProducerState,
    /// Pending KIP-890 verifications of transactional producers.
    verifications: Verifications,
    /// Aborted transactions whose marker is still in the log, in marker order (the
    /// segments' `.txnindex` entries, together).
    aborted: Vec<AbortedTxn>,
    /// Where each leader epoch starts; saved as `leader-epoch-checkpoint` on every change
    /// of epoch.
    epochs: LeaderEpochCache,
    /// The epoch stamped on appended batches (-1 until the partition assigns one).
    leader_epoch: LeaderEpoch,
    cache: VecDeque<CachedBatch>,
    failed: Option<StorageError>,
    /// Out of space (ENOSPC): appends are refused and waiters fail until the step that ran
    /// out succeeds; reads go on. Unlike `failed`, this clears by itself.
    disk_full: DiskFull,
    closing: bool,
    tasks_running: u32,
}

impl LogState {
    /// Whether appends are taken now: not after a failed write, while the disk is full,
    /// or once the log is closing.
    #[inline]
    fn writable(&self) -> Result<(), AppendError> {
        if let Some(e) = &self.failed {
            return Err(AppendError::Storage(StorageError::Offline(e.to_string())));
        }
        if let Some(e) = self.disk_full.error() {
            return Err(AppendError::Storage(e.clone()));
        }
        if self.closing {
            return Err(AppendError::Storage(StorageError::Closed));
        }
        Ok(())
    }

    /// The position of the segment based at `base`, which must exist: the writer only works
    /// on segments that are not finalized, and retention only removes finalized ones.
    fn segment_index(&self, base: Offset) -> usize {
        self.segments.iter().position(|s| s.base_offset == base).expect("the writer's segment exists")
    }
}

/// How an append treats a transactional batch that would open a transaction (KIP-890).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnCheck {
    /// Not checked: the broker's own writes, and `transaction.partition.verification.enable`
    /// off.
    Off,
    /// Checked: it needs the guard of a verification that still holds.
    Verified(Option<VerificationGuard>),
}

/// Result of an accepted append.
#[derive(Debug, Clone, Copy)]
pub struct AppendOutcome {
    pub base_offset: Offset,
    /// Offset after the last appended record: wait for the written offset (or the
    /// partition's high watermark) to reach it.
    pub end_offset: Offset,
    /// The append timestamp when the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: Offset,
    /// Whether the flush policy asks this append to be fdatasync'ed before it is acknowledged.
    pub needs_sync: bool,
}

/// Batches ready to be placed: their offsets, message count, and per batch
/// (base, last, position in the request, size, max timestamp).
struct Placed {
    base_offset: Offset,
    next: Offset,
    messages: u64,
    now: i64,
    cached: Vec<(Offset, Offset, usize, usize, i64)>,
}

/// A partition's offsets and size, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStats {
    /// The offset the next appended record gets.
    pub log_end_offset: Offset,
    /// Everything before it is in the kernel.
    pub written_offset: Offset,
    pub log_start_offset: Offset,
    pub segments: usize,
    /// Logical bytes of every segment (written and pending).
    pub size_bytes: u64,
}

pub struct ReadOutcome {
    pub records: Option<RecordSet>,
    /// The bound the read was served to (the smaller of the caller's and the written offset).
    pub up_to: Offset,
    pub log_start_offset: Offset,
}

pub struct PartitionLog {
    tp: TopicPartition,
    dir: PathBuf,
    config: RefCell<TopicConfig>,
    state: RefCell<LogState>,
    /// The writer has work.
    work: LocalNotify,
    /// The syncer has work.
    sync_work: LocalNotify,
    /// The high watermark moved (or the log failed or closed).
    progressed: LocalNotify,
    /// The synced offset moved.
    synced: LocalNotify,
    cache: Rc<ShardCache>,
    me: RefCell<Weak<PartitionLog>>,
    tasks_done: LocalNotify,
    cached_bytes: Cell<u64>,
    /// The most segment writes that were in flight at once (for metrics and tests).
    writes_in_flight_peak: Cell<usize>,
    /// The base of the last sealed segment the cleaner has seen (compaction runs again
    /// only when more were sealed).
    compacted_through: Cell<Offset>,
    /// Offsets below this are not served from the cache: their segments were compacted,
    /// and the cache still holds the batches as they were appended.
    cache_floor: Cell<Offset>,
    /// Retention or compaction is running: the other waits for its next turn (compaction
    /// renames a cleaned file over a segment that retention must not delete meanwhile).
    maintenance_busy: Cell<bool>,
    /// Where sealed segments are finalized (trimmed, synced, indexes saved).
    maintenance_tq: glommio::TaskQueueHandle,
}

/// The task queues a log's tasks run in.
#[derive(Debug, Clone, Copy)]
pub struct LogTaskQueues {
    /// The writer and syncer: they release produce answers.
    pub writes: glommio::TaskQueueHandle,
    /// Background work: finalizing sealed segments.
    pub maintenance: glommio::TaskQueueHandle,
}

impl LogTaskQueues {
    /// Both in one queue (tests).
    pub fn single(tq: glommio::TaskQueueHandle) -> LogTaskQueues {
        LogTaskQueues { writes: tq, maintenance: tq }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering it: every segment without saved
    /// indexes and always the last one is scanned, torn or corrupt tails are truncated,
    /// indexes rebuilt. Then starts the writer and syncer tasks in `queues.writes`: they
    /// release produce answers, so they run where produce runs (DESIGN §3); finalizing
    /// sealed segments runs in `queues.maintenance`.
    pub async fn open(
        tp: TopicPartition,
        dir: PathBuf,
        config: TopicConfig,
        cache: Rc<ShardCache>,
        queues: LogTaskQueues,
    ) -> Result<Rc<PartitionLog>, StorageError> {
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::Io {
            op: "mkdir",
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        remove_unfinished_files(&tp, &dir);
        let mut bases = list_segments(&dir)?;
        bases.sort_unstable();
        let now = now_ms();
        let mut segments = Vec::new();
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            segments.push(recover_segment(&tp, &dir, base, is_last, now).await?);
        }
        // Each segment must start where the previous one ended; a gap means the tail of the
        // previous one was lost, which recovery reports but tolerates (offsets are not reused).
        if segments.is_empty() {
            segments.push(Segment::new_empty(Offset(0), now));
        }
        let next_offset = segments.last().map(|s| s.next_offset).unwrap_or(Offset(0));
        // Producer state: the newest snapshot at or before the active segment, then the
        // idempotent batches recovery scanned from that offset on.
        let active_base = segments.last().map(|s| s.base_offset).unwrap_or(Offset(0));
        let (mut producers, from) = load_producer_snapshot(&dir, active_base).await;
        // Aborted transactions: the saved `.txnindex` of each segment, and those the
        // scanned markers after the snapshot end (both may name one: kept once).
        let mut aborted = transactions::saved_aborted(&dir, &segments).await;
        let mut epoch_starts = Vec::new();
        for seg in &mut segments {
            epoch_starts.append(&mut seg.recovered_epochs);
            for event in std::mem::take(&mut seg.recovered_producers) {
                if transactions::event_offset(&event) >= from {
                    if let Some(a) = producers.apply(event) {
                        aborted.insert(a.last_offset, a);
                    }
                }
            }
        }
        let aborted: Vec<AbortedTxn> = aborted.into_values().collect();
        let log_start_offset = retention::saved_log_start(&dir, segments[0].base_offset, next_offset)
            .await
            .unwrap_or(segments[0].base_offset);
        let epochs = recover_epochs(&tp, &dir, &segments, &epoch_starts, log_start_offset, next_offset).await?;
        let leader_epoch = epochs.latest().map(|e| e.epoch).unwrap_or(LeaderEpoch::NONE);
        let compacted_through = compaction::saved_cleaning_point(&dir, segments.last().map(|s| s.base_offset)).await;
        let log = Rc::new(PartitionLog {
            tp,
            dir,
            config: RefCell::new(config),
            state: RefCell::new(LogState {
                segments,
                log_start_offset,
                next_offset,
                written_offset: next_offset,
                synced_offset: next_offset,
                sync_requested: next_offset,
                unsynced_messages: 0,
                inflight: VecDeque::new(),
                producers,
                verifications: Verifications::default(),
                aborted,
                epochs,
                leader_epoch,
                cache: VecDeque::new(),
                failed: None,
                disk_full: DiskFull::default(),
                closing: false,
                tasks_running: 2,
            }),
            work: LocalNotify::new(),
            sync_work: LocalNotify::new(),
            progressed: LocalNotify::new(),
            synced: LocalNotify::new(),
            cache,
            me: RefCell::new(Weak::new()),
            tasks_done: LocalNotify::new(),
            cached_bytes: Cell::new(0),
            writes_in_flight_peak: Cell::new(0),
            compacted_through: Cell::new(compacted_through),
            cache_floor: Cell::new(Offset(0)),
            maintenance_busy: Cell::new(false),
            maintenance_tq: queues.maintenance,
        });
        *log.me.borrow_mut() = Rc::downgrade(&log);
        glommio::spawn_local_into(log.clone().writer_task(), queues.writes)
            .map_err(|e| StorageError::Io { op: "spawn writer", path: log.dir.clone(), reason: e.to_string() })?
            .detach();
        glommio::spawn_local_into(log.clone().syncer_task(), queues.writes)
            .map_err(|e| StorageError::Io { op: "spawn syncer", path: log.dir.clone(), reason: e.to_string() })?
            .detach();
        Ok(log)
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Everything before it has been handed to the kernel.
    pub fn written_offset(&self) -> Offset {
        self.state.borrow().written_offset
    }
    /// The offset the next appended record gets.
    pub fn log_end_offset(&self) -> Offset {
        self.state.borrow().next_offset
    }
    pub fn leader_epoch_cache(&self) -> LeaderEpochCache {
        self.state.borrow().epochs.clone()
    }
    /// The epoch the batch at `offset` was written under, if the cache covers it.
    pub fn epoch_at(&self, offset: Offset) -> Option<LeaderEpoch> {
        self.state.borrow().epochs.epoch_at(offset)
    }
    /// The newest epoch in the cache.
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.state.borrow().epochs.latest().map(|e| e.epoch)
    }
    /// The largest epoch at or below `epoch` and where it ended (OffsetForLeaderEpoch).
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> (LeaderEpoch, Offset) {
        let st = self.state.borrow();
        st.epochs.end_offset_for(epoch, st.next_offset)
    }

    /// Appends from now on are stamped with `epoch`, which starts at the log end (Kafka's
    /// `maybeAssignEpochStartOffset` when a replica becomes leader). The checkpoint is
    /// saved before this returns, so an epoch once used is never forgotten.
    pub async fn assign_epoch(&self, epoch: LeaderEpoch) -> Result<(), StorageError> {
        let bytes = {
            let mut st = self.state.borrow_mut();
            let end = st.next_offset;
            st.leader_epoch = epoch;
            if !st.epochs.assign(epoch, end) {
                return Ok(());
            }
            st.epochs.encode()
        };
        tracing::info!(partition = %self.tp, epoch = epoch.0, "leader epoch assigned");
        write_small_file(&self.dir.join(EPOCH_CHECKPOINT_FILE), bytes).await
    }
    pub fn log_start_offset(&self) -> Offset {
        self.state.borrow().log_start_offset
    }
    pub fn writes_in_flight_peak(&self) -> usize {
        self.writes_in_flight_peak.get()
    }
    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }
    pub fn stats(&self) -> LogStats {
        let st = self.state.borrow();
        LogStats {
            log_end_offset: st.next_offset,
            written_offset: st.written_offset,
            log_start_offset: st.log_start_offset,
            segments: st.segments.len(),
            size_bytes: st.segments.iter().map(|s| s.size).sum(),
        }
    }
    /// `min.insync.replicas` in force (read per acks=all produce: no copy of the config).
    pub fn min_insync_replicas(&self) -> i32 {
        self.config.borrow().min_insync_replicas
    }
    /// The settings in force (a copy: plain values, no allocation).
    pub fn config(&self) -> TopicConfig {
        self.config.borrow().clone()
    }
    pub fn set_config(&self, config: TopicConfig) {
        *self.config.borrow_mut() = config;
    }

    /// Called by the shard cache to give back this log's oldest cached batch.
    pub(super) fn evict_oldest_cached(&self) {
        if let Some(b) = self.state.borrow_mut().cache.pop_front() {
            self.cached_bytes.set(self.cached_bytes.get().saturating_sub(b.bytes.len() as u64));
        }
    }

    /// Waits until everything before `end_offset` is in the kernel (and, if `sync`, on disk).
    /// (The partition then waits for its high watermark, when acks=all.)
    pub async fn wait_durable(&self, end_offset: Offset, sync: bool) -> Result<(), StorageError> {
        loop {
            let notified = if sync { self.synced.notified() } else { self.progressed.notified() };
            {
                let mut st = self.state.borrow_mut();
                if let Some(e) = &st.failed {
                    return Err(StorageError::Offline(e.to_string()));
                }
                let reached = if sync { st.synced_offset } else { st.written_offset };
                if reached >= end_offset {
                    return Ok(());
                }
                if let Some(e) = st.disk_full.error() {
                    // Not written yet, and the disk is full: the producer hears it now. The
                    // bytes stay queued and are written once space returns (an idempotent
                    // producer's retry is then answered as a duplicate).
                    if st.written_offset < end_offset {
                        return Err(e.clone());
                    }
                }
                if st.closing && st.tasks_running == 0 {
                    return Err(StorageError::Closed);
                }
                if sync && st.sync_requested < end_offset {
                    st.sync_requested = end_offset;
                    drop(st);
                    self.sync_work.notify_all();
                }
            }
            notified.await;
        }
    }

    /// Completes at the next move of the written offset (or failure, or close). Create it
    /// before checking the condition waited for.
    pub fn progressed(&self) -> crate::sync::Notified<'_> {
        self.progressed.notified()
    }

    /// Whether the log failed or is closing: waiting on it is over.
    pub fn stopped(&self) -> bool {
        let st = self.state.borrow();
        st.failed.is_some() || st.closing
    }

    /// Waits until the written offset passes `offset`, the log fails or closes, or `deadline`.
    pub async fn wait_for_data(&self, offset: Offset, deadline: std::time::Instant) {
        loop {
            let notified = self.progressed.notified();
            {
                let st = self.state.borrow();
                if st.written_offset > offset || st.failed.is_some() || st.closing {
                    return;
                }
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return;
            }
            let timer = async {
                glommio::timer::sleep(deadline - now).await;
            };
            notified.or(timer).await;
        }
    }

    /// Writes everything pending, trims and syncs the active segment, saves indexes, and
    /// stops the tasks. Appends after this fail with `Closed`.
    pub async fn close(&self) {
        self.state.borrow_mut().closing = true;
        self.work.notify_all();
        self.sync_work.notify_all();
        loop {
            let n = self.tasks_done.notified();
            if self.state.borrow().tasks_running == 0 {
                break;
            }
            n.await;
        }
        let mut st = self.state.borrow_mut();
        st.cache.clear();
        self.cached_bytes.set(0);
    }
}

/// Keeps the two newest producer snapshots up to `newest`.
fn prune_producer_snapshots(dir: &Path, newest: Offset) {
    let mut offsets = list_offsets_named(dir, ".snapshot").unwrap_or_default();
    offsets.retain(|&o| o < newest);
    offsets.sort_unstable();
    for o in offsets.iter().rev().skip(1) {
        let _ = std::fs::remove_file(dir.join(segment_file_name(*o, "snapshot")));
    }
}

fn index_last_position(index: &OffsetIndex) -> u64 {
    index.lookup(u32::MAX) as u64
}

/// Marks retention or compaction as running on a log; `None` if one already is.
struct MaintenanceGuard<'a>(&'a Cell<bool>);

impl<'a> MaintenanceGuard<'a> {
    fn try_new(flag: &'a Cell<bool>) -> Option<Self> {
        (!flag.replace(true)).then_some(MaintenanceGuard(flag))
    }
}

impl Drop for MaintenanceGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

mod append;
mod compaction;
mod read;
mod recovery;
mod retention;
mod transactions;
mod truncate;
mod writer;

pub use compaction::CompactionStats;

#[cfg(test)]
mod epoch_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod replicated_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;
