//! Broker configuration from a `server.properties` file and `--override key=value` pairs,
//! with Kafka's property names, and per-topic configuration resolved against it.
//!
//! Every setting has a default, a range and a unit; a bad value is an error naming the key
//! and the allowed range, an unknown key a warning naming the key.
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
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = if logical.is_empty() { raw.trim_start() } else { raw.trim() };
        if logical.is_empty() {
            start_line = i + 1;
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            logical.push_str(stripped);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let split = entry.find(|c| c == '=' || c == ':').or_else(|| entry.find(char::is_whitespace));
        match split {
            Some(at) => {
                let key = entry[..at].trim().to_string();
                let value = entry[at + 1..].trim().to_string();
                if key.is_empty() {
                    return Err(ConfigError::Syntax { line: start_line, text: entry });
                }
                out.push((key, value));
            }
            None => out.push((entry.trim().to_string(), String::new())),
        }
    }
    Ok(out)
}

fn parse_int<T>(key: &str, value: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v: T =
        value.trim().parse().map_err(|_| invalid(key, value, format!("expected an integer in [{min}, {max}]")))?;
    if v < min || v > max {
        return Err(invalid(key, value, format!("must be in [{min}, {max}]")));
    }
    Ok(v)
}

/// A fraction in [0, 1] (Kafka's `min.cleanable.dirty.ratio`).
fn parse_ratio(key: &str, value: &str) -> Result<f64, ConfigError> {
    match value.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(invalid(key, value, "expected a number in [0, 1]")),
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

pub fn parse_timestamp_type(key: &str, value: &str) -> Result<TimestampType, ConfigError> {
    match value.trim() {
        "CreateTime" => Ok(TimestampType::CreateTime),
        "LogAppendTime" => Ok(TimestampType::LogAppendTime),
        _ => Err(invalid(key, value, "expected CreateTime or LogAppendTime")),
    }
}

/// Parses `PLAINTEXT://host:port,OTHER://host:port`.
pub fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item.split_once("://").ok_or_else(|| invalid(key, value, "expected NAME://host:port"))?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| invalid(key, value, "expected NAME://host:port"))?;
        let port: u16 = port.parse().map_err(|_| invalid(key, value, "port must be in [0, 65535]"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(invalid(key, value, "a listener name is letters, digits, '_' and '-'"));
        }
        if out.iter().any(|l: &Listener| l.name == name) {
            return Err(invalid(key, value, "each listener name may appear once"));
        }
        out.push(Listener { name: name.to_string(), host: host.to_string(), port });
    }
    if out.is_empty() {
        return Err(invalid(key, value, "at least one listener is required"));
    }
    Ok(out)
}

/// Parses `admin.listeners`: one `host:port` or `http://host:port`; empty disables it.
pub fn parse_admin_listener(key: &str, value: &str) -> Result<Option<Listener>, ConfigError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let rest = match v.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some(_) => return Err(invalid(key, value, "only http:// is supported (no TLS on the admin listener)")),
        None => v,
    };
    if rest.contains(',') {
        return Err(invalid(key, value, "exactly one address is supported"));
    }
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| invalid(key, value, "expected host:port"))?;
    let port: u16 = port.parse().map_err(|_| invalid(key, value, "port must be in [0, 65535]"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok(Some(Listener { name: "http".into(), host: host.to_string(), port }))
}

/// `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    pub broker: bool,
    pub controller: bool,
}

fn parse_roles(key: &str, value: &str) -> Result<ProcessRoles, ConfigError> {
    let mut roles = ProcessRoles { broker: false, controller: false };
    for r in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match r {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            _ => return Err(invalid(key, value, "roles are broker and controller")),
        }
    }
    if !roles.broker && !roles.controller {
        return Err(invalid(key, value, "at least one of broker, controller"));
    }
    Ok(roles)
}

/// Parses `controller.quorum.voters`: `id@host:port,...`.
pub fn parse_voters(key: &str, value: &str) -> Result<BTreeMap<i32, (String, u16)>, ConfigError> {
    let mut out = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || invalid(key, value, "expected id@host:port,...");
        let (id, addr) = item.split_once('@').ok_or_else(bad)?;
        let id: i32 = id.trim().parse().map_err(|_| bad())?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        if id < 0 || out.insert(id, (host, port)).is_some() {
            return Err(invalid(key, value, "each voter id once, and not negative"));
        }
    }
    Ok(out)
}

