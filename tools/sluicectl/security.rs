//! ACLs (`kafka-acls.sh`), SCRAM users (`kafka-configs.sh --entity-type users
//! --alter --add-config SCRAM-SHA-512=[...]`) and client quotas (`kafka-configs.sh
//! --entity-type users|clients|ips`). Spoken with kafka-protocol, over a connection that
//! authenticates as `--command-config` says: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL,
//! with PLAIN or SCRAM, the broker checked against `ssl.truststore.location` (or
//! `ssl.ca.location`), and a client certificate from `ssl.keystore.location` (or
//! `ssl.certificate.location` and `ssl.key.location`) when one is given, all PEM.
use std::io::{Read, Write};

use bytes::Bytes;
use clap::{Args, Subcommand};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, StrBytes};
use serde_json::json;
use sluice::security::sasl::{scram_client, ScramMechanism};

use crate::bench::wire;
use crate::util::{self, print_json, print_table};

use crate::replicas::error_name;

fn failed(what: &str, code: i16, message: &Option<StrBytes>) -> String {
    let detail = message.as_ref().filter(|m| !m.is_empty()).map(|m| format!(": {m}")).unwrap_or_default();
    format!("{what}: {}{detail}", error_name(code))
}

/// A connection to a broker, plain or TLS.
pub trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

/// A connection to the bootstrap broker, authenticated as the command config says.
pub fn open(cli: &crate::Cli, what: &str) -> Result<Box<dyn Conn>, String> {
    open_at(&cli.bootstrap, what)
}

/// A connection to `bootstrap` (the first of its addresses that answers), authenticated as
/// the command config says.
pub fn open_at(bootstrap: &str, what: &str) -> Result<Box<dyn Conn>, String> {
    let config = util::command_config();
    let protocol = config.get("security.protocol").map(String::as_str).unwrap_or("PLAINTEXT").to_ascii_uppercase();
    if !matches!(protocol.as_str(), "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL") {
        return Err(format!(
            "{what}: security.protocol {protocol} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
        ));
    }
    let mut last = format!("{what}: no address in {bootstrap:?}");
    for addr in bootstrap.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let tcp = match wire::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                last = format!("{what}: {e}");
                continue;
            }
        };
        let mut s: Box<dyn Conn> = if protocol.ends_with("SSL") {
            Box::new(tls(tcp, addr).map_err(|e| format!("{what}: {addr}: {e}"))?)
        } else {
            Box::new(tcp)
        };
        if protocol.starts_with("SASL_") {
            let (user, password) = util::sasl_credentials()
                .ok_or_else(|| format!("{what}: the command config has no SASL username and password"))?;
            let mechanism = config.get("sasl.mechanism").map(String::as_str).unwrap_or("PLAIN").to_string();
            authenticate(&mut s, &mechanism, &user, &password).map_err(|e| format!("{what}: {e}"))?;
        }
        return Ok(s);
    }
    Err(last)
}

/// TLS over `tcp`, the broker checked by the host name (or address) of `addr`, with the
/// command config's truststore and (if any) client certificate: the broker's own TLS
/// client settings (`sluice::security::tls::client_config`) read the same names.
fn tls(
    tcp: std::net::TcpStream,
    addr: &str,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>, String> {
    let config = util::command_config();
    let mut keys = config.clone();
    let read = |key: &str| -> Result<Option<String>, String> {
        match config.get(key) {
            None => Ok(None),
            Some(path) => std::fs::read_to_string(path).map(Some).map_err(|e| format!("{key} {path}: {e}")),
        }
    };
    if !keys.contains_key("ssl.truststore.location") {
        let ca = config.get("ssl.ca.location").ok_or("the command config has no ssl.truststore.location (PEM)")?;
        keys.insert("ssl.truststore.location".into(), ca.clone());
    }
    if let (Some(cert), Some(key)) = (read("ssl.certificate.location")?, read("ssl.key.location")?) {
        keys.insert("ssl.keystore.certificate.chain".into(), cert);
        keys.insert("ssl.keystore.key".into(), key);
    }
    let tls = sluice::security::tls::client_config(&keys, "").map_err(|e| e.to_string())?;
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_matches(['[', ']']);
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host} is not a name TLS can check: {e}"))?;
    let conn = rustls::ClientConnection::new(tls, name).map_err(|e| e.to_string())?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

fn authenticate(s: &mut Box<dyn Conn>, mechanism: &str, user: &str, password: &str) -> Result<(), String> {
    use kafka_protocol::messages::{
        SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
    };
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_string(mechanism.to_string());
    let r: SaslHandshakeResponse = wire::call(s.as_mut(), ApiKey::SaslHandshake, 1, 1, &hs)?;
    if r.error_code != 0 {
        let offered: Vec<String> = r.mechanisms.iter().map(|m| m.to_string()).collect();
        return Err(format!(
            "SASL mechanism {mechanism} refused ({}); the broker offers {offered:?}",
            error_name(r.error_code)
        ));
    }
    let mut corr = 2;
    let mut send = |token: &[u8]| -> Result<Vec<u8>, String> {
        let mut req = SaslAuthenticateRequest::default();
        req.auth_bytes = Bytes::copy_from_slice(token);
        corr += 1;
        let r: SaslAuthenticateResponse = wire::call(s.as_mut(), ApiKey::SaslAuthenticate, 2, corr, &req)?;
        if r.error_code != 0 {
            return Err(failed("SASL authentication failed", r.error_code, &r.error_message));
        }
        Ok(r.auth_bytes.to_vec())
    };
    match ScramMechanism::from_name(mechanism) {
        Some(m) => scram_client(m, user, password, &sluice::security::sasl::nonce(), &mut send),
        None if mechanism == "PLAIN" => send(format!("\0{user}\0{password}").as_bytes()).map(drop),
        None => Err(format!("SASL mechanism {mechanism} is not supported by sluicectl")),
    }
}

fn random<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut out).expect("the system random source works");
    out
}

