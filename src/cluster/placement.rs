//! Where a partition lives: its replicas, leader, epochs, in-sync replicas (written by the
//! controller as `MetadataRecord::Partition`), and which shard owns it on a node.
use serde::{Deserialize, Serialize};

use crate::model::{LeaderEpoch, NodeId, ShardId};

/// One partition's entry in the placement table (Kafka's PartitionRecord, plus the shard).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionPlacement {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// -1: no leader (none of the ISR is alive).
    pub leader: i32,
    pub leader_epoch: i32,
    /// Bumped by every change of this entry; the ISR changes as a compare-and-swap on it.
    pub partition_epoch: i32,
    /// The shard that owns the partition on each node hosting it, taken modulo the node's
    /// shard count (a node may run with fewer cores than the one that created it).
    pub shard: u32,
    /// A reassignment in progress (KIP-455): the replicas being added (in `replicas`, not
    /// yet all in sync) and those that leave once they are. Empty when none is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<i32>,
}

impl PartitionPlacement {
    /// The placement of a new partition whose only replica is `node`.
    pub fn single(node: NodeId, shard: ShardId) -> PartitionPlacement {
        PartitionPlacement {
            replicas: vec![node.0],
            isr: vec![node.0],
            leader: node.0,
            leader_epoch: 0,
            partition_epoch: 0,
            shard: shard.0 as u32,
            ..Default::default()
        }
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        LeaderEpoch(self.leader_epoch)
    }

    pub fn leader(&self) -> Option<NodeId> {
        (self.leader >= 0).then_some(NodeId(self.leader))
    }

    /// The owning shard on a node that runs `shards` shards.
    pub fn shard_on(&self, shards: usize) -> ShardId {
        ShardId(self.shard as usize % shards.max(1))
    }

    /// `node` registered again (a restart): as a KRaft controller does, its previous
    /// incarnation is fenced first (it leaves the ISR unless it is the last member, and
    /// what it led moves to another in-sync replica, or has no leader: one new epoch), then
    /// the unfenced node leads again what has no leader and has it in the ISR (another).
    /// So Kafka and Sluice both go from epoch 0 to 2 across a restart of a single replica.
    /// True if this entry changed.
    pub fn reregister(&mut self, node: NodeId, live: &dyn Fn(i32) -> bool, unclean: bool) -> bool {
        let fenced = self.fence(node, &|n| n != node.0 && live(n), unclean);
        self.unfence(live, unclean) || fenced
    }

    /// `node` is fenced (its session expired, or it shuts down): it leaves the ISR (unless
    /// it is the last member: the ISR is never empty, and that member is the one holding
    /// everything acknowledged), and what it led gets the first live in-sync replica as
    /// leader under a new epoch, or none. With `unclean`, a live replica outside the ISR
    /// may lead when no in-sync one is alive (it becomes the whole ISR). `live` must
    /// already say no for `node`. True if this entry changed.
    pub fn fence(&mut self, node: NodeId, live: &dyn Fn(i32) -> bool, unclean: bool) -> bool {
        let mut changed = false;
        if self.isr.len() > 1 && self.isr.contains(&node.0) {
            self.isr.retain(|&n| n != node.0);
            changed = true;
        }
        if self.leader == node.0 {
            self.leader = self.choose_leader(live, unclean).unwrap_or(-1);
            self.leader_epoch += 1;
            changed = true;
        }
        if changed {
            self.partition_epoch += 1;
        }
        changed
    }

    /// `node` is unfenced: if nothing leads and it is in the ISR (or `unclean` and no
    /// in-sync replica is alive), it leads under a new epoch. True if this entry changed.
    pub fn unfence(&mut self, live: &dyn Fn(i32) -> bool, unclean: bool) -> bool {
        if self.leader >= 0 {
            return false;
        }
        let Some(leader) = self.choose_leader(live, unclean) else { return false };
        self.leader = leader;
        self.leader_epoch += 1;
        self.partition_epoch += 1;
        true
    }

    /// Moves leadership to the preferred replica (the first) if it is alive, in sync and
    /// not leading already (ElectLeaders PREFERRED, `auto.leader.rebalance.enable`). True
    /// if this entry changed.
    pub fn elect_preferred(&mut self, live: &dyn Fn(i32) -> bool) -> bool {
        let Some(&preferred) = self.replicas.first() else { return false };
        if self.leader == preferred || !self.isr.contains(&preferred) || !live(preferred) {
            return false;
        }
        self.leader = preferred;
        self.leader_epoch += 1;
        self.partition_epoch += 1;
        true
    }

