//! Log compaction (`cleanup.policy=compact`): the sealed segments keep only the latest
//! record of each key, as of all sealed segments; the active segment is never touched.
//! Offsets are never changed or reused: a record keeps its offset, a batch whose records
//! all went disappears and leaves a gap. A tombstone (null value) that is the latest for
//! its key goes once its batch is older than `delete.retention.ms`. Records without a key
//! are kept.
//!
//! Driven from the shard's background task queue (DESIGN §3), one segment at a time, but
//! all the work runs on the shard's background I/O thread (`background_io`, off the
//! shards' cores where there are free ones): reading the segment whole (O_DIRECT), mapping
//! and dropping records (`cleaner`), writing, syncing and renaming the cleaned file and its
//! indexes, and the last close of the replaced file, which frees its blocks. The shard only
//! opens the new file, swaps it in memory and closes its old descriptor, so neither
//! produce nor fetch waits for the rest. Readers holding the old file keep reading it.
//! Each of these steps, done on the shard, showed in produce→fetch latency
//! (BENCHMARKS.md): the decoding even from the low-share task queue, and the 4 MiB copy
//! of each segment read.
//!
//! Like Kafka's cleaner, the key map covers only the dirty segments (sealed since the last
//! pass): a record goes when the map has a later offset for its key. The clean segments'
//! records were each the latest of their key as of the last pass, so a key absent from
//! the map has nothing newer. A pass reads every sealed segment, so it waits until the
//! dirty ones are `min.cleanable.dirty.ratio` of the sealed bytes.
use bytes::Bytes;

use super::*;
use crate::storage::background_io;
use crate::storage::cleaner::{clean_batches, KeyMap};
use crate::storage::io::{read_small_file, space_err, temp_path};
use crate::storage::scan::scan_bytes;

/// What one cleaning pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactionStats {
    pub segments_rewritten: usize,
    pub records_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Reads a sealed segment whole, on the calling thread (the background I/O thread), with
/// O_DIRECT like the shard's own reads and writes: no page cache to fill and evict. Also
/// returns the open file, which a rewrite keeps open until the shard has closed its own
/// descriptor, so that the last close, which frees the replaced file's blocks, is not the
/// shard's.
fn read_segment(path: &std::path::Path, size: u64) -> Result<(Bytes, std::fs::File), StorageError> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let io = |e: std::io::Error| StorageError::Io { op: "read", path: path.to_path_buf(), reason: e.to_string() };
    let direct = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path);
    let file = match direct {
        // A file system without O_DIRECT (tmpfs): read through the page cache.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => std::fs::File::open(path).map_err(io)?,
        other => other.map_err(io)?,
    };
    let align = limits::DMA_ALIGN as usize;
    let want = (size as usize).div_ceil(align) * align;
    let mut buf = vec![0u8; want + align];
    let start = buf.as_ptr().align_offset(align);
    let mut got = 0usize;
    while got < size as usize {
        let n = file.read_at(&mut buf[start + got..start + want], got as u64).map_err(io)?;
        got += n;
        // O_DIRECT reads whole blocks: a short one is the end of the file.
        if n == 0 || got % align != 0 {
            break;
        }
    }
    if got < size as usize {
        return Err(corrupt(path, got, format!("segment shorter than its {size} bytes")));
    }
    Ok((Bytes::from(buf).slice(start..start + size as usize), file))
}

/// The batches of a sealed segment, each as its own `Bytes` (sharing one buffer), in order,
/// and the segment's file, still open (`read_segment`).
fn segment_batches(path: &std::path::Path, size: u64) -> Result<(Vec<Bytes>, std::fs::File), StorageError> {
    let (bytes, file) = read_segment(path, size)?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let n = match batch::peek_batch_bytes(&bytes[at..]) {
            Ok(n) if at + n <= bytes.len() => n,
            Ok(n) => return Err(corrupt(path, at, format!("batch of {n} bytes runs past the end"))),
            Err(e) => return Err(corrupt(path, at, e.to_string())),
        };
        out.push(bytes.slice(at..at + n));
        at += n;
    }
    Ok((out, file))
}

fn corrupt(path: &std::path::Path, position: usize, reason: String) -> StorageError {
    StorageError::Corrupt { path: path.to_path_buf(), position: position as u64, reason }
}

