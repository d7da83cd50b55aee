//! Broker configuration from a `server.properties` file and `--override key=value` pairs,
//! with Kafka's property names, and per-topic configuration resolved against it.
//!
//! Every setting has a default, a range and a unit; a bad value is an error naming the key
//! and the allowed range, an unknown key a warning naming the key.
//!
//! `parse` reads values (properties text, listeners, voters); `load` builds a
//! `BrokerConfig` from a file and overrides; `dynamic` owns the keys AlterConfigs may change
//! at run time; `topic` resolves per-topic settings over the broker's defaults.
mod dynamic;
mod load;
mod parse;
#[cfg(test)]
mod tests;
mod topic;

pub use dynamic::{validate_dynamic_broker_config, DYNAMIC_BROKER_KEYS, DYNAMIC_NOOP_BROKER_KEYS};
pub use parse::{
    parse_admin_listener, parse_listeners, parse_properties, parse_timestamp_type, parse_voters, ProcessRoles,
};
pub use topic::{topic_broker_key, validate_topic_config, TopicConfig, TOPIC_CONFIG_KEYS};

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::limits;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{key}: invalid value {value:?}: {reason}")]
    Invalid { key: String, value: String, reason: String },
    #[error("line {line}: cannot parse {text:?} as key=value")]
    Syntax { line: usize, text: String },
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), value: value.to_string(), reason: reason.into() }
}