fn call<Req: Encodable, Resp: kafka_protocol::protocol::Decodable>(
    cli: &crate::Cli,
    what: &str,
    api: ApiKey,
    version: i16,
    req: &Req,
) -> Result<Resp, String> {
    let mut s = open(cli, what)?;
    wire::call(s.as_mut(), api, version, 100, req).map_err(|e| format!("{what}: {e}"))
}

// ---------------------------------------------------------------- ACLs

#[derive(Subcommand)]
pub enum AclCmd {
    /// Add an ACL: `--principal User:alice --operation write --topic orders`.
    Add(AclArgs),
    /// List the ACLs matching the given resource and principal (all without).
    List(AclFilterArgs),
    /// Remove the ACLs matching the given resource and principal.
    Remove(AclFilterArgs),
}

#[derive(Args, Clone)]
pub struct ResourceArgs {
    #[arg(long, conflicts_with_all = ["group", "cluster", "transactional_id"])]
    pub topic: Option<String>,
    #[arg(long, conflicts_with_all = ["cluster", "transactional_id"])]
    pub group: Option<String>,
    #[arg(long, conflicts_with = "transactional_id")]
    pub cluster: bool,
    #[arg(long)]
    pub transactional_id: Option<String>,
    /// The name is a prefix (`--resource-pattern-type prefixed` in kafka-acls.sh).
    #[arg(long)]
    pub prefixed: bool,
}

#[derive(Args)]
pub struct AclArgs {
    #[command(flatten)]
    pub resource: ResourceArgs,
    /// `User:<name>`, or `User:*` for everyone.
    #[arg(long)]
    pub principal: String,
    /// Operations, comma-separated: read, write, create, delete, alter, describe,
    /// cluster_action, describe_configs, alter_configs, idempotent_write, all.
    #[arg(long, value_delimiter = ',', required = true)]
    pub operation: Vec<String>,
    /// A DENY ACL instead of ALLOW.
    #[arg(long)]
    pub deny: bool,
    /// The client address the ACL applies to (default: any).
    #[arg(long, default_value = "*")]
    pub host: String,
}

#[derive(Args)]
pub struct AclFilterArgs {
    #[command(flatten)]
    pub resource: ResourceArgs,
    #[arg(long)]
    pub principal: Option<String>,
}

const OPERATIONS: &[(&str, i8)] = &[
    ("any", 1),
    ("all", 2),
    ("read", 3),
    ("write", 4),
    ("create", 5),
    ("delete", 6),
    ("alter", 7),
    ("describe", 8),
    ("cluster_action", 9),
    ("describe_configs", 10),
    ("alter_configs", 11),
    ("idempotent_write", 12),
];
const RESOURCE_TYPES: &[(&str, i8)] =
    &[("any", 1), ("topic", 2), ("group", 3), ("cluster", 4), ("transactional_id", 5)];
const PATTERNS: &[(&str, i8)] = &[("any", 1), ("match", 2), ("literal", 3), ("prefixed", 4)];

fn name_of(table: &[(&str, i8)], code: i8) -> String {
    table.iter().find(|(_, c)| *c == code).map_or(code.to_string(), |(n, _)| n.to_string())
}

