//! Shared black-box harness for Sluice integration tests.
//!
//! Every test starts its own broker process (`Broker::start*`) on a fresh
//! port and a fresh temporary `log.dirs`, and talks to it only over the Kafka
//! protocol (rdkafka / rskafka) or by inspecting the on-disk files.
//!
//! Every wait in here is bounded: no helper can hang forever.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, Timestamp, TopicPartitionList};

pub use rskafka;

mod broker;
mod clients;
mod cluster;
mod disk;
pub mod external;
pub mod netcut;
pub mod txn_probe;

// Each test binary uses some of these; the rest would warn as unused there.
#[allow(unused_imports)]
pub use broker::*;
#[allow(unused_imports)]
pub use clients::*;
#[allow(unused_imports)]
pub use cluster::*;
#[allow(unused_imports)]
pub use disk::*;

/// Default number of shards (`--cores`) so that cross-shard paths are used.
pub const DEFAULT_CORES: usize = 2;
/// How long a broker may take to accept TCP connections after spawn.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a broker may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Async helpers
// ---------------------------------------------------------------------------

/// A multi-threaded tokio runtime (for rskafka / admin futures).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("build tokio runtime")
}

/// Await `fut` with a timeout; panics with `what` on timeout.
pub async fn within<T, F: Future<Output = T>>(d: Duration, what: &str, fut: F) -> T {
    match tokio::time::timeout(d, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {d:?}: {what}"),
    }
}

/// Run a future to completion on a fresh current-thread runtime, with a timeout.
/// Must not be called from inside an async context.
pub fn block_on<T, F: Future<Output = T>>(d: Duration, what: &str, fut: F) -> T {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("build tokio runtime");
    rt.block_on(within(d, what, fut))
}

/// Poll `f` every 100 ms until it returns `Some`, or panic after `timeout`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("condition not met within {timeout:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// rdkafka: admin
// ---------------------------------------------------------------------------

pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

pub fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "30000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500");
    c
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    base_config(bootstrap).create().expect("create rdkafka AdminClient")
}

pub fn admin_opts() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(20))).operation_timeout(Some(Duration::from_secs(20)))
}

/// CreateTopics for a list of `NewTopic`s; returns the per-topic results.
pub fn create_topics_raw(
    bootstrap: &str,
    topics: &[NewTopic<'_>],
    opts: &AdminOptions,
) -> Vec<Result<String, (String, RDKafkaErrorCode)>> {
    let admin = admin(bootstrap);
    block_on(ADMIN_TIMEOUT, "CreateTopics", admin.create_topics(topics, opts))
        .unwrap_or_else(|e| panic!("CreateTopics request failed: {e}"))
}

/// Create one topic (replication factor 1) and assert success, then wait until
/// metadata shows it with all partitions led.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    create_topic_with_config(bootstrap, name, partitions, &[]);
}

pub fn create_topic_with_config(bootstrap: &str, name: &str, partitions: i32, config: &[(&str, &str)]) {
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in config {
        t = t.set(k, v);
    }
    let res = create_topics_raw(bootstrap, &[t], &admin_opts());
    assert_eq!(res.len(), 1, "CreateTopics returned {} results", res.len());
    match &res[0] {
        Ok(n) => assert_eq!(n, name),
        Err((n, code)) => panic!("CreateTopics({n}, {partitions} partitions) failed: {code:?}"),
    }
    wait_for_topic(bootstrap, name, partitions as usize);
}

pub fn delete_topics_raw(bootstrap: &str, names: &[&str]) -> Vec<Result<String, (String, RDKafkaErrorCode)>> {
    let admin = admin(bootstrap);
    block_on(ADMIN_TIMEOUT, "DeleteTopics", admin.delete_topics(names, &admin_opts()))
        .unwrap_or_else(|e| panic!("DeleteTopics request failed: {e}"))
}

// ---------------------------------------------------------------------------
// rdkafka: metadata
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct TopicMeta {
    pub name: String,
    pub error: Option<RDKafkaErrorCode>,
    /// (partition id, leader, replicas, isr, error)
    pub partitions: Vec<(i32, i32, Vec<i32>, Vec<i32>, Option<RDKafkaErrorCode>)>,
}

#[derive(Debug, Clone)]
pub struct ClusterMeta {
    pub orig_broker_id: i32,
    /// (id, host, port)
    pub brokers: Vec<(i32, String, i32)>,
    pub topics: Vec<TopicMeta>,
}

impl ClusterMeta {
    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.iter().find(|t| t.name == name)
    }
}

