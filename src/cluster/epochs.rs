//! The leader epoch cache of one partition: for each leader epoch the offset its first batch
//! got (Kafka's `LeaderEpochFileCache`). Sans-IO: storage keeps it durable as Kafka's
//! `leader-epoch-checkpoint` file and rebuilds it from the batches' `partition_leader_epoch`
//! when that file is missing. OffsetForLeaderEpoch and Fetch's diverging-epoch check read
//! it (KIP-101, KIP-279, KIP-320).
use crate::model::{LeaderEpoch, Offset};

/// An epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: LeaderEpoch,
    pub start_offset: Offset,
}

/// Entries in increasing epoch and start offset order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

/// The answer Kafka gives for an epoch it does not know (no epoch, no offset).
pub const UNDEFINED: (LeaderEpoch, Offset) = (LeaderEpoch(-1), Offset(-1));

impl LeaderEpochCache {
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts at `start_offset`. A repeat of the latest epoch changes
    /// nothing; entries that conflict (an epoch at or above it, or a start at or after it)
    /// are removed first, as Kafka does, so the cache stays monotonic in both. Returns
    /// whether the cache changed (and must be saved).
    pub fn assign(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> bool {
        if epoch.0 < 0 {
            return false;
        }
        if let Some(last) = self.latest() {
            if last.epoch == epoch && last.start_offset <= start_offset {
                return false;
            }
        }
        self.entries.retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry { epoch, start_offset });
        true
    }