/// Keys Kafka defines that Sluice accepts without acting on them (no warning).
const ACCEPTED_NOOP_KEYS: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "num.recovery.threads.per.data.dir",
];

/// Broker keys that AlterConfigs and IncrementalAlterConfigs may change at run time (Kafka's
/// dynamic broker configs), per broker or as the cluster-wide default: the topic defaults.
/// A change applies at once to every topic that does not set the key itself.
pub const DYNAMIC_BROKER_KEYS: &[&str] = &[
    "log.segment.bytes",
    "log.roll.ms",
    "log.roll.hours",
    "message.max.bytes",
    "log.message.timestamp.type",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.retention.ms",
    "log.retention.minutes",
    "log.retention.hours",
    "log.retention.bytes",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.cleanup.policy",
    "min.insync.replicas",
    "unclean.leader.election.enable",
];

/// Dynamic broker keys Kafka defines for parts Sluice does not have (request and network
/// thread pools, replica fetchers, Kerberos): accepted (validated as Kafka does), stored and
/// shown by DescribeConfigs, without effect, so that tools that set them keep working.
pub const DYNAMIC_NOOP_BROKER_KEYS: &[&str] = &[
    "background.threads",
    "num.io.threads",
    "num.network.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "log.cleaner.threads",
    "sasl.kerberos.min.time.before.relogin",
];