/// How record timestamps are set: by the producer, or by the broker on append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// One `listeners` entry: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    pub log_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub log_segment_bytes: u64,
    pub log_roll_ms: u64,
    pub message_max_bytes: u32,
    pub socket_request_max_bytes: u32,
    /// `max.connections`: open client connections, broker-wide.
    pub max_connections: u32,
    /// `max.connections.per.ip`.
    pub max_connections_per_ip: u32,
    /// `max.connection.creation.rate`: new connections per second, broker-wide (unset: no
    /// limit).
    pub max_connection_creation_rate: Option<u32>,
    /// `queued.max.request.bytes`: request bytes read and not yet answered, broker-wide
    /// (split evenly across shards).
    pub queued_max_request_bytes: u64,
    pub log_message_timestamp_type: TimestampType,
    pub log_flush_interval_messages: u64,
    pub log_flush_interval_ms: Option<u64>,
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms`: how often each shard applies retention.
    pub log_retention_check_interval_ms: u64,
    /// `log.cleaner.backoff.ms`: how often each shard looks for logs to compact.
    pub log_cleaner_backoff_ms: u64,
    /// `log.cleaner.delete.retention.ms`: how long tombstones outlive compaction.
    pub log_cleaner_delete_retention_ms: i64,
    /// `log.cleaner.min.cleanable.ratio`: the share of a compacted log that must be dirty
    /// (written since its last cleaning) before the cleaner rewrites it.
    pub log_cleaner_min_cleanable_ratio: f64,
    /// `log.cleanup.policy`: the default `cleanup.policy` of topics (`delete`, `compact` or
    /// both, comma-separated).
    pub log_cleanup_policy: String,
    /// Per-shard budget of the cache of recent batches that serves tail fetches.
    pub fetch_cache_bytes: u64,
    /// DMA memory each shard registers with io_uring for segment writes.
    pub io_memory_bytes: u64,
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`; unset: min(3, live brokers) at creation.
    pub offsets_topic_replication_factor: Option<i16>,
    /// `offsets.topic.segment.bytes`: segment size of `__consumer_offsets` (set at creation).
    pub offsets_topic_segment_bytes: u64,
    pub offsets_retention_ms: i64,
    pub offset_metadata_max_bytes: usize,
    /// `transaction.state.log.num.partitions`.
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor`; unset: min(3, live brokers) at creation.
    pub transaction_state_log_replication_factor: Option<i16>,
    /// `transaction.state.log.min.isr` (at most the replication factor).
    pub transaction_state_log_min_isr: i32,
    pub transaction_state_log_segment_bytes: u64,
    /// `transaction.max.timeout.ms`: the longest timeout a producer may ask for.
    pub transaction_max_timeout_ms: i32,
    /// `transaction.partition.verification.enable` (KIP-890): a partition leader has the
    /// coordinator confirm a transactional write before it opens a transaction there.
    pub transaction_partition_verification_enable: bool,
    /// `transactional.id.expiration.ms`: an id idle this long is forgotten.
    pub transactional_id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: u64,
    pub group_initial_rebalance_delay_ms: u64,
    pub group_min_session_timeout_ms: u64,
    pub group_max_session_timeout_ms: u64,
    pub group_max_size: usize,
    /// `admin.listeners`: where the admin HTTP listener (metrics, health, status) listens;
    /// `None` when set to an empty value (disabled). Only the address is kept: the name
    /// is always `http`.
    pub admin_listener: Option<Listener>,
    /// `process.roles`: whether this node is a broker (serves clients, holds partitions),
    /// a controller (a voter of the metadata quorum), or both (the default).
    pub process_roles: ProcessRoles,
    /// `controller.quorum.voters`: node id → controller listener address. Empty: this node
    /// is the only voter (a single node, the embedded default).
    pub controller_quorum_voters: BTreeMap<i32, (String, u16)>,
    /// `controller.listener.names`: which `listeners` entries are the controller's.
    pub controller_listener_names: Vec<String>,
    /// `listener.security.protocol.map`: listener name → security protocol.
    pub listener_security_protocol_map: BTreeMap<String, String>,
    /// `inter.broker.listener.name`: the listener brokers reach each other on.
    pub inter_broker_listener_name: String,
    /// `broker.rack`.
    pub broker_rack: Option<String>,
    /// `broker.heartbeat.interval.ms`: how often a broker heartbeats to the controller.
    pub broker_heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`: a broker silent this long is fenced.
    pub broker_session_timeout_ms: u64,
    /// `min.insync.replicas`: the topic default (acks=all needs this many in-sync replicas).
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`: the topic default (an out-of-sync replica may lead
    /// when no in-sync one is alive, losing what only the others had).
    pub unclean_leader_election_enable: bool,
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// `replica.fetch.max.bytes`: what a follower asks for per partition and fetch.
    pub replica_fetch_max_bytes: u32,
    /// `replica.fetch.wait.max.ms`: how long a follower's fetch waits at the leader.
    pub replica_fetch_wait_max_ms: u64,
    /// `auto.leader.rebalance.enable`: the active controller moves leadership back to
    /// preferred replicas every `leader.imbalance.check.interval.seconds`.
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_check_interval_seconds: u64,
    /// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`.
    pub authorizer: crate::security::acl::AuthorizerConfig,
    /// The keys set in the properties file or by `--override`, with the values as given
    /// (DescribeConfigs reports them as STATIC_BROKER_CONFIG, the rest as DEFAULT_CONFIG).
    pub explicit_keys: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let listener = Listener { name: "PLAINTEXT".into(), host: "127.0.0.1".into(), port: 9092 };
        Self {
            node_id: 1,
            listeners: vec![listener.clone()],
            advertised_listeners: vec![listener],
            log_dir: PathBuf::from("./sluice-data"),
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            log_segment_bytes: 1 << 30,
            log_roll_ms: 7 * 24 * 3600 * 1000,
            message_max_bytes: 1_048_588,
            socket_request_max_bytes: limits::FRAME_BYTES_MAX_DEFAULT,
            max_connections: i32::MAX as u32,
            max_connections_per_ip: i32::MAX as u32,
            max_connection_creation_rate: None,
            queued_max_request_bytes: limits::QUEUED_REQUEST_BYTES_DEFAULT,
            log_message_timestamp_type: TimestampType::CreateTime,
            log_flush_interval_messages: u64::MAX,
            log_flush_interval_ms: None,
            log_retention_ms: 7 * 24 * 3600 * 1000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            log_cleaner_backoff_ms: 15_000,
            log_cleaner_delete_retention_ms: 86_400_000,
            log_cleaner_min_cleanable_ratio: 0.5,
            log_cleanup_policy: "delete".into(),
            fetch_cache_bytes: limits::FETCH_CACHE_BYTES_DEFAULT,
            io_memory_bytes: limits::IO_MEMORY_BYTES_DEFAULT,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: None,
            offsets_topic_segment_bytes: 100 * 1024 * 1024,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            offset_metadata_max_bytes: 4096,
            transaction_state_log_num_partitions: 50,
            transaction_state_log_replication_factor: None,
            transaction_state_log_min_isr: 2,
            transaction_state_log_segment_bytes: 100 * 1024 * 1024,
            transaction_max_timeout_ms: 900_000,
            transaction_partition_verification_enable: true,
            transactional_id_expiration_ms: 7 * 24 * 3600 * 1000,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            // Kafka's code default (its sample server.properties sets 0): a new group's first
            // rebalance waits 3 s for more members (librdkafka's static-membership test 0102
            // relies on it).
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_max_size: i32::MAX as usize,
            process_roles: ProcessRoles { broker: true, controller: true },
            controller_quorum_voters: BTreeMap::new(),
            controller_listener_names: vec!["CONTROLLER".into()],
            inter_broker_listener_name: "PLAINTEXT".into(),
            listener_security_protocol_map: ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
                .iter()
                .map(|p| (p.to_string(), p.to_string()))
                .chain([("CONTROLLER".to_string(), "PLAINTEXT".to_string())])
                .collect(),
            broker_rack: None,
            broker_heartbeat_interval_ms: 2_000,
            broker_session_timeout_ms: 9_000,
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_max_bytes: 1_048_576,
            replica_fetch_wait_max_ms: 500,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            admin_listener: Some(Listener {
                name: "http".into(),
                host: "127.0.0.1".into(),
                port: limits::ADMIN_PORT_DEFAULT,
            }),
            authorizer: Default::default(),
            explicit_keys: Default::default(),
        }
    }
}

