//! Truncating a log to an offset: a follower whose log diverges from its leader's cuts it
//! back to the end of their last common epoch (DESIGN §6), never to the high watermark.
//! It works on the files of a closed log, and the caller opens it again: recovery then
//! rebuilds the active segment's indexes, the producer state and the leader epoch cache
//! from what is left, the same code that runs after a crash.
use std::path::Path;

use super::*;

impl PartitionLog {
    /// Keeps only the whole batches that end before `offset` in the closed log in `dir`:
    /// later segments are removed, the segment holding `offset` is cut at the first batch
    /// that reaches it (its saved indexes removed: it is the active segment again), and
    /// producer snapshots past the cut go too. Returns the new log end, which is `offset`
    /// unless `offset` falls inside a batch (then that batch's base).
    pub async fn truncate_closed(tp: &TopicPartition, dir: &Path, offset: Offset) -> Result<Offset, StorageError> {
        let mut bases = list_segments(dir)?;
        bases.sort_unstable();
        let Some(&first) = bases.first() else { return Ok(offset) };
        // The segment holding `offset`: the last based at or below it (the first if none).
        let keep = bases.iter().rposition(|&b| b <= offset).unwrap_or(0);
        for &base in &bases[keep + 1..] {
            for ext in ["log", "index", "timeindex", "snapshot", "txnindex"] {
                remove_if_present(&dir.join(segment_file_name(base, ext)))?;
            }
        }
        let base = bases[keep];
        let path = dir.join(segment_file_name(base, "log"));
        let file = SegmentFile::open_or_create(&path).await?;
        let size = file.size().await?;
        // Walk the batch headers from the nearest saved index entry (if any) to the first
        // batch whose last offset reaches `offset`.
        let index = match read_small_file(&dir.join(segment_file_name(base, "index"))).await? {
            Some(bytes) => OffsetIndex::decode(&bytes, size),
            None => None,
        };
        let mut pos = match (&index, offset > base) {
            (Some(i), true) => i.lookup(offset.relative_to(base).min(u32::MAX as i64) as u32) as u64,
            _ => 0,
        };
        let mut end = base.max(first);
        while pos + batch::HEADER_BYTES as u64 <= size {
            let head = file.read(pos, batch::HEADER_BYTES).await?;
            let Some(h) = BatchHeader::read(&head) else { break };
            if Offset(h.last_offset()) >= offset || h.batch_length.get() <= 0 {
                break;
            }
            end = Offset(h.last_offset()).next();
            pos += h.total_bytes() as u64;
        }
        let cut = pos.min(size);
        if cut < size {
            file.truncate(cut).await?;
            file.fdatasync().await?;
        }
        SegmentFile::release(file).await;
        // The cut segment is the active one again: recovery rescans it, markers included.
        for ext in ["index", "timeindex", "txnindex"] {
            remove_if_present(&dir.join(segment_file_name(base, ext)))?;
        }
        // A producer snapshot holds the state at its offset: none past the new end is true.
        for o in list_offsets_named(dir, ".snapshot")? {
            if o > end {
                remove_if_present(&dir.join(segment_file_name(o, "snapshot")))?;
            }
        }
        tracing::info!(partition = %tp, requested = offset.0, log_end = end.0, "log truncated");
        Ok(end)
    }
}

fn remove_if_present(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::Io { op: "unlink", path: path.to_path_buf(), reason: e.to_string() }),
    }
}
