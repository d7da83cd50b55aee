//! Shared helpers for sluicectl commands: client configuration, connection checks,
//! error wording, metadata, and table / JSON output.
#![allow(dead_code)]

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;

/// Timeout for one broker round trip (metadata, admin requests, offsets).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout for opening a TCP connection to a bootstrap address.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub type Admin = AdminClient<DefaultClientContext>;

/// The client configuration every sluicectl client starts from, with the security
/// settings of `--command-config`.
pub fn base_config(cli: &crate::Cli) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cli.bootstrap)
        .set("client.id", "sluicectl")
        .set("socket.connection.setup.timeout.ms", "5000")
        .set("socket.timeout.ms", "10000")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "1000")
        .set("topic.metadata.refresh.interval.ms", "5000");
    apply_security(&mut c);
    c
}

/// The security settings of `--command-config`, in librdkafka's names.
pub fn apply_security(c: &mut ClientConfig) {
    let config = command_config();
    for key in [
        "security.protocol",
        "sasl.mechanism",
        "ssl.ca.location",
        "ssl.certificate.location",
        "ssl.key.location",
        "ssl.key.password",
    ] {
        if let Some(v) = config.get(key) {
            c.set(key, v);
        }
    }
    // Java clients' names for the same things (PEM files).
    if let Some(v) = config.get("ssl.truststore.location").filter(|_| !config.contains_key("ssl.ca.location")) {
        c.set("ssl.ca.location", v);
    }
    if let Some((user, password)) = sasl_credentials() {
        c.set("sasl.username", user).set("sasl.password", password);
    }
}

static COMMAND_CONFIG: std::sync::OnceLock<std::collections::BTreeMap<String, String>> = std::sync::OnceLock::new();

/// Reads `--command-config` (a Kafka client properties file) once, at start.
pub fn load_command_config(path: Option<&std::path::Path>) -> Result<(), String> {
    let mut map = std::collections::BTreeMap::new();
    if let Some(path) = path {
        let text = std::fs::read_to_string(path).map_err(|e| format!("--command-config {}: {e}", path.display()))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("--command-config {}: cannot parse {line:?} as key=value", path.display()))?;
            map.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    let _ = COMMAND_CONFIG.set(map);
    Ok(())
}

/// The `--command-config` properties (empty without one).
pub fn command_config() -> &'static std::collections::BTreeMap<String, String> {
    COMMAND_CONFIG.get_or_init(Default::default)
}

/// The SASL user and password of the command config: `sasl.username`/`sasl.password`
/// (librdkafka's names) or the `username="…" password="…"` of `sasl.jaas.config` (Java's).
pub fn sasl_credentials() -> Option<(String, String)> {
    let c = command_config();
    if let (Some(u), Some(p)) = (c.get("sasl.username"), c.get("sasl.password")) {
        return Some((u.clone(), p.clone()));
    }
    let jaas = c.get("sasl.jaas.config")?;
    let field = |name: &str| {
        let at = jaas.find(&format!("{name}="))? + name.len() + 1;
        let rest = jaas[at..].trim_start().strip_prefix('"')?;
        rest.split_once('"').map(|(v, _)| v.to_string())
    };
    Some((field("username")?, field("password")?))
}

/// Checks that at least one bootstrap address accepts a TCP connection, so that a
/// wrong `--bootstrap` fails fast with a clear message instead of a client timeout.
pub fn probe(cli: &crate::Cli) -> Result<(), String> {
    let mut last_err = String::from("no address given");
    for server in cli.bootstrap.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // Accept "PLAINTEXT://host:port" as well as "host:port".
        let server = server.rsplit("://").next().unwrap_or(server);
        let with_port = if server.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            server.to_string()
        } else {
            format!("{server}:9092")
        };
        let addrs = match with_port.to_socket_addrs() {
            Ok(a) => a.collect::<Vec<_>>(),
            Err(e) => {
                last_err = format!("cannot resolve '{server}': {e}");
                continue;
            }
        };
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(_) => return Ok(()),
                Err(e) => last_err = e.to_string(),
            }
        }
    }
    Err(format!("cannot connect to {}: {last_err}", cli.bootstrap))
}