/// Parses Java `.properties` text: `key=value` or `key: value` or `key value`, `#`/`!`
/// comments, backslash line continuations. Later keys win.

impl BrokerConfig {
    /// The security protocol of listener `name` (`listener.security.protocol.map`).
    pub fn security_protocol(&self, name: &str) -> &str {
        self.listener_security_protocol_map.get(name).map_or("PLAINTEXT", String::as_str)
    }

    /// The listener clients connect to: the first that is not a controller listener.
    pub fn client_listener(&self) -> &Listener {
        self.listeners
            .iter()
            .find(|l| !self.controller_listener_names.contains(&l.name))
            .expect("check_listeners: a broker has a client listener")
    }

    /// Every listener for clients (those not named in `controller.listener.names`); the
    /// first is `client_listener`.
    pub fn client_listeners(&self) -> impl Iterator<Item = &Listener> {
        self.listeners.iter().filter(|l| !self.controller_listener_names.contains(&l.name))
    }

    /// The listener other brokers fetch from (`inter.broker.listener.name`): that one if
    /// this node has it, else the first client listener (a node configured with other
    /// names than Kafka's default PLAINTEXT).
    pub fn inter_broker_listener(&self) -> &Listener {
        self.client_listeners().find(|l| l.name == self.inter_broker_listener_name).unwrap_or(self.client_listener())
    }

    /// The controller listener, if this node has one.
    pub fn controller_listener(&self) -> Option<&Listener> {
        self.listeners.iter().find(|l| self.controller_listener_names.contains(&l.name))
    }

    /// The address this broker advertises on `listener` (its `advertised.listeners` entry
    /// of that name, else the listener itself).
    pub fn advertised(&self, listener: &Listener) -> Listener {
        let a = self.advertised_listeners.iter().find(|a| a.name == listener.name).unwrap_or(listener);
        Listener { port: if a.port == 0 { listener.port } else { a.port }, ..a.clone() }
    }

    /// Whether this node is part of a multi-node cluster (voters configured, other than
    /// itself alone).
    pub fn is_cluster(&self) -> bool {
        // Another voter, or a node with one role only (a lone controller serves brokers
        // elsewhere; a lone broker follows a quorum elsewhere).
        self.controller_quorum_voters.keys().any(|&id| id != self.node_id)
            || !(self.process_roles.broker && self.process_roles.controller)
    }

