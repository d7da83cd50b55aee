//! A `BrokerConfig` from `server.properties` text and `--override` pairs.
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::dynamic::set_dynamic_key;
use super::parse::*;
use super::{invalid, BrokerConfig, ConfigError, Listener};
use crate::limits;

/// Keys Kafka defines that Sluice accepts without acting on them (no warning).
const ACCEPTED_NOOP_KEYS: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "num.recovery.threads.per.data.dir",
];

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
