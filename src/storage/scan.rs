//! Walking the batches of a segment file from a position: used by recovery (verify every
//! CRC, find the valid end, rebuild indexes) and by reads of data no longer in the cache.
use bytes::{Bytes, BytesMut};

use super::index::{OffsetIndex, TimeIndex};
use super::io::SegmentFile;
use super::producer_state::{BatchSeq, ProducerEvent};
use super::StorageError;
use crate::limits;
use crate::model::{LeaderEpoch, Offset, ProducerId};
use crate::protocol::batch::{self, BatchHeader};

/// What a recovery scan found in one segment.
pub struct ScanOutcome {
    /// Bytes from the start of the file that hold valid, contiguous batches.
    pub valid_bytes: u64,
    /// Offset after the last valid batch (the segment's base if it has none).
    pub next_offset: Offset,
    pub index: OffsetIndex,
    pub timeindex: TimeIndex,
    pub max_timestamp: i64,
    /// Why the scan stopped before the end of the file, if it did.
    pub stop_reason: Option<String>,
    /// What each idempotent batch and transaction marker means to the producer state, in
    /// order.
    pub producer_events: Vec<ProducerEvent>,
    /// Where each leader epoch seen begins (`partition_leader_epoch` changes), in order.
    pub epoch_starts: Vec<(LeaderEpoch, Offset)>,
}

impl ScanOutcome {
    /// Checks one batch during a scan and records it; false stops the scan.
    fn accept(
        &mut self,
        b: &[u8],
        position: u64,
        base_offset: Offset,
        last_indexed: &mut Option<u64>,
        contiguous: bool,
    ) -> bool {
        if let Err(e) = batch::validate(b, i32::MAX as usize) {
            self.stop_reason = Some(format!("at position {position}: {e}"));
            return false;
        }
        let h = BatchHeader::read(b).expect("validated");
        let (base, last) = (Offset(h.base_offset.get()), Offset(h.last_offset()));
        // The active segment is never compacted, so its offsets are contiguous, and the base
        // offset is the one header field no CRC covers: there a batch that does not follow
        // its predecessor exactly is damage, not a gap. An older segment may have been
        // compacted: its offsets only have to increase.
        if base < self.next_offset || (contiguous && base != self.next_offset) {
            self.stop_reason =
                Some(format!("at position {position}: batch offset {base} does not follow {}", self.next_offset.0 - 1));
            return false;
        }
        if last_indexed.is_none_or(|l| position - l >= limits::INDEX_INTERVAL_BYTES) {
            self.index.push(base.relative_to(base_offset) as u32, position as u32);
            *last_indexed = Some(position);
        }
        if let Some(e) = producer_event(h, b) {
            self.producer_events.push(e);
        }
        let epoch = LeaderEpoch(h.partition_leader_epoch.get());
        if epoch.0 >= 0 && self.epoch_starts.last().is_none_or(|&(e, _)| e != epoch) {
            self.epoch_starts.push((epoch, base));
        }
        let max_ts = h.max_timestamp.get();
        self.timeindex.push(max_ts, last.relative_to(base_offset) as u32);
        self.max_timestamp = self.max_timestamp.max(max_ts);
        self.next_offset = last.next();
        self.valid_bytes = position + b.len() as u64;
        true
    }
}

/// What a whole batch means to the producer state: an idempotent (or transactional) batch,
/// a transaction marker, or nothing.
pub fn producer_event(h: &BatchHeader, batch: &[u8]) -> Option<ProducerEvent> {
    if crate::protocol::control::is_control(h) {
        let commit = crate::protocol::control::marker_type(batch)?;
        return Some(ProducerEvent::Marker {
            producer_id: ProducerId(h.producer_id.get()),
            epoch: h.producer_epoch.get(),
            offset: Offset(h.base_offset.get()),
            commit,
        });
    }
    let (producer_id, epoch, seq) = producer_batch(h)?;
    Some(ProducerEvent::Batch { producer_id, epoch, seq, transactional: crate::protocol::control::is_transactional(h) })
}