    fn check_listeners(&self) -> Result<(), ConfigError> {
        let names = self.listeners.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(",");
        if self.process_roles.broker
            && !self.listeners.iter().any(|l| !self.controller_listener_names.contains(&l.name))
        {
            return Err(invalid(
                "listeners",
                &names,
                "a broker needs a listener for clients (one not named in controller.listener.names)",
            ));
        }
        for l in &self.listeners {
            match self.listener_security_protocol_map.get(&l.name).map(String::as_str) {
                Some("PLAINTEXT") => {}
                Some("SASL_PLAINTEXT") => {}
                Some("SSL" | "SASL_SSL") => {
                    crate::security::tls::server_config(&self.explicit_keys, &l.name)
                        .map_err(|e| invalid(&e.key, "", &format!("listener {}: {}", l.name, e.reason)))?;
                }
                Some(other) => {
                    return Err(invalid(
                        "listener.security.protocol.map",
                        other,
                        &format!(
                            "listener {}: not a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)",
                            l.name
                        ),
                    ))
                }
                None => {
                    return Err(invalid(
                        "listener.security.protocol.map",
                        &l.name,
                        &format!("listener {} has no security protocol", l.name),
                    ))
                }
            }
        }
        if self.process_roles.broker
            && self.explicit_keys.contains_key("inter.broker.listener.name")
            && !self.client_listeners().any(|l| l.name == self.inter_broker_listener_name)
        {
            return Err(invalid(
                "inter.broker.listener.name",
                &self.inter_broker_listener_name,
                &format!("not one of this broker's client listeners ({names})"),
            ));
        }
        // The inter-broker listener's client side (replica fetchers): its TLS trust and
        // SASL credentials must be usable before the broker starts.
        if self.process_roles.broker && self.is_cluster() {
            let ib = self.inter_broker_listener().name.clone();
            let protocol = self.security_protocol(&ib).to_string();
            if protocol == "SSL" || protocol == "SASL_SSL" {
                crate::security::tls::client_config(&self.explicit_keys, &ib)
                    .map_err(|e| invalid(&e.key, "", &format!("inter-broker listener {ib}: {}", e.reason)))?;
            }
            if protocol.starts_with("SASL_") {
                crate::security::outbound::sasl_identity(self, &ib)
                    .map_err(|e| invalid("inter.broker.listener.name", &ib, &e))?;
            }
        }
        if self.process_roles.controller && self.is_cluster() && self.controller_listener().is_none() {
            return Err(invalid(
                "listeners",
                &names,
                "a controller needs a listener named in controller.listener.names (e.g. CONTROLLER://127.0.0.1:9093)",
            ));
        }
        if self.process_roles.controller
            && self.is_cluster()
            && !self.controller_quorum_voters.contains_key(&self.node_id)
        {
            return Err(invalid(
                "process.roles",
                "controller",
                "this node is a controller but not one of controller.quorum.voters",
            ));
        }
        if !self.process_roles.controller && self.controller_quorum_voters.contains_key(&self.node_id) {
            return Err(invalid(
                "process.roles",
                "broker",
                "this node is one of controller.quorum.voters, so it is a controller",
            ));
        }
        if !self.process_roles.controller && self.controller_quorum_voters.is_empty() {
            return Err(invalid(
                "controller.quorum.voters",
                "",
                "a node that is not a controller needs the controllers' addresses",
            ));
        }
        if !self.process_roles.broker && self.controller_quorum_voters.is_empty() {
            return Err(invalid(
                "process.roles",
                "controller",
                "a controller-only node needs controller.quorum.voters",
            ));
        }
        Ok(())
    }

