//! A partition's replication state on the node that hosts it (sans-IO): the leader epoch
//! it acts under, its in-sync replicas and how far each has got, and the high watermark.
//! The high watermark is the smallest log end over the ISR (the leader's own log end is
//! what it has made durable), and never moves backwards while this node leads. On one
//! node the ISR is this node alone, so it follows the durable log end; the code path is
//! the one a leader with followers takes.
use std::collections::BTreeMap;

use super::placement::PartitionPlacement;
use crate::model::{LeaderEpoch, NodeId, Offset};

/// Why a request's `current_leader_epoch` is refused (Kafka's errors 74 and 75).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochCheck {
    /// The client's epoch is older: it must refresh its metadata.
    Fenced,
    /// The client's epoch is newer than ours: this replica has not caught up yet.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct PartitionState {
    local: NodeId,
    leader: Option<NodeId>,
    leader_epoch: LeaderEpoch,
    partition_epoch: i32,
    replicas: Vec<NodeId>,
    isr: Vec<NodeId>,
    /// The log end offset each follower last reported (by its fetch offset).
    followers: BTreeMap<NodeId, Offset>,
    /// This replica's durable log end.
    local_end: Offset,
    high_watermark: Offset,
    /// When each follower was last caught up with this leader's log end (Kafka's
    /// `lastCaughtUpTimeMs`), for the ISR rules; reset by every leader epoch.
    caught_up: BTreeMap<NodeId, FollowerLag>,
    /// When this node began leading under the current epoch (set by the first clock
    /// reading after it): a follower not heard from yet is counted as caught up then.
    leading_since_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct FollowerLag {
    last_caught_up_ms: i64,
    last_fetch_ms: i64,
    /// The leader's log end when the follower last fetched.
    last_fetch_leader_end: Offset,
}

/// A change of the ISR this leader asks the controller for (Kafka's AlterPartition): the
/// whole new ISR, as a compare-and-swap on `partition_epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub isr: Vec<NodeId>,
    pub partition_epoch: i32,
}