/// Probe the bootstrap servers, then build an admin client.
pub fn admin(cli: &crate::Cli) -> Result<Admin, String> {
    probe(cli)?;
    base_config(cli).create().map_err(|e| format!("cannot create admin client: {}", kerr(&e)))
}

pub fn admin_opts() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(TIMEOUT)).operation_timeout(Some(TIMEOUT))
}

/// Probe, then build a consumer that is only used for metadata / offsets queries
/// (never subscribes). `group` sets `group.id` (needed for committed offsets).
pub fn query_consumer(cli: &crate::Cli, group: Option<&str>) -> Result<BaseConsumer, String> {
    probe(cli)?;
    let mut c = base_config(cli);
    c.set("allow.auto.create.topics", "false").set("enable.auto.commit", "false");
    if let Some(g) = group {
        c.set("group.id", g);
    }
    c.create().map_err(|e| format!("cannot create client: {}", kerr(&e)))
}

/// The human description of an error code, e.g. "Broker: Unknown topic or partition".
pub fn code_desc(code: RDKafkaErrorCode) -> String {
    // Display is "Name (description)".
    let s = code.to_string();
    match (s.find(" ("), s.rfind(')')) {
        (Some(a), Some(b)) if b > a + 2 => s[a + 2..b].to_string(),
        _ => s,
    }
}

/// One-line wording of a client error, without rdkafka's wrapper prefixes.
pub fn kerr(e: &KafkaError) -> String {
    match e {
        KafkaError::AdminOp(c) => code_desc(*c),
        KafkaError::ClientCreation(s) | KafkaError::AdminOpCreation(s) => s.clone(),
        KafkaError::ClientConfig(_, desc, key, value) => format!("{desc} ({key}={value})"),
        _ => match e.rdkafka_error_code() {
            Some(c) => code_desc(c),
            None => e.to_string(),
        },
    }
}

/// True when an error code means "the broker does not implement this request".
pub fn is_unsupported(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion | RDKafkaErrorCode::InvalidRequest
    )
}

/// Metadata for one topic (or all topics), with connection failures reworded.
pub fn fetch_metadata<C: Consumer>(cli: &crate::Cli, c: &C, topic: Option<&str>) -> Result<Metadata, String> {
    c.fetch_metadata(topic, TIMEOUT).map_err(|e| match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::BrokerTransportFailure)
        | Some(RDKafkaErrorCode::AllBrokersDown)
        | Some(RDKafkaErrorCode::OperationTimedOut) => {
            format!("cannot get metadata from {}: {}", cli.bootstrap, kerr(&e))
        }
        _ => format!("metadata: {}", kerr(&e)),
    })
}

/// Partition ids of `topic`, sorted; a clear error if the topic does not exist.
pub fn topic_partitions<C: Consumer>(cli: &crate::Cli, c: &C, topic: &str) -> Result<Vec<i32>, String> {
    let md = fetch_metadata(cli, c, Some(topic))?;
    let t = md.topics().iter().find(|t| t.name() == topic).ok_or_else(|| format!("unknown topic '{topic}'"))?;
    if let Some(e) = t.error() {
        let code = RDKafkaErrorCode::from(e);
        if code == RDKafkaErrorCode::UnknownTopicOrPartition || code == RDKafkaErrorCode::UnknownTopic {
            return Err(format!("unknown topic '{topic}'"));
        }
        return Err(format!("topic '{topic}': {}", code_desc(code)));
    }
    if t.partitions().is_empty() {
        return Err(format!("unknown topic '{topic}'"));
    }
    let mut v: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    v.sort_unstable();
    Ok(v)
}

/// Runs an rdkafka admin future to completion (admin futures carry their own
/// request timeout, so this cannot hang).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

/// Print rows as a left-aligned table with a header line.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    print!("{}", table(headers, rows));
}

pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut l = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            l.push_str(c);
            if i + 1 < n {
                let pad = widths[i] - c.chars().count() + 2;
                l.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into()));
}

/// "1,2,3"
pub fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

/// Parse "k=v" (value may contain '=').
pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// Clap value parser for "k=v".
pub fn kv_arg(s: &str) -> Result<(String, String), String> {
    parse_kv(s)
}

/// A record-batch compression codec, as `--compression` takes it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The value librdkafka's `compression.type` takes.
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}