    /// A leader for an entry whose leader left: the first replica (in preference order)
    /// that is alive and in sync; with `unclean`, else the first alive one, which becomes
    /// the whole ISR.
    fn choose_leader(&mut self, live: &dyn Fn(i32) -> bool, unclean: bool) -> Option<i32> {
        if let Some(r) = self.replicas.iter().copied().find(|&r| self.isr.contains(&r) && live(r)) {
            return Some(r);
        }
        let r = self.replicas.iter().copied().find(|&r| live(r)).filter(|_| unclean)?;
        tracing::warn!(replica = r, isr = ?self.isr, "unclean leader election: an out-of-sync replica leads");
        self.isr = vec![r];
        Some(r)
    }

    /// Whether a reassignment is in progress.
    pub fn reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replica set a reassignment in progress moves to (else the current one).
    pub fn target(&self) -> Vec<i32> {
        self.replicas.iter().copied().filter(|r| !self.removing.contains(r)).collect()
    }

    /// The replica set before the reassignment in progress (else the current one).
    pub fn original(&self) -> Vec<i32> {
        self.replicas.iter().copied().filter(|r| !self.adding.contains(r)).collect()
    }

    /// Starts moving this partition to `target` (distinct, non-empty; checked by the
    /// caller), as Kafka does: the replicas are the target followed by those leaving, the
    /// new ones fetch and join the ISR as any follower does, and the move completes once
    /// every target replica is in sync (`try_complete_reassignment`). A reassignment in
    /// progress is replaced: its original replicas stay the original. True if this entry
    /// changed.
    pub fn reassign(&mut self, target: &[i32], live: &dyn Fn(i32) -> bool) -> bool {
        let original = self.original();
        if target == self.target().as_slice() && target == original.as_slice() {
            return false;
        }
        let mut replicas = target.to_vec();
        replicas.extend(original.iter().copied().filter(|r| !target.contains(r)));
        self.adding = target.iter().copied().filter(|r| !original.contains(r)).collect();
        self.removing = original.iter().copied().filter(|r| !target.contains(r)).collect();
        // Replicas added by a replaced reassignment that the new target drops were never in
        // the original set: they leave at once.
        let isr: Vec<i32> = self.isr.iter().copied().filter(|r| replicas.contains(r)).collect();
        if !isr.is_empty() {
            self.isr = isr;
        }
        self.replicas = replicas;
        self.reelect_if_not_a_replica(live);
        self.partition_epoch += 1;
        self.try_complete_reassignment(live);
        true
    }

    /// Cancels the reassignment in progress: back to the original replicas. The added ones
    /// leave the ISR (unless that would empty it) and the leadership if they hold it.
    /// False if none is in progress.
    pub fn cancel_reassignment(&mut self, live: &dyn Fn(i32) -> bool) -> bool {
        if !self.reassigning() {
            return false;
        }
        let original = self.original();
        self.finish_move(original, live);
        true
    }

    /// Completes the reassignment in progress if every target replica is in sync: the
    /// replicas become the target, those leaving drop out of the ISR, and if the leader is
    /// one of them the first live in-sync target replica leads under a new epoch. Called
    /// after every ISR change. True if it completed.
    pub fn try_complete_reassignment(&mut self, live: &dyn Fn(i32) -> bool) -> bool {
        if !self.reassigning() {
            return false;
        }
        let target = self.target();
        if !target.iter().all(|r| self.isr.contains(r)) {
            return false;
        }
        self.finish_move(target, live);
        true
    }

    fn finish_move(&mut self, replicas: Vec<i32>, live: &dyn Fn(i32) -> bool) {
        let isr: Vec<i32> = self.isr.iter().copied().filter(|r| replicas.contains(r)).collect();
        if !isr.is_empty() {
            self.isr = isr;
        }
        self.replicas = replicas;
        self.adding.clear();
        self.removing.clear();
        self.reelect_if_not_a_replica(live);
        self.partition_epoch += 1;
    }

    /// A leader that is no longer a replica hands over to the first live in-sync one
    /// (clean election only) under a new epoch.
    fn reelect_if_not_a_replica(&mut self, live: &dyn Fn(i32) -> bool) {
        if self.leader >= 0 && !self.replicas.contains(&self.leader) {
            self.leader = self.choose_leader(live, false).unwrap_or(-1);
            self.leader_epoch += 1;
        }
    }

    /// Whether `isr` may replace this entry's ISR: a non-empty set of distinct replicas
    /// that includes the leader.
    pub fn valid_isr(&self, isr: &[i32]) -> bool {
        let distinct: std::collections::BTreeSet<_> = isr.iter().collect();
        !isr.is_empty()
            && distinct.len() == isr.len()
            && isr.iter().all(|n| self.replicas.contains(n))
            && isr.contains(&self.leader)
    }
}

