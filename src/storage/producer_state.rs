//! Idempotent-producer state of one partition (KIP-98): per producer id, its epoch and the
//! sequence ranges and offsets of its last five batches. A retried batch is recognized and
//! answered with its original offsets instead of being written again; a gap in sequence
//! numbers is OUT_OF_ORDER_SEQUENCE_NUMBER; an epoch older than the latest is fenced.
//!
//! Transactions (KIP-98): a producer's transactional batches from the first on form its
//! open transaction, until a marker (COMMIT or ABORT control batch) ends it. The first
//! offset of the oldest open transaction bounds what read_committed consumers may see
//! (the last stable offset); an aborted transaction is remembered as an `AbortedTxn` for
//! the aborted-transactions index.
//!
//! Kept across restarts by a snapshot written when a segment is finalized (the state as of
//! the segment's end, `<end offset>.snapshot`), plus the batches of the segments recovery
//! scans after it.
use crate::model::{Offset, ProducerId};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Batches remembered per producer: as many as a producer may have in flight
/// (`max.in.flight.requests.per.connection` ≤ 5 with idempotence).
pub const BATCHES_REMEMBERED: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSeq {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: Offset,
    pub last_offset: Offset,
}

#[derive(Debug, Default)]
struct Producer {
    epoch: i16,
    batches: VecDeque<BatchSeq>,
    /// The first offset of its open transaction.
    txn_first: Option<Offset>,
}

/// What one batch means to the producer state (recovery replays these in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerEvent {
    Batch {
        producer_id: ProducerId,
        epoch: i16,
        seq: BatchSeq,
        transactional: bool,
    },
    /// A transaction marker at `offset`.
    Marker {
        producer_id: ProducerId,
        epoch: i16,
        offset: Offset,
        commit: bool,
    },
}

/// An aborted transaction, as Kafka's `.txnindex` holds it: its data lies in
/// `first_offset..last_offset` (the marker), and read_committed consumers skip that
/// producer's batches there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: ProducerId,
    pub first_offset: Offset,
    pub last_offset: Offset,
    /// The last stable offset once it was aborted.
    pub last_stable_offset: Offset,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Not an idempotent batch, or the next one in sequence: append it.
    Append,
    /// A retry of a batch already appended at these offsets: answer with them.
    Duplicate { base_offset: Offset, last_offset: Offset },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error("producer {producer_id}: epoch {epoch} is older than the current {current}")]
    FencedEpoch { producer_id: ProducerId, epoch: i16, current: i16 },
    #[error("producer {producer_id}: sequence {got} where {expected} was expected")]
    OutOfOrder { producer_id: ProducerId, got: i32, expected: i32 },
}

#[derive(Debug, Default)]
pub struct ProducerState {
    producers: HashMap<ProducerId, Producer>,
    /// Open transactions by first offset.
    open_txns: BTreeMap<Offset, ProducerId>,
}

