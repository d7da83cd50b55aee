//! The partition log's two background tasks: the writer, which appends pending bytes to
//! the segment files with O_DIRECT (several writes in flight), advances the high watermark,
//! rolls and finalizes segments; and the syncer, which fdatasyncs what was written (group
//! commit) and answers the producers waiting for durability.
use super::*;

/// Which background step ran out of space. Each clears only its own: the writer can go on
/// filling a segment's preallocated space while finalizing the last one cannot write its
/// indexes, and its success says nothing about the space the finalizer needs (it cleared
/// the finalizer's state too, and the full disk accepted appends between two retries).
#[derive(Clone, Copy)]
enum SpaceUser {
    /// Creating and preallocating segment files for pending bytes.
    Writer,
    /// Writing a sealed segment's indexes and producer snapshot.
    Finalizer,
}

/// The last out-of-space error of each `SpaceUser` still failing.
#[derive(Default)]
pub(super) struct DiskFull {
    writer: Option<StorageError>,
    finalizer: Option<StorageError>,
}

impl DiskFull {
    /// Why appends are refused, if they are.
    pub(super) fn error(&self) -> Option<&StorageError> {
        self.writer.as_ref().or(self.finalizer.as_ref())
    }

    fn slot(&mut self, who: SpaceUser) -> &mut Option<StorageError> {
        match who {
            SpaceUser::Writer => &mut self.writer,
            SpaceUser::Finalizer => &mut self.finalizer,
        }
    }
}

/// A segment write submitted and not yet applied to `written`.
struct WriteInFlight {
    seq: u64,
    segment_base: Offset,
    end: u64,
    /// It wrote a partial block: no other write may start until it completes.
    barrier: bool,
    done: bool,
}

/// Segments are named by base offset, not position: retention removes segments from the
/// front while the writer awaits.
enum WriterAction {
    Write(Offset),
    Finalize(Offset),
    Wait,
}