fn operation_code(op: &str) -> Result<i8, String> {
    let op = op.trim().to_ascii_lowercase().replace('-', "_");
    OPERATIONS.iter().find(|(n, _)| *n == op).map(|(_, c)| *c).ok_or_else(|| {
        format!(
            "unknown operation {op:?}; one of {}",
            OPERATIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        )
    })
}

/// (resource type, name, pattern type) for a binding; `None` type for a filter that names none.
fn resource(r: &ResourceArgs) -> Option<(i8, String)> {
    if let Some(t) = &r.topic {
        Some((2, t.clone()))
    } else if let Some(g) = &r.group {
        Some((3, g.clone()))
    } else if r.cluster {
        Some((4, "kafka-cluster".to_string()))
    } else {
        r.transactional_id.as_ref().map(|t| (5, t.clone()))
    }
}

fn pattern(r: &ResourceArgs) -> i8 {
    if r.prefixed {
        4
    } else {
        3
    }
}

pub fn acl(cli: &crate::Cli, cmd: &AclCmd) -> Result<(), String> {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::messages::{
        CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
        DescribeAclsResponse,
    };
    match cmd {
        AclCmd::Add(a) => {
            let (t, name) =
                resource(&a.resource).ok_or("acl add: name a --topic, --group, --cluster or --transactional-id")?;
            let mut req = CreateAclsRequest::default();
            for op in &a.operation {
                let mut c = AclCreation::default();
                c.resource_type = t;
                c.resource_name = StrBytes::from_string(name.clone());
                c.resource_pattern_type = pattern(&a.resource);
                c.principal = StrBytes::from_string(a.principal.clone());
                c.host = StrBytes::from_string(a.host.clone());
                c.operation = operation_code(op)?;
                c.permission_type = if a.deny { 2 } else { 3 };
                req.creations.push(c);
            }
            let resp: CreateAclsResponse = call(cli, "acl add", ApiKey::CreateAcls, 3, &req)?;
            for r in &resp.results {
                if r.error_code != 0 {
                    return Err(failed("acl add", r.error_code, &r.error_message));
                }
            }
            if cli.json {
                print_json(&json!({"added": resp.results.len()}));
            } else {
                println!("Added {} ACL(s).", resp.results.len());
            }
            Ok(())
        }
        AclCmd::List(f) => {
            let mut req = DescribeAclsRequest::default();
            let (t, name) = resource(&f.resource).map_or((1, None), |(t, n)| (t, Some(n)));
            req.resource_type_filter = t;
            req.resource_name_filter = name.map(StrBytes::from_string);
            req.pattern_type_filter = if f.resource.prefixed { 4 } else { 1 };
            req.principal_filter = f.principal.clone().map(StrBytes::from_string);
            req.host_filter = None;
            req.operation = 1;
            req.permission_type = 1;
            let resp: DescribeAclsResponse = call(cli, "acl list", ApiKey::DescribeAcls, 3, &req)?;
            if resp.error_code != 0 {
                return Err(failed("acl list", resp.error_code, &resp.error_message));
            }
            let mut rows = Vec::new();
            for r in &resp.resources {
                for a in &r.acls {
                    rows.push(vec![
                        name_of(RESOURCE_TYPES, r.resource_type),
                        r.resource_name.to_string(),
                        name_of(PATTERNS, r.pattern_type),
                        a.principal.to_string(),
                        a.host.to_string(),
                        name_of(OPERATIONS, a.operation),
                        if a.permission_type == 2 { "DENY" } else { "ALLOW" }.to_string(),
                    ]);
                }
            }
            let headers = ["RESOURCE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"];
            if cli.json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        serde_json::Value::Object(
                            headers.iter().map(|h| h.to_lowercase()).zip(r.iter().map(|v| json!(v))).collect(),
                        )
                    })
                    .collect();
                print_json(&json!(list));
            } else {
                print_table(&headers, &rows);
            }
            Ok(())
        }
        AclCmd::Remove(f) => {
            let mut filter = DeleteAclsFilter::default();
            let (t, name) = resource(&f.resource).map_or((1, None), |(t, n)| (t, Some(n)));
            filter.resource_type_filter = t;
            filter.resource_name_filter = name.map(StrBytes::from_string);
            filter.pattern_type_filter = if f.resource.prefixed {
                4
            } else if t == 1 {
                1
            } else {
                3
            };
            filter.principal_filter = f.principal.clone().map(StrBytes::from_string);
            filter.host_filter = None;
            filter.operation = 1;
            filter.permission_type = 1;
            let mut req = DeleteAclsRequest::default();
            req.filters = vec![filter];
            let resp: DeleteAclsResponse = call(cli, "acl remove", ApiKey::DeleteAcls, 3, &req)?;
            let mut removed = 0;
            for r in &resp.filter_results {
                if r.error_code != 0 {
                    return Err(failed("acl remove", r.error_code, &r.error_message));
                }
                removed += r.matching_acls.len();
            }
            if cli.json {
                print_json(&json!({"removed": removed}));
            } else {
                println!("Removed {removed} ACL(s).");
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- SCRAM users

#[derive(Subcommand)]
pub enum UserCmd {
    /// SCRAM credentials (SCRAM-SHA-256, SCRAM-SHA-512).
    #[command(subcommand)]
    Scram(ScramCmd),
}

#[derive(Subcommand)]
pub enum ScramCmd {
    /// Set a user's password for a mechanism (salted here; the broker never sees it).
    Set {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value_t = 4096)]
        iterations: i32,
    },
    /// Delete a user's credential for a mechanism.
    Delete {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
    },
    /// The users with SCRAM credentials (or the one named), with mechanism and iterations.
    Describe {
        #[arg(long)]
        user: Option<String>,
    },
}

