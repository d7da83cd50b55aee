//! Opening a log: recovering each segment (scan, truncate a torn tail, rebuild indexes),
//! the producer state from its snapshot and the scanned batches, and the leader epoch
//! cache from its checkpoint or the batches; removing what a crash left half-written.
use std::path::Path;

use super::*;

pub(super) fn list_segments(dir: &Path) -> Result<Vec<Offset>, StorageError> {
    list_offsets_named(dir, ".log")
}

/// The offsets of the files in `dir` named `<20-digit offset><suffix>`.
pub(super) fn list_offsets_named(dir: &Path, suffix: &str) -> Result<Vec<Offset>, StorageError> {
    let rd = std::fs::read_dir(dir).map_err(|e| StorageError::Io {
        op: "readdir",
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(suffix) {
            if let Ok(base) = stem.parse::<i64>() {
                out.push(Offset(base));
            }
        }
    }
    Ok(out)
}

pub(super) async fn recover_segment(
    tp: &TopicPartition,
    dir: &Path,
    base: Offset,
    is_last: bool,
    now: i64,
) -> Result<Segment, StorageError> {
    let path = dir.join(segment_file_name(base, "log"));
    let file = SegmentFile::open_or_create(&path).await?;
    let file_bytes = file.size().await?;
    let index_path = dir.join(segment_file_name(base, "index"));
    let time_path = dir.join(segment_file_name(base, "timeindex"));
    let saved = if is_last {
        None
    } else {
        match (read_small_file(&index_path).await?, read_small_file(&time_path).await?) {
            (Some(i), Some(t)) => OffsetIndex::decode(&i, file_bytes).zip(TimeIndex::decode(&t)),
            _ => None,
        }
    };
    let mut seg = Segment::new_empty(base, now);
    if let Some((index, timeindex)) = saved {
        // A sealed segment with its indexes saved was finalized cleanly; its last batch
        // gives its next offset.
        let last_pos = index_last_position(&index);
        let tail = read_batches(&file, last_pos, file_bytes, base, Offset(i64::MAX), usize::MAX).await?;
        let mut next = base;
        if let Some(t) = tail {
            for (_, b) in batch::BatchIter::new(&t) {
                next = Offset(BatchHeader::read(b).expect("whole").last_offset()).next();
            }
        }
        seg.max_timestamp = timeindex.max_timestamp().unwrap_or(-1);
        seg.index = index;
        seg.timeindex = timeindex;
        seg.next_offset = next;
        seg.size = file_bytes;
        seg.written = file_bytes;
        seg.sealed = true;
        seg.finalized = true;
        seg.file = Some(file);
        return Ok(seg);
    }
    let scan = scan_segment(&file, base, file_bytes, is_last).await?;
    if scan.valid_bytes < file_bytes {
        let zero_padding = scan.stop_reason.as_deref().is_some_and(|r| r.contains("length 0 "));
        if zero_padding {
            tracing::info!(partition = %tp, file = %path.display(), bytes = file_bytes - scan.valid_bytes, "recovery trimmed zero padding");
        } else {
            tracing::warn!(
                partition = %tp,
                file = %path.display(),
                position = scan.valid_bytes,
                dropped_bytes = file_bytes - scan.valid_bytes,
                reason = scan.stop_reason.as_deref().unwrap_or("trailing bytes"),
                "recovery truncated the segment"
            );
        }
        file.truncate(scan.valid_bytes).await?;
        file.fdatasync().await?;
    }
    seg.recovered_producers = scan.producer_events;
    seg.recovered_epochs = scan.epoch_starts;
    seg.index = scan.index;
    seg.timeindex = scan.timeindex;
    seg.max_timestamp = scan.max_timestamp;
    seg.next_offset = scan.next_offset;
    seg.size = scan.valid_bytes;
    seg.written = scan.valid_bytes;
    seg.last_indexed = None;
    seg.tail_pos = scan.valid_bytes / limits::DMA_ALIGN * limits::DMA_ALIGN;
    let keep = (scan.valid_bytes - seg.tail_pos) as usize;
    if keep > 0 {
        let t = file.read(seg.tail_pos, keep).await?;
        assert_eq!(t.len(), keep, "tail block read short");
        seg.tail = t.to_vec();
    }
    seg.file = Some(file);
    if !is_last {
        seg.sealed = true;
    }
    Ok(seg)
}

/// The newest readable producer snapshot at or before `at`, and its offset (0 and an empty
/// state when there is none: recovery then uses every batch it scanned).
pub(super) async fn load_producer_snapshot(dir: &Path, at: Offset) -> (ProducerState, Offset) {
    let mut offsets = list_offsets_named(dir, ".snapshot").unwrap_or_default();
    offsets.sort_unstable();
    for &o in offsets.iter().rev().filter(|&&o| o <= at) {
        let path = dir.join(segment_file_name(o, "snapshot"));
        match read_small_file(&path).await {
            Ok(Some(bytes)) => match ProducerState::decode(&bytes) {
                Some(state) => return (state, o),
                None => tracing::warn!(file = %path.display(), "damaged producer snapshot ignored"),
            },
            _ => tracing::warn!(file = %path.display(), "unreadable producer snapshot ignored"),
        }
    }
    (ProducerState::default(), Offset(0))
}

/// Removes what a crash or a full disk left of files written whole and renamed into place
/// (`*.tmp`: indexes, snapshots, the cleaner checkpoint; `*.cleaned`: a compacted segment).
/// Nothing reads them, nothing is writing them while the log is closed, and each would
/// otherwise stay for good.
pub(super) fn remove_unfinished_files(tp: &TopicPartition, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".tmp") || name.ends_with(".cleaned") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(partition = %tp, file = %name, "removed an unfinished file"),
                Err(e) => tracing::warn!(partition = %tp, file = %name, error = %e, "cannot remove an unfinished file"),
            }
        }
    }
}