impl PartitionLog {
    /// The writer: submits pending bytes segment by segment, in order; finalizes sealed
    /// segments; advances the high watermark.
    ///
    /// While writes are in flight, new writes cover whole blocks only, so they never touch a
    /// block another write touches and up to `WRITES_IN_FLIGHT_MAX` run at once (one write
    /// at a time left the disk idle between writes and capped the produce rate). The partial
    /// last block is written, zero-padded, only when nothing else is in flight; such a write
    /// is a barrier: the next write rewrites that block and waits for it. Writes may complete
    /// in any order; `written` and the high watermark advance over the completed prefix.
    pub(super) async fn writer_task(self: Rc<Self>) {
        let mut running: FuturesUnordered<LocalBoxFuture<'static, (u64, Result<(), StorageError>)>> =
            FuturesUnordered::new();
        let mut writes: VecDeque<WriteInFlight> = VecDeque::new();
        let mut next_seq = 0u64;
        let mut backoff = Duration::from_millis(50);
        let result: Result<(), StorageError> = async {
            loop {
                let notified = self.work.notified();
                // Ok(true): space was claimed (a write submitted, a segment finalized).
                let step = match self.next_write_action(&writes) {
                    WriterAction::Write(base) => {
                        match self.submit_writes(base, &mut running, &mut writes, &mut next_seq).await {
                            // Less than a block while others are in flight: wait for them.
                            Ok(false) => self.wait_for_writer(&mut running, &mut writes, notified).await.map(|()| true),
                            other => other,
                        }
                    }
                    WriterAction::Finalize(base) => {
                        self.start_finalizing(base);
                        Ok(false)
                    }
                    WriterAction::Wait => {
                        // Closing: done once every segment is finalized (a finalization
                        // still running wakes this task when it ends) or the log failed.
                        let done = {
                            let st = self.state.borrow();
                            st.closing && (st.failed.is_some() || st.segments.iter().all(|s| s.finalized))
                        };
                        if writes.is_empty() && done {
                            return Ok(());
                        }
                        self.wait_for_writer(&mut running, &mut writes, notified).await.map(|()| false)
                    }
                };
                match step {
                    Ok(claimed) => {
                        if claimed && self.space_returned(SpaceUser::Writer) {
                            backoff = Duration::from_millis(50);
                        }
                    }
                    Err(e @ StorageError::NoSpace { .. }) => {
                        // Nothing was submitted: the same step is retried once space returns.
                        if self.state.borrow().closing {
                            return Err(e);
                        }
                        self.disk_full(SpaceUser::Writer, e);
                        let sleep = glommio::timer::sleep(backoff);
                        sleep.or(self.work.notified()).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        .await;
        if let Err(e) = result {
            self.take_offline(e);
            // Let in-flight writes finish before the buffers go away with this task.
            while running.next().await.is_some() {}
        }
        self.task_exited();
    }

    /// Submits the writes for segment `i`'s pending bytes; false when there was less than
    /// a block to write while others are in flight. Space is claimed (file created,
    /// preallocated) before any state changes, so a `NoSpace` failure leaves the step to be
    /// retried as it was.
    async fn submit_writes(
        &self,
        base: Offset,
        running: &mut FuturesUnordered<LocalBoxFuture<'static, (u64, Result<(), StorageError>)>>,
        writes: &mut VecDeque<WriteInFlight>,
        next_seq: &mut u64,
    ) -> Result<bool, StorageError> {
        let file = self.segment_file(base).await?;
        let needed = {
            let st = self.state.borrow();
            let seg = &st.segments[st.segment_index(base)];
            seg.tail_pos + (seg.tail.len() + seg.pending.iter().map(|p| p.len()).sum::<usize>()) as u64
        };
        file.ensure_allocated(needed).await?;
        // From idle, the partial last block goes out too (beside the whole blocks, not after
        // them); while writes are in flight it waits, so that new data can follow without
        // waiting for a barrier.
        let include_partial = writes.is_empty();
        let prepared = {
            let mut st = self.state.borrow_mut();
            let i = st.segment_index(base);
            let seg = &mut st.segments[i];
            file.prepare_writes(seg.tail_pos, &seg.tail, &seg.pending, include_partial).map(
                |(prepared, new_tail, new_tail_pos)| {
                    seg.pending.clear();
                    seg.tail_unsubmitted = !include_partial && !new_tail.is_empty();
                    seg.tail = new_tail;
                    seg.tail_pos = new_tail_pos;
                    (seg.base_offset, prepared)
                },
            )
        };
        let Some((segment_base, prepared)) = prepared else { return Ok(false) };
        for w in prepared {
            let seq = *next_seq;
            *next_seq += 1;
            writes.push_back(WriteInFlight { seq, segment_base, end: w.end, barrier: w.ends_partial, done: false });
            let len = (w.end - w.pos) as usize;
            let file = file.clone();
            running.push(Box::pin(async move { (seq, file.write_prepared(w.buf, w.pos, len).await) }));
        }
        self.writes_in_flight_peak.set(self.writes_in_flight_peak.get().max(running.len()));
        Ok(true)
    }

    /// What the writer can do next, given the writes in flight.
    ///
    /// Finalizing (trim, fdatasync, indexes and producer snapshot written and synced) takes
    /// a few journal commits: milliseconds, more while compaction or another partition
    /// commits too. It runs beside the writer, so the next segment's appends do not wait
    /// for it (they did, and every roll stalled the partition's produce for that long:
    /// BENCHMARKS.md, "What was left of maintenance in produce latency"). One segment at a time, oldest
    /// first, each once all its writes completed, so a segment with saved indexes still
    /// always has its producer snapshot and every older segment is finalized too.
    fn next_write_action(&self, writes: &VecDeque<WriteInFlight>) -> WriterAction {
        let st = self.state.borrow();
        if let Some(seg) = st.segments.iter().find(|s| (s.sealed || st.closing) && !s.finalized) {
            let written = seg.pending.is_empty()
                && !seg.tail_unsubmitted
                && !writes.iter().any(|w| w.segment_base == seg.base_offset);
            if written && !seg.finalizing {
                return WriterAction::Finalize(seg.base_offset);
            }
        }
        let job = st.segments.iter().position(|s| !s.pending.is_empty() || s.tail_unsubmitted);
        let Some(i) = job else { return WriterAction::Wait };
        let seg = &st.segments[i];
        let i = seg.base_offset;
        if seg.pending.is_empty() {
            // Only the partial last block is left: it goes out once the pipeline drains.
            return if writes.is_empty() { WriterAction::Write(i) } else { WriterAction::Wait };
        }
        match writes.back() {
            None => WriterAction::Write(i),
            Some(last)
                if !last.barrier
                    && last.segment_base == seg.base_offset
                    && writes.len() < limits::WRITES_IN_FLIGHT_MAX =>
            {
                WriterAction::Write(i)
            }
            Some(_) => WriterAction::Wait,
        }
    }

    /// Waits for new work or a write completion; applies completions in order.
    async fn wait_for_writer(
        &self,
        running: &mut FuturesUnordered<LocalBoxFuture<'static, (u64, Result<(), StorageError>)>>,
        writes: &mut VecDeque<WriteInFlight>,
        notified: impl std::future::Future<Output = ()>,
    ) -> Result<(), StorageError> {
        if running.is_empty() {
            notified.await;
            return Ok(());
        }
        let completed = async { running.next().await }.or(async {
            notified.await;
            None
        });
        let Some((seq, result)) = completed.await else { return Ok(()) };
        result?;
        if let Some(w) = writes.iter_mut().find(|w| w.seq == seq) {
            w.done = true;
        }
        let mut st = self.state.borrow_mut();
        let mut advanced = false;
        while writes.front().is_some_and(|w| w.done) {
            let w = writes.pop_front().expect("checked");
            if let Some(seg) = st.segments.iter_mut().find(|s| s.base_offset == w.segment_base) {
                seg.written = seg.written.max(w.end);
            }
            let mut hwm = st.written_offset;
            while let Some(f) = st.inflight.front() {
                if f.segment_base == w.segment_base && f.end_position <= w.end {
                    hwm = f.next_offset;
                    st.inflight.pop_front();
                } else {
                    break;
                }
            }
            assert!(hwm >= st.written_offset, "written offset went backwards");
            st.written_offset = hwm;
            advanced = true;
        }
        let want_sync = st.sync_requested > st.synced_offset;
        drop(st);
        if advanced {
            self.progressed.notify_all();
            if want_sync {
                self.sync_work.notify_all();
            }
        }
        Ok(())
    }

    /// The segment's file, created on its first write.
    async fn segment_file(&self, base: Offset) -> Result<Rc<SegmentFile>, StorageError> {
        let file = {
            let st = self.state.borrow();
            st.segments[st.segment_index(base)].file.clone()
        };
        match file {
            Some(f) => Ok(f),
            None => {
                let f = SegmentFile::open_or_create(&self.dir.join(segment_file_name(base, "log"))).await?;
                let mut st = self.state.borrow_mut();
                let i = st.segment_index(base);
                st.segments[i].file = Some(f.clone());
                Ok(f)
            }
        }
    }

    /// `who` is out of space: appends are refused until it succeeds again
    /// (`space_returned`). Logged, and waiters woken to see it, when appends were accepted.
    fn disk_full(&self, who: SpaceUser, e: StorageError) {
        let first = self.state.borrow().disk_full.error().is_none();
        if first {
            tracing::warn!(partition = %self.tp, error = %e, "disk full: appends refused until space returns");
        }
        *self.state.borrow_mut().disk_full.slot(who) = Some(e);
        if first {
            self.progressed.notify_all();
            self.synced.notify_all();
        }
    }

    /// A storage failure other than running out of space: the partition refuses appends
    /// and reads from now on, and waiters are woken to see it.
    fn take_offline(&self, e: StorageError) {
        tracing::error!(partition = %self.tp, error = %e, "storage failure: partition taken offline");
        self.state.borrow_mut().failed = Some(e);
        self.progressed.notify_all();
        self.synced.notify_all();
    }

    /// `who` claimed space again. True if it had been out; appends are accepted once no one
    /// is.
    fn space_returned(&self, who: SpaceUser) -> bool {
        let mut st = self.state.borrow_mut();
        let was_out = st.disk_full.slot(who).take().is_some();
        let accepted = was_out && st.disk_full.error().is_none();
        drop(st);
        if accepted {
            tracing::info!(partition = %self.tp, "disk space available again: appends accepted");
        }
        was_out
    }

    /// Finalizes segment `base` in a task of its own (counted in `tasks_running`, so that
    /// `close` waits for it). Out of space, it retries with backoff and appends are refused
    /// meanwhile, as for a write; any other failure takes the partition offline.
    fn start_finalizing(self: &Rc<Self>, base: Offset) {
        {
            let mut st = self.state.borrow_mut();
            let i = st.segment_index(base);
            st.segments[i].finalizing = true;
            st.tasks_running += 1;
        }
        let log = self.clone();
        let task = async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                match log.finalize_segment(base).await {
                    Ok(()) => {
                        log.space_returned(SpaceUser::Finalizer);
                        break;
                    }
                    Err(e @ StorageError::NoSpace { .. }) if !log.state.borrow().closing => {
                        log.disk_full(SpaceUser::Finalizer, e);
                        glommio::timer::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                    Err(e) => {
                        log.take_offline(e);
                        break;
                    }
                }
            }
            {
                let mut st = log.state.borrow_mut();
                let i = st.segment_index(base);
                st.segments[i].finalizing = false;
            }
            log.work.notify_all();
            log.task_exited();
        };
        // Off the produce queue: a finalization is a trim, an fdatasync and index writes.
        match glommio::spawn_local_into(task, self.maintenance_tq) {
            Ok(t) => {
                t.detach();
            }
            Err(e) => panic!("the maintenance task queue exists: {e}"),
        }
    }

    /// A sealed (or, when closing, the active) segment that is fully written: trim it to
    /// its logical size, sync it, save its indexes.
    async fn finalize_segment(&self, base: Offset) -> Result<(), StorageError> {
        let file = self.segment_file(base).await?;
        let (size, index, timeindex, sealed, next_offset) = {
            let st = self.state.borrow();
            let seg = &st.segments[st.segment_index(base)];
            (seg.size, seg.index.encode(), seg.timeindex.encode(), seg.sealed, seg.next_offset)
        };
        let started = std::time::Instant::now();
        file.truncate(size).await?;
        file.fdatasync().await?;
        // Before the snapshot and the indexes: a segment with either saved always has its
        // aborted transactions saved, so recovery, which does not rescan such segments (nor
        // their markers), never misses them.
        let aborted = self.aborted_in(base, next_offset);
        if !aborted.is_empty() {
            let bytes = crate::storage::txn_index::encode(&aborted);
            write_small_file(&self.dir.join(segment_file_name(base, "txnindex")), bytes).await?;
        }
        let snapshot = {
            let mut st = self.state.borrow_mut();
            let i = st.segment_index(base);
            let taken = st.segments[i].sealed_snapshot.take();
            taken.or_else(|| {
                (sealed && st.producers.producer_count() > 0).then(|| st.producers.encode_up_to(next_offset))
            })
        };
        if let Some(snapshot) = snapshot.filter(|_| sealed) {
            // Before the indexes: a segment with saved indexes always has its snapshot, so
            // recovery, which does not rescan such segments, never misses their producers.
            write_small_file(&self.dir.join(segment_file_name(next_offset, "snapshot")), snapshot).await?;
            prune_producer_snapshots(&self.dir, next_offset);
        }
        write_small_file(&self.dir.join(segment_file_name(base, "index")), index).await?;
        write_small_file(&self.dir.join(segment_file_name(base, "timeindex")), timeindex).await?;
        let mut st = self.state.borrow_mut();
        let i = st.segment_index(base);
        st.segments[i].finalized = true;
        drop(st);
        tracing::debug!(partition = %self.tp, base_offset = base.0, elapsed_us = started.elapsed().as_micros() as u64, "segment finalized");
        Ok(())
    }

    /// The syncer: one fdatasync covers every write completed before it started, so
    /// concurrent producers waiting for durability share it (group commit).
    pub(super) async fn syncer_task(self: Rc<Self>) {
        loop {
            let notified = self.sync_work.notified();
            let flush_ms = self.config.borrow().flush_ms;
            let (target, files) = {
                let st = self.state.borrow();
                if st.failed.is_some() || (st.closing && st.tasks_running <= 1) {
                    break;
                }
                let wanted = st.sync_requested > st.synced_offset;
                if !wanted || st.written_offset <= st.synced_offset {
                    (None, Vec::new())
                } else {
                    let files: Vec<Rc<SegmentFile>> = st
                        .segments
                        .iter()
                        .filter(|s| !s.finalized && s.next_offset > st.synced_offset)
                        .filter_map(|s| s.file.clone())
                        .collect();
                    (Some(st.written_offset), files)
                }
            };
            let Some(target) = target else {
                match flush_ms {
                    Some(ms) => {
                        let timer = async {
                            glommio::timer::sleep(Duration::from_millis(ms.max(1))).await;
                        };
                        notified.or(timer).await;
                        let mut st = self.state.borrow_mut();
                        if st.written_offset > st.synced_offset {
                            st.sync_requested = st.sync_requested.max(st.written_offset);
                        }
                    }
                    None => notified.await,
                }
                continue;
            };
            if let Some(d) = crate::storage::sync_log::delay() {
                glommio::timer::sleep(d).await;
            }
            let mut result = Ok(());
            for f in &files {
                if let Err(e) = f.fdatasync().await {
                    result = Err(e);
                    break;
                }
            }
            let mut st = self.state.borrow_mut();
            match result {
                Ok(()) => {
                    st.synced_offset = st.synced_offset.max(target);
                    st.unsynced_messages = 0;
                    crate::storage::sync_log::note(&self.dir, st.synced_offset);
                }
                Err(e) => {
                    // Fail-stop: never retry an fdatasync and report lost data as durable.
                    tracing::error!(partition = %self.tp, error = %e, "fdatasync failed: partition taken offline");
                    st.failed = Some(e);
                }
            }
            drop(st);
            self.synced.notify_all();
            self.progressed.notify_all();
        }
        self.task_exited();
    }

    fn task_exited(&self) {
        let mut st = self.state.borrow_mut();
        st.tasks_running -= 1;
        drop(st);
        self.sync_work.notify_all();
        self.tasks_done.notify_all();
        self.progressed.notify_all();
        self.synced.notify_all();
    }
}
