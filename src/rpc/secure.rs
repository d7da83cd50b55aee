//! The controller listener's security: TLS when its protocol (in
//! `listener.security.protocol.map`) is SSL or SASL_SSL, and SASL PLAIN when it is
//! SASL_PLAINTEXT or SASL_SSL, both from the same per-listener settings as any other
//! listener, as Kafka's controller listener takes them:
//! - the server side (a voter) presents the listener's keystore, asks for client
//!   certificates per `ssl.client.auth`, and checks PLAIN users against the listener's
//!   `plain.sasl.jaas.config` (`user_<name>="<password>"`);
//! - the client side (every node that talks to a voter) verifies the voter with the
//!   listener's truststore and logs in with the `username` and `password` of that line,
//!   by `sasl.mechanism.controller.protocol` (PLAIN; Kafka does not serve SCRAM to
//!   controllers either: their credentials live in the metadata the controllers hold).
//!
//! The SASL exchange is this transport's first frame (`Request::Authenticate`), since the
//! controller listener speaks Sluice's framing, not Kafka's. With an authorizer
//! configured, the authenticated principal must also be a super user or hold
//! CLUSTER_ACTION on the cluster, as Kafka's controller asks of the brokers.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::BrokerConfig;
use crate::security::acl::{AclSet, AuthorizerConfig};
use crate::security::operations::{AclOperation, ResourceType, CLUSTER_NAME};
use crate::security::principal::KafkaPrincipal;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// A connection on the controller listener, plain or TLS.
pub type Stream = Box<dyn Io>;

/// The only mechanism served on the controller listener.
const MECHANISM: &str = "PLAIN";

/// How this node secures its controller connections, both ways.
#[derive(Clone, Default)]
pub struct Security {
    listener: String,
    tls_server: Option<tokio_rustls::TlsAcceptor>,
    tls_client: Option<tokio_rustls::TlsConnector>,
    /// SASL on the listener: the users a voter accepts, and this node's own login.
    sasl: Option<Arc<Sasl>>,
    mapper: Option<Arc<crate::security::principal_mapping::PrincipalMapper>>,
    authorizer: AuthorizerConfig,
}

struct Sasl {
    users: BTreeMap<String, String>,
    login: Option<(String, String)>,
}

impl Security {
    /// From this node's settings for its controller listener (the first name in
    /// `controller.listener.names`). A setting that cannot work is an error naming it.
    pub fn from_config(config: &BrokerConfig) -> Result<Security, String> {
        let Some(listener) = config.controller_listener_names.first().cloned() else {
            return Ok(Security::default());
        };
        let keys = &config.explicit_keys;
        let protocol = config.security_protocol(&listener).to_string();
        let mut s =
            Security { listener: listener.clone(), authorizer: config.authorizer.clone(), ..Default::default() };
        if protocol == "SSL" || protocol == "SASL_SSL" {
            // A voter serves the listener; every node connects to voters through it.
            if config.process_roles.controller {
                let server = crate::security::tls::server_config(keys, &listener)
                    .map_err(|e| format!("controller listener {listener}: {e}"))?;
                s.tls_server = Some(tokio_rustls::TlsAcceptor::from(server));
                let mapper = crate::security::tls::principal_mapper(keys, &listener)
                    .map_err(|e| format!("controller listener {listener}: {e}"))?;
                s.mapper = Some(Arc::new(mapper));
            }
            let client = crate::security::tls::client_config(keys, &listener)
                .map_err(|e| format!("controller listener {listener}: {e}"))?;
            s.tls_client = Some(tokio_rustls::TlsConnector::from(client));
        }
        if protocol.starts_with("SASL_") {
            let mechanism = keys.get("sasl.mechanism.controller.protocol").map(|m| m.trim()).unwrap_or(MECHANISM);
            if mechanism != MECHANISM {
                return Err(format!(
                    "sasl.mechanism.controller.protocol: {mechanism} is not supported on the controller listener (PLAIN)"
                ));
            }
            let jaas = crate::security::listener_setting(keys, &listener, "plain.sasl.jaas.config")
                .or_else(|| crate::security::listener_setting(keys, &listener, "sasl.jaas.config"));
            let Some((key, jaas)) = jaas else {
                return Err(format!(
                    "controller listener {listener} is {protocol}: set listener.name.{}.plain.sasl.jaas.config",
                    listener.to_ascii_lowercase()
                ));
            };
            let users: BTreeMap<String, String> = crate::security::sasl::jaas_users(jaas).into_iter().collect();
            let login = crate::security::sasl::jaas_login(jaas);
            if login.is_none() && !config.process_roles.controller {
                return Err(format!(
                    "{key}: no username=\"…\" password=\"…\" for this node's login to the controllers"
                ));
            }
            if login.is_none() && config.controller_quorum_voters.len() > 1 {
                return Err(format!("{key}: no username=\"…\" password=\"…\" for this voter's login to the others"));
            }
            if config.process_roles.controller && users.is_empty() {
                return Err(format!("{key}: no user_<name>=\"<password>\" for the controller listener to accept"));
            }
            s.sasl = Some(Arc::new(Sasl { users, login }));
        }
        Ok(s)
    }

