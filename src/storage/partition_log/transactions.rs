//! Transactions in the log: transaction markers written for a coordinator, the last
//! stable offset, and the aborted transactions read_committed fetches are told about
//! (kept in memory for the whole log, saved per segment as `.txnindex` when it is
//! finalized, and rebuilt from markers by recovery).
use std::collections::BTreeMap;
use std::path::Path;

use super::*;

/// Where an event lies in the log.
pub(super) fn event_offset(e: &ProducerEvent) -> Offset {
    match e {
        ProducerEvent::Batch { seq, .. } => seq.base_offset,
        ProducerEvent::Marker { offset, .. } => *offset,
    }
}

/// The saved aborted-transaction entries of `segments`, by marker offset.
pub(super) async fn saved_aborted(dir: &Path, segments: &[Segment]) -> BTreeMap<Offset, AbortedTxn> {
    let mut out = BTreeMap::new();
    for seg in segments {
        let path = dir.join(segment_file_name(seg.base_offset, "txnindex"));
        match read_small_file(&path).await {
            Ok(None) => {}
            Ok(Some(bytes)) => match crate::storage::txn_index::decode(&bytes) {
                Some(entries) => out.extend(entries.into_iter().map(|a| (a.last_offset, a))),
                None => {
                    tracing::error!(file = %path.display(), "damaged aborted-transactions index ignored: read_committed consumers may see those transactions' records")
                }
            },
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "unreadable aborted-transactions index ignored")
            }
        }
    }
    out
}

impl PartitionLog {
    /// Applies producer events of batches already placed.
    pub(super) fn apply_producer_events(&self, events: Vec<ProducerEvent>) {
        let mut st = self.state.borrow_mut();
        for e in events {
            if let Some(a) = st.producers.apply(e) {
                st.aborted.push(a);
            }
        }
    }

    /// Writes a transaction marker (a COMMIT or ABORT control batch) for `producer_id` at
    /// `producer_epoch`, as a transaction coordinator asks (WriteTxnMarkers). A marker under
    /// an epoch older than the producer's is refused (fenced). Does not wait.
    pub fn append_marker(
        &self,
        producer_id: ProducerId,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
    ) -> Result<AppendOutcome, AppendError> {
        let config = self.config.borrow().clone();
        let mut st = self.state.borrow_mut();
        st.writable()?;
        st.producers.check_marker(producer_id, producer_epoch)?;
        // The transaction ends here: a verification made during it no longer holds.
        st.verifications.clear(producer_id);
        let now = now_ms();
        let mut b =
            crate::protocol::control::marker_batch(producer_id.0, producer_epoch, coordinator_epoch, commit, now);
        let base_offset = st.next_offset;
        batch::set_base_offset(&mut b, base_offset.0);
        batch::set_partition_leader_epoch(&mut b, st.leader_epoch.0);
        let size = b.len();
        let placed = Placed {
            base_offset,
            next: base_offset.next(),
            messages: 1,
            now,
            cached: vec![(base_offset, base_offset, 0, size, now)],
        };
        let outcome = self.place(st, &config, BytesMut::from(&b[..]), placed);
        self.apply_producer_events(vec![ProducerEvent::Marker {
            producer_id,
            epoch: producer_epoch,
            offset: base_offset,
            commit,
        }]);
        Ok(outcome)
    }

    /// KIP-890: if the first batch of `records` is transactional and would open a
    /// transaction here (its producer has none open under its epoch), the guard to verify
    /// it under; the coordinator must then confirm the partition is in the transaction
    /// before `append_checked` with that guard. `None`: append as it is.
    pub fn start_txn_verification(&self, records: &[u8]) -> Option<(ProducerId, i16, VerificationGuard)> {
        let h = BatchHeader::read(records)?;
        let (pid, epoch) = (ProducerId(h.producer_id.get()), h.producer_epoch.get());
        if pid.0 < 0 || !crate::protocol::control::is_transactional(h) {
            return None;
        }
        let mut st = self.state.borrow_mut();
        if st.producers.has_ongoing_txn(pid, epoch) {
            return None;
        }
        Some((pid, epoch, st.verifications.start(pid, epoch, now_ms())))
    }

    /// The last stable offset under `high_watermark`: read_committed consumers read up to
    /// the first offset of the oldest open transaction, or the high watermark if lower.
    pub fn last_stable_offset(&self, high_watermark: Offset) -> Offset {
        self.state.borrow().producers.first_unstable().map_or(high_watermark, |o| o.min(high_watermark))
    }

    /// The aborted transactions a read_committed fetch of `from..to` must be told about:
    /// those whose marker is at or after `from` and whose data starts before `to`.
    pub fn aborted_between(&self, from: Offset, to: Offset) -> Vec<AbortedTxn> {
        let st = self.state.borrow();
        let start = st.aborted.partition_point(|a| a.last_offset < from);
        st.aborted[start..].iter().filter(|a| a.first_offset < to).copied().collect()
    }

    /// Open transactions (producer id, first offset), oldest first.
    pub fn open_transactions(&self) -> Vec<(ProducerId, Offset)> {
        self.state.borrow().producers.open_transactions().collect()
    }

    /// The aborted entries whose marker lies in `base..end` (a segment's `.txnindex`).
    pub(super) fn aborted_in(&self, base: Offset, end: Offset) -> Vec<AbortedTxn> {
        let st = self.state.borrow();
        st.aborted.iter().filter(|a| a.last_offset >= base && a.last_offset < end).copied().collect()
    }

    /// Forgets aborted transactions whose marker is gone (before `log_start`).
    pub(super) fn prune_aborted(&self, log_start: Offset) {
        let mut st = self.state.borrow_mut();
        let keep_from = st.aborted.partition_point(|a| a.last_offset < log_start);
        st.aborted.drain(..keep_from);
    }
}