/// The sequence after `seq` (sequences wrap from i32::MAX to 0).
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerState {
    /// Checks a batch of `records` records from `producer_id` (−1: not idempotent).
    pub fn check(&self, producer_id: ProducerId, epoch: i16, first_seq: i32) -> Result<Check, SequenceError> {
        if producer_id.0 < 0 {
            return Ok(Check::Append);
        }
        let Some(p) = self.producers.get(&producer_id) else { return Ok(Check::Append) };
        if epoch < p.epoch {
            return Err(SequenceError::FencedEpoch { producer_id, epoch, current: p.epoch });
        }
        if first_seq < 0 {
            // No sequence: a coordinator's own transactional write (TxnOffsetCommit).
            return Ok(Check::Append);
        }
        if epoch > p.epoch {
            // A bumped epoch restarts the sequence.
            return if first_seq == 0 {
                Ok(Check::Append)
            } else {
                Err(SequenceError::OutOfOrder { producer_id, got: first_seq, expected: 0 })
            };
        }
        if let Some(b) = p.batches.iter().find(|b| b.first_seq == first_seq) {
            return Ok(Check::Duplicate { base_offset: b.base_offset, last_offset: b.last_offset });
        }
        let expected = p.batches.back().map(|b| next_seq(b.last_seq)).unwrap_or(0);
        if first_seq != expected {
            return Err(SequenceError::OutOfOrder { producer_id, got: first_seq, expected });
        }
        Ok(Check::Append)
    }

    /// Records an appended batch (after `check` said Append).
    pub fn record(&mut self, producer_id: ProducerId, epoch: i16, batch: BatchSeq) {
        self.apply(ProducerEvent::Batch { producer_id, epoch, seq: batch, transactional: false });
    }

    /// Applies an appended batch or marker; an ABORT marker that ends an open transaction
    /// gives back the aborted transaction.
    pub fn apply(&mut self, event: ProducerEvent) -> Option<AbortedTxn> {
        match event {
            ProducerEvent::Batch { producer_id, epoch, seq, transactional } => {
                if producer_id.0 < 0 {
                    return None;
                }
                let p = self.producers.entry(producer_id).or_default();
                if epoch != p.epoch {
                    p.epoch = epoch;
                    p.batches.clear();
                }
                if seq.first_seq >= 0 {
                    if p.batches.len() == BATCHES_REMEMBERED {
                        p.batches.pop_front();
                    }
                    p.batches.push_back(seq);
                }
                if transactional && p.txn_first.is_none() {
                    p.txn_first = Some(seq.base_offset);
                    self.open_txns.insert(seq.base_offset, producer_id);
                }
                None
            }
            ProducerEvent::Marker { producer_id, epoch, offset, commit } => {
                let p = self.producers.entry(producer_id).or_default();
                // A coordinator that aborts a timed-out transaction bumps the epoch to fence
                // its producer: from here on, only the new epoch writes.
                if epoch > p.epoch {
                    p.epoch = epoch;
                    p.batches.clear();
                }
                let first = p.txn_first.take()?;
                self.open_txns.remove(&first);
                if commit {
                    return None;
                }
                let last_stable_offset = self.first_unstable().unwrap_or(offset.next());
                Some(AbortedTxn { producer_id, first_offset: first, last_offset: offset, last_stable_offset })
            }
        }
    }

    /// Whether a marker from the coordinator for `producer_id` at `epoch` may be written:
    /// not under an epoch older than the producer's (Kafka: INVALID_PRODUCER_EPOCH).
    pub fn check_marker(&self, producer_id: ProducerId, epoch: i16) -> Result<(), SequenceError> {
        match self.producers.get(&producer_id) {
            Some(p) if epoch < p.epoch => Err(SequenceError::FencedEpoch { producer_id, epoch, current: p.epoch }),
            _ => Ok(()),
        }
    }

    /// Whether `producer_id` has a transaction open here under `epoch`.
    pub fn has_ongoing_txn(&self, producer_id: ProducerId, epoch: i16) -> bool {
        self.producers.get(&producer_id).is_some_and(|p| p.epoch == epoch && p.txn_first.is_some())
    }

    /// The first offset of the oldest open transaction: read_committed consumers read up
    /// to it (or to the high watermark, if lower).
    pub fn first_unstable(&self) -> Option<Offset> {
        self.open_txns.keys().next().copied()
    }

    /// The open transactions (producer id, first offset), oldest first.
    pub fn open_transactions(&self) -> impl Iterator<Item = (ProducerId, Offset)> + '_ {
        self.open_txns.iter().map(|(o, p)| (*p, *o))
    }

    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// The state as it was when the log ended at `end`: batches from `end` on are left out
    /// (the snapshot is written while later appends may already be recorded).
    pub fn encode_up_to(&self, end: Offset) -> Vec<u8> {
        let mut out = vec![SNAPSHOT_VERSION];
        let mut ids: Vec<&ProducerId> = self.producers.keys().collect();
        ids.sort();
        let mut entries = Vec::new();
        for id in ids {
            let p = &self.producers[id];
            let kept: Vec<&BatchSeq> = p.batches.iter().filter(|b| b.last_offset < end).collect();
            let txn_first = p.txn_first.filter(|o| *o < end);
            if kept.is_empty() && txn_first.is_none() {
                continue;
            }
            entries.extend_from_slice(&id.0.to_be_bytes());
            entries.extend_from_slice(&p.epoch.to_be_bytes());
            entries.extend_from_slice(&txn_first.map_or(-1, |o| o.0).to_be_bytes());
            entries.push(kept.len() as u8);
            for b in kept {
                entries.extend_from_slice(&b.first_seq.to_be_bytes());
                entries.extend_from_slice(&b.last_seq.to_be_bytes());
                entries.extend_from_slice(&b.base_offset.0.to_be_bytes());
                entries.extend_from_slice(&b.last_offset.0.to_be_bytes());
            }
        }
        out.extend_from_slice(&crc32c::crc32c(&entries).to_be_bytes());
        out.extend_from_slice(&entries);
        out
    }

    /// Reads a snapshot; `None` if it is damaged (recovery then scans instead).
    pub fn decode(bytes: &[u8]) -> Option<ProducerState> {
        let (&version, rest) = bytes.split_first()?;
        // Version 1 had no transactions.
        if !(version == 1 || version == SNAPSHOT_VERSION) || rest.len() < 4 {
            return None;
        }
        let (crc, mut rest) = rest.split_at(4);
        if u32::from_be_bytes(crc.try_into().ok()?) != crc32c::crc32c(rest) {
            return None;
        }
        fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
            let (head, tail) = rest.split_at_checked(N)?;
            *rest = tail;
            head.try_into().ok()
        }
        let mut state = ProducerState::default();
        while !rest.is_empty() {
            let id = ProducerId(i64::from_be_bytes(take(&mut rest)?));
            let epoch = i16::from_be_bytes(take(&mut rest)?);
            let txn_first = if version >= 2 { i64::from_be_bytes(take(&mut rest)?) } else { -1 };
            let n = take::<1>(&mut rest)?[0] as usize;
            if (n == 0 && txn_first < 0) || n > BATCHES_REMEMBERED {
                return None;
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                batches.push_back(BatchSeq {
                    first_seq: i32::from_be_bytes(take(&mut rest)?),
                    last_seq: i32::from_be_bytes(take(&mut rest)?),
                    base_offset: Offset(i64::from_be_bytes(take(&mut rest)?)),
                    last_offset: Offset(i64::from_be_bytes(take(&mut rest)?)),
                });
            }
            let txn_first = (txn_first >= 0).then_some(Offset(txn_first));
            if let Some(first) = txn_first {
                state.open_txns.insert(first, id);
            }
            state.producers.insert(id, Producer { epoch, batches, txn_first });
        }
        Some(state)
    }
}

