//! Broker keys AlterConfigs may change at run time (Kafka's dynamic broker configs).
use super::parse::{parse_bool, parse_int, parse_ratio, parse_timestamp_type};
use super::{invalid, validate_topic_config, BrokerConfig, ConfigError};
use crate::limits;

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
pub(super) fn set_dynamic_key(cfg: &mut BrokerConfig, k: &str, v: &str) -> Result<bool, ConfigError> {
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
