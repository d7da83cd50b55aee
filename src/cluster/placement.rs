//! Where a partition lives: its replicas, leader, epochs, in-sync replicas (written by the
//! controller as `MetadataRecord::Partition`), and which shard owns it on a node.
use serde::{Deserialize, Serialize};

use crate::model::{LeaderEpoch, NodeId, ShardId};

/// One partition's entry in the placement table (Kafka's PartitionRecord, plus the shard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// incarnation is fenced first (what it led has no leader: one new epoch), then the
    /// unfenced node is elected again (another). So Kafka and Sluice both go from epoch 0
    /// to 2 across a restart. True if this entry changed.
    pub fn reregister(&mut self, node: NodeId) -> bool {
        let led = self.leader == node.0;
        if led {
            self.leader = -1;
            self.leader_epoch += 1;
            self.partition_epoch += 1;
        }
        self.reelect(node) || led
    }

    /// `node` is fenced (its session expired, or it shuts down): what it leads has no
    /// leader, under a new leader epoch. Until followers hold data (replication), no other
    /// replica may take over: it would serve an empty log. True if this entry changed.
    pub fn fence(&mut self, node: NodeId) -> bool {
        if self.leader != node.0 {
            return false;
        }
        self.leader = -1;
        self.leader_epoch += 1;
        self.partition_epoch += 1;
        true
    }

    /// `node` is unfenced: it leads again what has no leader if it is the preferred
    /// replica (the first) and in the ISR, under a new leader epoch. Only the preferred
    /// replica: until replication, it is the one replica that holds the data. True if this
    /// entry changed.
    pub fn reelect(&mut self, node: NodeId) -> bool {
        let preferred = self.replicas.first() == Some(&node.0);
        let leads = self.leader == node.0 || (self.leader < 0 && preferred && self.isr.contains(&node.0));
        if leads {
            self.leader = node.0;
            self.leader_epoch += 1;
            self.partition_epoch += 1;
        }
        leads
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
        let mut p = PartitionPlacement::single(NodeId(1), ShardId(3));
        assert_eq!(p.shard_on(2), ShardId(1));
        assert!(p.reregister(NodeId(1)));
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 2, 2), "fenced, then elected again");
        assert!(!p.reregister(NodeId(2)), "not a replica it leads");
        p.leader = -1;
        assert!(p.reelect(NodeId(1)), "leaderless, and in the ISR");
        assert_eq!((p.leader, p.leader_epoch), (1, 3));
    }
}