/// Kafka's name for the leader epoch cache's file.
pub(super) const EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// The leader epoch cache at open: the checkpoint, with the epochs the recovery scan saw
/// added (the active segment is always scanned) and those past the recovered end dropped.
/// Without a readable checkpoint it is rebuilt from every segment's batches. Saved again
/// when recovery changed it.
pub(super) async fn recover_epochs(
    tp: &TopicPartition,
    dir: &Path,
    segments: &[Segment],
    scanned: &[(LeaderEpoch, Offset)],
    log_start: Offset,
    log_end: Offset,
) -> Result<LeaderEpochCache, StorageError> {
    let path = dir.join(EPOCH_CHECKPOINT_FILE);
    let saved = match read_small_file(&path).await? {
        Some(bytes) => {
            let c = LeaderEpochCache::decode(&bytes);
            if c.is_none() {
                tracing::warn!(partition = %tp, file = %path.display(), "damaged leader epoch checkpoint; rebuilding it");
            }
            c
        }
        None => None,
    };
    let rebuilt = saved.is_none();
    let mut cache = saved.unwrap_or_default();
    let mut changed = false;
    if rebuilt {
        // Every batch header of every segment: the finalized ones were not scanned.
        for seg in segments.iter().filter(|s| s.finalized) {
            let Some(file) = &seg.file else { continue };
            let scan = scan_segment(file, seg.base_offset, seg.written, false).await?;
            for &(e, o) in &scan.epoch_starts {
                cache.assign(e, o);
            }
        }
        changed = true;
    }
    // Past the recovered end first: the scan's first batch of an epoch in a segment is
    // not where the epoch began, and must not displace what the checkpoint knows.
    changed |= cache.truncate_from_end(log_end);
    for &(e, o) in scanned {
        changed |= cache.assign(e, o);
    }
    changed |= cache.truncate_from_start(log_start);
    if changed && !(rebuilt && cache.entries().is_empty()) {
        tracing::info!(partition = %tp, entries = cache.entries().len(), rebuilt, "leader epoch cache recovered");
        write_small_file(&path, cache.encode()).await?;
    }
    Ok(cache)
}