/// Applies one of the `DYNAMIC_BROKER_KEYS` to `cfg`; `Ok(false)` for any other key.
fn set_dynamic_key(cfg: &mut BrokerConfig, k: &str, v: &str) -> Result<bool, ConfigError> {
    match k {
        "log.segment.bytes" => {
            cfg.log_segment_bytes = parse_int(k, v, limits::SEGMENT_BYTES_MIN, limits::SEGMENT_BYTES_MAX)?
        }
        "log.roll.ms" => cfg.log_roll_ms = parse_int(k, v, 1, i64::MAX as u64)?,
        "log.roll.hours" => cfg.log_roll_ms = parse_int(k, v, 1u64, 1 << 31)? * 3_600_000,
        "message.max.bytes" => cfg.message_max_bytes = parse_int(k, v, 0, i32::MAX as u32)?,
        "log.message.timestamp.type" => cfg.log_message_timestamp_type = parse_timestamp_type(k, v)?,
        "log.flush.interval.messages" => cfg.log_flush_interval_messages = parse_int(k, v, 1, i64::MAX as u64)?,
        "log.flush.interval.ms" => cfg.log_flush_interval_ms = Some(parse_int(k, v, 0, i64::MAX as u64)?),
        "log.retention.ms" => cfg.log_retention_ms = parse_int(k, v, -1, i64::MAX)?,
        "log.retention.minutes" => cfg.log_retention_ms = parse_int(k, v, -1, i64::MAX / 60_000)? * 60_000,
        "log.retention.hours" => cfg.log_retention_ms = parse_int(k, v, -1, i64::MAX / 3_600_000)? * 3_600_000,
        "log.retention.bytes" => cfg.log_retention_bytes = parse_int(k, v, -1, i64::MAX)?,
        "log.cleaner.delete.retention.ms" => cfg.log_cleaner_delete_retention_ms = parse_int(k, v, 0, i64::MAX)?,
        "log.cleaner.min.cleanable.ratio" => cfg.log_cleaner_min_cleanable_ratio = parse_ratio(k, v)?,
        "min.insync.replicas" => cfg.min_insync_replicas = parse_int(k, v, 1, i32::MAX)?,
        "unclean.leader.election.enable" => cfg.unclean_leader_election_enable = parse_bool(k, v)?,
        "log.cleanup.policy" => {
            validate_topic_config("cleanup.policy", v)
                .map_err(|_| invalid(k, v, "expected delete, compact or compact,delete"))?;
            cfg.log_cleanup_policy = v.to_string();
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Checks one dynamic broker config entry; the error names the key.
pub fn validate_dynamic_broker_config(k: &str, v: &str) -> Result<(), ConfigError> {
    if DYNAMIC_NOOP_BROKER_KEYS.contains(&k) {
        let min = if k == "sasl.kerberos.min.time.before.relogin" { 0 } else { 1 };
        parse_int(k, v, min, i64::MAX)?;
        return Ok(());
    }
    if !DYNAMIC_BROKER_KEYS.contains(&k) {
        return Err(invalid(k, v, "cannot be changed dynamically (set it in server.properties or with --override)"));
    }
    set_dynamic_key(&mut BrokerConfig::default(), k, v).map(|_| ())
}

impl BrokerConfig {
    /// Builds the configuration from properties text plus overrides (which win).
    /// Returns the configuration and one warning per unknown key.
    pub fn from_sources(
        properties: &str,
        overrides: &[(String, String)],
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let mut entries = parse_properties(properties)?;
        entries.extend(overrides.iter().cloned());
        let mut cfg = BrokerConfig::default();
        let mut warnings = Vec::new();
        let mut advertised_set = false;
        for (key, value) in &entries {
            let (k, v) = (key.as_str(), value.as_str());
            cfg.explicit_keys.insert(k.to_string(), v.to_string());
            match k {
                "node.id" | "broker.id" => cfg.node_id = parse_int(k, v, 0, i32::MAX)?,
                "listeners" => cfg.listeners = parse_listeners(k, v)?,
                "advertised.listeners" => {
                    cfg.advertised_listeners = parse_listeners(k, v)?;
                    advertised_set = true;
                }
                "log.dirs" | "log.dir" => {
                    let dirs: Vec<&str> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
                    match dirs.as_slice() {
                        [one] => cfg.log_dir = PathBuf::from(one),
                        [] => return Err(invalid(k, v, "a directory is required")),
                        _ => return Err(invalid(k, v, "exactly one directory is supported (JBOD is not)")),
                    }
                }
                "num.partitions" => cfg.num_partitions = parse_int(k, v, 1, limits::PARTITIONS_PER_TOPIC_MAX)?,
                "default.replication.factor" => cfg.default_replication_factor = parse_int(k, v, 1, i16::MAX)?,
                "auto.create.topics.enable" => cfg.auto_create_topics_enable = parse_bool(k, v)?,
                "delete.topic.enable" => cfg.delete_topic_enable = parse_bool(k, v)?,
                "socket.request.max.bytes" => {
                    cfg.socket_request_max_bytes = parse_int(k, v, limits::FRAME_BYTES_MIN, i32::MAX as u32)?
                }
                "max.connections" => cfg.max_connections = parse_int(k, v, 1, i32::MAX as u32)?,
                "max.connections.per.ip" => cfg.max_connections_per_ip = parse_int(k, v, 1, i32::MAX as u32)?,
                "max.connection.creation.rate" => {
                    let rate: u32 = parse_int(k, v, 1, i32::MAX as u32)?;
                    cfg.max_connection_creation_rate = (rate < i32::MAX as u32).then_some(rate);
                }
                "queued.max.request.bytes" => {
                    // Kafka's -1 (unbounded) is taken as the default bound: some bound always holds.
                    let n: i64 = parse_int(k, v, -1, 1 << 40)?;
                    cfg.queued_max_request_bytes =
                        if n <= 0 { limits::QUEUED_REQUEST_BYTES_DEFAULT } else { (n as u64).max(1 << 20) };
                }
                "log.cleaner.backoff.ms" => cfg.log_cleaner_backoff_ms = parse_int(k, v, 1, i64::MAX as u64)?,
                "log.retention.check.interval.ms" => {
                    cfg.log_retention_check_interval_ms = parse_int(k, v, 1, i64::MAX as u64)?
                }
                "sluice.fetch.cache.bytes" => cfg.fetch_cache_bytes = parse_int(k, v, 0, 1 << 40)?,
                "sluice.io.memory.bytes" => cfg.io_memory_bytes = parse_int(k, v, 1 << 20, 1 << 36)?,
                "offsets.topic.num.partitions" => cfg.offsets_topic_num_partitions = parse_int(k, v, 1, 1000)?,
                "offsets.topic.replication.factor" => {
                    cfg.offsets_topic_replication_factor = Some(parse_int(k, v, 1, i16::MAX)?)
                }
                "offsets.topic.segment.bytes" => {
                    cfg.offsets_topic_segment_bytes =
                        parse_int(k, v, limits::SEGMENT_BYTES_MIN, limits::SEGMENT_BYTES_MAX)?
                }
                "offsets.retention.minutes" => {
                    cfg.offsets_retention_ms = parse_int(k, v, 1, i64::MAX / 60_000)? * 60_000
                }
                "offset.metadata.max.bytes" => cfg.offset_metadata_max_bytes = parse_int(k, v, 0, i32::MAX as usize)?,
                "transaction.state.log.num.partitions" => {
                    cfg.transaction_state_log_num_partitions = parse_int(k, v, 1, 1000)?
                }
                "transaction.state.log.replication.factor" => {
                    cfg.transaction_state_log_replication_factor = Some(parse_int(k, v, 1, i16::MAX)?)
                }
                "transaction.state.log.min.isr" => cfg.transaction_state_log_min_isr = parse_int(k, v, 1, i32::MAX)?,
                "transaction.state.log.segment.bytes" => {
                    cfg.transaction_state_log_segment_bytes =
                        parse_int(k, v, limits::SEGMENT_BYTES_MIN, limits::SEGMENT_BYTES_MAX)?
                }
                "transaction.max.timeout.ms" => cfg.transaction_max_timeout_ms = parse_int(k, v, 1, i32::MAX)?,
                "transaction.partition.verification.enable" => {
                    cfg.transaction_partition_verification_enable = parse_bool(k, v)?
                }
                "transactional.id.expiration.ms" => cfg.transactional_id_expiration_ms = parse_int(k, v, 1, i64::MAX)?,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                    cfg.transaction_abort_timed_out_transaction_cleanup_interval_ms =
                        parse_int(k, v, 1, i32::MAX as u64)?
                }
                "group.initial.rebalance.delay.ms" => {
                    cfg.group_initial_rebalance_delay_ms = parse_int(k, v, 0, 300_000)?
                }
                "group.min.session.timeout.ms" => {
                    cfg.group_min_session_timeout_ms = parse_int(k, v, 1, i32::MAX as u64)?
                }
                "group.max.session.timeout.ms" => {
                    cfg.group_max_session_timeout_ms = parse_int(k, v, 1, i32::MAX as u64)?
                }
                "group.max.size" => cfg.group_max_size = parse_int(k, v, 1, i32::MAX as usize)?,
                "admin.listeners" => cfg.admin_listener = parse_admin_listener(k, v)?,
                "process.roles" => cfg.process_roles = parse_roles(k, v)?,
                "controller.quorum.voters" => cfg.controller_quorum_voters = parse_voters(k, v)?,
                "controller.listener.names" => {
                    cfg.controller_listener_names =
                        v.split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect()
                }
                "inter.broker.listener.name" => cfg.inter_broker_listener_name = v.trim().to_string(),
                "listener.security.protocol.map" => {
                    let mut map = BTreeMap::new();
                    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let (name, proto) =
                            item.split_once(':').ok_or_else(|| invalid(k, v, "expected NAME:PROTOCOL,..."))?;
                        map.insert(name.trim().to_string(), proto.trim().to_string());
                    }
                    cfg.listener_security_protocol_map = map;
                }
                "broker.rack" => cfg.broker_rack = Some(v.trim().to_string()).filter(|r| !r.is_empty()),
                "broker.heartbeat.interval.ms" => cfg.broker_heartbeat_interval_ms = parse_int(k, v, 10, 3_600_000)?,
                "broker.session.timeout.ms" => cfg.broker_session_timeout_ms = parse_int(k, v, 100, 3_600_000)?,
                "replica.lag.time.max.ms" => cfg.replica_lag_time_max_ms = parse_int(k, v, 1, i32::MAX as u64)?,
                "replica.fetch.max.bytes" => cfg.replica_fetch_max_bytes = parse_int(k, v, 1, i32::MAX as u32)?,
                "replica.fetch.wait.max.ms" => cfg.replica_fetch_wait_max_ms = parse_int(k, v, 0, 60_000)?,
                "auto.leader.rebalance.enable" => cfg.auto_leader_rebalance_enable = parse_bool(k, v)?,
                "leader.imbalance.check.interval.seconds" => {
                    cfg.leader_imbalance_check_interval_seconds = parse_int(k, v, 1, 86_400)?
                }
                // Read whole after the loop (security::acl::AuthorizerConfig).
                "authorizer.class.name" | "super.users" | "allow.everyone.if.no.acl.found" => {}
                // Read per listener by the SASL handler (security::listener_setting).
                "connections.max.reauth.ms" => {
                    parse_int::<i64>(k, v, 0, i64::MAX)?;
                }
                _ if set_dynamic_key(&mut cfg, k, v)? => {}
                _ if ACCEPTED_NOOP_KEYS.contains(&k) => {}
                // TLS and SASL settings, read per listener (security::listener_setting).
                _ if is_listener_security_key(k) => {}
                _ => warnings.push(format!("unknown configuration key {k:?} ignored")),
            }
        }
        cfg.check_listeners()?;
        cfg.authorizer = crate::security::acl::AuthorizerConfig::from_keys(&cfg.explicit_keys).map_err(|reason| {
            let key = reason.split(':').next().unwrap_or("authorizer.class.name").to_string();
            let value = cfg.explicit_keys.get(&key).cloned().unwrap_or_default();
            ConfigError::Invalid { key, value, reason }
        })?;
        if !advertised_set {
            cfg.advertised_listeners = cfg
                .listeners
                .iter()
                .map(|l| {
                    let host =
                        if l.host == "0.0.0.0" || l.host == "::" { "127.0.0.1".to_string() } else { l.host.clone() };
                    Listener { host, ..l.clone() }
                })
                .collect();
        }
        Ok((cfg, warnings))
    }
}

/// An `ssl.*` or `sasl.*` key (or a mechanism's `<mechanism>.sasl.jaas.config`), plain or
/// scoped to a listener (`listener.name.<name>.<key>`).
fn is_listener_security_key(k: &str) -> bool {
    let security =
        |key: &str| key.starts_with("ssl.") || key.starts_with("sasl.") || key.ends_with(".sasl.jaas.config");
    security(k)
        || k.strip_prefix("listener.name.").and_then(|r| r.split_once('.')).is_some_and(|(_, key)| security(key))
}

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
                let _ = set_dynamic_key(&mut cfg, k, v);
            }
        }
        cfg
    }
}