const SNAPSHOT_VERSION: u8 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    fn b(first: i32, last: i32, base: i64) -> BatchSeq {
        let base = Offset(base);
        BatchSeq { first_seq: first, last_seq: last, base_offset: base, last_offset: base + (last - first) as i64 }
    }

    #[test]
    fn in_order_duplicates_gaps_and_epochs() {
        let mut s = ProducerState::default();
        assert_eq!(s.check(ProducerId(7), 0, 0), Ok(Check::Append));
        s.record(ProducerId(7), 0, b(0, 9, 100));
        assert_eq!(s.check(ProducerId(7), 0, 10), Ok(Check::Append));
        s.record(ProducerId(7), 0, b(10, 19, 110));
        // A retry of either batch gets its original offsets.
        assert_eq!(
            s.check(ProducerId(7), 0, 0),
            Ok(Check::Duplicate { base_offset: Offset(100), last_offset: Offset(109) })
        );
        assert_eq!(
            s.check(ProducerId(7), 0, 10),
            Ok(Check::Duplicate { base_offset: Offset(110), last_offset: Offset(119) })
        );
        // A gap.
        assert_eq!(
            s.check(ProducerId(7), 0, 25),
            Err(SequenceError::OutOfOrder { producer_id: ProducerId(7), got: 25, expected: 20 })
        );
        // An older epoch is fenced; a newer one must start at 0 and resets the history.
        s.record(ProducerId(7), 2, b(0, 0, 120));
        assert!(matches!(s.check(ProducerId(7), 1, 1), Err(SequenceError::FencedEpoch { current: 2, .. })));
        assert!(matches!(s.check(ProducerId(7), 3, 5), Err(SequenceError::OutOfOrder { expected: 0, .. })));
        assert_eq!(s.check(ProducerId(7), 3, 0), Ok(Check::Append));
        // Non-idempotent batches and unknown producers are appended.
        assert_eq!(s.check(ProducerId(-1), -1, -1), Ok(Check::Append));
        assert_eq!(s.check(ProducerId(8), 0, 42), Ok(Check::Append));
    }

    #[test]
    fn snapshots_keep_what_was_before_their_offset_and_refuse_damage() {
        let mut s = ProducerState::default();
        s.record(ProducerId(1), 0, b(0, 9, 100));
        s.record(ProducerId(1), 0, b(10, 19, 110));
        s.record(ProducerId(2), 3, b(0, 4, 120));
        s.record(ProducerId(3), 0, b(0, 0, 200)); // after the snapshot point: left out
        let bytes = s.encode_up_to(Offset(125));
        let back = ProducerState::decode(&bytes).expect("a valid snapshot");
        assert_eq!(back.producer_count(), 2);
        assert_eq!(
            back.check(ProducerId(1), 0, 10),
            Ok(Check::Duplicate { base_offset: Offset(110), last_offset: Offset(119) })
        );
        assert_eq!(back.check(ProducerId(1), 0, 20), Ok(Check::Append));
        assert!(matches!(back.check(ProducerId(2), 2, 5), Err(SequenceError::FencedEpoch { .. })));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(ProducerState::decode(&bad).is_none(), "damage at byte {i} not detected");
        }
        assert!(ProducerState::decode(&bytes[..bytes.len() - 3]).is_none());
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let mut s = ProducerState::default();
        for i in 0..7 {
            s.record(ProducerId(1), 0, b(i * 2, i * 2 + 1, i as i64 * 2));
        }
        assert!(matches!(s.check(ProducerId(1), 0, 12), Ok(Check::Duplicate { .. })));
        assert!(matches!(s.check(ProducerId(1), 0, 4), Ok(Check::Duplicate { .. })));
        assert!(s.check(ProducerId(1), 0, 2).is_err(), "batch 2 was forgotten: no longer recognized");
        let mut s = ProducerState::default();
        s.record(ProducerId(2), 0, b(i32::MAX - 1, i32::MAX, 0));
        assert_eq!(s.check(ProducerId(2), 0, 0), Ok(Check::Append));
    }

    fn txn_batch(pid: i64, epoch: i16, first: i32, last: i32, base: i64) -> ProducerEvent {
        ProducerEvent::Batch { producer_id: ProducerId(pid), epoch, seq: b(first, last, base), transactional: true }
    }

    fn marker(pid: i64, epoch: i16, offset: i64, commit: bool) -> ProducerEvent {
        ProducerEvent::Marker { producer_id: ProducerId(pid), epoch, offset: Offset(offset), commit }
    }

    #[test]
    fn transactions_hold_the_stable_offset_until_their_marker() {
        let mut s = ProducerState::default();
        assert_eq!(s.apply(txn_batch(1, 0, 0, 4, 10)), None);
        assert_eq!(s.apply(txn_batch(2, 0, 0, 0, 15)), None);
        assert_eq!(s.apply(txn_batch(1, 0, 5, 9, 16)), None);
        assert_eq!(s.first_unstable(), Some(Offset(10)), "producer 1's transaction began first");
        assert_eq!(s.apply(marker(1, 0, 21, true)), None, "a commit aborts nothing");
        assert_eq!(s.first_unstable(), Some(Offset(15)));
        let aborted = s.apply(marker(2, 0, 22, false)).expect("an abort");
        assert_eq!(
            aborted,
            AbortedTxn {
                producer_id: ProducerId(2),
                first_offset: Offset(15),
                last_offset: Offset(22),
                last_stable_offset: Offset(23)
            }
        );
        assert_eq!(s.first_unstable(), None);
        // A marker without an open transaction (a retried one) changes nothing.
        assert_eq!(s.apply(marker(2, 0, 23, false)), None);
        // The next transaction starts at its first batch.
        s.apply(txn_batch(1, 0, 10, 10, 24));
        assert_eq!(s.first_unstable(), Some(Offset(24)));
    }

    #[test]
    fn a_coordinators_marker_under_a_bumped_epoch_fences_the_producer() {
        let mut s = ProducerState::default();
        s.apply(txn_batch(1, 3, 0, 0, 0));
        assert!(s.check_marker(ProducerId(1), 2).is_err(), "an older marker epoch is refused");
        assert!(s.check_marker(ProducerId(1), 4).is_ok());
        s.apply(marker(1, 4, 1, false));
        assert!(matches!(s.check(ProducerId(1), 3, 1), Err(SequenceError::FencedEpoch { current: 4, .. })));
        assert_eq!(s.check(ProducerId(1), 4, 0), Ok(Check::Append));
    }

    #[test]
    fn snapshots_keep_open_transactions_and_read_version_1() {
        let mut s = ProducerState::default();
        s.apply(txn_batch(1, 0, 0, 0, 5));
        for i in 1..=6 {
            s.apply(txn_batch(1, 0, i, i, 5 + i as i64));
        }
        s.apply(txn_batch(2, 0, 0, 0, 30)); // after the snapshot point
        let back = ProducerState::decode(&s.encode_up_to(Offset(20))).unwrap();
        assert_eq!(back.first_unstable(), Some(Offset(5)), "the open transaction survives");
        assert_eq!(back.open_transactions().count(), 1);
        // A producer whose remembered batches all lie past the snapshot point keeps its
        // open transaction.
        let back = ProducerState::decode(&s.encode_up_to(Offset(6))).unwrap();
        assert_eq!(back.first_unstable(), Some(Offset(5)));
        // Version 1 (before transactions).
        let mut v1 = vec![1u8];
        let mut e = Vec::new();
        e.extend_from_slice(&7i64.to_be_bytes());
        e.extend_from_slice(&0i16.to_be_bytes());
        e.push(1);
        for v in [0i32, 0] {
            e.extend_from_slice(&v.to_be_bytes());
        }
        for v in [100i64, 100] {
            e.extend_from_slice(&v.to_be_bytes());
        }
        v1.extend_from_slice(&crc32c::crc32c(&e).to_be_bytes());
        v1.extend_from_slice(&e);
        let back = ProducerState::decode(&v1).unwrap();
        assert_eq!(back.check(ProducerId(7), 0, 1), Ok(Check::Append));
        assert_eq!(back.first_unstable(), None);
    }
}
