//! Cluster metadata as a state machine fed by records: `MetadataImage::apply` is the only
//! way it changes. The records are the entries of the controller quorum's log
//! (`crate::controller`); `store` reads the single-node log that came before it.
//! Every shard holds an `Arc` of the current image, replaced whole on each change.
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cluster::placement::PartitionPlacement;
use crate::limits;
use crate::model::NodeId;
use crate::security::acl::{AclBinding, AclSet};
use crate::security::quota::{QuotaEntity, QuotaSet};
use crate::security::sasl::ScramCredential;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    CreateTopic {
        name: String,
        id: Uuid,
        partitions: i32,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
    },
    /// Replaces the topic's whole config map (AlterConfigs, IncrementalAlterConfigs).
    SetTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    /// Grows the topic to `partitions` (CreatePartitions); never shrinks.
    SetPartitionCount {
        name: String,
        partitions: i32,
    },
    /// Replaces the dynamic broker configs of `entity`: a node id, or "" for the
    /// cluster-wide defaults (AlterConfigs, IncrementalAlterConfigs on a broker resource).
    SetBrokerConfigs {
        entity: String,
        configs: BTreeMap<String, String>,
    },
    /// A partition's placement (Kafka's PartitionRecord and PartitionChangeRecord, whole):
    /// written for every new partition, and whenever its leader, epochs or ISR change.
    Partition {
        topic: String,
        partition: i32,
        placement: PartitionPlacement,
    },
    /// A node (re)started (Kafka's RegisterBrokerRecord, the fencing of its previous
    /// incarnation, its unfencing): it leads again what it led, two epochs on, as in Kafka.
    RegisterBroker {
        node_id: i32,
        incarnation: Uuid,
        /// Its advertised client endpoint and rack (absent in records written before the
        /// cluster existed: the single node's own).
        #[serde(default)]
        host: String,
        #[serde(default)]
        port: u16,
        #[serde(default)]
        rack: Option<String>,
        /// Every client listener's advertised endpoint (`host`/`port` is the first's);
        /// absent in records of earlier versions.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        listeners: Vec<Endpoint>,
    },
    /// The broker missed its session, or asked to shut down (Kafka's FenceBrokerRecord):
    /// it leads nothing until it registers or heartbeats again.
    FenceBroker {
        node_id: i32,
    },
    /// A fenced broker heartbeats again (Kafka's UnfenceBrokerRecord): it leads again what
    /// it prefers to lead.
    UnfenceBroker {
        node_id: i32,
    },
    /// A block of producer ids handed to a broker (Kafka's ProducerIdsRecord): ids below
    /// `next` are taken, cluster-wide.
    ProducerIds {
        node_id: i32,
        next: i64,
    },
    /// A user's SCRAM credential for one mechanism (Kafka's UserScramCredentialRecord): salt,
    /// iterations and the derived keys, never the password.
    UserScramCredential {
        name: String,
        mechanism: String,
        credential: ScramCredential,
    },
    /// Kafka's RemoveUserScramCredentialRecord.
    RemoveUserScramCredential {
        name: String,
        mechanism: String,
    },
    /// An ACL (Kafka's AccessControlEntryRecord).
    AccessControlEntry {
        id: Uuid,
        acl: AclBinding,
    },
    /// Kafka's RemoveAccessControlEntryRecord.
    RemoveAccessControlEntry {
        id: Uuid,
    },
    /// One quota key of one entity, set or (`None`) removed (Kafka's ClientQuotaRecord).
    ClientQuota {
        entity: QuotaEntity,
        key: String,
        value: Option<f64>,
    },
}

/// One advertised listener of a broker: clients connected on listener `name` are told
/// this endpoint, and followers fetch on the `inter.broker.listener.name` one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// A registered broker (Kafka's BrokerRegistration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub incarnation: Uuid,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Every client listener's endpoint (empty in registrations of earlier versions: then
    /// `host`/`port` is the only one).
    #[serde(default)]
    pub listeners: Vec<Endpoint>,
    /// Fenced: missed its session or shut down; not named as a leader, not given new
    /// replicas.
    pub fenced: bool,
}

