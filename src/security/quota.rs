//! Client quotas as Kafka has them: produce and fetch byte rates and request-time
//! percentage per user and client id, configured as (entity, key, value) in the cluster
//! metadata (AlterClientQuotas), resolved with Kafka's precedence, measured per broker
//! (see `Rate`), and enforced the way KIP-219 does it: the response carries
//! `throttle_time_ms` and the broker reads nothing more from that connection for that long.
//!
//! `QuotaSet` (the configured values) and `Rate` (the measurement) are plain state with an
//! explicit clock; the broker-wide sensors sit behind one mutex each, touched only by
//! connections a quota applies to.
//!
//! `request_percentage` counts a handler's time on its shard's thread: the time inside
//! its polls, not its waits (a long-poll fetch, an acks=all produce), as Kafka counts
//! request-handler thread time; 100 is one thread's whole second.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The quota keys Kafka knows, with the entity types each applies to.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// The quotas a request is measured against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    Produce,
    Fetch,
    Request,
}

impl QuotaKind {
    pub const ALL: [QuotaKind; 3] = [QuotaKind::Produce, QuotaKind::Fetch, QuotaKind::Request];

    pub fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => PRODUCER_BYTE_RATE,
            QuotaKind::Fetch => CONSUMER_BYTE_RATE,
            QuotaKind::Request => REQUEST_PERCENTAGE,
        }
    }
}

/// One part of a quota entity: a named user / client id / ip, or the default for that type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityName {
    Default,
    Named(String),
}

impl EntityName {
    /// Kafka's wire form: null is the default.
    pub fn from_wire(name: Option<&str>) -> EntityName {
        name.map_or(EntityName::Default, |n| EntityName::Named(n.to_string()))
    }

    pub fn to_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Named(n) => Some(n),
        }
    }
}

/// A quota entity (Kafka's ClientQuotaEntity): user, client id, both, or an ip.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    pub user: Option<EntityName>,
    pub client_id: Option<EntityName>,
    pub ip: Option<EntityName>,
}

impl QuotaEntity {
    /// From (entity type, name) pairs; an error names what Kafka would refuse.
    pub fn from_parts<'a>(parts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Result<QuotaEntity, String> {
        let mut e = QuotaEntity::default();
        for (t, name) in parts {
            let slot = match t {
                "user" => &mut e.user,
                "client-id" => &mut e.client_id,
                "ip" => &mut e.ip,
                other => return Err(format!("Unhandled client quota entity type: {other}")),
            };
            if slot.is_some() {
                return Err(format!("Duplicate {t} entity type"));
            }
            if let Some(ip) = name.filter(|_| t == "ip") {
                ip.parse::<std::net::IpAddr>().map_err(|_| format!("{ip} is not a valid IP address"))?;
            }
            *slot = Some(EntityName::from_wire(name));
        }
        if e == QuotaEntity::default() {
            return Err("Invalid empty client quota entity".into());
        }
        if e.ip.is_some() && (e.user.is_some() || e.client_id.is_some()) {
            return Err("Invalid quota entity combination: an ip entity stands alone".into());
        }
        Ok(e)
    }

    /// (entity type, name) pairs in Kafka's order.
    pub fn parts(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut out = Vec::new();
        if let Some(u) = &self.user {
            out.push(("user", u.to_wire()));
        }
        if let Some(c) = &self.client_id {
            out.push(("client-id", c.to_wire()));
        }
        if let Some(i) = &self.ip {
            out.push(("ip", i.to_wire()));
        }
        out
    }

    /// Whether `key` may be set on this entity (Kafka's ClientQuotaControlManager rules).
    pub fn accepts(&self, key: &str) -> bool {
        if self.ip.is_some() {
            key == CONNECTION_CREATION_RATE
        } else {
            matches!(key, PRODUCER_BYTE_RATE | CONSUMER_BYTE_RATE | REQUEST_PERCENTAGE | CONTROLLER_MUTATION_RATE)
        }
    }
}

/// The configured quotas, by entity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaSet {
    by_entity: BTreeMap<QuotaEntity, BTreeMap<String, f64>>,
}

impl Serialize for QuotaSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // JSON maps need string keys: a list of (entity, values).
        self.by_entity.iter().collect::<Vec<_>>().serialize(s)
    }
}

impl<'de> Deserialize<'de> for QuotaSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<QuotaSet, D::Error> {
        let list = Vec::<(QuotaEntity, BTreeMap<String, f64>)>::deserialize(d)?;
        Ok(QuotaSet { by_entity: list.into_iter().collect() })
    }
}