/// Metadata via a consumer client (`allow.auto.create.topics=false`, so it does not
/// create topics). `topic = None` requests all topics.
pub fn metadata(bootstrap: &str, topic: Option<&str>) -> ClusterMeta {
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", "sluice-test-metadata")
        .set("allow.auto.create.topics", "false")
        .create()
        .expect("create consumer for metadata");
    let md = consumer
        .fetch_metadata(topic, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("fetch_metadata({topic:?}) failed: {e}"));
    convert_metadata(&md)
}

pub fn convert_metadata(md: &rdkafka::metadata::Metadata) -> ClusterMeta {
    ClusterMeta {
        orig_broker_id: md.orig_broker_id(),
        brokers: md.brokers().iter().map(|b| (b.id(), b.host().to_string(), b.port())).collect(),
        topics: md
            .topics()
            .iter()
            .map(|t| TopicMeta {
                name: t.name().to_string(),
                error: t.error().map(RDKafkaErrorCode::from),
                partitions: t
                    .partitions()
                    .iter()
                    .map(|p| {
                        (
                            p.id(),
                            p.leader(),
                            p.replicas().to_vec(),
                            p.isr().to_vec(),
                            p.error().map(RDKafkaErrorCode::from),
                        )
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Wait (≤ 20 s) until metadata shows `name` without error, with `partitions`
/// partitions that all have a leader.
pub fn wait_for_topic(bootstrap: &str, name: &str, partitions: usize) -> TopicMeta {
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let md = metadata(bootstrap, Some(name));
        if let Some(t) = md.topic(name) {
            if t.error.is_none()
                && t.partitions.len() == partitions
                && t.partitions.iter().all(|p| p.1 >= 0 && p.4.is_none())
            {
                return t.clone();
            }
            last = Some(t.clone());
        }
        if Instant::now() >= deadline {
            panic!(
                "topic {name} did not become available with {partitions} led partitions within 20s; last metadata: {last:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Topic names in the cluster (all-topics metadata), excluding errored ones.
pub fn topic_names(bootstrap: &str) -> Vec<String> {
    let mut v: Vec<String> =
        metadata(bootstrap, None).topics.into_iter().filter(|t| t.error.is_none()).map(|t| t.name).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// rskafka
// ---------------------------------------------------------------------------

pub async fn rs_client(bootstrap: &str) -> rskafka::client::Client {
    let backoff = rskafka::BackoffConfig {
        init_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
        base: 2.0,
        deadline: Some(Duration::from_secs(20)),
    };
    within(
        Duration::from_secs(30),
        "rskafka client build",
        rskafka::client::ClientBuilder::new(vec![bootstrap.to_string()]).backoff_config(backoff).build(),
    )
    .await
    .unwrap_or_else(|e| panic!("rskafka client build failed: {e}"))
}

pub async fn rs_partition(
    client: &rskafka::client::Client,
    topic: &str,
    partition: i32,
) -> rskafka::client::partition::PartitionClient {
    within(
        Duration::from_secs(30),
        "rskafka partition_client",
        client.partition_client(topic, partition, rskafka::client::partition::UnknownTopicHandling::Retry),
    )
    .await
    .unwrap_or_else(|e| panic!("rskafka partition_client({topic}/{partition}) failed: {e}"))
}

pub fn rs_ts(millis: i64) -> rskafka::chrono::DateTime<rskafka::chrono::Utc> {
    use rskafka::chrono::TimeZone;
    rskafka::chrono::Utc.timestamp_millis_opt(millis).unwrap()
}

pub fn rs_record(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, &[u8])],
    ts_millis: i64,
) -> rskafka::record::Record {
    rskafka::record::Record {
        key: key.map(|k| k.to_vec()),
        value: value.map(|v| v.to_vec()),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect(),
        timestamp: rs_ts(ts_millis),
    }
}

/// Fetch all records of a partition in `[from, to)` with rskafka.
pub async fn rs_fetch_range(
    pc: &rskafka::client::partition::PartitionClient,
    from: i64,
    to: i64,
    timeout: Duration,
) -> Vec<rskafka::record::RecordAndOffset> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut next = from;
    while next < to {
        if Instant::now() >= deadline {
            panic!("rskafka fetch of [{from},{to}) did not finish within {timeout:?}; reached {next}");
        }
        let (recs, _hw) =
            within(Duration::from_secs(30), "rskafka fetch_records", pc.fetch_records(next, 1..4_000_000, 500))
                .await
                .unwrap_or_else(|e| panic!("rskafka fetch_records(offset {next}) failed: {e}"));
        for r in recs {
            if r.offset < next {
                continue; // batch started before requested offset
            }
            if r.offset >= to {
                break;
            }
            next = r.offset + 1;
            out.push(r);
        }
    }
    out
}

/// Extract the Kafka protocol error from an rskafka error, if it is a server error.
pub fn rs_protocol_error(e: &rskafka::client::error::Error) -> Option<rskafka::client::error::ProtocolError> {
    match e {
        rskafka::client::error::Error::ServerError { protocol_error, .. } => Some(*protocol_error),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Misc
// ---------------------------------------------------------------------------

/// Kafka's `Utils.murmur2` (Java), seed 0x9747b28c.
pub fn murmur2(data: &[u8]) -> i32 {
    let length = data.len();
    let seed: u32 = 0x9747_b28c;
    let m: u32 = 0x5bd1_e995;
    let r = 24;
    let mut h: u32 = seed ^ (length as u32);
    let length4 = length / 4;
    for i in 0..length4 {
        let i4 = i * 4;
        let mut k: u32 = (data[i4] as u32)
            | ((data[i4 + 1] as u32) << 8)
            | ((data[i4 + 2] as u32) << 16)
            | ((data[i4 + 3] as u32) << 24);
        k = k.wrapping_mul(m);
        k ^= k >> r;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    let tail = length & !3;
    match length % 4 {
        3 => {
            h ^= (data[tail + 2] as u32) << 16;
            h ^= (data[tail + 1] as u32) << 8;
            h ^= data[tail] as u32;
            h = h.wrapping_mul(m);
        }
        2 => {
            h ^= (data[tail + 1] as u32) << 8;
            h ^= data[tail] as u32;
            h = h.wrapping_mul(m);
        }
        1 => {
            h ^= data[tail] as u32;
            h = h.wrapping_mul(m);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    h as i32
}

/// Kafka's default partitioner for a non-null key.
pub fn kafka_partition(key: &[u8], num_partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % num_partitions
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A unique-ish topic name suffix (tests each have their own broker, this
/// just keeps names readable).
pub fn topic_name(prefix: &str) -> String {
    format!("{prefix}-{}", rand::random::<u32>() % 100_000)
}

pub fn shared_flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

// ---------------------------------------------------------------------------
// Raw protocol calls (kafka-protocol over a std TcpStream), for what rdkafka hides
// ---------------------------------------------------------------------------

/// One request/response round trip on a fresh connection.
pub fn kafka_call<Req, Resp>(bootstrap: &str, api: kafka_protocol::messages::ApiKey, version: i16, req: &Req) -> Resp
where
    Req: kafka_protocol::protocol::Encodable,
    Resp: kafka_protocol::protocol::Decodable,
{
    try_kafka_call(bootstrap, api, version, req, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{api:?} v{version} to {bootstrap}: {e}"))
}

/// One request on a new connection, answered within `timeout` (connecting included).
pub fn try_kafka_call<Req, Resp>(
    bootstrap: &str,
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    req: &Req,
    timeout: Duration,
) -> Result<Resp, String>
where
    Req: kafka_protocol::protocol::Encodable,
    Resp: kafka_protocol::protocol::Decodable,
{
    use std::net::ToSocketAddrs;
    let addr = bootstrap
        .to_socket_addrs()
        .map_err(|e| format!("address {bootstrap}: {e}"))?
        .next()
        .ok_or_else(|| format!("address {bootstrap}: none"))?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout)).unwrap();
    call_on(&mut s, api, version, req)
}

/// One request on an open connection (with the stream's own read timeout).
pub fn call_on<Req, Resp>(
    s: &mut std::net::TcpStream,
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    req: &Req,
) -> Result<Resp, String>
where
    Req: kafka_protocol::protocol::Encodable,
    Resp: kafka_protocol::protocol::Decodable,
{
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use std::io::{Read, Write};
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = 7;
    header.client_id = Some(StrBytes::from_static_str("sluice-test"));
    let mut buf = bytes::BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    header.encode(&mut buf, api.request_header_version(version)).unwrap();
    req.encode(&mut buf, version).unwrap();
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    s.write_all(&buf).map_err(|e| format!("send: {e}"))?;
    let mut size = [0u8; 4];
    s.read_exact(&mut size).map_err(|e| format!("no response: {e}"))?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).map_err(|e| format!("response cut short: {e}"))?;
    let mut b = bytes::Bytes::from(body);
    let h = ResponseHeader::decode(&mut b, api.response_header_version(version)).map_err(|e| e.to_string())?;
    assert_eq!(h.correlation_id, 7);
    Resp::decode(&mut b, version).map_err(|e| e.to_string())
}

/// A GET on an admin listener: the body (any status).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// Runs sluicectl against `bootstrap`: its stdout (it must succeed).
pub fn sluicectl(bootstrap: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluicectl"))
        .arg("--bootstrap")
        .arg(bootstrap)
        .args(args)
        .output()
        .expect("run sluicectl");
    assert!(out.status.success(), "sluicectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
