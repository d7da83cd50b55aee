//! Log compaction (`cleanup.policy=compact`): the sealed segments keep only the latest
//! record of each key, as of all sealed segments; the active segment is never touched.
//! Offsets are never changed or reused: a record keeps its offset, a batch whose records
//! all went disappears and leaves a gap. A tombstone (null value) that is the latest for
//! its key goes once its batch is older than `delete.retention.ms`. Records without a key
//! are kept.
//!
//! Runs from the shard's background task queue (DESIGN §3), one segment at a time: reads
//! go through io_uring, the cleaned file is written, synced and renamed over the old one on
//! the shard's background I/O thread (`background_io`), and the swap in memory is a brief synchronous step, so
//! neither produce nor fetch waits for it. Readers holding the old file keep reading it.
//! Decoding and re-encoding records is CPU work (about a microsecond a record): it runs on
//! the background I/O thread too, a segment at a time, so the shard's thread only reads
//! the segments and swaps files. On the shard, even in the low-share task queue and
//! yielding after every batch, it took a large share of a shard that was also serving
//! produce and fetch (BENCHMARKS.md).
//!
//! Like Kafka's cleaner, the key map covers only the dirty segments (sealed since the last
//! pass): a record goes when the map has a later offset for its key. The clean segments'
//! records were each the latest of their key as of the last pass, so a key absent from
//! the map has nothing newer.
use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};

use super::*;
use crate::storage::background_io;
use crate::storage::io::space_err;
use crate::storage::scan::scan_bytes;

/// What one cleaning pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactionStats {
    pub segments_rewritten: usize,
    pub records_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// The batches of a segment file, each as its own `Bytes`, in order.
async fn segment_batches(file: &SegmentFile, size: u64) -> Result<Vec<Bytes>, StorageError> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let want = ((size - pos) as usize).min(limits::READ_CHUNK_BYTES_MAX);
        let chunk = file.read(pos, want).await?;
        let mut at = 0usize;
        while at + batch::LOG_OVERHEAD <= chunk.len() {
            let Ok(n) = batch::peek_batch_bytes(&chunk[at..]) else { break };
            if at + n > chunk.len() {
                break;
            }
            out.push(chunk.slice(at..at + n));
            at += n;
        }
        if at == 0 {
            // A batch larger than the chunk: read it whole.
            let n = batch::peek_batch_bytes(&chunk).map_err(|e| StorageError::Corrupt {
                path: file.path().to_path_buf(),
                position: pos,
                reason: e.to_string(),
            })?;
            out.push(file.read(pos, n).await?);
            at = n;
        }
        pos += at as u64;
    }
    Ok(out)
}

fn decode_error(path: &std::path::Path, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt { path: path.to_path_buf(), position: 0, reason: format!("cannot decode records: {e}") }
}

/// Adds the offset of every keyed record in `batches` to `latest` (later offsets win).
fn map_latest_keys(mut latest: HashMap<Bytes, i64>, batches: &[Bytes]) -> Result<HashMap<Bytes, i64>, String> {
    for b in batches {
        let set = RecordBatchDecoder::decode(&mut b.clone()).map_err(|e| e.to_string())?;
        for r in set.records {
            if let Some(k) = r.key {
                latest.insert(k, r.offset);
            }
        }
    }
    Ok(latest)
}

