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

    /// Validates every batch in `records`, assigns offsets, patches headers in place,
    /// queues the bytes for the writer and the cache. Does not wait.
    ///
    /// When the caller holds the only reference to `records` (a one-partition Produce
    /// request: the handler drops everything else that points into the request frame), the
    /// frame's own buffer is patched and kept: no copy. Otherwise the batches are copied once.
    pub fn append(&self, records: Bytes) -> Result<AppendOutcome, AppendError> {
        self.append_checked(records, TxnCheck::Off)
    }

    /// `append` for a client's Produce: with `TxnCheck::Verified`, a transactional batch
    /// that would open a transaction here needs the guard of a verification that still
    /// holds (`start_txn_verification`), else `NotInTransaction`.
    pub fn append_checked(&self, records: Bytes, txn_check: TxnCheck) -> Result<AppendOutcome, AppendError> {
        let config = self.config.borrow().clone();
        let max = config.max_message_bytes as usize;
        // Validate everything first: a request with one bad batch appends nothing.
        let mut count = 0usize;
        let mut at = 0usize;
        let mut producer = None;
        while at < records.len() {
            let info = batch::validate(&records[at..], usize::MAX).map_err(AppendError::Invalid)?;
            let h = BatchHeader::read(&records[at..]).expect("validated");
            if crate::protocol::control::is_control(h) {
                // Only a transaction coordinator writes markers (`append_marker`).
                return Err(AppendError::ControlBatch);
            }
            if h.producer_id.get() >= 0 {
                let transactional = crate::protocol::control::is_transactional(h);
                producer = Some((
                    ProducerId(h.producer_id.get()),
                    h.producer_epoch.get(),
                    h.base_sequence.get(),
                    transactional,
                ));
            }
            if info.bytes > max {
                return Err(AppendError::TooLarge { size: info.bytes, max });
            }
            at += info.bytes;
            count += 1;
        }
        // An idempotent producer sends one batch per partition per request (as Kafka requires).
        if count == 0 || at != records.len() || (producer.is_some() && count > 1) {
            return Err(AppendError::Malformed);
        }
        if config.cleanup_compact {
            keyed_records_only(&records)?;
        }
        let mut st = self.state.borrow_mut();
        st.writable()?;
        if let Some((pid, epoch, seq, transactional)) = producer {
            if let Check::Duplicate { base_offset, last_offset } = st.producers.check(pid, epoch, seq)? {
                // A retry: answer with the original offsets once they are written.
                return Ok(AppendOutcome {
                    base_offset,
                    end_offset: last_offset.next(),
                    log_append_time_ms: -1,
                    log_start_offset: st.log_start_offset,
                    needs_sync: config.flush_messages <= 1,
                });
            }
            if transactional && !st.producers.has_ongoing_txn(pid, epoch) {
                match txn_check {
                    TxnCheck::Off => {}
                    TxnCheck::Verified(guard) if guard.is_some_and(|g| st.verifications.holds(pid, epoch, g)) => {
                        // The transaction opens here with this batch: the guard is spent.
                        st.verifications.clear(pid);
                    }
                    TxnCheck::Verified(_) => return Err(AppendError::NotInTransaction),
                }
            }
        }
        let now = now_ms();
        let log_append_time = config.timestamp_type == TimestampType::LogAppendTime;
        let mut owned = records.try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let base_offset = st.next_offset;
        let leader_epoch = st.leader_epoch.0;
        let mut next = base_offset;
        let mut messages = 0u64;
        let mut at = 0usize;
        let mut cached = Vec::with_capacity(count);
        while at < owned.len() {
            let b = &mut owned[at..];
            let size = batch::peek_batch_bytes(b).expect("validated");
            let b = &mut b[..size];
            batch::set_base_offset(b, next.0);
            batch::set_partition_leader_epoch(b, leader_epoch);
            if log_append_time {
                batch::set_log_append_time(b, now);
            }
            let h = BatchHeader::read(b).expect("validated");
            let (last, records_count, max_ts) = (Offset(h.last_offset()), h.records_count.get(), h.max_timestamp.get());
            // Pair assertion: what we patched still validates.
            debug_assert!(batch::validate(b, usize::MAX).is_ok());
            if let Some(event) = super::scan::producer_event(h, b) {
                st.producers.apply(event);
            }
            cached.push((next, last, at, size, max_ts));
            messages += records_count as u64;
            next = last.next();
            at += size;
        }
        let placed = Placed { base_offset, next, messages, now, cached };
        let mut outcome = self.place(st, &config, owned, placed);
        if log_append_time {
            outcome.log_append_time_ms = now;
        }
        Ok(outcome)
    }

    /// Appends batches a leader already placed (a follower's fetch): their offsets and
    /// leader epochs are kept, so the follower's log is its leader's, byte for byte. The
    /// first batch must start at this log's end and each follow the one before (else
    /// `Malformed`: the fetcher truncates or refetches). A batch under a newer leader epoch
    /// starts that epoch in the epoch cache (saved before the batch is placed), and
    /// idempotent producers' state is rebuilt from the batches, so this replica dedups
    /// retries as its leader did if it comes to lead.
    pub async fn append_replicated(&self, records: Bytes) -> Result<AppendOutcome, AppendError> {
        // Validate everything first, and split the batches into runs of one leader epoch.
        let mut runs: Vec<(LeaderEpoch, usize, usize)> = Vec::new();
        let mut at = 0usize;
        let mut expect = self.state.borrow().next_offset;
        while at < records.len() {
            let info = batch::validate(&records[at..], usize::MAX).map_err(AppendError::Invalid)?;
            let h = BatchHeader::read(&records[at..]).expect("validated");
            if Offset(h.base_offset.get()) != expect {
                return Err(AppendError::Malformed);
            }
            expect = Offset(h.last_offset()).next();
            let epoch = LeaderEpoch(h.partition_leader_epoch.get());
            match runs.last_mut() {
                Some((e, _, end)) if *e == epoch => *end = at + info.bytes,
                _ => runs.push((epoch, at, at + info.bytes)),
            }
            at += info.bytes;
        }
        if runs.is_empty() || at != records.len() {
            return Err(AppendError::Malformed);
        }
        let mut first = None;
        let mut last = None;
        for (epoch, from, to) in runs {
            if self.state.borrow().epochs.latest().is_none_or(|l| l.epoch < epoch) {
                self.assign_epoch(epoch).await?;
            }
            let outcome = self.place_replicated(records.slice(from..to))?;
            first.get_or_insert(outcome.base_offset);
            last = Some(outcome);
        }
        let mut outcome = last.expect("at least one run");
        outcome.base_offset = first.expect("at least one run");
        Ok(outcome)
    }

    /// Places validated, contiguous batches of one leader epoch as they are.
    fn place_replicated(&self, records: Bytes) -> Result<AppendOutcome, AppendError> {
        let config = self.config.borrow().clone();
        let st = self.state.borrow_mut();
        st.writable()?;
        let owned = records.try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let base_offset = st.next_offset;
        let (mut next, mut messages, mut at, mut cached) = (base_offset, 0u64, 0usize, Vec::new());
        // Applied once placed: a segment sealed by this append snapshots the state before it.
        let mut events = Vec::new();
        while at < owned.len() {
            let size = batch::peek_batch_bytes(&owned[at..]).expect("validated");
            let h = BatchHeader::read(&owned[at..at + size]).expect("validated");
            let (last, records_count, max_ts) = (Offset(h.last_offset()), h.records_count.get(), h.max_timestamp.get());
            assert_eq!(Offset(h.base_offset.get()), next, "replicated batches were checked to be contiguous");
            events.extend(super::scan::producer_event(h, &owned[at..at + size]));
            cached.push((next, last, at, size, max_ts));
            messages += records_count as u64;
            next = last.next();
            at += size;
        }
        let placed = Placed { base_offset, next, messages, now: now_ms(), cached };
        let outcome = self.place(st, &config, owned, placed);
        self.apply_producer_events(events);
        Ok(outcome)
    }

    /// Puts batches whose offsets are set into the active segment (rolling it first if it
    /// is full or old), its indexes, the in-flight list for the writer, and the fetch cache.
    fn place(
        &self,
        mut st: std::cell::RefMut<'_, LogState>,
        config: &TopicConfig,
        owned: BytesMut,
        placed: Placed,
    ) -> AppendOutcome {
        let Placed { base_offset, next, messages, now, cached } = placed;
        // Roll before appending if the active segment is full or old.
        let total = owned.len() as u64;
        let roll = {
            let active = st.segments.last().expect("a log has an active segment");
            active.size > 0
                && (active.size + total > config.segment_bytes || now - active.created_ms >= config.segment_ms as i64)
        };
        if roll {
            // Nothing past the sealed segment exists yet: its producer state is exact now.
            let snapshot = (st.producers.producer_count() > 0).then(|| st.producers.encode_up_to(base_offset));
            let sealed = st.segments.last_mut().unwrap();
            sealed.sealed = true;
            sealed.sealed_snapshot = snapshot;
            st.segments.push(Segment::new_empty(base_offset, now));
            tracing::info!(partition = %self.tp, base_offset = base_offset.0, "rolled segment");
        }
        let frozen = owned.freeze();
        let active = st.segments.last_mut().unwrap();
        let seg_base = active.base_offset;
        for &(base, last, pos_in_req, _, max_ts) in &cached {
            let position = active.size + pos_in_req as u64;
            if active.last_indexed.is_none_or(|l| position - l >= limits::INDEX_INTERVAL_BYTES) {
                active.index.push(base.relative_to(seg_base) as u32, position as u32);
                active.last_indexed = Some(position);
            }
            active.timeindex.push(max_ts, last.relative_to(seg_base) as u32);
            active.max_timestamp = active.max_timestamp.max(max_ts);
        }
        active.pending.push(frozen.clone());
        active.size += total;
        active.next_offset = next;
        let end_position = active.size;
        st.next_offset = next;
        st.inflight.push_back(Inflight { segment_base: seg_base, end_position, next_offset: next });
        st.unsynced_messages += messages;
        let needs_sync = st.unsynced_messages >= config.flush_messages;
        let log_start_offset = st.log_start_offset;
        for &(base, last, pos, size, _) in &cached {
            st.cache.push_back(CachedBatch {
                base_offset: base,
                last_offset: last,
                bytes: frozen.slice(pos..pos + size),
            });
        }
        drop(st);
        for &(_, _, _, size, _) in &cached {
            self.cached_bytes.set(self.cached_bytes.get() + size as u64);
            self.cache.admitted(self.me.borrow().clone(), size as u64);
        }
        self.work.notify_all();
        AppendOutcome { base_offset, end_offset: next, log_append_time_ms: -1, log_start_offset, needs_sync }
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

    /// Everything written from `offset`: `read` with no bound of the caller's (tests, and
    /// the group coordinator loading its partition).
    pub async fn read_all(&self, offset: Offset, max_bytes: usize) -> Result<ReadOutcome, ReadError> {
        self.read(offset, Offset(i64::MAX), max_bytes).await
    }

    /// Reads from `offset` up to `up_to` (and never past the written offset), at most
    /// `max_bytes` but at least one whole batch when there is data. An offset outside
    /// `[log start, log end]` is out of range; one at or past the bound reads nothing, as
    /// Kafka serves a consumer between the high watermark and the log end.
    pub async fn read(&self, offset: Offset, up_to: Offset, max_bytes: usize) -> Result<ReadOutcome, ReadError> {
        let (hwm, start, end) = {
            let st = self.state.borrow();
            if let Some(e) = &st.failed {
                return Err(ReadError::Storage(StorageError::Offline(e.to_string())));
            }
            (st.written_offset.min(up_to), st.log_start_offset, st.next_offset)
        };
        let outcome = |records| ReadOutcome { records, up_to: hwm, log_start_offset: start };
        if offset < start || offset > end {
            return Err(ReadError::OutOfRange { offset, start, end });
        }
        if offset >= hwm {
            return Ok(outcome(None));
        }
        if let Some(set) = self.read_cached(offset, hwm, max_bytes) {
            self.cache.record_hit(true);
            return Ok(outcome(Some(set)));
        }
        self.cache.record_hit(false);
        // From disk: find the segment holding `offset` and read from its index position; if
        // it has nothing from there (the rest of it is above the high watermark, or it
        // ends before `offset`), go on with the next one. Segments are found by offset
        // after every read, because retention may remove some meanwhile.
        let mut from = offset;
        loop {
            let (file, position, limit, next_base) = {
                let st = self.state.borrow();
                if from < st.log_start_offset {
                    return Err(ReadError::OutOfRange { offset, start: st.log_start_offset, end: hwm });
                }
                let i = st.segments.partition_point(|s| s.base_offset <= from).saturating_sub(1);
                let Some(seg) = st.segments.get(i) else { return Ok(outcome(None)) };
                if seg.base_offset >= hwm {
                    return Ok(outcome(None));
                }
                let rel = from.max(seg.base_offset).relative_to(seg.base_offset) as u32;
                let next_base = st.segments.get(i + 1).map(|s| s.base_offset);
                (seg.file.clone(), seg.index.lookup(rel) as u64, seg.written, next_base)
            };
            if let Some(file) = file {
                match read_batches(&file, position, limit, offset, hwm, max_bytes).await {
                    Ok(Some(bytes)) => return Ok(outcome(Some(bytes.into()))),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(partition = %self.tp, error = %e, "read failed");
                        return Err(ReadError::Storage(e));
                    }
                }
            }
            match next_base {
                Some(b) if b > from => from = b,
                _ => return Ok(outcome(None)),
            }
        }
    }

    /// The cached batches from `offset`, shared, not copied: the Fetch response is framed
    /// around them.
    fn read_cached(&self, offset: Offset, hwm: Offset, max_bytes: usize) -> Option<RecordSet> {
        if offset < self.cache_floor.get() {
            return None;
        }
        let st = self.state.borrow();
        let cache = &st.cache;
        let first = cache.front()?;
        if first.base_offset > offset {
            return None;
        }
        let i = cache.partition_point(|b| b.last_offset < offset);
        let mut set = RecordSet::new();
        for b in cache.range(i..) {
            if b.base_offset >= hwm {
                break;
            }
            if !set.is_empty() && set.len() + b.bytes.len() > max_bytes {
                break;
            }
            set.push(b.bytes.clone());
            if set.len() >= max_bytes {
                break;
            }
        }
        (!set.is_empty()).then_some(set)
    }

    /// The first offset below `up_to` whose record timestamp is >= `timestamp`, with that
    /// timestamp.
    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
        up_to: Offset,
    ) -> Result<Option<(Offset, i64)>, ReadError> {
        let hwm = self.written_offset().min(up_to);
        let candidates: Vec<(Offset, Option<Rc<SegmentFile>>, u64, u64)> = {
            let st = self.state.borrow();
            st.segments
                .iter()
                .filter(|s| s.max_timestamp >= timestamp && s.base_offset < hwm)
                .map(|s| {
                    let start_rel = s.timeindex.lookup(timestamp).unwrap_or(0);
                    (s.base_offset, s.file.clone(), s.index.lookup(start_rel) as u64, s.written)
                })
                .collect()
        };
        for (base, file, mut position, limit) in candidates {
            let Some(file) = file else { continue };
            let mut from = base;
            loop {
                let Some(chunk) = read_batches(&file, position, limit, from, hwm, 1 << 20).await? else { break };
                for (at, b) in batch::BatchIter::new(&chunk) {
                    let h = BatchHeader::read(b).expect("served batches are whole");
                    if h.max_timestamp.get() >= timestamp {
                        if let Some((offset, ts)) = first_record_at_or_after(b, timestamp) {
                            return Ok(Some((offset, ts)));
                        }
                    }
                    from = Offset(h.last_offset()).next();
                    let _ = at;
                }
                // read_batches starts from an index position; advance by offset from here.
                position = {
                    let st = self.state.borrow();
                    match st.segments.iter().find(|s| s.base_offset == base) {
                        Some(s) => s.index.lookup(from.relative_to(base).max(0) as u32) as u64,
                        None => break,
                    }
                };
                if from >= hwm {
                    break;
                }
            }
        }
        Ok(None)
    }

    /// The first record with the log's largest timestamp (ListOffsets -3): the first at or after it.
    pub async fn max_timestamp_offset(&self, up_to: Offset) -> Result<Option<(Offset, i64)>, ReadError> {
        let max = self.state.borrow().segments.iter().map(|s| s.max_timestamp).max().unwrap_or(-1);
        Ok(if max < 0 { None } else { self.offset_for_timestamp(max, up_to).await? })
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

fn first_record_at_or_after(b: &[u8], timestamp: i64) -> Option<(Offset, i64)> {
    let h = BatchHeader::read(b)?;
    if h.attributes.get() & batch::ATTR_TIMESTAMP_TYPE_LOG_APPEND != 0 {
        return Some((Offset(h.base_offset.get()), h.max_timestamp.get()));
    }
    let mut bytes = Bytes::copy_from_slice(b);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).ok()?;
    set.records.iter().find(|r| r.timestamp >= timestamp).map(|r| (Offset(r.offset), r.timestamp))
}

/// A compacted topic refuses records without a key: the indexes of such records (counted
/// across the request's batches), as Kafka reports them. Uncompressed batches are checked
/// by walking the records' varints (no decoding, no allocation); compressed ones are
/// decompressed and decoded, the price of this check, paid on compacted topics only.
fn keyed_records_only(records: &Bytes) -> Result<(), AppendError> {
    use kafka_protocol::records::RecordBatchDecoder;
    let mut indexes = Vec::new();
    let mut index = 0i32;
    let mut at = 0usize;
    while at < records.len() {
        let n = batch::peek_batch_bytes(&records[at..]).map_err(|_| AppendError::Malformed)?;
        let one = records.slice(at..(at + n).min(records.len()));
        at += n;
        if let Some(count) = batch::null_key_records(&one, index, &mut indexes) {
            index += count;
            continue;
        }
        let set = RecordBatchDecoder::decode(&mut one.clone()).map_err(|_| AppendError::Malformed)?;
        for r in set.records {
            if r.key.is_none() {
                indexes.push(index);
            }
            index += 1;
        }
    }
    if indexes.is_empty() {
        Ok(())
    } else {
        Err(AppendError::KeylessRecords { indexes })
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

mod compaction;
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