impl BrokerRegistration {
    /// The endpoint of listener `name`: none if the broker has no such listener (Kafka
    /// leaves such brokers out of what it tells a client on that listener). A registration
    /// of an earlier version knows one endpoint, taken for every name.
    pub fn endpoint(&self, name: &str) -> Option<(&str, u16)> {
        if self.listeners.is_empty() {
            return (!self.host.is_empty()).then_some((self.host.as_str(), self.port));
        }
        self.listeners.iter().find(|l| l.name == name).map(|l| (l.host.as_str(), l.port))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: Arc<str>,
    pub id: Uuid,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
    /// The placement table's entries for this topic, by partition index.
    pub placement: BTreeMap<i32, PartitionPlacement>,
}

impl TopicMeta {
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }

    pub fn placement(&self, partition: i32) -> Option<&PartitionPlacement> {
        self.placement.get(&partition)
    }
}

/// A versioned, immutable snapshot of the metadata.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetadataImage {
    pub version: u64,
    /// The index of the last metadata log entry applied (0 before any).
    #[serde(default)]
    pub log_index: u64,
    pub topics: BTreeMap<Arc<str>, Arc<TopicMeta>>,
    /// Dynamic broker configs by entity: "" (cluster-wide default) or a node id.
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Registered brokers by node id.
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// The first producer id not handed out yet (0: none handed out).
    #[serde(default)]
    pub next_producer_id: i64,
    /// SCRAM credentials: user → mechanism name → credential.
    #[serde(default)]
    pub scram: BTreeMap<String, BTreeMap<String, ScramCredential>>,
    /// The ACLs, with the index the authorizer decides from.
    #[serde(default)]
    pub acls: AclSet,
    /// Client quotas (AlterClientQuotas).
    #[serde(default)]
    pub quotas: QuotaSet,
}

/// The topic (and cluster-default) config that lets an out-of-sync replica lead.
const UNCLEAN_KEY: &str = "unclean.leader.election.enable";

