//! Appends: a client's batches validated, given offsets and placed (with the idempotent
//! producer's and KIP-890's checks), a follower's batches placed as its leader wrote them,
//! and the placing itself (segment roll, indexes, the writer's queue, the fetch cache).
use super::*;

impl PartitionLog {
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
            if let Some(event) = crate::storage::scan::producer_event(h, b) {
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
            events.extend(crate::storage::scan::producer_event(h, &owned[at..at + size]));
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
    pub(super) fn place(
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