    /// The largest epoch at or below `requested` and the offset where it ended: the start
    /// of the next epoch, or `log_end` for the latest (Kafka's `endOffsetFor`).
    pub fn end_offset_for(&self, requested: LeaderEpoch, log_end: Offset) -> (LeaderEpoch, Offset) {
        if requested.0 < 0 {
            return UNDEFINED;
        }
        if self.latest().is_some_and(|l| l.epoch == requested) {
            return (requested, log_end);
        }
        let higher = self.entries.iter().find(|e| e.epoch > requested);
        let Some(higher) = higher else { return UNDEFINED };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => (floor.epoch, higher.start_offset),
            // Older than every known epoch: it ended where the oldest known one began.
            None => (requested, higher.start_offset),
        }
    }

    /// The epoch of the batch at `offset`, if the cache covers it.
    pub fn epoch_at(&self, offset: Offset) -> Option<LeaderEpoch> {
        self.entries.iter().rev().find(|e| e.start_offset <= offset).map(|e| e.epoch)
    }

    /// Forgets epochs that start at or after `end` (the log was truncated to `end`).
    pub fn truncate_from_end(&mut self, end: Offset) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end);
        before != self.entries.len()
    }

    /// Forgets epochs wholly below `start` (the log start moved); the epoch in force at
    /// `start` now starts there.
    pub fn truncate_from_start(&mut self, start: Offset) -> bool {
        let Some(keep_from) = self.entries.iter().rposition(|e| e.start_offset <= start) else { return false };
        let changed = keep_from > 0 || self.entries[0].start_offset < start;
        self.entries.drain(..keep_from);
        if let Some(first) = self.entries.first_mut() {
            first.start_offset = first.start_offset.max(start);
        }
        changed
    }

    /// Kafka's checkpoint text: a version line (0), a count line, then `epoch offset` lines.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            s.push_str(&format!("{} {}\n", e.epoch.0, e.start_offset.0));
        }
        s.into_bytes()
    }

    /// Parses a checkpoint; `None` if it is damaged in any way (it is then rebuilt).
    pub fn decode(bytes: &[u8]) -> Option<LeaderEpochCache> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        if lines.next()?.trim() != "0" {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        if count > crate::limits::LEADER_EPOCH_ENTRIES_MAX {
            return None;
        }
        let mut cache = LeaderEpochCache::default();
        for _ in 0..count {
            let mut parts = lines.next()?.split_whitespace();
            let epoch = LeaderEpoch(parts.next()?.parse().ok()?);
            let start = Offset(parts.next()?.parse().ok()?);
            if parts.next().is_some() || epoch.0 < 0 || start.0 < 0 {
                return None;
            }
            if cache.latest().is_some_and(|l| l.epoch >= epoch || l.start_offset > start) {
                return None;
            }
            cache.entries.push(EpochEntry { epoch, start_offset: start });
        }
        Some(cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::default();
        for &(e, o) in entries {
            assert!(c.assign(LeaderEpoch(e), Offset(o)));
        }
        c
    }

    #[test]
    fn end_offsets_follow_kafka() {
        let c = cache(&[(0, 0), (2, 5), (5, 9)]);
        let end = Offset(12);
        assert_eq!(c.end_offset_for(LeaderEpoch(5), end), (LeaderEpoch(5), Offset(12)), "latest: the log end");
        assert_eq!(c.end_offset_for(LeaderEpoch(0), end), (LeaderEpoch(0), Offset(5)));
        assert_eq!(c.end_offset_for(LeaderEpoch(1), end), (LeaderEpoch(0), Offset(5)), "a gap: the floor epoch");
        assert_eq!(c.end_offset_for(LeaderEpoch(3), end), (LeaderEpoch(2), Offset(9)));
        assert_eq!(c.end_offset_for(LeaderEpoch(6), end), UNDEFINED, "a future epoch");
        assert_eq!(c.end_offset_for(LeaderEpoch(-1), end), UNDEFINED);
        let c = cache(&[(3, 10), (4, 20)]);
        assert_eq!(c.end_offset_for(LeaderEpoch(1), end), (LeaderEpoch(1), Offset(10)), "older than all");
        assert_eq!(LeaderEpochCache::default().end_offset_for(LeaderEpoch(0), end), UNDEFINED);
    }

    #[test]
    fn assign_keeps_the_cache_monotonic() {
        let mut c = cache(&[(0, 0), (1, 5)]);
        assert!(!c.assign(LeaderEpoch(1), Offset(7)), "the latest epoch again");
        assert!(c.assign(LeaderEpoch(1), Offset(3)), "an earlier start replaces it");
        assert_eq!(c.entries().len(), 2);
        assert!(c.assign(LeaderEpoch(4), Offset(3)), "a start that conflicts removes the old");
        assert_eq!(
            c.entries(),
            &[
                EpochEntry { epoch: LeaderEpoch(0), start_offset: Offset(0) },
                EpochEntry { epoch: LeaderEpoch(4), start_offset: Offset(3) }
            ]
        );
        assert!(!c.assign(LeaderEpoch(-1), Offset(9)));
    }

    #[test]
    fn truncation_from_either_end() {
        let mut c = cache(&[(0, 0), (1, 5), (2, 9)]);
        assert!(c.truncate_from_end(Offset(9)));
        assert_eq!(c.latest().unwrap().epoch, LeaderEpoch(1));
        assert!(!c.truncate_from_end(Offset(9)));
        assert!(c.truncate_from_start(Offset(6)));
        assert_eq!(c.entries(), &[EpochEntry { epoch: LeaderEpoch(1), start_offset: Offset(6) }]);
        assert_eq!(c.epoch_at(Offset(8)), Some(LeaderEpoch(1)));
        assert_eq!(c.epoch_at(Offset(2)), None);
    }

    #[test]
    fn checkpoint_roundtrip_and_damage() {
        let c = cache(&[(0, 0), (3, 17)]);
        let bytes = c.encode();
        assert_eq!(bytes, b"0\n2\n0 0\n3 17\n");
        assert_eq!(LeaderEpochCache::decode(&bytes), Some(c));
        for bad in [&b"1\n0\n"[..], b"0\n2\n0 0\n", b"0\n1\nx 0\n", b"0\n2\n3 0\n1 5\n", b"", b"0\n99999999\n"] {
            assert_eq!(LeaderEpochCache::decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