impl MetadataImage {
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::CreateTopic { name, id, partitions, configs } => {
                let name: Arc<str> = Arc::from(name.as_str());
                let meta = TopicMeta {
                    name: name.clone(),
                    id: *id,
                    partitions: *partitions,
                    configs: configs.clone(),
                    placement: BTreeMap::new(),
                };
                self.topics.insert(name, Arc::new(meta));
            }
            MetadataRecord::DeleteTopic { name } => {
                self.topics.remove(name.as_str());
            }
            MetadataRecord::SetTopicConfigs { name, configs } => {
                if let Some(t) = self.topics.get_mut(name.as_str()) {
                    Arc::make_mut(t).configs = configs.clone();
                }
            }
            MetadataRecord::SetPartitionCount { name, partitions } => {
                if let Some(t) = self.topics.get_mut(name.as_str()) {
                    let t = Arc::make_mut(t);
                    t.partitions = t.partitions.max(*partitions);
                }
            }
            MetadataRecord::SetBrokerConfigs { entity, configs } => {
                if configs.is_empty() {
                    self.broker_configs.remove(entity);
                } else {
                    self.broker_configs.insert(entity.clone(), configs.clone());
                }
            }
            MetadataRecord::Partition { topic, partition, placement } => {
                if let Some(t) = self.topics.get_mut(topic.as_str()) {
                    let t = Arc::make_mut(t);
                    // Epochs never go backwards: an entry older than the one held is a bug
                    // in whoever wrote it.
                    assert!(
                        t.placement.get(partition).is_none_or(|p| p.leader_epoch <= placement.leader_epoch),
                        "partition record for {topic}-{partition} moves the leader epoch backwards"
                    );
                    t.placement.insert(*partition, placement.clone());
                }
            }
            MetadataRecord::RegisterBroker { node_id, incarnation, host, port, rack, listeners } => {
                let registration = BrokerRegistration {
                    incarnation: *incarnation,
                    host: host.clone(),
                    port: *port,
                    rack: rack.clone(),
                    listeners: listeners.clone(),
                    fenced: false,
                };
                self.brokers.insert(*node_id, registration);
                self.each_placement(*node_id, |p, node, live, unclean| p.reregister(node, live, unclean));
            }
            MetadataRecord::FenceBroker { node_id } => {
                if let Some(b) = self.brokers.get_mut(node_id) {
                    b.fenced = true;
                }
                self.each_placement(*node_id, |p, node, live, unclean| p.fence(node, live, unclean));
            }
            MetadataRecord::ProducerIds { next, .. } => {
                assert!(*next >= self.next_producer_id, "producer id blocks never go back");
                self.next_producer_id = *next;
            }
            MetadataRecord::UserScramCredential { name, mechanism, credential } => {
                self.scram.entry(name.clone()).or_default().insert(mechanism.clone(), credential.clone());
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                if let Some(by_mechanism) = self.scram.get_mut(name) {
                    by_mechanism.remove(mechanism);
                    if by_mechanism.is_empty() {
                        self.scram.remove(name);
                    }
                }
            }
            MetadataRecord::AccessControlEntry { id, acl } => self.acls.insert(*id, acl.clone()),
            MetadataRecord::RemoveAccessControlEntry { id } => self.acls.remove(id),
            MetadataRecord::ClientQuota { entity, key, value } => self.quotas.set(entity, key, *value),
            MetadataRecord::UnfenceBroker { node_id } => {
                if let Some(b) = self.brokers.get_mut(node_id) {
                    b.fenced = false;
                }
                self.each_placement(*node_id, |p, _, live, unclean| p.unfence(live, unclean));
            }
        }
        self.version += 1;
    }

    /// Runs `change` on every placement entry that names `node_id` as a replica, copying
    /// only the topics it changes. `change` gets which nodes are alive (registered and not
    /// fenced, after this record) and whether the topic allows unclean leader election.
    fn each_placement(
        &mut self,
        node_id: i32,
        change: impl Fn(&mut PartitionPlacement, NodeId, &dyn Fn(i32) -> bool, bool) -> bool,
    ) {
        let live: std::collections::BTreeSet<i32> = self.live_brokers().map(|(id, _)| id).collect();
        // Before any broker registered (a metadata log from a single node), the node is.
        let alive = |n: i32| live.contains(&n) || (self.brokers.is_empty() && n == node_id);
        let cluster_unclean = self.broker_configs.get("").and_then(|c| c.get(UNCLEAN_KEY)).map(|v| v == "true");
        for t in self.topics.values_mut() {
            if t.placement.values().any(|p| p.replicas.contains(&node_id)) {
                let unclean = t.configs.get(UNCLEAN_KEY).map(|v| v == "true").or(cluster_unclean).unwrap_or(false);
                let t = Arc::make_mut(t);
                for p in t.placement.values_mut() {
                    if p.replicas.contains(&node_id) {
                        change(p, NodeId(node_id), &alive, unclean);
                    }
                }
            }
        }
    }

    /// The brokers that are registered and not fenced, by node id.
    pub fn live_brokers(&self) -> impl Iterator<Item = (i32, &BrokerRegistration)> {
        self.brokers.iter().filter(|(_, b)| !b.fenced).map(|(&id, b)| (id, b))
    }

    /// The dynamic broker config layers that apply to `node_id`, weakest first: the
    /// cluster-wide defaults, then the node's own.
    pub fn broker_config_layers(&self, node_id: i32) -> Vec<&BTreeMap<String, String>> {
        ["".to_string(), node_id.to_string()].iter().filter_map(|e| self.broker_configs.get(e)).collect()
    }

    /// Where a dynamic broker config of `node_id` comes from, with its value: the node's
    /// own (true) or the cluster-wide default (false).
    pub fn dynamic_broker_config(&self, node_id: i32, key: &str) -> Option<(&str, bool)> {
        let own = self.broker_configs.get(&node_id.to_string()).and_then(|m| m.get(key));
        let default = self.broker_configs.get("").and_then(|m| m.get(key));
        own.map(|v| (v.as_str(), true)).or(default.map(|v| (v.as_str(), false)))
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<&Arc<TopicMeta>> {
        self.topics.values().find(|t| t.id == id)
    }

    /// The partitions without a placement entry (a metadata log written before the
    /// placement table existed), in order.
    pub fn unplaced(&self) -> Vec<(Arc<str>, i32)> {
        let mut out = Vec::new();
        for t in self.topics.values() {
            for p in 0..t.partitions {
                if !t.placement.contains_key(&p) {
                    out.push((t.name.clone(), p));
                }
            }
        }
        out
    }
}

