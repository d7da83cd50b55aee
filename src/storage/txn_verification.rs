//! KIP-890 part 1 on the partition side. A leader appends a producer's first
//! transactional batch (one that would open a transaction here) only after the
//! transaction coordinator confirmed that this partition is in the producer's ongoing
//! transaction. The confirmation is asynchronous, so the leader hands out a guard before
//! asking, and the append must still find that guard: a marker for the producer written in
//! between (the transaction ended, perhaps by its timeout) removes it. Without this, a
//! write that hung in the network past its transaction's end would open a transaction that
//! no coordinator will ever end, and hold the last stable offset back for good.
//!
//! In memory only, as in Kafka: after a restart or a change of leader the producer simply
//! verifies again.
use std::collections::HashMap;

use crate::model::ProducerId;

/// A token for one pending verification.
pub type VerificationGuard = u64;

/// A verification that never came back (the coordinator refused, or the client went away)
/// leaves its entry; entries older than this are dropped when the map grows.
const STALE_MS: i64 = 120_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    epoch: i16,
    guard: VerificationGuard,
    since_ms: i64,
}

#[derive(Debug)]
pub struct Verifications {
    entries: HashMap<ProducerId, Entry>,
    next_guard: VerificationGuard,
    /// The size at which stale entries are next swept (doubles with the live entries, so a
    /// sweep costs O(1) per insert over time).
    sweep_at: usize,
}

impl Default for Verifications {
    fn default() -> Self {
        Verifications { entries: HashMap::new(), next_guard: 0, sweep_at: 64 }
    }
}

impl Verifications {
    /// The guard for `producer_id` at `epoch`: the one pending for it, or a new one (a
    /// different epoch replaces the pending guard).
    pub fn start(&mut self, producer_id: ProducerId, epoch: i16, now_ms: i64) -> VerificationGuard {
        if let Some(e) = self.entries.get(&producer_id) {
            if e.epoch == epoch {
                return e.guard;
            }
        }
        if self.entries.len() >= self.sweep_at {
            self.entries.retain(|_, e| now_ms - e.since_ms < STALE_MS);
            self.sweep_at = (self.entries.len() * 2).max(64);
        }
        self.next_guard += 1;
        let guard = self.next_guard;
        self.entries.insert(producer_id, Entry { epoch, guard, since_ms: now_ms });
        guard
    }

    /// Whether `guard` is still the pending verification of `producer_id` at `epoch`.
    pub fn holds(&self, producer_id: ProducerId, epoch: i16, guard: VerificationGuard) -> bool {
        self.entries.get(&producer_id).is_some_and(|e| e.epoch == epoch && e.guard == guard)
    }

    /// The producer's transaction here opened (the guard is spent) or ended (a marker: a
    /// verification made before it no longer holds).
    pub fn clear(&mut self, producer_id: ProducerId) {
        self.entries.remove(&producer_id);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_holds_until_cleared_and_is_reused_while_pending() {
        let mut v = Verifications::default();
        let p = ProducerId(7);
        let g = v.start(p, 0, 0);
        assert_eq!(v.start(p, 0, 5), g, "a second request of the same producer shares the pending guard");
        assert!(v.holds(p, 0, g));
        assert!(!v.holds(p, 1, g), "another epoch");
        assert!(!v.holds(ProducerId(8), 0, g), "another producer");
        v.clear(p);
        assert!(!v.holds(p, 0, g), "a marker in between spends the guard");
        let g2 = v.start(p, 0, 10);
        assert_ne!(g2, g, "a new verification gets a new guard: the old one never comes back");
        assert!(!v.holds(p, 0, g));
    }

    #[test]
    fn a_new_epoch_replaces_the_pending_guard() {
        let mut v = Verifications::default();
        let p = ProducerId(1);
        let old = v.start(p, 3, 0);
        let new = v.start(p, 4, 0);
        assert!(!v.holds(p, 3, old));
        assert!(v.holds(p, 4, new));
    }

    #[test]
    fn abandoned_verifications_are_swept() {
        let mut v = Verifications::default();
        for i in 0..64 {
            v.start(ProducerId(i), 0, 0);
        }
        assert_eq!(v.len(), 64);
        // Later, the next insert sweeps the stale ones; fresh ones stay.
        let fresh = v.start(ProducerId(1000), 0, STALE_MS + 1);
        assert_eq!(v.len(), 1);
        assert!(v.holds(ProducerId(1000), 0, fresh));
    }
}
