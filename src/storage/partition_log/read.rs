//! Reads: from the fetch cache while the batches are still there, else from the segments;
//! offsets by timestamp (ListOffsets).
use super::*;

impl PartitionLog {
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