/// Kafka's topic name rule: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name {name:?} is not allowed"));
    }
    if name.len() > limits::TOPIC_NAME_LEN_MAX {
        return Err(format!("topic name is longer than {} characters", limits::TOPIC_NAME_LEN_MAX));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_' || *c == '-')) {
        return Err(format!("topic name {name:?} contains the illegal character {c:?}; allowed are ASCII alphanumerics, '.', '_' and '-'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_follows_records() {
        let mut img = MetadataImage::default();
        let id = Uuid::new_v4();
        img.apply(&MetadataRecord::CreateTopic { name: "a".into(), id, partitions: 3, configs: BTreeMap::new() });
        assert_eq!(img.topic("a").unwrap().partitions, 3);
        assert_eq!(img.topic_by_id(id).unwrap().name.as_ref(), "a");
        let configs: BTreeMap<String, String> = [("retention.ms".to_string(), "1000".to_string())].into();
        img.apply(&MetadataRecord::SetTopicConfigs { name: "a".into(), configs: configs.clone() });
        assert_eq!(img.topic("a").unwrap().configs, configs);
        img.apply(&MetadataRecord::SetPartitionCount { name: "a".into(), partitions: 5 });
        assert_eq!(img.topic("a").unwrap().partitions, 5);
        img.apply(&MetadataRecord::SetPartitionCount { name: "a".into(), partitions: 2 });
        assert_eq!(img.topic("a").unwrap().partitions, 5, "never shrinks");
        assert_eq!(img.topic("a").unwrap().id, id);
        img.apply(&MetadataRecord::DeleteTopic { name: "a".into() });
        let mut dynamic = BTreeMap::new();
        dynamic.insert("log.retention.ms".to_string(), "1000".to_string());
        img.apply(&MetadataRecord::SetBrokerConfigs { entity: "".into(), configs: dynamic.clone() });
        dynamic.insert("log.retention.ms".to_string(), "2000".to_string());
        img.apply(&MetadataRecord::SetBrokerConfigs { entity: "1".into(), configs: dynamic });
        assert_eq!(img.dynamic_broker_config(1, "log.retention.ms"), Some(("2000", true)));
        assert_eq!(img.dynamic_broker_config(2, "log.retention.ms"), Some(("1000", false)));
        assert_eq!(img.broker_config_layers(1).len(), 2);
        img.apply(&MetadataRecord::SetBrokerConfigs { entity: "1".into(), configs: BTreeMap::new() });
        assert_eq!(img.dynamic_broker_config(1, "log.retention.ms"), Some(("1000", false)));
        assert!(img.topic("a").is_none());
        assert_eq!(img.version, 8);
    }

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("bad/name").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn placement_follows_records_and_registration_bumps_epochs() {
        use crate::model::ShardId;
        let mut img = MetadataImage::default();
        img.apply(&MetadataRecord::CreateTopic {
            name: "a".into(),
            id: Uuid::new_v4(),
            partitions: 2,
            configs: BTreeMap::new(),
        });
        assert_eq!(img.unplaced().len(), 2);
        let placement = PartitionPlacement::single(NodeId(1), ShardId(0));
        img.apply(&MetadataRecord::Partition { topic: "a".into(), partition: 0, placement: placement.clone() });
        img.apply(&MetadataRecord::Partition { topic: "a".into(), partition: 1, placement });
        assert!(img.unplaced().is_empty());
        let register = |node_id| MetadataRecord::RegisterBroker {
            node_id,
            incarnation: Uuid::new_v4(),
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
            listeners: Vec::new(),
        };
        img.apply(&register(1));
        img.apply(&register(2));
        let t = img.topic("a").unwrap();
        assert_eq!(t.placement(0).unwrap().leader_epoch, 2, "fenced and elected again, as KRaft does");
        assert_eq!(t.placement(1).unwrap().leader_epoch, 2);
        assert_eq!(img.brokers.len(), 2);
        img.apply(&MetadataRecord::FenceBroker { node_id: 1 });
        let t = img.topic("a").unwrap();
        assert_eq!(
            (t.placement(0).unwrap().leader, t.placement(0).unwrap().leader_epoch),
            (-1, 3),
            "fenced: no leader"
        );
        assert_eq!(img.live_brokers().map(|(id, _)| id).collect::<Vec<_>>(), vec![2]);
        img.apply(&MetadataRecord::UnfenceBroker { node_id: 1 });
        let t = img.topic("a").unwrap();
        assert_eq!((t.placement(0).unwrap().leader, t.placement(0).unwrap().leader_epoch), (1, 4), "leads again");
    }
}