/// The default owning shard of a new partition: each topic's partitions spread over the
/// shards, starting at a shard chosen by the topic name so that single-partition topics
/// spread too. Only the default: the placement table is what shards read.
pub fn default_shard(topic: &str, partition: i32, shards: usize) -> ShardId {
    let h = crc32c::crc32c(topic.as_bytes()) as usize;
    ShardId((h.wrapping_add(partition as usize)) % shards.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_shards_are_stable_and_spread() {
        let owners: Vec<ShardId> = (0..8).map(|p| default_shard("t", p, 4)).collect();
        assert_eq!(owners, (0..8).map(|p| default_shard("t", p, 4)).collect::<Vec<_>>());
        for s in 0..4 {
            assert_eq!(owners.iter().filter(|o| o.0 == s).count(), 2);
        }
    }

    #[test]
    fn reregistration_fences_then_reelects() {
        let all = |_: i32| true;
        let mut p = PartitionPlacement::single(NodeId(1), ShardId(3));
        assert_eq!(p.shard_on(2), ShardId(1));
        assert!(p.reregister(NodeId(1), &all, false));
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 2, 2), "fenced, then elected again");
        assert!(!p.reregister(NodeId(2), &all, false), "not a replica it leads");
        p.leader = -1;
        assert!(p.unfence(&all, false), "leaderless, and in the ISR");
        assert_eq!((p.leader, p.leader_epoch), (1, 3));
    }

    fn three() -> PartitionPlacement {
        PartitionPlacement {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            shard: 0,
            ..Default::default()
        }
    }

    #[test]
    fn a_fenced_leader_is_replaced_from_the_isr() {
        let mut p = three();
        assert!(p.fence(NodeId(1), &|n| n != 1, false));
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (2, 1, vec![2, 3]), "one epoch, the next in sync");
        assert!(p.fence(NodeId(3), &|n| n == 2, false));
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (2, 1, vec![2]), "a follower leaves the ISR only");
        assert!(p.fence(NodeId(2), &|_| false, false));
        assert_eq!((p.leader, p.isr.clone()), (-1, vec![2]), "the last in-sync replica stays in the ISR");
        assert!(!p.unfence(&|n| n == 1, false), "1 is not in sync: it may not lead");
        assert!(p.unfence(&|n| n == 1 || n == 2, false));
        assert_eq!((p.leader, p.leader_epoch), (2, 3));
    }

    #[test]
    fn unclean_election_takes_any_live_replica() {
        let mut p = three();
        p.isr = vec![1];
        assert!(p.fence(NodeId(1), &|n| n == 3, true));
        assert_eq!((p.leader, p.isr.clone()), (3, vec![3]));
        let mut p = three();
        p.isr = vec![1];
        p.fence(NodeId(1), &|n| n == 3, false);
        assert_eq!(p.leader, -1, "clean: nobody in sync is alive");
    }

    #[test]
    fn preferred_election_and_isr_validity() {
        let mut p = three();
        p.fence(NodeId(1), &|n| n != 1, false);
        p.isr.push(1);
        assert!(p.valid_isr(&[2, 1]));
        assert!(!p.valid_isr(&[1, 3]), "the leader must stay");
        assert!(!p.valid_isr(&[2, 2]));
        assert!(!p.valid_isr(&[2, 4]));
        assert!(p.elect_preferred(&|_| true));
        assert_eq!(p.leader, 1);
        assert!(!p.elect_preferred(&|_| true));
    }

    #[test]
    fn a_move_completes_once_the_target_is_in_sync() {
        let all = |_: i32| true;
        let mut p = three();
        assert!(!p.reassign(&[1, 2, 3], &all), "already there");
        assert!(p.reassign(&[2, 3, 4], &all));
        assert_eq!((p.replicas.clone(), p.adding.clone(), p.removing.clone()), (vec![2, 3, 4, 1], vec![4], vec![1]));
        assert_eq!((p.leader, p.target(), p.original()), (1, vec![2, 3, 4], vec![2, 3, 1]), "Kafka's order");
        assert!(!p.try_complete_reassignment(&all), "4 is not in sync yet");
        p.isr.push(4);
        assert!(p.try_complete_reassignment(&all));
        assert_eq!((p.replicas.clone(), p.isr.clone()), (vec![2, 3, 4], vec![2, 3, 4]));
        assert_eq!((p.leader, p.leader_epoch), (2, 1), "the leaving leader hands over to an in-sync target");
        assert!(!p.reassigning());
    }

    #[test]
    fn a_move_can_be_replaced_or_cancelled() {
        let all = |_: i32| true;
        let mut p = three();
        p.reassign(&[4, 5, 6], &all);
        assert_eq!(p.replicas, vec![4, 5, 6, 1, 2, 3]);
        p.reassign(&[1, 2, 5], &all);
        assert_eq!((p.replicas.clone(), p.adding.clone(), p.removing.clone()), (vec![1, 2, 5, 3], vec![5], vec![3]));
        assert!(p.cancel_reassignment(&all));
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![1, 2, 3], vec![1, 2, 3], 1));
        assert!(!p.cancel_reassignment(&all), "nothing in progress");
        // A move that only drops a replica completes at once.
        assert!(p.reassign(&[1, 2], &all));
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.reassigning()), (vec![1, 2], vec![1, 2], false));
    }
}