fn decode_error(path: &std::path::Path, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt { path: path.to_path_buf(), position: 0, reason: format!("cannot decode records: {e}") }
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
        let sealed: Vec<(Offset, u64)> = {
            let st = self.state.borrow();
            if st.failed.is_some() || st.closing {
                return Ok(stats);
            }
            st.segments
                .iter()
                .take(st.segments.len().saturating_sub(1))
                .take_while(|s| s.sealed && s.finalized)
                .filter(|s| s.file.is_some())
                .map(|s| (s.base_offset, s.size))
                .collect()
        };
        let dirty_end = sealed.last().map(|(b, _)| *b);
        if dirty_end.is_none() || dirty_end == Some(self.compacted_through.get()) {
            return Ok(stats);
        }
        // Kafka's dirty ratio: cleaning reads every sealed segment, so it waits until what
        // is new is a large enough share of them.
        // The dirty segments (sealed since the last pass) are the tail of the sealed ones.
        let clean_through = self.compacted_through.get();
        let dirty = &sealed[sealed.partition_point(|(base, _)| *base <= clean_through)..];
        let dirty_bytes: u64 = dirty.iter().map(|(_, size)| size).sum();
        let total: u64 = sealed.iter().map(|(_, size)| size).sum();
        if total > 0 && (dirty_bytes as f64) < config.min_cleanable_dirty_ratio * total as f64 {
            return Ok(stats);
        }
        let failed =
            |e: std::io::Error| StorageError::Io { op: "compact", path: self.dir.clone(), reason: e.to_string() };
        // Pass 1: the latest offset of every key in the dirty segments.
        let mut latest = KeyMap::default();
        for &(base, size) in dirty {
            let path = self.dir.join(segment_file_name(base, "log"));
            latest = background_io::run(move || {
                let (batches, _) = segment_batches(&path, size)?;
                latest.add_batches(&batches).map_err(|e| decode_error(&path, e))?;
                Ok::<_, StorageError>(latest)
            })
            .await
            .map_err(failed)??;
        }
        // Pass 2: rewrite each segment that holds something superseded.
        let latest = std::sync::Arc::new(latest);
        let horizon = now_ms.saturating_sub(config.delete_retention_ms);
        for &(base, size) in &sealed {
            let (dir, latest) = (self.dir.clone(), latest.clone());
            let cleaned = background_io::run(move || -> Result<Option<(Cleaned, std::fs::File)>, StorageError> {
                let path = dir.join(segment_file_name(base, "log"));
                let (batches, replaced) = segment_batches(&path, size)?;
                let (out, removed) = clean_batches(&batches, &latest, horizon).map_err(|e| decode_error(&path, e))?;
                if removed == 0 {
                    return Ok(None);
                }
                let (index, timeindex, size) = write_cleaned_segment(&dir, &path, base, &out)?;
                Ok(Some((Cleaned { index, timeindex, size, removed }, replaced)))
            })
            .await
            .map_err(failed)??;
            let Some((cleaned, replaced)) = cleaned else { continue };
            let (removed, after) = (cleaned.removed, cleaned.size);
            let swapped = self.swap_in_cleaned(base, cleaned).await;
            // The shard's descriptor of the replaced file is closed: the last one goes on
            // the background thread, which frees the file's blocks.
            let dir = self.dir.clone();
            let _ = background_io::run(move || close_replaced(replaced, &dir)).await;
            if swapped? {
                stats.segments_rewritten += 1;
                stats.records_removed += removed;
                stats.bytes_before += size;
                stats.bytes_after += after;
            }
        }
        let dirty_end = dirty_end.expect("checked");
        self.compacted_through.set(dirty_end);
        // Kept across restarts (Kafka's cleaner-offset-checkpoint), so that the first pass
        // after a start does not read the whole log again. Not synced: a lost or older
        // point only makes more of the log dirty, which is safe.
        let point = self.dir.join(CLEANING_POINT_FILE);
        let _ = background_io::run(move || {
            let tmp = temp_path(&point);
            if std::fs::write(&tmp, dirty_end.0.to_string()).and_then(|_| std::fs::rename(&tmp, &point)).is_err() {
                let _ = std::fs::remove_file(&point);
            }
        })
        .await;
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

    /// Swaps in segment `base` as rewritten by `write_cleaned_segment`: opens the new file
    /// and takes its indexes, and closes the old file (readers holding it keep reading it
    /// and close it when done). False if the segment went meanwhile.
    async fn swap_in_cleaned(&self, base: Offset, cleaned: Cleaned) -> Result<bool, StorageError> {
        let file = SegmentFile::open_or_create(&self.dir.join(segment_file_name(base, "log"))).await?;
        let old = {
            let mut st = self.state.borrow_mut();
            let Some(seg) = st.segments.iter_mut().find(|s| s.base_offset == base) else { return Ok(false) };
            seg.size = cleaned.size;
            seg.written = cleaned.size;
            seg.index = cleaned.index;
            seg.timeindex = cleaned.timeindex;
            // `next_offset` stays: offsets are not reused even if the last batches went.
            seg.file.replace(file)
        };
        if let Some(old) = old {
            SegmentFile::release(old).await;
        }
        Ok(true)
    }
}

