//! What a handler knows about who is asking: the connection's listener, security
//! protocol, peer and principal (`ConnectionContext`, one per connection), and the
//! request's client id (`RequestContext`, one per request, with the shard it runs on).
//! ACLs and quotas (security issue) decide from this; handlers never look at sockets.
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType, CLUSTER_NAME};
use crate::security::principal::KafkaPrincipal;
use crate::security::quota::{now_ms, QuotaKind, Rate};
use crate::shard::Shard;

/// Kafka's `security.protocol` values; only PLAINTEXT is served so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

pub struct ConnectionContext {
    /// The `listeners` entry the connection came in on (e.g. "PLAINTEXT").
    pub listener: Rc<str>,
    pub security_protocol: SecurityProtocol,
    pub peer: Option<SocketAddr>,
    /// `User:ANONYMOUS` until the connection authenticates.
    principal: RefCell<KafkaPrincipal>,
    /// The peer's address as Kafka reports a client host: "/ip".
    client_host: Rc<str>,
    /// Where the connection is in SASL authentication (SASL_PLAINTEXT, SASL_SSL).
    pub sasl: RefCell<SaslState>,
    /// The quotas that applied at the last request, while the image, principal and client
    /// id stay the same (resolving them anew per request would allocate).
    quota_cache: RefCell<Option<QuotaCache>>,
    /// Quota throttling (KIP-219): nothing more is read from the connection before this.
    muted_until: Cell<Option<Instant>>,
    /// When the SASL session ends (`connections.max.reauth.ms`, KIP-368): past it, only a
    /// re-authentication is served.
    pub session_expires: Cell<Option<Instant>>,
    /// Whether the connection has authenticated with SASL at least once (a later
    /// handshake is a re-authentication, which must keep the principal).
    pub sasl_authenticated_once: Cell<bool>,
}

/// What `ConnectionContext::quota_cache` holds.
struct QuotaCache {
    image_version: u64,
    user: String,
    client_id: String,
    /// By `QuotaKind::ALL` order: the quota and its broker-wide sensor.
    sensors: [Option<(f64, Arc<Mutex<Rate>>)>; 3],
}

/// A connection's SASL progress.
pub enum SaslState {
    /// The listener does not authenticate with SASL.
    NotRequired,
    /// Waiting for SaslHandshake.
    Handshake,
    /// The mechanism is chosen; SaslAuthenticate tokens go to it.
    Plain,
    Scram(crate::security::sasl::ScramServer),
    /// Authenticated (the principal is set).
    Done,
}

impl SaslState {
    /// Whether requests other than ApiVersions and the SASL ones may run.
    pub fn authenticated(&self) -> bool {
        matches!(self, SaslState::NotRequired | SaslState::Done)
    }
}

impl ConnectionContext {
    pub fn new(listener: Rc<str>, security_protocol: SecurityProtocol, peer: Option<SocketAddr>) -> ConnectionContext {
        let client_host = peer.map(|a| format!("/{}", a.ip())).unwrap_or_default().into();
        ConnectionContext {
            listener,
            security_protocol,
            peer,
            principal: RefCell::new(KafkaPrincipal::anonymous()),
            client_host,
            sasl: RefCell::new(match security_protocol {
                SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => SaslState::Handshake,
                _ => SaslState::NotRequired,
            }),
            quota_cache: RefCell::new(None),
            muted_until: Cell::new(None),
            session_expires: Cell::new(None),
            sasl_authenticated_once: Cell::new(false),
        }
    }

    /// Until when the reader must not read (quota throttling), if it must wait.
    pub fn muted_until(&self) -> Option<Instant> {
        self.muted_until.get().filter(|t| *t > Instant::now())
    }

    fn mute_for(&self, ms: u64) {
        let until = Instant::now() + std::time::Duration::from_millis(ms);
        if self.muted_until.get().is_none_or(|t| t < until) {
            self.muted_until.set(Some(until));
        }
    }

    pub fn principal(&self) -> KafkaPrincipal {
        self.principal.borrow().clone()
    }

    /// The connection authenticated as `principal` (SASL).
    pub fn set_principal(&self, principal: KafkaPrincipal) {
        *self.principal.borrow_mut() = principal;
    }

    pub fn client_host(&self) -> &Rc<str> {
        &self.client_host
    }
}

/// Handed to every handler.
pub struct RequestContext {
    pub shard: Rc<Shard>,
    pub connection: Rc<ConnectionContext>,
    /// The request header's client id (shared with the header, not copied).
    client_id: Option<kafka_protocol::protocol::StrBytes>,
    /// Replication (a follower's fetch) is not held to `request_percentage`, as in Kafka.
    pub request_quota_exempt: std::cell::Cell<bool>,
}