/// The batches with every record dropped that `latest` has a later offset for, or that is
/// a tombstone in a batch older than `horizon`; batches that keep everything are copied as
/// they are, the others re-encoded. Returns the bytes and how many records went.
fn clean_batches(batches: &[Bytes], latest: &HashMap<Bytes, i64>, horizon: i64) -> Result<(BytesMut, u64), String> {
    let mut out = BytesMut::new();
    let mut removed = 0u64;
    for b in batches {
        let set = RecordBatchDecoder::decode(&mut b.clone()).map_err(|e| e.to_string())?;
        let expired = BatchHeader::read(b).is_some_and(|h| h.max_timestamp.get() < horizon);
        let total = set.records.len();
        let kept: Vec<_> = set
            .records
            .into_iter()
            .filter(|r| match &r.key {
                None => true,
                Some(k) => latest.get(k).is_none_or(|&newest| newest <= r.offset) && !(r.value.is_none() && expired),
            })
            .collect();
        removed += (total - kept.len()) as u64;
        if kept.len() == total {
            out.extend_from_slice(b);
        } else if !kept.is_empty() {
            let options = RecordEncodeOptions { version: set.version, compression: set.compression };
            RecordBatchEncoder::encode(&mut out, kept.iter(), &options).map_err(|e| e.to_string())?;
        }
    }
    Ok((out, removed))
}

impl PartitionLog {
    /// One cleaning pass over the sealed segments, if the topic is compacted and sealed
    /// segments were added since the last pass.
    pub async fn compact(&self, now_ms: i64) -> Result<CompactionStats, StorageError> {
        let config = self.config.borrow().clone();
        let mut stats = CompactionStats::default();
        if !config.cleanup_compact {
            return Ok(stats);
        }
        let Some(_busy) = MaintenanceGuard::try_new(&self.maintenance_busy) else { return Ok(stats) };
        let sealed: Vec<(i64, Rc<SegmentFile>, u64)> = {
            let st = self.state.borrow();
            if st.failed.is_some() || st.closing {
                return Ok(stats);
            }
            st.segments
                .iter()
                .take(st.segments.len().saturating_sub(1))
                .take_while(|s| s.sealed && s.finalized)
                .filter_map(|s| s.file.clone().map(|f| (s.base_offset, f, s.size)))
                .collect()
        };
        let dirty_end = sealed.last().map(|(b, _, _)| *b);
        if dirty_end.is_none() || dirty_end == Some(self.compacted_through.get()) {
            return Ok(stats);
        }
        // Pass 1: the latest offset of every key in the dirty segments. Reads are I/O on the
        // shard; decoding is CPU work, done on the background I/O thread.
        let clean_through = self.compacted_through.get();
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        for (_, file, size) in sealed.iter().filter(|(base, _, _)| *base > clean_through) {
            let batches = segment_batches(file, *size).await?;
            let path = file.path().to_path_buf();
            latest = background_io::run(move || map_latest_keys(latest, &batches).map_err(|e| decode_error(&path, e)))
                .await
                .map_err(|e| decode_error(file.path(), e))??;
        }
        // Pass 2: rewrite each segment that holds something superseded.
        let latest = std::sync::Arc::new(latest);
        let horizon = now_ms.saturating_sub(config.delete_retention_ms);
        for (base, file, size) in &sealed {
            let batches = segment_batches(file, *size).await?;
            let (path, latest) = (file.path().to_path_buf(), latest.clone());
            let (out, removed) = background_io::run(move || {
                clean_batches(&batches, &latest, horizon).map_err(|e| decode_error(&path, e))
            })
            .await
            .map_err(|e| decode_error(file.path(), e))??;
            if removed == 0 {
                continue;
            }
            let after = out.len() as u64;
            if self.swap_in_cleaned(*base, out.freeze()).await? {
                stats.segments_rewritten += 1;
                stats.records_removed += removed;
                stats.bytes_before += size;
                stats.bytes_after += after;
            }
        }
        let dirty_end = dirty_end.expect("checked");
        self.compacted_through.set(dirty_end);
        if stats.segments_rewritten > 0 {
            let next = self.state.borrow().segments.iter().find(|s| s.base_offset > dirty_end).map(|s| s.base_offset);
            if let Some(next) = next {
                self.cache_floor.set(self.cache_floor.get().max(next));
            }
            tracing::info!(
                partition = %self.tp,
                segments = stats.segments_rewritten,
                records_removed = stats.records_removed,
                bytes_before = stats.bytes_before,
                bytes_after = stats.bytes_after,
                "compacted"
            );
        }
        Ok(stats)
    }