    /// The server side of a new connection: the TLS handshake (within `timeout`) and the
    /// principal its certificate maps to, if any.
    pub async fn accept(&self, tcp: TcpStream, timeout: Duration) -> Result<(Stream, Option<KafkaPrincipal>), String> {
        let Some(acceptor) = &self.tls_server else { return Ok((Box::new(tcp), None)) };
        let s = tokio::time::timeout(timeout, acceptor.accept(tcp))
            .await
            .map_err(|_| format!("TLS handshake not finished within {timeout:?}"))?
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let principal = match &self.mapper {
            Some(mapper) => crate::security::tls::peer_principal(s.get_ref().1.peer_certificates(), mapper)
                .map_err(|dn| format!("no ssl.principal.mapping.rules rule applies to {dn}"))?,
            None => None,
        };
        Ok((Box::new(s), principal))
    }

    /// Whether connections must authenticate with SASL before anything else.
    pub fn needs_sasl(&self) -> bool {
        self.sasl.is_some()
    }

    /// A voter checks a PLAIN token: the principal, or why not (never with the password).
    pub fn check_login(&self, mechanism: &str, token: &[u8]) -> Result<KafkaPrincipal, String> {
        let Some(sasl) = &self.sasl else { return Err("SASL is not enabled on this listener".into()) };
        if mechanism != MECHANISM {
            return Err(format!("mechanism {mechanism} is not enabled (PLAIN)"));
        }
        let user = crate::security::sasl::plain(token, &|u| sasl.users.get(u).cloned()).map_err(|e| {
            // The user the attempt named, for the log; never the password.
            let named = token.split(|b| *b == 0).nth(1).map(String::from_utf8_lossy).unwrap_or_default();
            format!("{e} (user {named:?})")
        })?;
        Ok(KafkaPrincipal::user(user))
    }

    /// Whether `who` may use the controller: with an authorizer, a super user or one with
    /// CLUSTER_ACTION on the cluster.
    pub fn permits(&self, acls: &AclSet, who: &KafkaPrincipal, host: Option<std::net::IpAddr>) -> bool {
        !self.authorizer.enabled
            || self.authorizer.authorize(
                acls,
                who,
                host,
                AclOperation::ClusterAction,
                ResourceType::Cluster,
                CLUSTER_NAME,
            )
    }

    /// The client side: TCP to `addr`, then TLS (the voter checked by its host name or
    /// address). The SASL step is the caller's first request (`login_token`).
    pub async fn connect(&self, addr: &str) -> Result<Stream, String> {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let Some(connector) = &self.tls_client else { return Ok(Box::new(tcp)) };
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_matches(['[', ']']);
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host} is not a name TLS can check: {e}"))?;
        let s = connector.connect(name, tcp).await.map_err(|e| format!("TLS handshake: {e}"))?;
        Ok(Box::new(s))
    }

    /// This node's PLAIN login token, when the listener needs one.
    pub fn login_token(&self) -> Option<(String, Vec<u8>)> {
        let (user, password) = self.sasl.as_ref()?.login.as_ref()?;
        Some((MECHANISM.to_string(), format!("\0{user}\0{password}").into_bytes()))
    }

    pub fn listener(&self) -> &str {
        &self.listener
    }
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("listener", &self.listener)
            .field("tls", &self.tls_client.is_some())
            .field("sasl", &self.sasl.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &[(&str, &str)]) -> Result<Security, String> {
        let mut keys: Vec<(String, String)> = [
            ("process.roles", "controller"),
            ("node.id", "1"),
            ("controller.quorum.voters", "1@127.0.0.1:9093"),
            ("listeners", "CONTROLLER://127.0.0.1:9093"),
            ("listener.security.protocol.map", "CONTROLLER:SASL_PLAINTEXT"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        keys.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (c, _) = BrokerConfig::from_sources("", &keys).map_err(|e| e.to_string())?;
        Security::from_config(&c)
    }

    const JAAS: &str =
        r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="c" password="pw" user_c="pw";"#;

    #[test]
    fn a_sasl_controller_listener_checks_plain_logins_against_its_own_users() {
        let s = config(&[("listener.name.controller.plain.sasl.jaas.config", JAAS)]).unwrap();
        assert!(s.needs_sasl());
        let (mechanism, token) = s.login_token().unwrap();
        assert_eq!(s.check_login(&mechanism, &token).unwrap(), KafkaPrincipal::user("c"));
        let wrong = s.check_login("PLAIN", b"\0c\0guess").unwrap_err();
        assert!(wrong.contains("\"c\"") && !wrong.contains("guess"), "{wrong}");
        assert!(s.check_login("SCRAM-SHA-512", &token).is_err());
    }

    #[test]
    fn settings_that_cannot_work_are_refused_at_start() {
        assert!(config(&[]).unwrap_err().contains("plain.sasl.jaas.config"));
        let scram = config(&[
            ("listener.name.controller.plain.sasl.jaas.config", JAAS),
            ("sasl.mechanism.controller.protocol", "SCRAM-SHA-512"),
        ]);
        assert!(scram.unwrap_err().contains("sasl.mechanism.controller.protocol"));
        let no_users =
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="c" password="pw";"#;
        assert!(config(&[("listener.name.controller.plain.sasl.jaas.config", no_users)]).is_err());
    }
}