impl RequestContext {
    pub fn new(shard: Rc<Shard>, connection: Rc<ConnectionContext>, req: &Request) -> RequestContext {
        RequestContext {
            shard,
            connection,
            client_id: req.header.client_id.clone(),
            request_quota_exempt: std::cell::Cell::new(false),
        }
    }

    /// The request header's client id ("" when the client sent none).
    pub fn client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or("")
    }

    pub fn principal(&self) -> KafkaPrincipal {
        self.connection.principal()
    }

    /// Whether this connection's principal may do `op` on resource `name` of type `t`
    /// (the broker's authorizer over the current image's ACLs). No allocation, no lock:
    /// it runs on the produce and fetch paths.
    pub fn authorized(&self, op: AclOperation, t: ResourceType, name: &str) -> bool {
        let authorizer = &self.shard.config.authorizer;
        if !authorizer.enabled {
            return true;
        }
        let image = self.shard.image_ref();
        let who = self.connection.principal.borrow();
        authorizer.authorize(&image.acls, &who, self.connection.peer.map(|a| a.ip()), op, t, name)
    }

    /// [`Self::authorized`] on the cluster resource.
    pub fn cluster_authorized(&self, op: AclOperation) -> bool {
        self.authorized(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// The idempotent producer's right (Kafka's InitProducerId without a transactional
    /// id): IDEMPOTENT_WRITE on the cluster, or WRITE on some topic.
    pub fn may_write_idempotently(&self) -> bool {
        let authorizer = &self.shard.config.authorizer;
        if !authorizer.enabled || self.cluster_authorized(AclOperation::IdempotentWrite) {
            return true;
        }
        // (A super user was let through by the cluster check above.)
        let image = self.shard.image_ref();
        let who = self.connection.principal.borrow();
        image.acls.allows_some(&who, self.connection.peer.map(|a| a.ip()), AclOperation::Write, ResourceType::Topic)
    }

    /// Records `value` against this connection's `kind` quota, if one applies (bytes for
    /// produce and fetch, percent of one thread for one second for request time), and
    /// returns the throttle in ms; a throttled connection is muted for that long.
    pub fn record_quota(&self, kind: QuotaKind, value: f64) -> u64 {
        let image = self.shard.image_ref();
        if image.quotas.is_empty() {
            return 0;
        }
        let who = self.connection.principal.borrow();
        let client_id = self.client_id();
        let mut cache = self.connection.quota_cache.borrow_mut();
        let fresh = cache
            .as_ref()
            .is_some_and(|c| c.image_version == image.version && c.user == who.name && c.client_id == client_id);
        if !fresh {
            let sensors = QuotaKind::ALL.map(|k| {
                image
                    .quotas
                    .resolve(k, &who.name, client_id)
                    .map(|(quota, key)| (quota, self.shard.lifecycle.quota_sensors.sensor(key)))
            });
            *cache = Some(QuotaCache {
                image_version: image.version,
                user: who.name.clone(),
                client_id: client_id.to_string(),
                sensors,
            });
        }
        let slot = QuotaKind::ALL.iter().position(|k| *k == kind).expect("every kind");
        let Some((quota, sensor)) = cache.as_ref().and_then(|c| c.sensors[slot].as_ref()) else {
            return 0;
        };
        let throttle = sensor.lock().unwrap_or_else(|p| p.into_inner()).record_and_throttle(value, *quota, now_ms());
        if throttle > 0 {
            self.connection.mute_for(throttle);
        }
        throttle
    }

    /// The authorized-operations field for a resource (Metadata, DescribeCluster,
    /// DescribeGroups, DescribeTopicPartitions).
    pub fn authorized_operations(&self, t: ResourceType, name: &str, requested: bool) -> i32 {
        crate::security::operations::authorized_operations(t, requested, |op| self.authorized(op, t, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_starts_anonymous() {
        let c = ConnectionContext::new("PLAINTEXT".into(), SecurityProtocol::Plaintext, "10.1.2.3:5000".parse().ok());
        assert_eq!(c.principal().to_string(), "User:ANONYMOUS");
        assert_eq!(&**c.client_host(), "/10.1.2.3");
        c.set_principal(KafkaPrincipal::user("alice"));
        assert_eq!(c.principal().to_string(), "User:alice");
        assert_eq!(c.security_protocol.name(), "PLAINTEXT");
    }
}
