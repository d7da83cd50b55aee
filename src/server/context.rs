//! What a handler knows about who is asking: the connection's listener, security
//! protocol, peer and principal (`ConnectionContext`, one per connection), and the
//! request's client id (`RequestContext`, one per request, with the shard it runs on).
//! ACLs and quotas (security issue) decide from this; handlers never look at sockets.
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType, CLUSTER_NAME};
use crate::security::principal::KafkaPrincipal;
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
}

impl RequestContext {
    pub fn new(shard: Rc<Shard>, connection: Rc<ConnectionContext>, req: &Request) -> RequestContext {
        RequestContext { shard, connection, client_id: req.header.client_id.clone() }
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
        let image = self.shard.image_ref();
        let who = self.connection.principal.borrow();
        authorizer.super_users.contains(&who)
            || image.acls.allows_some(
                &who,
                self.connection.peer.map(|a| a.ip()),
                AclOperation::Write,
                ResourceType::Topic,
            )
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