    /// Every broker setting Sluice acts on, by its Kafka name, with its effective value and
    /// whether it was set explicitly; for DescribeConfigs on the broker resource.
    pub fn describe(&self) -> Vec<(&'static str, String, bool)> {
        let listeners = |ls: &[Listener]| {
            ls.iter().map(|l| format!("{}://{}:{}", l.name, l.host, l.port)).collect::<Vec<_>>().join(",")
        };
        let ts = match self.log_message_timestamp_type {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        };
        let entries: Vec<(&'static str, String)> = vec![
            ("node.id", self.node_id.to_string()),
            (
                "process.roles",
                [("broker", self.process_roles.broker), ("controller", self.process_roles.controller)]
                    .iter()
                    .filter(|(_, on)| *on)
                    .map(|(r, _)| *r)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "controller.quorum.voters",
                self.controller_quorum_voters
                    .iter()
                    .map(|(id, (h, p))| format!("{id}@{h}:{p}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("controller.listener.names", self.controller_listener_names.join(",")),
            ("inter.broker.listener.name", self.inter_broker_listener_name.clone()),
            ("broker.rack", self.broker_rack.clone().unwrap_or_default()),
            ("broker.heartbeat.interval.ms", self.broker_heartbeat_interval_ms.to_string()),
            ("broker.session.timeout.ms", self.broker_session_timeout_ms.to_string()),
            ("listeners", listeners(&self.listeners)),
            ("advertised.listeners", listeners(&self.advertised_listeners)),
            ("log.dirs", self.log_dir.display().to_string()),
            ("num.partitions", self.num_partitions.to_string()),
            ("default.replication.factor", self.default_replication_factor.to_string()),
            ("auto.create.topics.enable", self.auto_create_topics_enable.to_string()),
            ("delete.topic.enable", self.delete_topic_enable.to_string()),
            ("log.segment.bytes", self.log_segment_bytes.to_string()),
            ("log.roll.ms", self.log_roll_ms.to_string()),
            ("message.max.bytes", self.message_max_bytes.to_string()),
            ("socket.request.max.bytes", self.socket_request_max_bytes.to_string()),
            ("max.connections", self.max_connections.to_string()),
            ("max.connections.per.ip", self.max_connections_per_ip.to_string()),
            ("queued.max.request.bytes", self.queued_max_request_bytes.to_string()),
            ("log.message.timestamp.type", ts.to_string()),
            ("log.flush.interval.messages", self.log_flush_interval_messages.min(i64::MAX as u64).to_string()),
            ("log.flush.interval.ms", self.log_flush_interval_ms.map(|v| v as i64).unwrap_or(i64::MAX).to_string()),
            ("log.retention.ms", self.log_retention_ms.to_string()),
            ("log.retention.bytes", self.log_retention_bytes.to_string()),
            ("log.retention.check.interval.ms", self.log_retention_check_interval_ms.to_string()),
            ("log.cleanup.policy", self.log_cleanup_policy.clone()),
            ("log.cleaner.delete.retention.ms", self.log_cleaner_delete_retention_ms.to_string()),
            ("log.cleaner.min.cleanable.ratio", self.log_cleaner_min_cleanable_ratio.to_string()),
            ("log.cleaner.backoff.ms", self.log_cleaner_backoff_ms.to_string()),
            ("compression.type", "producer".to_string()),
            ("min.insync.replicas", self.min_insync_replicas.to_string()),
            ("unclean.leader.election.enable", self.unclean_leader_election_enable.to_string()),
            ("replica.lag.time.max.ms", self.replica_lag_time_max_ms.to_string()),
            ("replica.fetch.max.bytes", self.replica_fetch_max_bytes.to_string()),
            ("replica.fetch.wait.max.ms", self.replica_fetch_wait_max_ms.to_string()),
            ("auto.leader.rebalance.enable", self.auto_leader_rebalance_enable.to_string()),
            ("leader.imbalance.check.interval.seconds", self.leader_imbalance_check_interval_seconds.to_string()),
            ("offsets.topic.num.partitions", self.offsets_topic_num_partitions.to_string()),
            ("offsets.topic.segment.bytes", self.offsets_topic_segment_bytes.to_string()),
            ("offsets.retention.minutes", (self.offsets_retention_ms / 60_000).to_string()),
            ("offset.metadata.max.bytes", self.offset_metadata_max_bytes.to_string()),
            ("transaction.state.log.num.partitions", self.transaction_state_log_num_partitions.to_string()),
            ("transaction.state.log.min.isr", self.transaction_state_log_min_isr.to_string()),
            ("transaction.max.timeout.ms", self.transaction_max_timeout_ms.to_string()),
            ("transaction.partition.verification.enable", self.transaction_partition_verification_enable.to_string()),
            ("transactional.id.expiration.ms", self.transactional_id_expiration_ms.to_string()),
            ("group.initial.rebalance.delay.ms", self.group_initial_rebalance_delay_ms.to_string()),
            ("group.min.session.timeout.ms", self.group_min_session_timeout_ms.to_string()),
            ("group.max.session.timeout.ms", self.group_max_session_timeout_ms.to_string()),
            ("group.max.size", self.group_max_size.to_string()),
            ("sluice.fetch.cache.bytes", self.fetch_cache_bytes.to_string()),
            ("sluice.io.memory.bytes", self.io_memory_bytes.to_string()),
            (
                "admin.listeners",
                self.admin_listener.as_ref().map(|l| format!("http://{}:{}", l.host, l.port)).unwrap_or_default(),
            ),
        ];
        let alias = |k: &str| match k {
            "node.id" => Some("broker.id"),
            "log.dirs" => Some("log.dir"),
            _ => None,
        };
        entries
            .into_iter()
            .map(|(k, v)| {
                let set =
                    self.explicit_keys.contains_key(k) || alias(k).is_some_and(|a| self.explicit_keys.contains_key(a));
                (k, v, set)
            })
            .collect()
    }

    /// This configuration with dynamic broker configs applied over it: first the
    /// cluster-wide defaults, then this broker's own (values were validated when stored).
    pub fn with_dynamic(&self, layers: &[&BTreeMap<String, String>]) -> BrokerConfig {
        let mut cfg = self.clone();
        for layer in layers {
            for (k, v) in layer.iter() {
                let _ = dynamic::set_dynamic_key(&mut cfg, k, v);
            }
        }
        cfg
    }
}