pub fn user(cli: &crate::Cli, cmd: &UserCmd) -> Result<(), String> {
    use kafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    use kafka_protocol::messages::{
        AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
        DescribeUserScramCredentialsResponse,
    };
    let UserCmd::Scram(cmd) = cmd;
    let mechanism = |m: &str| ScramMechanism::from_name(m).ok_or_else(|| format!("unknown SCRAM mechanism {m:?}"));
    let alter = |req: AlterUserScramCredentialsRequest, what: &str| -> Result<(), String> {
        let resp: AlterUserScramCredentialsResponse = call(cli, what, ApiKey::AlterUserScramCredentials, 0, &req)?;
        for r in &resp.results {
            if r.error_code != 0 {
                return Err(failed(&format!("{what} {}", r.user), r.error_code, &r.error_message));
            }
        }
        Ok(())
    };
    match cmd {
        ScramCmd::Set { user, mechanism: m, password, iterations } => {
            let m = mechanism(m)?;
            let salt: [u8; 16] = random();
            let mut u = ScramCredentialUpsertion::default();
            u.name = StrBytes::from_string(user.clone());
            u.mechanism = m.code();
            u.iterations = *iterations;
            u.salt = Bytes::copy_from_slice(&salt);
            u.salted_password = Bytes::from(m.salted_password(password, &salt, (*iterations).max(1) as u32));
            let mut req = AlterUserScramCredentialsRequest::default();
            req.upsertions = vec![u];
            alter(req, "user scram set")?;
            println!("Set the {} credential of {user}.", m.name());
            Ok(())
        }
        ScramCmd::Delete { user, mechanism: m } => {
            let m = mechanism(m)?;
            let mut d = ScramCredentialDeletion::default();
            d.name = StrBytes::from_string(user.clone());
            d.mechanism = m.code();
            let mut req = AlterUserScramCredentialsRequest::default();
            req.deletions = vec![d];
            alter(req, "user scram delete")?;
            println!("Deleted the {} credential of {user}.", m.name());
            Ok(())
        }
        ScramCmd::Describe { user } => {
            let mut req = DescribeUserScramCredentialsRequest::default();
            req.users = user.as_ref().map(|u| {
                let mut n = UserName::default();
                n.name = StrBytes::from_string(u.clone());
                vec![n]
            });
            let resp: DescribeUserScramCredentialsResponse =
                call(cli, "user scram describe", ApiKey::DescribeUserScramCredentials, 0, &req)?;
            if resp.error_code != 0 {
                return Err(failed("user scram describe", resp.error_code, &resp.error_message));
            }
            let mut rows = Vec::new();
            for r in &resp.results {
                if r.error_code != 0 {
                    return Err(failed(&format!("user scram describe {}", r.user), r.error_code, &r.error_message));
                }
                for c in &r.credential_infos {
                    let m = ScramMechanism::from_code(c.mechanism).map_or("?", |m| m.name());
                    rows.push(vec![r.user.to_string(), m.to_string(), c.iterations.to_string()]);
                }
            }
            if cli.json {
                let list: Vec<_> =
                    rows.iter().map(|r| json!({"user": r[0], "mechanism": r[1], "iterations": r[2]})).collect();
                print_json(&json!(list));
            } else {
                print_table(&["USER", "MECHANISM", "ITERATIONS"], &rows);
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- quotas

#[derive(Args, Clone)]
pub struct EntityArgs {
    #[arg(long, conflicts_with = "default_user")]
    pub user: Option<String>,
    /// The default user (`--entity-default` with `--entity-type users`).
    #[arg(long)]
    pub default_user: bool,
    #[arg(long, conflicts_with = "default_client")]
    pub client_id: Option<String>,
    /// The default client id.
    #[arg(long)]
    pub default_client: bool,
    #[arg(long, conflicts_with_all = ["default_ip", "user", "default_user", "client_id", "default_client"])]
    pub ip: Option<String>,
    #[arg(long)]
    pub default_ip: bool,
}

impl EntityArgs {
    /// (entity type, name) pairs; `None` name: the default.
    fn parts(&self) -> Vec<(&'static str, Option<String>)> {
        let mut out = Vec::new();
        if self.user.is_some() || self.default_user {
            out.push(("user", self.user.clone()));
        }
        if self.client_id.is_some() || self.default_client {
            out.push(("client-id", self.client_id.clone()));
        }
        if self.ip.is_some() || self.default_ip {
            out.push(("ip", self.ip.clone()));
        }
        out
    }
}

#[derive(Subcommand)]
pub enum QuotaCmd {
    /// Set quota values (`producer_byte_rate=1048576 consumer_byte_rate=...`) and remove
    /// others (`--delete request_percentage`) for one entity.
    Set {
        #[command(flatten)]
        entity: EntityArgs,
        #[arg(value_parser = util::kv_arg)]
        values: Vec<(String, String)>,
        #[arg(long)]
        delete: Vec<String>,
    },
    /// The quotas of the entities matching the given ones (all without).
    Describe {
        #[command(flatten)]
        entity: EntityArgs,
    },
}

pub fn quota(cli: &crate::Cli, cmd: &QuotaCmd) -> Result<(), String> {
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
    use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
    use kafka_protocol::messages::{
        AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest, DescribeClientQuotasResponse,
    };
    match cmd {
        QuotaCmd::Set { entity, values, delete } => {
            let parts = entity.parts();
            if parts.is_empty() {
                return Err("quota set: name an entity (--user, --client-id, --ip or a --default-*)".into());
            }
            let mut entry = EntryData::default();
            entry.entity = parts
                .iter()
                .map(|(t, n)| {
                    let mut e = EntityData::default();
                    e.entity_type = StrBytes::from_static_str(t);
                    e.entity_name = n.clone().map(StrBytes::from_string);
                    e
                })
                .collect();
            for (k, v) in values {
                let mut op = OpData::default();
                op.key = StrBytes::from_string(k.clone());
                op.value = v.parse().map_err(|_| format!("quota set: {k}={v} is not a number"))?;
                entry.ops.push(op);
            }
            for k in delete {
                let mut op = OpData::default();
                op.key = StrBytes::from_string(k.clone());
                op.remove = true;
                entry.ops.push(op);
            }
            let mut req = AlterClientQuotasRequest::default();
            req.entries = vec![entry];
            let resp: AlterClientQuotasResponse = call(cli, "quota set", ApiKey::AlterClientQuotas, 1, &req)?;
            for e in &resp.entries {
                if e.error_code != 0 {
                    return Err(failed("quota set", e.error_code, &e.error_message));
                }
            }
            println!("Quotas updated.");
            Ok(())
        }
        QuotaCmd::Describe { entity } => {
            let mut req = DescribeClientQuotasRequest::default();
            req.components = entity
                .parts()
                .into_iter()
                .map(|(t, n)| {
                    let mut c = ComponentData::default();
                    c.entity_type = StrBytes::from_static_str(t);
                    c.match_type = if n.is_some() { 0 } else { 1 };
                    c._match = n.map(StrBytes::from_string);
                    c
                })
                .collect();
            let resp: DescribeClientQuotasResponse =
                call(cli, "quota describe", ApiKey::DescribeClientQuotas, 1, &req)?;
            if resp.error_code != 0 {
                return Err(failed("quota describe", resp.error_code, &resp.error_message));
            }
            let mut rows = Vec::new();
            for e in resp.entries.iter().flatten() {
                let who: Vec<String> = e
                    .entity
                    .iter()
                    .map(|d| format!("{}={}", d.entity_type, d.entity_name.as_deref().unwrap_or("<default>")))
                    .collect();
                for v in &e.values {
                    rows.push(vec![who.join(","), v.key.to_string(), v.value.to_string()]);
                }
            }
            if cli.json {
                let list: Vec<_> = rows.iter().map(|r| json!({"entity": r[0], "key": r[1], "value": r[2]})).collect();
                print_json(&json!(list));
            } else {
                print_table(&["ENTITY", "KEY", "VALUE"], &rows);
            }
            Ok(())
        }
    }
}