/// Where a partition keeps its cleaning point: the base offset of the last segment the
/// last pass cleaned (the segments up to it are clean).
const CLEANING_POINT_FILE: &str = "cleaner-offset-checkpoint";

/// The cleaning point kept by the last pass, if it is a segment base the log still can
/// have (`last_base`: the base of its last segment); else -1, all dirty.
pub(super) async fn saved_cleaning_point(dir: &std::path::Path, last_base: Option<Offset>) -> Offset {
    let saved = read_small_file(&dir.join(CLEANING_POINT_FILE)).await.ok().flatten();
    let point = saved.and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse::<i64>().ok()).map(Offset);
    point.filter(|&p| p.0 >= 0 && last_base.is_some_and(|last| p <= last)).unwrap_or(Offset(-1))
}

/// Closes the background thread's descriptor of a segment file replaced by its cleaned
/// copy, once the shard has closed its own: the last close, which frees the blocks.
fn close_replaced(file: std::fs::File, _dir: &std::path::Path) {
    #[cfg(test)]
    REPLACED_FDS_AT_LAST_CLOSE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((_dir.to_path_buf(), open_descriptors_of(&file)));
    drop(file);
}

/// Test builds: for each replaced segment file, its partition directory and how many
/// descriptors of it this process had open when the background thread closed its own (1:
/// the shard's was closed before; more while a reader still holds the old file).
#[cfg(test)]
pub(crate) static REPLACED_FDS_AT_LAST_CLOSE: std::sync::Mutex<Vec<(PathBuf, usize)>> =
    std::sync::Mutex::new(Vec::new());

#[cfg(test)]
fn open_descriptors_of(file: &std::fs::File) -> usize {
    use std::os::unix::fs::MetadataExt;
    let me = file.metadata().expect("fstat");
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .filter_map(|fd| std::fs::metadata(fd.path()).ok())
        .filter(|m| m.dev() == me.dev() && m.ino() == me.ino())
        .count()
}

/// A segment rewritten on disk, to swap in.
struct Cleaned {
    index: OffsetIndex,
    timeindex: TimeIndex,
    size: u64,
    removed: u64,
}

/// Replaces segment `base` on disk with `cleaned` (the background I/O thread's part of a
/// rewrite): its indexes are built from the bytes in memory; the old index files removed
/// (so that a crash before the new ones are in place leaves a segment that recovery
/// re-scans, never a stale index over new bytes); the bytes and the new indexes written to
/// temporary files and synced; renamed into place, the segment first; the directory
/// synced. Returns the new indexes and the file's size.
///
/// Two journal commits a segment, not five: all three files are written back before any
/// is synced, so the first fsync commits one transaction holding their blocks and the old
/// indexes' removal, and the other two find nothing left to commit. Each commit is one the
/// shard's own appends and fdatasyncs may have to wait behind.
fn write_cleaned_segment(
    dir: &std::path::Path,
    log: &std::path::Path,
    base: Offset,
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
    let (index, timeindex) = (scan.index.encode(), scan.timeindex.encode());
    let files = [
        (dir.join(format!("{}.cleaned", segment_file_name(base, "log"))), log, cleaned),
        (temp_path(&index_path), index_path.as_path(), index.as_slice()),
        (temp_path(&time_path), time_path.as_path(), timeindex.as_slice()),
    ];
    let mut written = Vec::with_capacity(files.len());
    for (tmp, _, bytes) in &files {
        written.push(write_back(tmp, bytes)?);
    }
    for ((tmp, _, _), f) in files.iter().zip(&written) {
        f.sync_all().map_err(io("fsync", tmp))?;
    }
    for (tmp, path, _) in &files {
        std::fs::rename(tmp, path).map_err(io("rename", path))?;
    }
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync directory", dir))?;
    Ok((scan.index, scan.timeindex, cleaned.len() as u64))
}

/// Creates `path` with `bytes` and writes them back to the disk (waiting for it), without
/// the journal commit of an fsync.
fn write_back(path: &std::path::Path, bytes: &[u8]) -> Result<std::fs::File, StorageError> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let mut f = std::fs::File::create(path).map_err(|e| space_err("create", path, e.raw_os_error(), e))?;
    f.write_all(bytes).map_err(|e| space_err("write", path, e.raw_os_error(), e))?;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: a plain syscall on a descriptor this function owns.
    if unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, flags) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(space_err("write back", path, e.raw_os_error(), e));
    }
    Ok(f)
}
