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
        self.isr = p.isr.iter().map(|&n| NodeId(n)).collect();
        self.followers.retain(|n, _| p.replicas.contains(&n.0));
        if epoch_changed {
            // A new leader epoch: what followers reported under the old one is stale.
            self.followers.clear();
        }
        self.advance_high_watermark();
        epoch_changed
    }

    /// This replica's durable log end moved. True if the high watermark moved.
    pub fn local_progress(&mut self, end: Offset) -> bool {
        self.local_end = self.local_end.max(end);
        self.advance_high_watermark()
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