/// How a resolved quota is measured: the sensor's user and client-id tags (Kafka's metric
/// tags: the actual names for the entity types the matched entry has, else "").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SensorKey {
    pub kind: QuotaKind,
    pub user: String,
    pub client_id: String,
}

impl QuotaSet {
    pub fn is_empty(&self) -> bool {
        self.by_entity.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&QuotaEntity, &BTreeMap<String, f64>)> {
        self.by_entity.iter()
    }

    /// Sets (or with `None` removes) one key of one entity.
    pub fn set(&mut self, entity: &QuotaEntity, key: &str, value: Option<f64>) {
        match value {
            Some(v) => {
                self.by_entity.entry(entity.clone()).or_default().insert(key.to_string(), v);
            }
            None => {
                if let Some(values) = self.by_entity.get_mut(entity) {
                    values.remove(key);
                    if values.is_empty() {
                        self.by_entity.remove(entity);
                    }
                }
            }
        }
    }

    /// The quota for `kind` that applies to (user, client id), with Kafka's precedence:
    /// user+client, user+default client, user, default user+client, default user+default
    /// client, default user, client, default client.
    pub fn resolve(&self, kind: QuotaKind, user: &str, client_id: &str) -> Option<(f64, SensorKey)> {
        use EntityName::{Default as D, Named};
        let u = || Some(Named(user.to_string()));
        let c = || Some(Named(client_id.to_string()));
        let levels: [(Option<EntityName>, Option<EntityName>); 8] = [
            (u(), c()),
            (u(), Some(D)),
            (u(), None),
            (Some(D), c()),
            (Some(D), Some(D)),
            (Some(D), None),
            (None, c()),
            (None, Some(D)),
        ];
        for (user_part, client_part) in levels {
            let entity = QuotaEntity { user: user_part, client_id: client_part, ip: None };
            if let Some(v) = self.by_entity.get(&entity).and_then(|values| values.get(kind.key())) {
                let key = SensorKey {
                    kind,
                    user: if entity.user.is_some() { user.to_string() } else { String::new() },
                    client_id: if entity.client_id.is_some() { client_id.to_string() } else { String::new() },
                };
                return Some((*v, key));
            }
        }
        None
    }

    /// `connection_creation_rate` for an ip: its own, else the default ip's.
    pub fn ip_rate(&self, ip: &str) -> Option<f64> {
        let named = QuotaEntity { ip: Some(EntityName::Named(ip.to_string())), ..Default::default() };
        let default = QuotaEntity { ip: Some(EntityName::Default), ..Default::default() };
        [named, default]
            .iter()
            .find_map(|e| self.by_entity.get(e).and_then(|v| v.get(CONNECTION_CREATION_RATE)))
            .copied()
    }
}

/// How much a client may send at once before it is throttled: one second of its quota
/// (Kafka's `quota.window.size.seconds` default).
pub const BURST_MS: u64 = 1000;

/// A quota's measure, as a token bucket (the way KIP-599 measures Kafka's controller
/// mutation rate): it fills at the quota's rate up to `BURST_MS` worth; what is recorded
/// drains it; a debt is paid back by waiting debt / quota. Kafka's byte-rate quotas use an
/// 11-window sampled rate instead, which lets a client burst ten seconds of its quota
/// and then swings around it; the bucket holds a steady sender to the quota within a
/// second's worth, which is what the quota promises.
#[derive(Clone, Debug, Default)]
pub struct Rate {
    tokens: f64,
    /// When `tokens` was last brought up to date (None: never used, the bucket is full).
    at_ms: Option<u64>,
}

impl Rate {
    /// Records `value` and returns how long to throttle so that the sender stays within
    /// `quota` per second.
    pub fn record_and_throttle(&mut self, value: f64, quota: f64, now_ms: u64) -> u64 {
        if quota <= 0.0 {
            return 0;
        }
        let burst = quota * BURST_MS as f64 / 1000.0;
        self.tokens = match self.at_ms {
            None => burst,
            Some(at) => (self.tokens + now_ms.saturating_sub(at) as f64 * quota / 1000.0).min(burst),
        };
        self.at_ms = Some(now_ms);
        self.tokens -= value;
        if self.tokens >= 0.0 {
            return 0;
        }
        // Never longer than Kafka's longest throttle (the whole sample span, 11 s).
        (-self.tokens * 1000.0 / quota).ceil().min(11_000.0) as u64
    }
}