impl PartitionState {
    /// The state of a partition just opened with `local_end` recovered: everything
    /// recovered was acknowledged by this node, so on a single-replica ISR it is all below
    /// the high watermark.
    pub fn new(local: NodeId, placement: &PartitionPlacement, local_end: Offset) -> PartitionState {
        let mut s = PartitionState {
            local,
            leader: None,
            leader_epoch: LeaderEpoch::NONE,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            followers: BTreeMap::new(),
            local_end,
            high_watermark: Offset(0),
            caught_up: BTreeMap::new(),
            leading_since_ms: None,
        };
        s.apply_placement(placement);
        s.advance_high_watermark();
        s
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.leader_epoch
    }
    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }
    pub fn is_leader(&self) -> bool {
        self.leader == Some(self.local)
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn replica_count(&self) -> usize {
        self.replicas.len()
    }
    pub fn isr(&self) -> &[NodeId] {
        &self.isr
    }
    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    /// Takes a newer placement entry; an older one (a late image) is ignored. Returns
    /// whether the leader epoch changed.
    pub fn apply_placement(&mut self, p: &PartitionPlacement) -> bool {
        if p.partition_epoch < self.partition_epoch {
            return false;
        }
        let epoch_changed = LeaderEpoch(p.leader_epoch) != self.leader_epoch;
        self.leader = (p.leader >= 0).then_some(NodeId(p.leader));
        self.leader_epoch = LeaderEpoch(p.leader_epoch);
        self.partition_epoch = p.partition_epoch;
        self.replicas = p.replicas.iter().map(|&n| NodeId(n)).collect();
        let isr: Vec<NodeId> = p.isr.iter().map(|&n| NodeId(n)).collect();
        // A replica that left the ISR (it lagged, was fenced, or registered again after a
        // restart that may have lost its tail) rejoins on fetches made after that only:
        // what it reported before is forgotten. This is what Kafka's broker epoch in
        // replica fetches (KIP-903) guards against: stale progress of a previous
        // incarnation putting a replica that lacks data back in the ISR.
        for gone in self.isr.iter().filter(|n| !isr.contains(n)) {
            self.followers.remove(gone);
            self.caught_up.remove(gone);
        }
        self.isr = isr;
        self.followers.retain(|n, _| p.replicas.contains(&n.0));
        if epoch_changed {
            // A new leader epoch: what followers reported under the old one is stale.
            self.followers.clear();
            self.caught_up.clear();
            self.leading_since_ms = None;
        }
        self.advance_high_watermark();
        epoch_changed
    }

    /// This node no longer hosts the partition: it leads and follows nothing.
    pub fn abandon(&mut self) {
        self.leader = None;
        self.followers.clear();
    }

    /// This replica's durable log end moved. True if the high watermark moved.
    pub fn local_progress(&mut self, end: Offset) -> bool {
        self.local_end = self.local_end.max(end);
        self.advance_high_watermark()
    }

    /// A follower learned its leader's high watermark: its own is that, up to its own log
    /// end, and never moves back.
    pub fn learn_high_watermark(&mut self, leader_hw: Offset) {
        if !self.is_leader() {
            self.high_watermark = self.high_watermark.max(leader_hw.min(self.local_end));
        }
    }

    /// A follower fetched from `end`: everything before it is in its log. True if the
    /// high watermark moved.
    pub fn follower_progress(&mut self, node: NodeId, end: Offset) -> bool {
        if !self.replicas.contains(&node) || node == self.local {
            return false;
        }
        self.followers.insert(node, end);
        self.advance_high_watermark()
    }

    /// A follower fetched from `fetch_offset` at `now_ms`: its progress for the high
    /// watermark, and for the ISR rules whether it is caught up. As Kafka: caught up now if
    /// it asked for this leader's log end; caught up at its previous fetch if it asked for
    /// what was the log end then. True if the high watermark moved.
    pub fn follower_fetch(&mut self, node: NodeId, fetch_offset: Offset, now_ms: i64) -> bool {
        if !self.is_leader() || !self.replicas.contains(&node) || node == self.local {
            return false;
        }
        let since = *self.leading_since_ms.get_or_insert(now_ms);
        let lag = self.caught_up.entry(node).or_insert(FollowerLag {
            last_caught_up_ms: since,
            last_fetch_ms: since,
            last_fetch_leader_end: Offset(-1),
        });
        if fetch_offset >= self.local_end {
            lag.last_caught_up_ms = now_ms;
        } else if fetch_offset >= lag.last_fetch_leader_end {
            lag.last_caught_up_ms = lag.last_caught_up_ms.max(lag.last_fetch_ms);
        }
        lag.last_fetch_ms = now_ms;
        lag.last_fetch_leader_end = self.local_end;
        self.follower_progress(node, fetch_offset)
    }

    /// The ISR change this leader should ask for at `now_ms`, if any (Kafka's rules):
    /// - a follower in the ISR not caught up for more than `lag_max_ms` leaves it;
    /// - a follower outside it whose log reaches the high watermark and `epoch_start` (the
    ///   start of this leader's epoch: it has everything this leader wrote) joins it.
    ///
    /// The leader itself always stays.
    pub fn isr_change(&mut self, now_ms: i64, lag_max_ms: i64, epoch_start: Offset) -> Option<IsrChange> {
        if !self.is_leader() {
            return None;
        }
        let since = *self.leading_since_ms.get_or_insert(now_ms);
        let mut isr: Vec<NodeId> = self
            .isr
            .iter()
            .copied()
            .filter(|n| {
                *n == self.local
                    || now_ms - self.caught_up.get(n).map_or(since, |l| l.last_caught_up_ms.max(since)) <= lag_max_ms
            })
            .collect();
        // Only replicas outside the current ISR may join: one just found lagging is not
        // judged against the high watermark it was holding back.
        for r in &self.replicas {
            let end = self.followers.get(r).copied();
            let joins = !self.isr.contains(r)
                && *r != self.local
                && end.is_some_and(|e| e >= self.high_watermark && e >= epoch_start);
            if joins {
                isr.push(*r);
            }
        }
        if !isr.contains(&self.local) {
            isr.insert(0, self.local);
        }
        let mut old = self.isr.clone();
        let mut new = isr.clone();
        old.sort();
        new.sort();
        (old != new).then_some(IsrChange { isr, partition_epoch: self.partition_epoch })
    }

    /// A request's `current_leader_epoch` (-1: the client does not say) against ours.
    pub fn check_epoch(&self, current: LeaderEpoch) -> Result<(), EpochCheck> {
        match current {
            c if c.0 < 0 || c == self.leader_epoch => Ok(()),
            c if c < self.leader_epoch => Err(EpochCheck::Fenced),
            _ => Err(EpochCheck::Unknown),
        }
    }

    fn advance_high_watermark(&mut self) -> bool {
        if !self.is_leader() {
            return false;
        }
        let mut hw = self.local_end;
        for n in &self.isr {
            if *n == self.local {
                continue;
            }
            match self.followers.get(n) {
                Some(&end) => hw = hw.min(end),
                // A follower that has not reported under this epoch holds the mark where it is.
                None => hw = hw.min(self.high_watermark),
            }
        }
        if hw > self.high_watermark {
            self.high_watermark = hw;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ShardId;

    fn placement(replicas: &[i32], isr: &[i32], leader: i32, epoch: i32) -> PartitionPlacement {
        PartitionPlacement {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: epoch,
            partition_epoch: epoch,
            shard: 0,
            ..Default::default()
        }
    }

    #[test]
    fn single_replica_follows_the_durable_end() {
        let mut s = PartitionState::new(NodeId(1), &PartitionPlacement::single(NodeId(1), ShardId(0)), Offset(7));
        assert_eq!(s.high_watermark(), Offset(7));
        assert!(s.local_progress(Offset(9)));
        assert!(!s.local_progress(Offset(8)), "never backwards");
        assert_eq!(s.high_watermark(), Offset(9));
    }

    #[test]
    fn high_watermark_is_the_smallest_end_over_the_isr() {
        let mut s = PartitionState::new(NodeId(1), &placement(&[1, 2, 3], &[1, 2, 3], 1, 0), Offset(0));
        s.local_progress(Offset(10));
        assert_eq!(s.high_watermark(), Offset(0), "followers have not reported");
        assert!(!s.follower_progress(NodeId(2), Offset(6)));
        assert!(s.follower_progress(NodeId(3), Offset(4)));
        assert_eq!(s.high_watermark(), Offset(4));
        // Node 3 leaves the ISR: only 1 and 2 count.
        s.apply_placement(&placement(&[1, 2, 3], &[1, 2], 1, 0));
        assert_eq!(s.high_watermark(), Offset(6));
        assert!(!s.follower_progress(NodeId(9), Offset(100)), "not a replica");
    }

    #[test]
    fn a_follower_that_stops_fetching_leaves_the_isr_and_rejoins_when_caught_up() {
        let lag_max = 10_000;
        let mut s = PartitionState::new(NodeId(1), &placement(&[1, 2, 3], &[1, 2, 3], 1, 0), Offset(0));
        s.local_progress(Offset(100));
        // Node 2 keeps up; node 3 fetches once, behind, then stops.
        s.follower_fetch(NodeId(2), Offset(100), 0);
        s.follower_fetch(NodeId(3), Offset(40), 0);
        assert_eq!(s.isr_change(5_000, lag_max, Offset(0)), None);
        s.follower_fetch(NodeId(2), Offset(100), 9_000);
        assert_eq!(s.isr_change(10_000, lag_max, Offset(0)), None, "not yet over the lag");
        let change = s.isr_change(10_001, lag_max, Offset(0)).expect("node 3 leaves");
        assert_eq!(change, IsrChange { isr: vec![NodeId(1), NodeId(2)], partition_epoch: 0 });
        s.apply_placement(&PartitionPlacement {
            isr: vec![1, 2],
            partition_epoch: 1,
            ..placement(&[1, 2, 3], &[1, 2], 1, 0)
        });
        assert_eq!(s.high_watermark(), Offset(100), "the mark no longer waits for node 3");
        // Node 3 catches up to the high watermark: it rejoins.
        s.follower_fetch(NodeId(3), Offset(90), 11_000);
        assert_eq!(s.isr_change(11_000, lag_max, Offset(0)), None, "below the high watermark");
        s.follower_fetch(NodeId(3), Offset(100), 12_000);
        assert_eq!(s.isr_change(12_000, lag_max, Offset(120)), None, "not past this epoch's start");
        let change = s.isr_change(12_000, lag_max, Offset(50)).expect("node 3 rejoins");
        assert_eq!(change.isr, vec![NodeId(1), NodeId(2), NodeId(3)]);
        assert_eq!(change.partition_epoch, 1);
    }

    #[test]
    fn a_follower_fetching_what_was_the_end_counts_as_caught_up_at_its_previous_fetch() {
        let mut s = PartitionState::new(NodeId(1), &placement(&[1, 2], &[1, 2], 1, 0), Offset(0));
        s.local_progress(Offset(10));
        s.follower_fetch(NodeId(2), Offset(10), 1_000);
        s.local_progress(Offset(20)); // the producer keeps writing
        s.follower_fetch(NodeId(2), Offset(10), 2_000); // the fetch at 1 000 returned nothing new
        s.local_progress(Offset(30));
        s.follower_fetch(NodeId(2), Offset(20), 11_500); // asks for what was the end at 2 000
                                                         // It was caught up as of its fetch at 2 000 (not at 11 500: the end has moved on).
        assert_eq!(s.isr_change(11_900, 10_000, Offset(0)), None, "9.9 s behind");
        let change = s.isr_change(12_100, 10_000, Offset(0)).expect("10.1 s behind");
        assert_eq!(change.isr, vec![NodeId(1)]);
    }

    /// Seeded runs of fetches, appends and clock steps: the high watermark never moves
    /// back, never passes the leader's end or an in-sync follower's, and ISR proposals
    /// always keep the leader.
    #[test]
    fn seeded_isr_and_high_watermark_invariants() {
        use rand::{Rng, SeedableRng};
        for seed in 0..200u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut s = PartitionState::new(NodeId(1), &placement(&[1, 2, 3], &[1, 2, 3], 1, 0), Offset(0));
            let (mut now, mut end, mut hw) = (0i64, 0i64, Offset(0));
            let mut ends = [0i64; 4];
            for _ in 0..300 {
                now += rng.random_range(0..3_000);
                match rng.random_range(0..3) {
                    0 => {
                        end += rng.random_range(0..50);
                        s.local_progress(Offset(end));
                    }
                    _ => {
                        let n = rng.random_range(2..4usize);
                        ends[n] = rng.random_range(ends[n]..=end);
                        s.follower_fetch(NodeId(n as i32), Offset(ends[n]), now);
                    }
                }
                assert!(s.high_watermark() >= hw, "seed {seed}: backwards");
                hw = s.high_watermark();
                assert!(hw.0 <= end);
                for n in s.isr().to_vec() {
                    if n != NodeId(1) {
                        assert!(hw.0 <= ends[n.0 as usize], "seed {seed}: past an in-sync follower");
                    }
                }
                if let Some(change) = s.isr_change(now, 10_000, Offset(0)) {
                    assert!(change.isr.contains(&NodeId(1)), "seed {seed}: the leader stays");
                    let isr: Vec<i32> = change.isr.iter().map(|n| n.0).collect();
                    let next = s.partition_epoch() + 1;
                    s.apply_placement(&PartitionPlacement {
                        isr,
                        partition_epoch: next,
                        ..placement(&[1, 2, 3], &[1], 1, 0)
                    });
                }
            }
        }
    }

    #[test]
    fn a_replica_out_of_the_isr_rejoins_on_new_fetches_only() {
        let mut s = PartitionState::new(NodeId(1), &placement(&[1, 2, 3], &[1, 2, 3], 1, 0), Offset(0));
        s.local_progress(Offset(100));
        s.follower_fetch(NodeId(2), Offset(100), 0);
        s.follower_fetch(NodeId(3), Offset(100), 0);
        // Node 2 is fenced (say it restarted and lost its unflushed tail): it leaves the ISR.
        s.apply_placement(&PartitionPlacement { partition_epoch: 1, ..placement(&[1, 2, 3], &[1, 3], 1, 0) });
        assert_eq!(s.isr_change(1_000, 10_000, Offset(0)), None, "its fetches from before do not count");
        s.follower_fetch(NodeId(2), Offset(60), 1_100);
        assert_eq!(s.isr_change(1_100, 10_000, Offset(0)), None, "it is behind now");
        s.follower_fetch(NodeId(2), Offset(100), 1_200);
        let change = s.isr_change(1_200, 10_000, Offset(0)).expect("caught up again: it rejoins");
        assert_eq!(change.isr, vec![NodeId(1), NodeId(3), NodeId(2)]);
    }

    #[test]
    fn epochs_are_checked_and_never_go_back() {
        let mut s = PartitionState::new(NodeId(1), &placement(&[1], &[1], 1, 5), Offset(0));
        assert_eq!(s.check_epoch(LeaderEpoch(5)), Ok(()));
        assert_eq!(s.check_epoch(LeaderEpoch::NONE), Ok(()));
        assert_eq!(s.check_epoch(LeaderEpoch(4)), Err(EpochCheck::Fenced));
        assert_eq!(s.check_epoch(LeaderEpoch(6)), Err(EpochCheck::Unknown));
        assert!(!s.apply_placement(&placement(&[1], &[1], 1, 3)), "an older image");
        assert_eq!(s.leader_epoch(), LeaderEpoch(5));
        assert!(s.apply_placement(&placement(&[1], &[1], 1, 6)));
        assert!(s.is_leader());
        s.apply_placement(&placement(&[1, 2], &[2], 2, 7));
        assert!(!s.is_leader());
        assert!(!s.local_progress(Offset(50)), "a follower does not move the mark itself");
    }
}