    /// Replaces segment `base` with `cleaned`, on the background I/O thread: its indexes
    /// are built from the bytes in memory, the old index files removed (so that a crash
    /// before the new ones are in place leaves a segment that recovery re-scans, never a
    /// stale index over new bytes), the bytes written to `<base>.log.cleaned`, synced and
    /// renamed over the segment (atomic), then the new index files written. The shard only
    /// opens the new file and swaps it in. False if the segment went meanwhile (retention).
    async fn swap_in_cleaned(&self, base: i64, cleaned: Bytes) -> Result<bool, StorageError> {
        let path = self.dir.join(segment_file_name(base, "log"));
        let dir = self.dir.clone();
        let p = path.clone();
        let written = background_io::run(move || write_cleaned_segment(&dir, &p, base, &cleaned))
            .await
            .map_err(|e| StorageError::Io { op: "write cleaned segment", path: path.clone(), reason: e.to_string() })??;
        let (index, timeindex, size) = written;
        let file = SegmentFile::open_or_create(&path).await?;
        let mut st = self.state.borrow_mut();
        let Some(seg) = st.segments.iter_mut().find(|s| s.base_offset == base) else { return Ok(false) };
        seg.file = Some(file);
        seg.size = size;
        seg.written = size;
        seg.index = index;
        seg.timeindex = timeindex;
        // `next_offset` stays: offsets are not reused even if the last batches went.
        Ok(true)
    }
}

/// The blocking part of `swap_in_cleaned`; returns the new indexes and the file's size.
fn write_cleaned_segment(
    dir: &std::path::Path,
    log: &std::path::Path,
    base: i64,
    cleaned: &[u8],
) -> Result<(OffsetIndex, TimeIndex, u64), StorageError> {
    let io = |op: &'static str, path: &std::path::Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| StorageError::Io { op, path, reason: e.to_string() }
    };
    let scan = scan_bytes(cleaned, base, false);
    if scan.valid_bytes != cleaned.len() as u64 {
        return Err(StorageError::Corrupt {
            path: log.to_path_buf(),
            position: scan.valid_bytes,
            reason: format!("cleaned segment does not scan: {}", scan.stop_reason.unwrap_or_default()),
        });
    }
    let index_path = dir.join(segment_file_name(base, "index"));
    let time_path = dir.join(segment_file_name(base, "timeindex"));
    for p in [&index_path, &time_path] {
        match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove index", p)(e)),
            _ => {}
        }
    }
    let sync_dir = || std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync directory", dir));
    sync_dir()?;
    let tmp = dir.join(format!("{}.cleaned", segment_file_name(base, "log")));
    write_synced(&tmp, cleaned)?;
    std::fs::rename(&tmp, log).map_err(io("rename cleaned segment", log))?;
    let encoded: [(&std::path::Path, Vec<u8>); 2] =
        [(&index_path, scan.index.encode()), (&time_path, scan.timeindex.encode())];
    for (p, bytes) in encoded {
        let tmp = p.with_extension(format!("{}.tmp", p.extension().and_then(|e| e.to_str()).unwrap_or("")));
        write_synced(&tmp, &bytes)?;
        std::fs::rename(&tmp, p).map_err(io("rename index", p))?;
    }
    sync_dir()?;
    Ok((scan.index, scan.timeindex, cleaned.len() as u64))
}

/// Creates `path` with `bytes` and syncs it.
fn write_synced(path: &std::path::Path, bytes: &[u8]) -> Result<(), StorageError> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| space_err("create", path, e.raw_os_error(), e))?;
    f.write_all(bytes).map_err(|e| space_err("write", path, e.raw_os_error(), e))?;
    f.sync_all().map_err(|e| StorageError::Io { op: "fsync", path: path.to_path_buf(), reason: e.to_string() })
}