/// The broker's quota sensors, shared by its shards: one `Rate` per sensor key.
#[derive(Default)]
pub struct QuotaSensors {
    sensors: Mutex<HashMap<SensorKey, Arc<Mutex<Rate>>>>,
}

impl QuotaSensors {
    /// The sensor for `key`, made on first use (connections cache it).
    pub fn sensor(&self, key: SensorKey) -> Arc<Mutex<Rate>> {
        self.sensors.lock().expect("quota sensors").entry(key).or_default().clone()
    }
}

/// Milliseconds on a monotonic clock shared by the shards (sensors compare them).
pub fn now_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> QuotaEntity {
        QuotaEntity { user: user.map(EntityName::from_wire), client_id: client.map(EntityName::from_wire), ip: None }
    }

    #[test]
    fn precedence_is_kafkas() {
        let mut q = QuotaSet::default();
        let k = PRODUCER_BYTE_RATE;
        q.set(&entity(None, Some(None)), k, Some(8.0));
        assert_eq!(q.resolve(QuotaKind::Produce, "alice", "app").unwrap().0, 8.0);
        q.set(&entity(None, Some(Some("app"))), k, Some(7.0));
        assert_eq!(q.resolve(QuotaKind::Produce, "alice", "app").unwrap().0, 7.0);
        q.set(&entity(Some(None), None), k, Some(6.0));
        q.set(&entity(Some(None), Some(None)), k, Some(5.0));
        q.set(&entity(Some(None), Some(Some("app"))), k, Some(4.0));
        assert_eq!(q.resolve(QuotaKind::Produce, "alice", "app").unwrap().0, 4.0);
        q.set(&entity(Some(Some("alice")), None), k, Some(3.0));
        q.set(&entity(Some(Some("alice")), Some(None)), k, Some(2.0));
        assert_eq!(q.resolve(QuotaKind::Produce, "alice", "other").unwrap().0, 2.0);
        q.set(&entity(Some(Some("alice")), Some(Some("app"))), k, Some(1.0));
        let (v, key) = q.resolve(QuotaKind::Produce, "alice", "app").unwrap();
        assert_eq!((v, key.user.as_str(), key.client_id.as_str()), (1.0, "alice", "app"));
        let (v, key) = q.resolve(QuotaKind::Produce, "bob", "x").unwrap();
        assert_eq!((v, key.user.as_str(), key.client_id.as_str()), (5.0, "bob", "x"), "default user, default client");
        assert!(q.resolve(QuotaKind::Fetch, "alice", "app").is_none());
        q.set(&entity(Some(Some("alice")), Some(Some("app"))), k, None);
        assert_eq!(q.resolve(QuotaKind::Produce, "alice", "app").unwrap().0, 2.0, "user, default client");
    }

    #[test]
    fn entities_are_checked_as_kafka_does() {
        assert!(QuotaEntity::from_parts([("user", Some("a")), ("client-id", None)]).is_ok());
        assert!(QuotaEntity::from_parts([("ip", Some("10.0.0.1"))]).unwrap().accepts(CONNECTION_CREATION_RATE));
        assert!(QuotaEntity::from_parts([("ip", Some("nonsense"))]).is_err());
        assert!(QuotaEntity::from_parts([("ip", None), ("user", None)]).is_err());
        assert!(QuotaEntity::from_parts([("group", Some("g"))]).is_err());
        assert!(QuotaEntity::from_parts([]).is_err());
        assert!(!QuotaEntity::from_parts([("user", None)]).unwrap().accepts(CONNECTION_CREATION_RATE));
    }

    #[test]
    fn a_steady_overload_is_throttled_back_to_the_quota() {
        // 1000 B/s quota; a client able to send 100 B every ms (100 kB/s) that waits out
        // each throttle: in any 10 s after the first burst it sends the quota, within 10 %.
        let mut r = Rate::default();
        let mut now = 0u64;
        let mut sent = Vec::new();
        while now < 60_000 {
            let throttle = r.record_and_throttle(100.0, 1000.0, now);
            sent.push(now);
            now += 1 + throttle;
        }
        for from in (2_000..50_000).step_by(3_000) {
            let n = sent.iter().filter(|t| (from..from + 10_000).contains(*t)).count();
            let rate = n as f64 * 100.0 / 10.0;
            assert!((900.0..=1100.0).contains(&rate), "{rate} B/s from {from} ms");
        }
        // Below the quota: never throttled.
        let mut calm = Rate::default();
        assert!((0..1000).all(|i| calm.record_and_throttle(5.0, 1000.0, i * 10) == 0));
    }
}