/// Per-topic settings, resolved from the topic's own configs over the broker's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    pub segment_bytes: u64,
    pub segment_ms: u64,
    pub max_message_bytes: u32,
    pub timestamp_type: TimestampType,
    pub flush_messages: u64,
    pub flush_ms: Option<u64>,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    /// `cleanup.policy` includes `delete`: retention deletes old segments (a compact-only
    /// topic keeps them).
    pub cleanup_delete: bool,
    /// `cleanup.policy` includes `compact`: the cleaner keeps the latest record per key.
    pub cleanup_compact: bool,
    /// `delete.retention.ms`: how long a tombstone is kept once it is the latest for its key.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: the cleaner rewrites the log only once at least this
    /// share of its sealed bytes was written since the last cleaning, so that each pass
    /// reads and rewrites at most about 1/ratio times what is new (Kafka's default 0.5).
    pub min_cleanable_dirty_ratio: f64,
    /// `min.insync.replicas`: acks=all is refused while the ISR is smaller.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
}

/// Topic config keys Sluice knows, with the broker key each one defaults from.
pub const TOPIC_CONFIG_KEYS: &[(&str, &str)] = &[
    ("cleanup.policy", "log.cleanup.policy"),
    ("compression.type", "compression.type"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("max.message.bytes", "message.max.bytes"),
    ("message.timestamp.type", "log.message.timestamp.type"),
    ("min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("retention.bytes", "log.retention.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.ms", "log.roll.ms"),
    ("unclean.leader.election.enable", "unclean.leader.election.enable"),
];

/// The broker key a topic config defaults from (`log.retention.ms` for `retention.ms`).
pub fn topic_broker_key(topic_key: &str) -> Option<&'static str> {
    TOPIC_CONFIG_KEYS.iter().find(|(t, _)| *t == topic_key).map(|(_, b)| *b)
}

/// Checks one topic config entry; the error names the key and the allowed values.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), ConfigError> {
    match key {
        "cleanup.policy" => {
            let ok = value.split(',').map(str::trim).all(|p| p == "delete" || p == "compact");
            if !ok || value.trim().is_empty() {
                return Err(invalid(key, value, "expected delete, compact or compact,delete"));
            }
        }
        "compression.type" => {
            if !["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"].contains(&value) {
                return Err(invalid(key, value, "expected one of uncompressed, zstd, lz4, snappy, gzip, producer"));
            }
        }
        "delete.retention.ms" | "flush.ms" => {
            parse_int(key, value, 0i64, i64::MAX)?;
        }
        "flush.messages" => {
            parse_int(key, value, 1i64, i64::MAX)?;
        }
        "max.message.bytes" => {
            parse_int(key, value, 0i64, i32::MAX as i64)?;
        }
        "message.timestamp.type" => {
            parse_timestamp_type(key, value)?;
        }
        "min.cleanable.dirty.ratio" => {
            parse_ratio(key, value)?;
        }
        "min.insync.replicas" => {
            parse_int(key, value, 1i64, i32::MAX as i64)?;
        }
        "unclean.leader.election.enable" => {
            parse_bool(key, value)?;
        }
        "retention.bytes" | "retention.ms" => {
            parse_int(key, value, -1i64, i64::MAX)?;
        }
        "segment.bytes" => {
            parse_int(key, value, limits::SEGMENT_BYTES_MIN as i64, limits::SEGMENT_BYTES_MAX as i64)?;
        }
        "segment.ms" => {
            parse_int(key, value, 1i64, i64::MAX)?;
        }
        _ => return Err(invalid(key, value, "unknown topic config")),
    }
    Ok(())
}

