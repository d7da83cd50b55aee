//! Idempotent-producer state of one partition (KIP-98): per producer id, its epoch and the
//! sequence ranges and offsets of its last five batches. A retried batch is recognized and
//! answered with its original offsets instead of being written again; a gap in sequence
//! numbers is OUT_OF_ORDER_SEQUENCE_NUMBER; an epoch older than the latest is fenced.
//!
//! Kept across restarts by a snapshot written when a segment is finalized (the state as of
//! the segment's end, `<end offset>.snapshot`), plus the batches of the segments recovery
//! scans after it.
use crate::model::{Offset, ProducerId};
use std::collections::{HashMap, VecDeque};

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
        if producer_id.0 < 0 {
            return;
        }
        let p = self.producers.entry(producer_id).or_default();
        if epoch != p.epoch {
            p.epoch = epoch;
            p.batches.clear();
        }
        if p.batches.len() == BATCHES_REMEMBERED {
            p.batches.pop_front();
        }
        p.batches.push_back(batch);
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
            if kept.is_empty() {
                continue;
            }
            entries.extend_from_slice(&id.0.to_be_bytes());
            entries.extend_from_slice(&p.epoch.to_be_bytes());
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
        if version != SNAPSHOT_VERSION || rest.len() < 4 {
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
            let n = take::<1>(&mut rest)?[0] as usize;
            if n == 0 || n > BATCHES_REMEMBERED {
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
            state.producers.insert(id, Producer { epoch, batches });
        }
        Some(state)
    }
}

const SNAPSHOT_VERSION: u8 = 1;

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
}