/// The idempotent-producer identity of a batch, if it has one.
pub fn producer_batch(h: &BatchHeader) -> Option<(ProducerId, i16, BatchSeq)> {
    let pid = h.producer_id.get();
    if pid < 0 {
        return None;
    }
    let first = h.base_sequence.get();
    let last = ((first as i64 + h.last_offset_delta.get() as i64) % (i32::MAX as i64 + 1)) as i32;
    Some((
        ProducerId(pid),
        h.producer_epoch.get(),
        BatchSeq {
            first_seq: first,
            last_seq: last,
            base_offset: Offset(h.base_offset.get()),
            last_offset: Offset(h.last_offset()),
        },
    ))
}

impl ScanOutcome {
    fn empty(base_offset: Offset) -> ScanOutcome {
        ScanOutcome {
            valid_bytes: 0,
            next_offset: base_offset,
            index: OffsetIndex::default(),
            timeindex: TimeIndex::default(),
            max_timestamp: -1,
            stop_reason: None,
            producer_events: Vec::new(),
            epoch_starts: Vec::new(),
        }
    }
}

/// How `ScanOutcome::accept_run` ended.
enum Run {
    /// The scan stopped (`stop_reason` says why).
    Stopped,
    /// The first `consumed` bytes were whole batches, all accepted; what follows is less
    /// than a batch header, or (`pending`: its size) a batch the bytes hold only part of.
    Consumed { consumed: usize, pending: Option<usize> },
}

impl ScanOutcome {
    /// Accepts the whole batches at the start of `bytes`, which sit at `pos` in a file of
    /// `end` bytes.
    fn accept_run(
        &mut self,
        bytes: &[u8],
        pos: u64,
        end: u64,
        base_offset: Offset,
        last_indexed: &mut Option<u64>,
        contiguous: bool,
    ) -> Run {
        let mut at = 0usize;
        while bytes.len() - at >= batch::LOG_OVERHEAD {
            let here = pos + at as u64;
            let size = match batch::peek_batch_bytes(&bytes[at..]) {
                Ok(s) => s,
                Err(e) => {
                    self.stop_reason = Some(format!("at position {here}: {e}"));
                    return Run::Stopped;
                }
            };
            if here + size as u64 > end {
                self.stop_reason =
                    Some(format!("at position {here}: batch of {size} bytes runs past the end of the file"));
                return Run::Stopped;
            }
            if bytes.len() - at < size {
                return Run::Consumed { consumed: at, pending: Some(size) };
            }
            if !self.accept(&bytes[at..at + size], here, base_offset, last_indexed, contiguous) {
                return Run::Stopped;
            }
            at += size;
        }
        Run::Consumed { consumed: at, pending: None }
    }
}

/// `scan_segment` of segment bytes already in memory (a cleaned segment before it is
/// written): plain CPU work, for a thread other than the shard's.
pub fn scan_bytes(bytes: &[u8], base_offset: Offset, contiguous: bool) -> ScanOutcome {
    let mut out = ScanOutcome::empty(base_offset);
    let run = out.accept_run(bytes, 0, bytes.len() as u64, base_offset, &mut None, contiguous);
    if let Run::Consumed { consumed, .. } = run {
        if consumed < bytes.len() {
            out.stop_reason = Some(format!("at position {consumed}: incomplete batch header"));
        }
    }
    out
}