impl TopicConfig {
    /// Resolves the effective settings; `configs` must already be validated.
    pub fn resolve(broker: &BrokerConfig, configs: &BTreeMap<String, String>) -> TopicConfig {
        let get = |k: &str| configs.get(k).map(String::as_str);
        let policy = get("cleanup.policy").unwrap_or(&broker.log_cleanup_policy);
        TopicConfig {
            segment_bytes: get("segment.bytes").and_then(|v| v.parse().ok()).unwrap_or(broker.log_segment_bytes),
            segment_ms: get("segment.ms").and_then(|v| v.parse().ok()).unwrap_or(broker.log_roll_ms),
            max_message_bytes: get("max.message.bytes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(broker.message_max_bytes),
            timestamp_type: get("message.timestamp.type")
                .and_then(|v| parse_timestamp_type("", v).ok())
                .unwrap_or(broker.log_message_timestamp_type),
            flush_messages: get("flush.messages")
                .and_then(|v| v.parse().ok())
                .unwrap_or(broker.log_flush_interval_messages),
            flush_ms: get("flush.ms").and_then(|v| v.parse().ok()).or(broker.log_flush_interval_ms),
            retention_ms: get("retention.ms").and_then(|v| v.parse().ok()).unwrap_or(broker.log_retention_ms),
            retention_bytes: get("retention.bytes").and_then(|v| v.parse().ok()).unwrap_or(broker.log_retention_bytes),
            cleanup_delete: policy.split(',').any(|p| p.trim() == "delete"),
            cleanup_compact: policy.split(',').any(|p| p.trim() == "compact"),
            delete_retention_ms: get("delete.retention.ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(broker.log_cleaner_delete_retention_ms),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
                .and_then(|v| v.parse().ok())
                .unwrap_or(broker.log_cleaner_min_cleanable_ratio),
            min_insync_replicas: get("min.insync.replicas")
                .and_then(|v| v.parse().ok())
                .unwrap_or(broker.min_insync_replicas),
            unclean_leader_election_enable: get("unclean.leader.election.enable")
                .and_then(|v| parse_bool("", v).ok())
                .unwrap_or(broker.unclean_leader_election_enable),
        }
    }

    /// The effective value of every known topic config, as strings, with whether it was
    /// set on the topic (true) or inherited from the broker (false).
    pub fn describe(broker: &BrokerConfig, configs: &BTreeMap<String, String>) -> Vec<(String, String, bool)> {
        let t = TopicConfig::resolve(broker, configs);
        let ts = |t: TimestampType| match t {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        };
        let defaults: [(&str, String); 14] = [
            ("cleanup.policy", broker.log_cleanup_policy.clone()),
            ("compression.type", "producer".into()),
            ("delete.retention.ms", broker.log_cleaner_delete_retention_ms.to_string()),
            ("flush.messages", (t.flush_messages.min(i64::MAX as u64)).to_string()),
            ("flush.ms", t.flush_ms.map(|v| v.to_string()).unwrap_or_else(|| i64::MAX.to_string())),
            ("max.message.bytes", t.max_message_bytes.to_string()),
            ("message.timestamp.type", ts(t.timestamp_type).into()),
            ("min.cleanable.dirty.ratio", broker.log_cleaner_min_cleanable_ratio.to_string()),
            ("min.insync.replicas", t.min_insync_replicas.to_string()),
            ("retention.bytes", t.retention_bytes.to_string()),
            ("retention.ms", t.retention_ms.to_string()),
            ("segment.bytes", t.segment_bytes.to_string()),
            ("segment.ms", t.segment_ms.to_string()),
            ("unclean.leader.election.enable", t.unclean_leader_election_enable.to_string()),
        ];
        defaults
            .into_iter()
            .map(|(k, d)| match configs.get(k) {
                Some(v) => (k.to_string(), v.clone(), true),
                None => (k.to_string(), d, false),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ov(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_start_one_node_on_localhost() {
        let (cfg, warnings) = BrokerConfig::from_sources("", &[]).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(cfg.listeners[0].port, 9092);
        assert_eq!(cfg.listeners[0].host, "127.0.0.1");
        assert_eq!(cfg.log_dir, PathBuf::from("./sluice-data"));
        assert_eq!(cfg.group_initial_rebalance_delay_ms, 3_000, "Kafka's default");
    }

    #[test]
    fn properties_syntax() {
        let text = "# comment\n! other\nnode.id=3\nlog.dirs : /tmp/x\nnum.partitions 4\nlisteners=PLAINTEXT://127.0.0.1:\\\n  9999\n";
        let (cfg, _) = BrokerConfig::from_sources(text, &[]).unwrap();
        assert_eq!(cfg.node_id, 3);
        assert_eq!(cfg.log_dir, PathBuf::from("/tmp/x"));
        assert_eq!(cfg.num_partitions, 4);
        assert_eq!(cfg.listeners[0].port, 9999);
        assert_eq!(cfg.advertised_listeners[0].port, 9999);
    }

    #[test]
    fn overrides_win_and_unknown_keys_warn() {
        let (cfg, warnings) =
            BrokerConfig::from_sources("num.partitions=2\nfoo.bar=1\n", &ov(&[("num.partitions", "7")])).unwrap();
        assert_eq!(cfg.num_partitions, 7);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("foo.bar"));
    }

    #[test]
    fn bad_values_name_key_and_range() {
        let err = BrokerConfig::from_sources("num.partitions=0\n", &[]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("num.partitions") && msg.contains("[1, 10000]"), "{msg}");
        let err = BrokerConfig::from_sources("", &ov(&[("auto.create.topics.enable", "yes")])).unwrap_err();
        assert!(err.to_string().contains("auto.create.topics.enable"));
        let err = BrokerConfig::from_sources("log.message.timestamp.type=Foo", &[]).unwrap_err();
        assert!(err.to_string().contains("CreateTime or LogAppendTime"));
        assert!(BrokerConfig::from_sources("listeners=nonsense", &[]).is_err());
    }

    #[test]
    fn cluster_roles_and_listeners() {
        let cfg = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            BrokerConfig::from_sources("", &pairs).map(|(c, _)| c)
        };
        let voters = ("controller.quorum.voters", "1@127.0.0.1:9093,2@127.0.0.1:9095");
        let both = cfg(&[voters, ("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093")]).unwrap();
        assert!(both.is_cluster());
        assert_eq!(both.client_listener().port, 9092);
        assert_eq!(both.controller_listener().unwrap().port, 9093);
        assert_eq!(both.controller_quorum_voters[&2], ("127.0.0.1".to_string(), 9095));
        assert!(cfg(&[voters]).is_err(), "a voter needs a controller listener");
        let broker_only = [("node.id", "3"), ("process.roles", "broker"), voters];
        assert!(cfg(&broker_only).is_ok());
        assert!(cfg(&[("process.roles", "broker"), voters]).is_err(), "node 1 is a voter");
        assert!(cfg(&[("process.roles", "broker")]).is_err(), "a broker alone needs the voters");
        let controller_only = [("process.roles", "controller"), voters, ("listeners", "CONTROLLER://127.0.0.1:9093")];
        assert!(cfg(&controller_only).is_ok(), "no client listener needed");
        assert!(cfg(&[("process.roles", "router")]).is_err());
        assert!(cfg(&[("controller.quorum.voters", "1@nohost")]).is_err());
        assert!(cfg(&[("listeners", "SSL://127.0.0.1:9092")]).is_err(), "SSL is not served yet");
        assert!(cfg(&[("listeners", "PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.1:9093")]).is_err());
        let two = [
            ("listeners", "PLAINTEXT://127.0.0.1:9092,REPL://127.0.0.1:9094"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,REPL:PLAINTEXT"),
        ];
        let c = cfg(&two).unwrap();
        assert_eq!(c.client_listeners().count(), 2);
        assert_eq!(c.inter_broker_listener().port, 9092, "Kafka's default name: PLAINTEXT");
        let c = cfg(&[two[0], two[1], ("inter.broker.listener.name", "REPL")]).unwrap();
        assert_eq!(c.inter_broker_listener().port, 9094);
        assert!(cfg(&[two[0], two[1], ("inter.broker.listener.name", "NOPE")]).is_err(), "not a listener");
    }

    #[test]
    fn admin_listener_forms() {
        let addr =
            |v: &str| BrokerConfig::from_sources("", &ov(&[("admin.listeners", v)])).map(|(c, _)| c.admin_listener);
        let default = BrokerConfig::default().admin_listener.unwrap();
        assert_eq!((default.host.as_str(), default.port), ("127.0.0.1", 9644));
        let l = addr("127.0.0.1:9700").unwrap().unwrap();
        assert_eq!((l.host.as_str(), l.port), ("127.0.0.1", 9700));
        let l = addr("http://[::1]:9701").unwrap().unwrap();
        assert_eq!((l.host.as_str(), l.port), ("::1", 9701));
        assert_eq!(addr("").unwrap(), None);
        for bad in ["https://127.0.0.1:1", "127.0.0.1", "127.0.0.1:99999", "a:1,b:2"] {
            let err = addr(bad).unwrap_err().to_string();
            assert!(err.contains("admin.listeners"), "{bad}: {err}");
        }
    }

    #[test]
    fn topic_configs_validate_and_resolve() {
        assert!(validate_topic_config("retention.ms", "1000").is_ok());
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        let err = validate_topic_config("segment.bytes", "10").unwrap_err().to_string();
        assert!(err.contains("segment.bytes"), "{err}");
        assert!(validate_topic_config("no.such.key", "1").is_err());
        let broker = BrokerConfig::default();
        let mut m = BTreeMap::new();
        m.insert("segment.bytes".to_string(), "8192".to_string());
        let t = TopicConfig::resolve(&broker, &m);
        assert_eq!(t.segment_bytes, 8192);
        assert_eq!(t.max_message_bytes, broker.message_max_bytes);
        // min.cleanable.dirty.ratio: a fraction, defaulting from the broker's (dynamic) key.
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "0.25").is_ok());
        for bad in ["1.5", "-0.1", "half"] {
            let err = validate_topic_config("min.cleanable.dirty.ratio", bad).unwrap_err().to_string();
            assert!(err.contains("min.cleanable.dirty.ratio"), "{err}");
        }
        assert_eq!(t.min_cleanable_dirty_ratio, 0.5);
        let (b, _) = BrokerConfig::from_sources("log.cleaner.min.cleanable.ratio=0.2\n", &[]).unwrap();
        assert_eq!(TopicConfig::resolve(&b, &m).min_cleanable_dirty_ratio, 0.2);
        m.insert("min.cleanable.dirty.ratio".to_string(), "0.75".to_string());
        assert_eq!(TopicConfig::resolve(&b, &m).min_cleanable_dirty_ratio, 0.75);
        assert!(validate_dynamic_broker_config("log.cleaner.min.cleanable.ratio", "2").is_err());
    }
}
