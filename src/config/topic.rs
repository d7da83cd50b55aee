//! Per-topic configuration: the keys, their checks, and resolution over the broker's defaults.
use std::collections::BTreeMap;

use super::parse::*;
use super::{invalid, BrokerConfig, ConfigError, TimestampType};
use crate::limits;

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
