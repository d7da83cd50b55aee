//! Retention and DeleteRecords for a partition log: whole old segments are deleted and the
//! log start offset moves forward. Runs from the shard's background task queue (DESIGN §3);
//! the state change is synchronous and brief, the file deletions go to the shard's
//! background I/O thread (`background_io`).
//!
//! A log start offset inside a segment (DeleteRecords) is kept in `log-start-offset` in the
//! partition directory, so it survives restarts; one at a segment boundary needs no file.
use std::path::PathBuf;

use super::*;
use crate::storage::background_io;

/// The file that keeps a log start offset set by DeleteRecords.
pub(super) const LOG_START_FILE: &str = "log-start-offset";

impl PartitionLog {
    /// Deletes, oldest first and never the active segment, the sealed segments that are
    /// entirely below the log start offset or, where `cleanup.policy` has `delete`, older
    /// than `retention.ms` (by their largest record timestamp) or not needed to keep
    /// `retention.bytes` (Kafka's rule: a segment goes while the log without it is still at
    /// least that large). Returns how many went.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        let Some(_busy) = MaintenanceGuard::try_new(&self.maintenance_busy) else { return Ok(0) };
        let config = self.config.borrow().clone();
        let removed: Vec<Segment> = {
            let mut st = self.state.borrow_mut();
            if st.failed.is_some() || st.closing {
                return Ok(0);
            }
            let mut remaining: u64 = st.segments.iter().map(|s| s.size).sum();
            let mut n = 0;
            while n + 1 < st.segments.len() {
                let s = &st.segments[n];
                if !(s.sealed && s.finalized) {
                    break;
                }
                let below_start = st.segments[n + 1].base_offset <= st.log_start_offset;
                let expired = config.cleanup_delete
                    && config.retention_ms >= 0
                    && s.max_timestamp >= 0
                    && s.max_timestamp < now_ms.saturating_sub(config.retention_ms);
                let over_size = config.cleanup_delete
                    && config.retention_bytes >= 0
                    && remaining - s.size >= config.retention_bytes as u64;
                if !(below_start || expired || over_size) {
                    break;
                }
                remaining -= s.size;
                n += 1;
            }
            if n == 0 {
                return Ok(0);
            }
            let removed: Vec<Segment> = st.segments.drain(..n).collect();
            st.log_start_offset = st.log_start_offset.max(st.segments[0].base_offset);
            removed
        };
        let start = self.log_start_offset();
        self.prune_aborted(start);
        let files: Vec<PathBuf> = removed
            .iter()
            .flat_map(|s| {
                ["log", "index", "timeindex", "txnindex"]
                    .map(|ext| self.dir.join(segment_file_name(s.base_offset, ext)))
            })
            .collect();
        let bytes: u64 = removed.iter().map(|s| s.size).sum();
        let count = removed.len();
        // Unlinking a large file frees its extents synchronously: not on the shard's thread,
        // and not on glommio's blocking thread, which the writer needs when it rolls. So the
        // shard's descriptors are closed first (a reader still holding one closes it later).
        for file in removed.into_iter().filter_map(|s| s.file) {
            SegmentFile::release(file).await;
        }
        let _ = background_io::run(move || {
            for f in files {
                let _ = std::fs::remove_file(f);
            }
        })
        .await;
        tracing::info!(partition = %self.tp, segments = count, bytes, log_start_offset = start.0, "old segments deleted");
        Ok(count)
    }

    /// DeleteRecords: moves the log start offset to `to` (no further than the high
    /// watermark the partition passes, nor than what is written), never backwards, keeps
    /// it on disk, and deletes the segments now entirely below it. Returns the new log
    /// start offset (the partition's low watermark).
    pub async fn delete_records(&self, to: Offset, high_watermark: Offset) -> Result<Offset, ReadError> {
        let target = to;
        let (start, hwm) = {
            let st = self.state.borrow();
            if let Some(e) = &st.failed {
                return Err(ReadError::Storage(StorageError::Offline(e.to_string())));
            }
            (st.log_start_offset, st.written_offset.min(high_watermark))
        };
        if target.0 < 0 || target > hwm {
            return Err(ReadError::OutOfRange { offset: target, start, end: hwm });
        }
        if target > start {
            write_small_file(&self.dir.join(LOG_START_FILE), target.0.to_string().into_bytes())
                .await
                .map_err(ReadError::Storage)?;
            {
                let mut st = self.state.borrow_mut();
                st.log_start_offset = st.log_start_offset.max(target);
                let start = st.log_start_offset;
                st.epochs.truncate_from_start(start);
            }
            tracing::info!(partition = %self.tp, log_start_offset = target.0, "records deleted");
            // Segments now below the start go here, or at the next retention check if
            // compaction is busy with this log.
            self.enforce_retention(i64::MIN).await.map_err(ReadError::Storage)?;
        }
        Ok(self.log_start_offset())
    }
}

/// The log start offset kept by DeleteRecords, if it is inside `[first_base, next_offset]`.
pub(super) async fn saved_log_start(dir: &std::path::Path, first_base: Offset, next_offset: Offset) -> Option<Offset> {
    let bytes = read_small_file(&dir.join(LOG_START_FILE)).await.ok()??;
    let saved = Offset(std::str::from_utf8(&bytes).ok()?.trim().parse().ok()?);
    (saved > first_base && saved <= next_offset).then_some(saved)
}
