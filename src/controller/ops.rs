//! What the active controller is asked to do, and the records each step becomes. Sans-IO:
//! `plan` checks one step against the current image and returns its records; the service
//! proposes them to the quorum and answers once they are committed.
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cluster::placement::{default_shard, PartitionPlacement};
use crate::metadata::{MetadataImage, MetadataRecord, TopicMeta};
use crate::model::NodeId;
use crate::security::acl::AclBinding;
use crate::security::quota::QuotaEntity;
use crate::security::sasl::ScramCredential;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    /// Replicas per partition (resolved by the broker: never -1 here).
    pub replication_factor: i16,
    /// Explicit replica lists by partition (CreateTopics `assignments`), else empty.
    #[serde(default)]
    pub assignments: Vec<Vec<i32>>,
    pub configs: BTreeMap<String, String>,
}

/// One ISR change a leader asks for: applied only if it still leads under `leader_epoch`
/// and the entry is still at `partition_epoch` (a compare-and-swap), and if every replica
/// joining is alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsrChangeRequest {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
}

/// A broker's registration request (Kafka's BrokerRegistrationRequest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub node_id: i32,
    pub incarnation: Uuid,
    /// The advertised client endpoint.
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Every client listener's advertised endpoint.
    #[serde(default)]
    pub listeners: Vec<crate::metadata::Endpoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerOp {
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    /// Replaces each topic's config map; the maps are validated by the caller.
    SetTopicConfigs {
        topics: Vec<(String, BTreeMap<String, String>)>,
        validate_only: bool,
    },
    /// Replaces the dynamic broker configs of each entity ("" or a node id); the maps are
    /// validated by the caller.
    SetBrokerConfigs {
        entities: Vec<(String, BTreeMap<String, String>)>,
        validate_only: bool,
    },
    /// Grows each topic to the given partition count.
    CreatePartitions {
        topics: Vec<(String, i32)>,
        validate_only: bool,
    },
    /// A node (re)starts: it is registered under a new incarnation, and partitions a
    /// metadata log from before the placement table left unplaced are placed on it.
    RegisterBroker(Registration),
    /// A broker's heartbeat (Kafka's BrokerHeartbeatRequest). A fenced broker that
    /// heartbeats is unfenced; `shutting_down` asks to be moved out of leadership (controlled
    /// shutdown), after which the broker may stop.
    Heartbeat {
        node_id: i32,
        incarnation: Uuid,
        shutting_down: bool,
    },
    /// Fences brokers whose sessions expired (the active controller's own timer).
    Fence {
        node_ids: Vec<i32>,
    },
    /// A block of `PRODUCER_ID_BLOCK` producer ids for a broker (Kafka's
    /// AllocateProducerIds).
    AllocateProducerIds {
        node_id: i32,
    },
    /// Partition leaders ask to change ISRs (Kafka's AlterPartition, batched as Kafka's
    /// is): one step per change, each checked on its own.
    AlterPartition {
        changes: Vec<IsrChangeRequest>,
    },
    /// ElectLeaders: moves leadership of each partition to its preferred replica where
    /// that one is alive and in sync; with `unclean`, instead gives a leaderless partition
    /// any live replica. `None`: every partition (`auto.leader.rebalance.enable`), and
    /// only the moves are answered.
    ElectLeaders {
        partitions: Option<Vec<(String, i32)>>,
        unclean: bool,
    },
    /// AlterPartitionReassignments: moves each partition to the given replicas (KIP-455),
    /// or with `None` cancels the move in progress.
    Reassign {
        partitions: Vec<(String, i32, Option<Vec<i32>>)>,
    },
    /// AlterUserScramCredentials: each deletion (user, mechanism), then each upsertion, as
    /// its own step; the credentials are checked by the caller.
    AlterScram {
        deletions: Vec<(String, String)>,
        upsertions: Vec<(String, String, ScramCredential)>,
    },
    /// CreateAcls: each binding as its own step (one equal to an existing binding is
    /// already there: nothing to write).
    CreateAcls {
        acls: Vec<AclBinding>,
    },
    /// DeleteAcls: per filter, the ids of the bindings it matched (the broker matched them
    /// against its image; ids gone meanwhile are skipped).
    DeleteAcls {
        ids: Vec<Vec<Uuid>>,
    },
    /// AlterClientQuotas: per entity (checked by the caller), its keys set or removed.
    AlterClientQuotas {
        entries: Vec<(QuotaEntity, Vec<(String, Option<f64>)>)>,
        validate_only: bool,
    },
    /// Records from a single-node metadata log written before the quorum existed, taken
    /// over as they are (once, on the first start of a node that has one).
    Import {
        records: Vec<MetadataRecord>,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum ControllerError {
    #[error("topic already exists")]
    AlreadyExists,
    #[error("unknown topic")]
    UnknownTopic,
    #[error("Topic currently has {current} partitions, which is higher than the requested {requested}.")]
    PartitionsNotIncreased { current: i32, requested: i32 },
    #[error("Unable to replicate the partition {wanted} time(s): The target replication factor of {wanted} cannot be reached because only {live} broker(s) are registered.")]
    InvalidReplicationFactor { wanted: i16, live: usize },
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// A heartbeat from an incarnation the controller no longer knows: register again.
    #[error("broker {0} is not registered with this incarnation")]
    StaleBroker(i32),
    /// The metadata quorum could not commit the change (no quorum, a storage failure).
    #[error("metadata log: {0}")]
    Storage(String),
    /// AlterPartition from a leader that no longer leads under that epoch.
    #[error("fenced leader epoch")]
    FencedLeaderEpoch,
    /// AlterPartition against an entry that changed meanwhile.
    #[error("the partition epoch moved on")]
    InvalidUpdateVersion,
    /// AlterPartition with an ISR that is not a set of live replicas including the leader.
    #[error("invalid ISR {0:?}")]
    InvalidIsr(Vec<i32>),
    #[error("unknown partition")]
    UnknownPartition,
    /// ElectLeaders: the preferred replica already leads.
    #[error("election not needed")]
    ElectionNotNeeded,
    /// ElectLeaders: the preferred replica is not alive and in sync.
    #[error("preferred leader not available")]
    PreferredLeaderNotAvailable,
    /// AlterPartitionReassignments cancels a move that is not in progress.
    #[error("no reassignment is in progress")]
    NoReassignmentInProgress,
    /// A credential (or ACL) to delete that does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// No active controller is reachable right now; the client retries.
    #[error("no active controller: {0}")]
    NotAvailable(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerResult {
    Created(Vec<Result<Arc<TopicMeta>, ControllerError>>),
    Deleted(Vec<Result<(), ControllerError>>),
    /// For SetTopicConfigs, SetBrokerConfigs and CreatePartitions, one per item, in order;
    /// for RegisterBroker and Import, one.
    Changed(Vec<Result<(), ControllerError>>),
    /// Producer ids `first..first + count`, the broker's to hand out.
    ProducerIds {
        first: i64,
        count: i64,
    },
}

/// Producer ids per block, as Kafka's controller hands them out.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// Where the first block starts: the wall clock in microseconds, which is above any id a
/// single node of an earlier version handed out (those followed the clock), so producer
/// state kept in its logs never meets a reused id.
fn first_producer_id() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// Where the controller places new partitions. With no broker registered yet (a node's
/// first start), the node itself; else the live brokers, striped as Kafka does.
#[derive(Debug, Clone, Copy)]
pub struct Placer {
    pub node: NodeId,
    /// This node's shard count: the default owning shard spreads over it.
    pub shards: usize,
}

impl Placer {
    /// The placement records of partitions `range` of `topic`, `rf` replicas each.
    fn new_partitions(
        &self,
        image: &MetadataImage,
        topic: &str,
        range: std::ops::Range<i32>,
        rf: i16,
        assignments: &[Vec<i32>],
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let live: Vec<(i32, Option<&str>)> = image.live_brokers().map(|(id, b)| (id, b.rack.as_deref())).collect();
        let live = if live.is_empty() { vec![(self.node.0, None)] } else { live };
        let replicas: Vec<Vec<i32>> = if !assignments.is_empty() {
            for a in assignments {
                if let Some(b) = a.iter().find(|b| !live.iter().any(|(id, _)| id == *b)) {
                    return Err(ControllerError::InvalidReplicaAssignment(format!("broker {b} is not a live broker")));
                }
                if a.is_empty() || a.iter().collect::<std::collections::BTreeSet<_>>().len() != a.len() {
                    return Err(ControllerError::InvalidReplicaAssignment(
                        "each replica list must name distinct brokers".into(),
                    ));
                }
            }
            assignments.to_vec()
        } else {
            if rf < 1 || rf as usize > live.len() {
                return Err(ControllerError::InvalidReplicationFactor { wanted: rf, live: live.len() });
            }
            let start = crc32c::crc32c(topic.as_bytes()) as usize;
            range.clone().map(|p| striped(&live, start, p as usize, rf as usize)).collect()
        };
        Ok(range
            .zip(replicas)
            .map(|(p, replicas)| MetadataRecord::Partition {
                topic: topic.to_string(),
                partition: p,
                placement: PartitionPlacement {
                    leader: replicas[0],
                    // Every replica is in sync: a new partition is empty everywhere.
                    isr: replicas.clone(),
                    replicas,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    shard: default_shard(topic, p, self.shards).0 as u32,
                    ..Default::default()
                },
            })
            .collect())
    }
}

/// Kafka's striped replica placement: brokers ordered so that racks alternate, partition
/// `p`'s first replica at `start + p`, the others after it at a shift that grows each time
/// the partitions wrap around the brokers, so that leaders and followers both spread.
fn striped(live: &[(i32, Option<&str>)], start: usize, p: usize, rf: usize) -> Vec<i32> {
    // Racks alternate: the first broker of each rack, then the second of each, ...
    let mut racks: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for &(id, rack) in live {
        racks.entry(rack).or_default().push(id);
    }
    let mut ordered = Vec::with_capacity(live.len());
    let deepest = racks.values().map(Vec::len).max().unwrap_or(0);
    for i in 0..deepest {
        for ids in racks.values() {
            if let Some(&id) = ids.get(i) {
                ordered.push(id);
            }
        }
    }
    let rack_of = |id: i32| live.iter().find(|(b, _)| *b == id).and_then(|(_, r)| *r);
    let n = ordered.len();
    let first = (start + p) % n;
    let shift = (start / n + p / n) % n.max(1);
    let mut replicas = vec![ordered[first]];
    // Each next replica goes to a rack that has none yet while there is one; once every
    // rack has one, any rack again (Kafka's rack-aware assignment).
    let mut racks_used = std::collections::BTreeSet::from([rack_of(ordered[first])]);
    let mut k = 0;
    while replicas.len() < rf {
        let b = ordered[(first + 1 + (shift + k) % (n - 1).max(1)) % n];
        k += 1;
        let rack_taken = racks_used.contains(&rack_of(b)) && racks_used.len() < racks.len() && k < 2 * n;
        if replicas.contains(&b) || rack_taken {
            continue;
        }
        replicas.push(b);
        racks_used.insert(rack_of(b));
        if racks_used.len() == racks.len() {
            racks_used.clear();
        }
    }
    replicas
}

/// One step of an operation: the records that carry it out (empty: nothing to write), or
/// why it is refused.
pub type Step = Result<Vec<MetadataRecord>, ControllerError>;

/// The steps of `op` against `image`, each checked as if the ones before it were applied.
/// Validate-only operations are checked the same way and must not be proposed.
pub fn plan(image: &MetadataImage, op: &ControllerOp, placer: &Placer) -> Vec<Step> {
    let mut scratch = image.clone();
    let mut steps = Vec::new();
    let mut push = |scratch: &mut MetadataImage, step: Step| {
        if let Ok(records) = &step {
            records.iter().for_each(|r| scratch.apply(r));
        }
        steps.push(step);
    };
    match op {
        ControllerOp::CreateTopics { topics, .. } => {
            for t in topics {
                let step = if scratch.topic(&t.name).is_some() {
                    Err(ControllerError::AlreadyExists)
                } else {
                    let mut records = vec![MetadataRecord::CreateTopic {
                        name: t.name.clone(),
                        id: Uuid::new_v4(),
                        partitions: t.partitions,
                        configs: t.configs.clone(),
                    }];
                    placer.new_partitions(&scratch, &t.name, 0..t.partitions, t.replication_factor, &t.assignments).map(
                        |placed| {
                            records.extend(placed);
                            records
                        },
                    )
                };
                push(&mut scratch, step);
            }
        }
        ControllerOp::DeleteTopics { names } => {
            for name in names {
                let step = match scratch.topic(name) {
                    None => Err(ControllerError::UnknownTopic),
                    Some(_) => Ok(vec![MetadataRecord::DeleteTopic { name: name.clone() }]),
                };
                push(&mut scratch, step);
            }
        }
        ControllerOp::SetTopicConfigs { topics, .. } => {
            for (name, configs) in topics {
                let step = match scratch.topic(name) {
                    None => Err(ControllerError::UnknownTopic),
                    Some(_) => {
                        Ok(vec![MetadataRecord::SetTopicConfigs { name: name.clone(), configs: configs.clone() }])
                    }
                };
                push(&mut scratch, step);
            }
        }
        ControllerOp::SetBrokerConfigs { entities, .. } => {
            for (entity, configs) in entities {
                let record = MetadataRecord::SetBrokerConfigs { entity: entity.clone(), configs: configs.clone() };
                push(&mut scratch, Ok(vec![record]));
            }
        }
        ControllerOp::CreatePartitions { topics, .. } => {
            for (name, partitions) in topics {
                let step = match scratch.topic(name).map(|t| t.partitions) {
                    None => Err(ControllerError::UnknownTopic),
                    Some(current) if *partitions <= current => {
                        Err(ControllerError::PartitionsNotIncreased { current, requested: *partitions })
                    }
                    Some(current) => {
                        // New partitions get as many replicas as the topic's first has.
                        let topic = scratch.topic(name).expect("checked above");
                        let rf = topic.placement(0).map_or(1, |p| p.replicas.len() as i16);
                        let mut records =
                            vec![MetadataRecord::SetPartitionCount { name: name.clone(), partitions: *partitions }];
                        placer.new_partitions(&scratch, name, current..*partitions, rf, &[]).map(|placed| {
                            records.extend(placed);
                            records
                        })
                    }
                };
                push(&mut scratch, step);
            }
        }
        ControllerOp::RegisterBroker(r) => {
            // Partitions of a pre-placement log belong to the node that had the log: the
            // first to register after it was taken over.
            let node = Placer { node: NodeId(r.node_id), ..*placer };
            let empty = MetadataImage::default();
            let mut records: Vec<MetadataRecord> = scratch
                .unplaced()
                .into_iter()
                .flat_map(|(topic, p)| node.new_partitions(&empty, &topic, p..p + 1, 1, &[]).unwrap_or_default())
                .collect();
            records.push(MetadataRecord::RegisterBroker {
                node_id: r.node_id,
                incarnation: r.incarnation,
                host: r.host.clone(),
                port: r.port,
                rack: r.rack.clone(),
                listeners: r.listeners.clone(),
            });
            push(&mut scratch, Ok(records));
        }
        ControllerOp::Heartbeat { node_id, incarnation, shutting_down } => {
            let step = match scratch.brokers.get(node_id) {
                Some(b) if b.incarnation != *incarnation => Err(ControllerError::StaleBroker(*node_id)),
                None => Err(ControllerError::StaleBroker(*node_id)),
                Some(b) if *shutting_down && !b.fenced => Ok(vec![MetadataRecord::FenceBroker { node_id: *node_id }]),
                Some(b) if !*shutting_down && b.fenced => Ok(vec![MetadataRecord::UnfenceBroker { node_id: *node_id }]),
                Some(_) => Ok(Vec::new()),
            };
            push(&mut scratch, step);
        }
        ControllerOp::Fence { node_ids } => {
            let records = node_ids
                .iter()
                .filter(|id| scratch.brokers.get(id).is_some_and(|b| !b.fenced))
                .map(|&node_id| MetadataRecord::FenceBroker { node_id })
                .collect();
            push(&mut scratch, Ok(records));
        }
        ControllerOp::Import { records } => push(&mut scratch, Ok(records.clone())),
        ControllerOp::AlterPartition { changes } => {
            for IsrChangeRequest { topic, partition, leader, leader_epoch, partition_epoch, isr } in changes {
                let live = |n: i32| scratch.brokers.get(&n).is_some_and(|b| !b.fenced);
                let step = match scratch.topic(topic).and_then(|t| t.placement(*partition)) {
                    None => Err(ControllerError::UnknownPartition),
                    Some(p) if p.leader != *leader || p.leader_epoch != *leader_epoch => {
                        Err(ControllerError::FencedLeaderEpoch)
                    }
                    Some(p) if p.partition_epoch != *partition_epoch => Err(ControllerError::InvalidUpdateVersion),
                    Some(p) if !p.valid_isr(isr) || isr.iter().any(|n| !p.isr.contains(n) && !live(*n)) => {
                        Err(ControllerError::InvalidIsr(isr.clone()))
                    }
                    Some(p) => {
                        let mut placement = p.clone();
                        placement.isr = isr.clone();
                        placement.partition_epoch += 1;
                        // An ISR that now holds every target replica completes a move.
                        placement.try_complete_reassignment(&live);
                        Ok(vec![MetadataRecord::Partition { topic: topic.clone(), partition: *partition, placement }])
                    }
                };
                push(&mut scratch, step);
            }
        }
        ControllerOp::ElectLeaders { partitions, unclean } => {
            let wanted: Vec<(String, i32)> = match partitions {
                Some(list) => list.clone(),
                None => {
                    scratch.topics.values().flat_map(|t| t.placement.keys().map(|&p| (t.name.to_string(), p))).collect()
                }
            };
            for (topic, partition) in wanted {
                let live = |n: i32| scratch.brokers.get(&n).is_some_and(|b| !b.fenced);
                let step = match scratch.topic(&topic).and_then(|t| t.placement(partition)) {
                    None => Err(ControllerError::UnknownPartition),
                    Some(p) if !*unclean && p.replicas.first() == Some(&p.leader) => {
                        Err(ControllerError::ElectionNotNeeded)
                    }
                    Some(p) if *unclean && p.leader >= 0 => Err(ControllerError::ElectionNotNeeded),
                    Some(p) => {
                        let mut placement = p.clone();
                        let elected =
                            if *unclean { placement.unfence(&live, true) } else { placement.elect_preferred(&live) };
                        if elected {
                            Ok(vec![MetadataRecord::Partition { topic, partition, placement }])
                        } else {
                            Err(ControllerError::PreferredLeaderNotAvailable)
                        }
                    }
                };
                // Automatic rebalancing asks for all: only the moves are worth answering.
                if partitions.is_some() || step.is_ok() {
                    push(&mut scratch, step);
                }
            }
        }
        ControllerOp::Reassign { partitions } => {
            for (topic, partition, target) in partitions {
                let step = reassign_step(&scratch, topic, *partition, target.as_deref());
                push(&mut scratch, step);
            }
        }
        ControllerOp::AlterScram { deletions, upsertions } => {
            for (name, mechanism) in deletions {
                let step = if scratch.scram.get(name).is_some_and(|m| m.contains_key(mechanism)) {
                    Ok(vec![MetadataRecord::RemoveUserScramCredential {
                        name: name.clone(),
                        mechanism: mechanism.clone(),
                    }])
                } else {
                    Err(ControllerError::ResourceNotFound(
                        "Attempt to delete a user credential that does not exist".into(),
                    ))
                };
                push(&mut scratch, step);
            }
            for (name, mechanism, credential) in upsertions {
                let record = MetadataRecord::UserScramCredential {
                    name: name.clone(),
                    mechanism: mechanism.clone(),
                    credential: credential.clone(),
                };
                push(&mut scratch, Ok(vec![record]));
            }
        }
        ControllerOp::CreateAcls { acls } => {
            for acl in acls {
                let step = match scratch.acls.find(acl) {
                    Some(_) => Ok(Vec::new()),
                    None => Ok(vec![MetadataRecord::AccessControlEntry { id: Uuid::new_v4(), acl: acl.clone() }]),
                };
                push(&mut scratch, step);
            }
        }
        ControllerOp::DeleteAcls { ids } => {
            for matched in ids {
                let records = matched
                    .iter()
                    .filter(|id| scratch.acls.iter().any(|(x, _)| x == *id))
                    .map(|&id| MetadataRecord::RemoveAccessControlEntry { id })
                    .collect();
                push(&mut scratch, Ok(records));
            }
        }
        ControllerOp::AlterClientQuotas { entries, .. } => {
            for (entity, ops) in entries {
                let records = ops
                    .iter()
                    .map(|(key, value)| MetadataRecord::ClientQuota {
                        entity: entity.clone(),
                        key: key.clone(),
                        value: *value,
                    })
                    .collect();
                push(&mut scratch, Ok(records));
            }
        }
        ControllerOp::AllocateProducerIds { node_id } => {
            let first = if scratch.next_producer_id == 0 { first_producer_id() } else { scratch.next_producer_id };
            let record = MetadataRecord::ProducerIds { node_id: *node_id, next: first + PRODUCER_ID_BLOCK };
            push(&mut scratch, Ok(vec![record]));
        }
    }
    steps
}

/// One partition of AlterPartitionReassignments: start (or replace) a move to `target`,
/// or with `None` cancel the move in progress.
fn reassign_step(image: &MetadataImage, topic: &str, partition: i32, target: Option<&[i32]>) -> Step {
    let invalid = |why: &str| Err(ControllerError::InvalidReplicaAssignment(why.to_string()));
    let live = |n: i32| image.brokers.get(&n).is_some_and(|b| !b.fenced);
    let Some(p) = image.topic(topic).and_then(|t| t.placement(partition)) else {
        return Err(ControllerError::UnknownPartition);
    };
    let mut placement = p.clone();
    let changed = match target {
        None if !p.reassigning() => return Err(ControllerError::NoReassignmentInProgress),
        None if !p.original().iter().any(|r| p.isr.contains(r)) => {
            return invalid("none of the original replicas is in sync: the move cannot be cancelled")
        }
        None => placement.cancel_reassignment(&live),
        Some(t) if t.is_empty() || t.iter().collect::<std::collections::BTreeSet<_>>().len() != t.len() => {
            return invalid("the replica list must name distinct brokers")
        }
        Some(t) => {
            if let Some(b) = t.iter().find(|&&r| !image.brokers.contains_key(&r)) {
                return invalid(&format!("broker {b} is not a registered broker"));
            }
            placement.reassign(t, &live)
        }
    };
    if placement.isr.iter().any(|r| !placement.replicas.contains(r)) {
        return invalid("no replica in sync would remain");
    }
    Ok(if changed {
        vec![MetadataRecord::Partition { topic: topic.to_string(), partition, placement }]
    } else {
        Vec::new()
    })
}

/// Whether `op` only checks (validate_only): its steps are answered, not proposed.
pub fn validate_only(op: &ControllerOp) -> bool {
    match op {
        ControllerOp::CreateTopics { validate_only, .. }
        | ControllerOp::SetTopicConfigs { validate_only, .. }
        | ControllerOp::SetBrokerConfigs { validate_only, .. }
        | ControllerOp::CreatePartitions { validate_only, .. }
        | ControllerOp::AlterClientQuotas { validate_only, .. } => *validate_only,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placer() -> Placer {
        Placer { node: NodeId(1), shards: 2 }
    }

    fn topic(name: &str, partitions: i32, rf: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: rf,
            assignments: Vec::new(),
            configs: BTreeMap::new(),
        }
    }

    fn cluster(racks: &[Option<&str>]) -> MetadataImage {
        let mut img = MetadataImage::default();
        for (i, rack) in racks.iter().enumerate() {
            img.apply(&MetadataRecord::RegisterBroker {
                node_id: i as i32 + 1,
                incarnation: Uuid::new_v4(),
                host: "127.0.0.1".into(),
                port: 9092 + i as u16,
                rack: rack.map(str::to_string),
                listeners: Vec::new(),
            });
        }
        img
    }

    #[test]
    fn striped_placement_spreads_leaders_and_racks() {
        let img = cluster(&[Some("a"), Some("a"), Some("b"), Some("b"), Some("c"), Some("c")]);
        let op = ControllerOp::CreateTopics { topics: vec![topic("t", 12, 3)], validate_only: false };
        let records = plan(&img, &op, &placer()).remove(0).unwrap();
        let racks = |id: i32| ["a", "a", "b", "b", "c", "c"][id as usize - 1];
        let mut leaders = BTreeMap::new();
        for r in &records[1..] {
            let MetadataRecord::Partition { placement, .. } = r else { panic!("partition records follow the topic") };
            assert_eq!(placement.replicas.len(), 3);
            assert_eq!(placement.leader, placement.replicas[0], "the preferred replica leads");
            assert_eq!(placement.isr, placement.replicas, "a new partition is in sync everywhere");
            let distinct: std::collections::BTreeSet<_> = placement.replicas.iter().collect();
            assert_eq!(distinct.len(), 3, "distinct brokers");
            let rack_set: std::collections::BTreeSet<_> = placement.replicas.iter().map(|&b| racks(b)).collect();
            assert_eq!(rack_set.len(), 3, "one replica per rack: {:?}", placement.replicas);
            *leaders.entry(placement.leader).or_insert(0) += 1;
        }
        assert_eq!(leaders.len(), 6, "every broker leads some: {leaders:?}");
        assert!(leaders.values().all(|&n| n == 2));
    }

    #[test]
    fn producer_id_blocks_never_overlap() {
        let mut img = MetadataImage::default();
        let mut blocks = Vec::new();
        for node_id in [1, 2, 1] {
            let records = plan(&img, &ControllerOp::AllocateProducerIds { node_id }, &placer()).remove(0).unwrap();
            let MetadataRecord::ProducerIds { next, .. } = records[0] else { panic!("a producer id block") };
            blocks.push(next - PRODUCER_ID_BLOCK..next);
            records.iter().for_each(|r| img.apply(r));
        }
        assert!(blocks[0].start > 0);
        assert_eq!(blocks[1].start, blocks[0].end);
        assert_eq!(blocks[2].start, blocks[1].end);
    }

    #[test]
    fn replication_factor_above_the_live_brokers_is_refused() {
        let mut img = cluster(&[None, None]);
        let op = ControllerOp::CreateTopics { topics: vec![topic("t", 1, 3)], validate_only: false };
        assert_eq!(
            plan(&img, &op, &placer())[0],
            Err(ControllerError::InvalidReplicationFactor { wanted: 3, live: 2 })
        );
        img.apply(&MetadataRecord::FenceBroker { node_id: 2 });
        let op = ControllerOp::CreateTopics { topics: vec![topic("t", 1, 2)], validate_only: false };
        assert!(plan(&img, &op, &placer())[0].is_err(), "fenced brokers take no replicas");
    }

    #[test]
    fn steps_see_the_ones_before_them() {
        let img = MetadataImage::default();
        let t = |n: &str| topic(n, 2, 1);
        let op = ControllerOp::CreateTopics { topics: vec![t("a"), t("a"), t("b")], validate_only: false };
        let steps = plan(&img, &op, &placer());
        assert_eq!(steps[0].as_ref().unwrap().len(), 3, "the topic and its two partitions");
        assert_eq!(steps[1], Err(ControllerError::AlreadyExists));
        assert!(steps[2].is_ok());
        let grow = ControllerOp::CreatePartitions { topics: vec![("a".into(), 1)], validate_only: false };
        assert_eq!(plan(&img, &grow, &placer())[0], Err(ControllerError::UnknownTopic));
    }

    #[test]
    fn registration_places_what_is_unplaced() {
        let mut img = MetadataImage::default();
        img.apply(&MetadataRecord::CreateTopic {
            name: "old".into(),
            id: Uuid::new_v4(),
            partitions: 2,
            configs: BTreeMap::new(),
        });
        let op = ControllerOp::RegisterBroker(Registration {
            node_id: 1,
            incarnation: Uuid::new_v4(),
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
            listeners: Vec::new(),
        });
        let records = plan(&img, &op, &placer()).remove(0).unwrap();
        assert_eq!(records.len(), 3);
        records.iter().for_each(|r| img.apply(r));
        assert!(img.unplaced().is_empty());
        assert_eq!(img.topic("old").unwrap().placement(0).unwrap().leader_epoch, 2);
    }

    #[test]
    fn isr_changes_are_compare_and_swap() {
        let mut img = cluster(&[None, None, None]);
        let op = ControllerOp::CreateTopics { topics: vec![topic("t", 1, 3)], validate_only: false };
        plan(&img, &op, &placer()).remove(0).unwrap().iter().for_each(|r| img.apply(r));
        let p = img.topic("t").unwrap().placement(0).unwrap().clone();
        let others: Vec<i32> = p.replicas.iter().copied().filter(|&r| r != p.leader).collect();
        let change = |leader_epoch, partition_epoch, isr: Vec<i32>| ControllerOp::AlterPartition {
            changes: vec![IsrChangeRequest {
                topic: "t".into(),
                partition: 0,
                leader: p.leader,
                leader_epoch,
                partition_epoch,
                isr,
            }],
        };
        let shrunk = vec![p.leader, others[0]];
        let steps = plan(&img, &change(0, 0, shrunk.clone()), &placer());
        let records = steps[0].clone().expect("a valid shrink");
        records.iter().for_each(|r| img.apply(r));
        let after = img.topic("t").unwrap().placement(0).unwrap().clone();
        assert_eq!((after.isr.clone(), after.partition_epoch), (shrunk, 1));
        assert_eq!(
            plan(&img, &change(0, 0, p.replicas.clone()), &placer())[0],
            Err(ControllerError::InvalidUpdateVersion)
        );
        assert_eq!(
            plan(&img, &change(1, 1, p.replicas.clone()), &placer())[0],
            Err(ControllerError::FencedLeaderEpoch)
        );
        assert!(matches!(plan(&img, &change(0, 1, others.clone()), &placer())[0], Err(ControllerError::InvalidIsr(_))));
        // A fenced broker may not join; one that is alive may.
        img.apply(&MetadataRecord::FenceBroker { node_id: others[1] });
        let grown = vec![p.leader, others[0], others[1]];
        let epoch_now = img.topic("t").unwrap().placement(0).unwrap().partition_epoch;
        assert!(matches!(
            plan(&img, &change(0, epoch_now, grown.clone()), &placer())[0],
            Err(ControllerError::InvalidIsr(_))
        ));
        img.apply(&MetadataRecord::UnfenceBroker { node_id: others[1] });
        assert!(plan(&img, &change(0, epoch_now, grown), &placer())[0].is_ok());
    }

    #[test]
    fn reassignment_completes_through_the_isr() {
        let mut img = cluster(&[None, None, None, None]);
        let op = ControllerOp::CreateTopics {
            topics: vec![NewTopic { assignments: vec![vec![1, 2, 3]], ..topic("t", 1, 3) }],
            validate_only: false,
        };
        plan(&img, &op, &placer()).remove(0).unwrap().iter().for_each(|r| img.apply(r));
        let reassign = |target: Option<Vec<i32>>| ControllerOp::Reassign { partitions: vec![("t".into(), 0, target)] };
        assert_eq!(plan(&img, &reassign(None), &placer())[0], Err(ControllerError::NoReassignmentInProgress));
        assert!(matches!(
            plan(&img, &reassign(Some(vec![2, 3, 9])), &placer())[0],
            Err(ControllerError::InvalidReplicaAssignment(_))
        ));
        assert!(matches!(
            plan(&img, &reassign(Some(vec![2, 2])), &placer())[0],
            Err(ControllerError::InvalidReplicaAssignment(_))
        ));
        let records = plan(&img, &reassign(Some(vec![2, 3, 4])), &placer()).remove(0).unwrap();
        records.iter().for_each(|r| img.apply(r));
        let p = img.topic("t").unwrap().placement(0).unwrap().clone();
        assert_eq!((p.adding.clone(), p.removing.clone(), p.partition_epoch), (vec![4], vec![1], 1));
        // The leader reports 4 in sync: the move completes in the same record.
        let grow = ControllerOp::AlterPartition {
            changes: vec![IsrChangeRequest {
                topic: "t".into(),
                partition: 0,
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 1,
                isr: vec![1, 2, 3, 4],
            }],
        };
        plan(&img, &grow, &placer()).remove(0).unwrap().iter().for_each(|r| img.apply(r));
        let p = img.topic("t").unwrap().placement(0).unwrap().clone();
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader, p.leader_epoch), (vec![2, 3, 4], vec![2, 3, 4], 2, 1));
        assert!(!p.reassigning());
    }
}