/// Scans a whole segment, verifying every batch. Stops at the first batch that is torn,
/// corrupt, or whose offset does not follow the previous one (exactly, if `contiguous`:
/// the active segment; older ones may have been compacted).
pub async fn scan_segment(
    file: &SegmentFile,
    base_offset: Offset,
    file_bytes: u64,
    contiguous: bool,
) -> Result<ScanOutcome, StorageError> {
    let mut out = ScanOutcome::empty(base_offset);
    let mut last_indexed = None;
    let mut pos = 0u64;
    while pos < file_bytes {
        let want = ((file_bytes - pos) as usize).min(limits::RECOVERY_CHUNK_BYTES);
        let chunk = file.read(pos, want).await?;
        let at = match out.accept_run(&chunk, pos, file_bytes, base_offset, &mut last_indexed, contiguous) {
            Run::Stopped => return Ok(out),
            Run::Consumed { consumed: 0, pending: Some(size) } => {
                // One batch bigger than the chunk: read exactly it.
                let whole = file.read(pos, size).await?;
                if whole.len() < size {
                    out.stop_reason = Some(format!("at position {pos}: short read"));
                    return Ok(out);
                }
                if !out.accept(&whole, pos, base_offset, &mut last_indexed, contiguous) {
                    return Ok(out);
                }
                size
            }
            Run::Consumed { consumed, .. } => consumed,
        };
        if at == 0 {
            out.stop_reason = Some(format!("at position {pos}: incomplete batch header"));
            return Ok(out);
        }
        pos += at as u64;
    }
    Ok(out)
}

/// Reads whole batches from `position` (a batch boundary at or before the wanted offset)
/// up to `limit_position`, keeping those whose last offset is >= `from_offset` and whose
/// base offset is < `end_offset`, up to `max_bytes` but at least one batch. Every batch
/// served is CRC-checked: a byte that fails its CRC is never served.
pub async fn read_batches(
    file: &SegmentFile,
    mut position: u64,
    limit_position: u64,
    from_offset: Offset,
    end_offset: Offset,
    max_bytes: usize,
) -> Result<Option<Bytes>, StorageError> {
    let mut out = BytesMut::new();
    while position < limit_position {
        let want = ((limit_position - position) as usize)
            .min(max_bytes.max(64 * 1024).saturating_add(64 * 1024))
            .min(limits::READ_CHUNK_BYTES_MAX);
        let chunk = file.read(position, want).await?;
        let mut at = 0usize;
        let mut done = false;
        while at + batch::LOG_OVERHEAD <= chunk.len() {
            let rest = &chunk[at..];
            let here = position + at as u64;
            let corrupt =
                |reason: String| StorageError::Corrupt { path: file.path().to_path_buf(), position: here, reason };
            let size = batch::peek_batch_bytes(rest).map_err(|e| corrupt(e.to_string()))?;
            if rest.len() < size {
                if at == 0 {
                    // A single batch larger than the chunk: fetch it whole next round.
                    let whole = file.read(here, size).await?;
                    if whole.len() < size {
                        return Err(corrupt("batch runs past the end of the segment".into()));
                    }
                    let keep = take_batch(&whole, from_offset, end_offset, &mut out, max_bytes, &corrupt)?;
                    at += size;
                    if !keep {
                        done = true;
                    }
                }
                break;
            }
            let keep = take_batch(&rest[..size], from_offset, end_offset, &mut out, max_bytes, &corrupt)?;
            at += size;
            if !keep {
                done = true;
                break;
            }
        }
        if done || at == 0 {
            break;
        }
        position += at as u64;
    }
    Ok(if out.is_empty() { None } else { Some(out.freeze()) })
}

/// Appends the batch to `out` if it is wanted; returns false when reading should stop.
fn take_batch(
    b: &[u8],
    from_offset: Offset,
    end_offset: Offset,
    out: &mut BytesMut,
    max_bytes: usize,
    corrupt: &dyn Fn(String) -> StorageError,
) -> Result<bool, StorageError> {
    let h = BatchHeader::read(b).ok_or_else(|| corrupt("short header".into()))?;
    if Offset(h.base_offset.get()) >= end_offset {
        return Ok(false);
    }
    if Offset(h.last_offset()) < from_offset {
        return Ok(true);
    }
    if !out.is_empty() && out.len() + b.len() > max_bytes {
        return Ok(false);
    }
    let stored = h.crc.get();
    let computed = batch::compute_crc(b);
    if stored != computed {
        if out.is_empty() {
            return Err(corrupt(format!("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")));
        }
        // Serve what came before; the next fetch starting here gets the error.
        return Ok(false);
    }
    out.extend_from_slice(b);
    Ok(out.len() < max_bytes)
}
