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

pub mod external;
pub mod netcut;
pub mod txn_probe;

/// Default number of shards (`--cores`) so that cross-shard paths are used.
pub const DEFAULT_CORES: usize = 2;
/// How long a broker may take to accept TCP connections after spawn.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a broker may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Broker process
// ---------------------------------------------------------------------------

pub struct Broker {
    child: Option<Child>,
    port: u16,
    /// The admin HTTP listener's port (`admin.listeners`, unless a test overrides it).
    admin_port: u16,
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    log_path: PathBuf,
    overrides: Vec<(String, String)>,
    /// Environment variables set on the broker process (test hooks), from the next start.
    env: Vec<(String, String)>,
    cores: usize,
    starts: usize,
    /// A cgroup's `cgroup.procs` the process joins before it runs (`netcut`).
    cgroup: Option<std::ffi::CString>,
}

/// A free port below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`). Not
/// one the kernel hands out: while a broker is down (between a kill -9 and its restart) a
/// client connecting to it gets an ephemeral source port, and if that were the broker's own
/// port, the connection would connect to itself (TCP simultaneous open) and hold the port,
/// so the restarted broker could not bind it (seen: "Address already in use" in the crash
/// loop).
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    const LOWEST: usize = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or(32_768)
        .max(LOWEST + 1_000);
    let span = ephemeral_start - LOWEST;
    // Test binaries run side by side with other processes: start somewhere of our own.
    let start = std::process::id() as usize * 7_919;
    for _ in 0..span {
        let port = LOWEST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free port in {LOWEST}..{ephemeral_start}");
}

impl Broker {
    /// Start a broker with default settings and `--cores 2`.
    pub fn start() -> Broker {
        Broker::start_with(&[], DEFAULT_CORES)
    }

    /// Start a broker with the given `--override key=value` pairs and `--cores N`.
    pub fn start_with(overrides: &[(&str, &str)], cores: usize) -> Broker {
        let dir = tempfile::tempdir().expect("create tempdir for broker");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("create log.dirs");
        let log_path = dir.path().join("broker.log");
        let mut b = Broker {
            child: None,
            port: free_port(),
            admin_port: free_port(),
            dir,
            data_dir,
            log_path,
            overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            env: Vec::new(),
            cores,
            starts: 0,
            cgroup: None,
        };
        b.spawn_and_wait();
        b
    }

    /// A broker not started yet, listening for clients on `port` (the overrides name its
    /// listeners): a cluster node, to format and then start with the others.
    pub fn unstarted(port: u16, overrides: &[(String, String)], cores: usize) -> Broker {
        let dir = tempfile::tempdir().expect("create tempdir for broker");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("create log.dirs");
        let log_path = dir.path().join("broker.log");
        Broker {
            child: None,
            port,
            admin_port: free_port(),
            dir,
            data_dir,
            log_path,
            overrides: overrides.to_vec(),
            env: Vec::new(),
            cores,
            starts: 0,
            cgroup: None,
        }
    }

    /// From the next start, the process runs in the cgroup whose `cgroup.procs` this is
    /// (`netcut::NetLab::group`), from before its first socket.
    pub fn set_cgroup(&mut self, procs: &Path) {
        use std::os::unix::ffi::OsStrExt;
        self.cgroup = Some(std::ffi::CString::new(procs.as_os_str().as_bytes()).expect("a path without NUL"));
    }

    /// Sets (or replaces) one of the broker's overrides before it starts; the previous
    /// value, if any.
    /// This broker's setting `key`, if the harness or a test set it.
    pub fn override_value(&self, key: &str) -> Option<&str> {
        self.overrides.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn set_override(&mut self, key: &str, value: &str) -> Option<String> {
        match self.overrides.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value.to_string())),
            None => {
                self.overrides.push((key.to_string(), value.to_string()));
                None
            }
        }
    }

    /// `sluice format --cluster-id ID` on this broker's data directory, with its overrides.
    pub fn format(&mut self, cluster_id: &str) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.arg("format").arg("--cluster-id").arg(cluster_id);
        for (k, v) in &self.overrides {
            cmd.arg("--override").arg(format!("{k}={v}"));
        }
        cmd.arg("--override").arg(format!("log.dirs={}", self.data_dir.display()));
        let out = cmd.output().expect("run sluice format");
        assert!(out.status.success(), "sluice format: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Removes everything in the data directory (a lost disk).
    pub fn wipe_data(&mut self) {
        assert!(self.child.is_none(), "wipe_data: broker running");
        let _ = std::fs::remove_dir_all(&self.data_dir);
        std::fs::create_dir_all(&self.data_dir).expect("create log.dirs");
        self.note("data directory wiped");
    }

    /// Starts the broker without waiting for it to listen (cluster nodes wait for each other).
    pub fn spawn(&mut self) {
        self.spawn_only();
    }

    /// Starts a broker that is expected to refuse to run: returns its exit status, or panics
    /// if it is still running after `timeout`.
    pub fn start_expecting_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.spawn_only();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return status;
            }
            if Instant::now() >= deadline {
                self.kill_quietly();
                panic!("broker still running after {timeout:?}\n{}", self.log_tail(100));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn spawn_and_wait(&mut self) {
        self.spawn_only();
        self.wait_ready();
    }

    fn spawn_only(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        self.starts += 1;
        let log = OpenOptions::new().create(true).append(true).open(&self.log_path).expect("open broker log file");
        {
            use std::io::Write;
            let mut l = &log;
            let _ = writeln!(l, "===== harness: starting broker (start #{}) on port {} =====", self.starts, self.port);
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.arg("serve");
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut has_listeners = false;
        let mut has_logdirs = false;
        let mut has_admin = false;
        let mut has_rebalance_delay = false;
        for (k, v) in &self.overrides {
            if k == "group.initial.rebalance.delay.ms" {
                has_rebalance_delay = true;
            }
            if k == "listeners" {
                has_listeners = true;
            }
            if k == "admin.listeners" {
                has_admin = true;
            }
            if k == "log.dirs" {
                has_logdirs = true;
            }
            cmd.arg("--override").arg(format!("{k}={v}"));
        }
        if !has_listeners {
            cmd.arg("--override").arg(format!("listeners=PLAINTEXT://127.0.0.1:{}", self.port));
        }
        if !has_admin {
            cmd.arg("--override").arg(format!("admin.listeners=127.0.0.1:{}", self.admin_port));
        }
        if !has_rebalance_delay {
            // Kafka's default (3000 ms) makes every new group wait for more members; tests
            // want their groups formed at once, unless they set the key themselves.
            cmd.arg("--override").arg("group.initial.rebalance.delay.ms=0");
        }
        if !has_logdirs {
            cmd.arg("--override").arg(format!("log.dirs={}", self.data_dir.display()));
        }
        cmd.arg("--cores").arg(self.cores.to_string());
        cmd.stdin(Stdio::null()).stdout(Stdio::from(log.try_clone().expect("clone log fd"))).stderr(Stdio::from(log));
        if let Some(procs) = self.cgroup.clone() {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec only async-signal-safe calls (open, write,
            // close) on memory prepared before the fork.
            unsafe {
                cmd.pre_exec(move || {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // "0": the writing process itself.
                    let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                    let err = std::io::Error::last_os_error();
                    libc::close(fd);
                    if written == 1 {
                        Ok(())
                    } else {
                        Err(err)
                    }
                });
            }
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("failed to spawn sluice binary: {e}"));
        self.child = Some(child);
    }

    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = format!("127.0.0.1:{}", self.port);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!("broker exited during startup with {status}\n{}", self.log_tail(200));
                }
            }
            if TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                self.kill_quietly();
                panic!(
                    "broker did not accept connections on {addr} within {:?}\n{}",
                    READY_TIMEOUT,
                    self.log_tail(200)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "127.0.0.1:PORT"
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// "127.0.0.1:PORT" of the admin HTTP listener (metrics, health, status).
    pub fn admin_addr(&self) -> String {
        format!("127.0.0.1:{}", self.admin_port)
    }

    /// The broker's `log.dirs` directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Directory of one partition: `<log.dirs>/<topic>-<partition>`.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Crash the broker with SIGKILL and reap it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("kill9: broker not running");
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        self.note("broker killed with SIGKILL");
    }

    /// Clean shutdown: SIGTERM, wait up to 20 s. If the broker does not exit by
    /// itself it is SIGKILLed and the test fails. Returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("stop: broker not running");
        let pid = child.id();
        let _ =
            Command::new("kill").arg("-TERM").arg(pid.to_string()).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.note(&format!("broker exited after SIGTERM with {status}"));
                    if !status.success() {
                        eprintln!("[harness] warning: broker exited with {status} after SIGTERM (port {})", self.port);
                    }
                    return status;
                }
                Ok(None) => {}
                Err(e) => panic!("waiting for broker: {e}"),
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within {:?} after SIGTERM (killed it)\n{}",
                    STOP_TIMEOUT,
                    self.log_tail(200)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Change the `--cores` used by the next `restart()`.
    /// Sets an environment variable (a test hook) on the broker process from its next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    pub fn set_cores(&mut self, cores: usize) {
        self.cores = cores;
    }

    /// Start the broker again with the same port, data dir and overrides.
    /// The previous process must have been stopped (`stop`/`kill9`).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn_and_wait();
    }

    fn note(&self, msg: &str) {
        use std::io::Write;
        if let Ok(mut f) = OpenOptions::new().append(true).open(&self.log_path) {
            let _ = writeln!(f, "===== harness: {msg} =====");
        }
    }

    fn kill_quietly(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Last `n` lines of the broker's combined stdout/stderr.
    pub fn log_tail(&self, n: usize) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        let lines: Vec<&str> = s.lines().collect();
        let start = lines.len().saturating_sub(n);
        format!(
            "----- broker log ({}; last {} lines) -----\n{}\n----- end broker log -----",
            self.log_path.display(),
            lines.len() - start,
            lines[start..].join("\n")
        )
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill_quietly();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(300));
        }
    }
}

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
// rdkafka: producer
// ---------------------------------------------------------------------------

/// A message to produce (and later compare against what is consumed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestMsg {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
    /// Explicit partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
}

impl TestMsg {
    pub fn kv(key: Option<&[u8]>, value: Option<&[u8]>) -> TestMsg {
        TestMsg {
            key: key.map(|k| k.to_vec()),
            value: value.map(|v| v.to_vec()),
            headers: vec![],
            timestamp: None,
            partition: None,
        }
    }
    pub fn value(v: impl Into<Vec<u8>>) -> TestMsg {
        TestMsg { key: None, value: Some(v.into()), headers: vec![], timestamp: None, partition: None }
    }
}

/// Outcome of a delivery report.
pub type Delivery = Result<(i32, i64), KafkaError>;

/// Producer context that records every delivery report, keyed by the opaque
/// message id given at send time.
pub struct RecordingContext {
    /// (opaque id, outcome, value of `flag` when the report was served)
    pub reports: Mutex<Vec<(usize, Delivery, bool)>>,
    /// Set by a test (e.g. before a kill -9); recorded with every later report.
    pub flag: Arc<AtomicBool>,
    /// Number of successful delivery reports so far.
    pub acked: Arc<AtomicUsize>,
}

impl ClientContext for RecordingContext {}

impl ProducerContext for RecordingContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, r: &DeliveryResult<'_>, id: usize) {
        let d = match r {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _m)) => Err(e.clone()),
        };
        let flag = self.flag.load(Ordering::SeqCst);
        if d.is_ok() {
            self.acked.fetch_add(1, Ordering::SeqCst);
        }
        self.reports.lock().unwrap().push((id, d, flag));
    }
}

pub type TestProducer = BaseProducer<RecordingContext>;

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> TestProducer {
    producer_with(bootstrap, extra, Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)))
}

/// Producer whose delivery reports record `flag` and count successes in `acked`.
pub fn producer_with(
    bootstrap: &str,
    extra: &[(&str, &str)],
    flag: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
) -> TestProducer {
    let mut c = base_config(bootstrap);
    c.set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("queue.buffering.max.messages", "200000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create_with_context(RecordingContext { reports: Mutex::new(Vec::new()), flag, acked })
        .expect("create rdkafka producer")
}

fn to_owned_headers(h: &[(String, Option<Vec<u8>>)]) -> Option<OwnedHeaders> {
    if h.is_empty() {
        return None;
    }
    let mut oh = OwnedHeaders::new_with_capacity(h.len());
    for (k, v) in h {
        oh = oh.insert(Header { key: k.as_str(), value: v.as_deref() });
    }
    Some(oh)
}

/// Enqueue one message (retrying on a full local queue for up to 60 s).
pub fn send_one(p: &TestProducer, topic: &str, id: usize, m: &TestMsg) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut rec: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(topic, id);
        if let Some(k) = &m.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(v) = &m.value {
            rec = rec.payload(v.as_slice());
        }
        if let Some(ts) = m.timestamp {
            rec = rec.timestamp(ts);
        }
        if let Some(part) = m.partition {
            rec = rec.partition(part);
        }
        if let Some(h) = to_owned_headers(&m.headers) {
            rec = rec.headers(h);
        }
        match p.send(rec) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                if Instant::now() >= deadline {
                    panic!("producer queue stayed full for 60s");
                }
                p.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("producer send() failed for message {id}: {e}"),
        }
    }
}

/// Produce all `msgs` to `topic` and wait (≤ `timeout`) for all delivery reports.
/// Returns one `Delivery` per message, in input order.
pub fn produce_all(p: &TestProducer, topic: &str, msgs: &[TestMsg], timeout: Duration) -> Vec<Delivery> {
    p.context().reports.lock().unwrap().clear();
    for (i, m) in msgs.iter().enumerate() {
        send_one(p, topic, i, m);
        if i % 1000 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let _ = p.flush(Duration::from_millis(500));
        let n = p.context().reports.lock().unwrap().len();
        if n >= msgs.len() && p.in_flight_count() == 0 {
            break;
        }
        if Instant::now() >= deadline {
            panic!(
                "only {n} of {} delivery reports arrived within {timeout:?} ({} in flight)",
                msgs.len(),
                p.in_flight_count()
            );
        }
    }
    let mut out: Vec<Option<Delivery>> = (0..msgs.len()).map(|_| None).collect();
    for (id, d, _) in p.context().reports.lock().unwrap().drain(..) {
        assert!(out[id].is_none(), "two delivery reports for message {id}");
        out[id] = Some(d);
    }
    out.into_iter()
        .enumerate()
        .map(|(i, d)| d.unwrap_or_else(|| panic!("no delivery report for message {i}")))
        .collect()
}

/// Like `produce_all` but asserts every message was delivered; returns (partition, offset).
pub fn produce_ok(p: &TestProducer, topic: &str, msgs: &[TestMsg], timeout: Duration) -> Vec<(i32, i64)> {
    let res = produce_all(p, topic, msgs, timeout);
    let failures: Vec<(usize, &KafkaError)> =
        res.iter().enumerate().filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e))).collect();
    assert!(
        failures.is_empty(),
        "{} of {} messages to {topic} failed delivery; first failures: {:?}",
        failures.len(),
        msgs.len(),
        &failures[..failures.len().min(5)]
    );
    res.into_iter().map(|r| r.unwrap()).collect()
}

// ---------------------------------------------------------------------------
// rdkafka: consumer
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Timestamp,
}

impl Consumed {
    /// Compare the payload fields with what was produced.
    pub fn matches(&self, m: &TestMsg) -> bool {
        self.key == m.key
            && self.value == m.value
            && self.headers == m.headers
            && m.timestamp.map(|t| self.timestamp == Timestamp::CreateTime(t)).unwrap_or(true)
    }
}

pub fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = base_config(bootstrap);
    c.set("group.id", "sluice-test-consumer")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("allow.auto.create.topics", "false")
        .set("fetch.wait.max.ms", "100")
        .set("check.crcs", "true");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("create rdkafka consumer")
}

/// Consume `topic` partitions from the given start offsets until each partition
/// reaches its end offset (exclusive). Returns messages per partition, in
/// consumption order. Panics after `timeout`, or on a consumer error that
/// persists.
pub fn consume_range(
    bootstrap: &str,
    topic: &str,
    ranges: &[(i32, i64, i64)],
    timeout: Duration,
) -> BTreeMap<i32, Vec<Consumed>> {
    let c = consumer(bootstrap, &[]);
    let mut tpl = TopicPartitionList::new();
    let mut out: BTreeMap<i32, Vec<Consumed>> = BTreeMap::new();
    let mut pos: HashMap<i32, i64> = HashMap::new();
    let mut end: HashMap<i32, i64> = HashMap::new();
    for &(p, from, to) in ranges {
        out.insert(p, Vec::new());
        if to > from {
            tpl.add_partition_offset(topic, p, Offset::Offset(from)).expect("tpl add");
            pos.insert(p, from);
            end.insert(p, to);
        }
    }
    if tpl.count() == 0 {
        return out;
    }
    c.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut errors: Vec<String> = Vec::new();
    while pos.iter().any(|(p, o)| *o < end[p]) {
        if Instant::now() >= deadline {
            panic!(
                "consume of {topic} did not finish within {timeout:?}: positions {pos:?}, wanted end {end:?}, consumer errors: {:?}",
                &errors[errors.len().saturating_sub(10)..]
            );
        }
        match c.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => {
                errors.push(e.to_string());
            }
            Some(Ok(m)) => {
                let p = m.partition();
                let Some(cur) = pos.get_mut(&p) else {
                    panic!("got message from unassigned partition {p}");
                };
                let e = end[&p];
                if m.offset() >= e {
                    // Past the requested range (more data than expected); ignore.
                    *cur = (*cur).max(m.offset() + 1).max(e);
                    continue;
                }
                let headers = m
                    .headers()
                    .map(|h| h.iter().map(|hd| (hd.key.to_string(), hd.value.map(|v| v.to_vec()))).collect())
                    .unwrap_or_default();
                out.get_mut(&p).unwrap().push(Consumed {
                    partition: p,
                    offset: m.offset(),
                    key: m.key().map(|k| k.to_vec()),
                    value: m.payload().map(|v| v.to_vec()),
                    headers,
                    timestamp: m.timestamp(),
                });
                *cur = m.offset() + 1;
            }
        }
    }
    out
}

/// Low/high watermarks of a partition via rdkafka.
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let c = consumer(bootstrap, &[]);
    c.fetch_watermarks(topic, partition, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("fetch_watermarks({topic}/{partition}) failed: {e}"))
}

/// Consume a whole partition from offset 0 up to its current high watermark.
pub fn consume_all_partition(bootstrap: &str, topic: &str, partition: i32) -> Vec<Consumed> {
    let (_lo, hi) = watermarks(bootstrap, topic, partition);
    consume_range(bootstrap, topic, &[(partition, 0, hi)], Duration::from_secs(120)).remove(&partition).unwrap()
}

/// Assert offsets in `msgs` are exactly `from, from+1, ...`.
pub fn assert_contiguous(msgs: &[Consumed], from: i64, what: &str) {
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(
            m.offset,
            from + i as i64,
            "{what}: offsets not contiguous: message #{i} has offset {} (expected {})",
            m.offset,
            from + i as i64
        );
    }
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
// On-disk Kafka log segment parsing
// ---------------------------------------------------------------------------

/// One record batch as found in a `.log` segment file.
#[derive(Debug, Clone)]
pub struct DiskBatch {
    /// Byte position of the batch in the file.
    pub pos: u64,
    /// Total size in bytes (12 + batchLength).
    pub size: u64,
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub magic: i8,
    pub crc: u32,
    pub crc_ok: bool,
}

impl DiskBatch {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn end(&self) -> u64 {
        self.pos + self.size
    }
}

/// CRC-32C (Castagnoli), as used by Kafka record batches.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0x82F6_3B78 ^ (c >> 1) } else { c >> 1 };
            }
            *e = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in data {
        crc = t[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Parse the record batches of a segment file. Stops at the first position that
/// does not hold a complete batch (zero padding, torn tail, garbage).
pub fn parse_segment(path: &Path) -> Vec<DiskBatch> {
    let mut data = Vec::new();
    File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display())).read_to_end(&mut data).unwrap();
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 61 <= data.len() {
        let base_offset = i64::from_be_bytes(data[pos..pos + 8].try_into().unwrap());
        let batch_len = i32::from_be_bytes(data[pos + 8..pos + 12].try_into().unwrap());
        if batch_len < 49 {
            break;
        }
        let size = 12 + batch_len as usize;
        if pos + size > data.len() {
            break;
        }
        let magic = data[pos + 16] as i8;
        let crc = u32::from_be_bytes(data[pos + 17..pos + 21].try_into().unwrap());
        let last_offset_delta = i32::from_be_bytes(data[pos + 23..pos + 27].try_into().unwrap());
        let crc_ok = crc32c(&data[pos + 21..pos + size]) == crc;
        out.push(DiskBatch { pos: pos as u64, size: size as u64, base_offset, last_offset_delta, magic, crc, crc_ok });
        pos += size;
    }
    out
}

/// Segment files (`*.log`) of a partition directory, sorted by base offset.
pub fn segment_files(partition_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(partition_dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", partition_dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().map(|x| x == "log").unwrap_or(false))
        .collect();
    v.sort();
    v
}

/// Files in a partition dir with the given extension (e.g. "index").
pub fn files_with_ext(partition_dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(partition_dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", partition_dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().map(|x| x == ext).unwrap_or(false))
        .collect();
    v.sort();
    v
}

pub fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Overwrite bytes in a file at `pos`.
pub fn write_at(path: &Path, pos: u64, bytes: &[u8]) {
    use std::io::Write;
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(pos)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

pub fn read_at(path: &Path, pos: u64, len: usize) -> Vec<u8> {
    let mut f = File::open(path).unwrap();
    f.seek(SeekFrom::Start(pos)).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

pub fn set_len(path: &Path, len: u64) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
    f.sync_all().unwrap();
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

// ---------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------

/// `sluice random-uuid`: a new cluster id.
pub fn random_cluster_id() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).arg("random-uuid").output().expect("run sluice");
    assert!(out.status.success(), "sluice random-uuid: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `n` nodes, each a broker and a controller voter, on loopback, formatted with one new
/// cluster id and started (every voter must be up for the first election). Node `i + 1` is
/// `brokers[i]`. `extra` overrides go to every node.
pub fn start_cluster(n: usize, extra: &[(&str, &str)]) -> (String, Vec<Broker>) {
    let (id, _, brokers) = start_cluster_roles(n, false, extra);
    (id, brokers)
}

/// Like `start_cluster`; with `dedicated_controller`, the quorum is one controller-only
/// node (id 100, returned apart) and nodes 1..=n are brokers only, so that losing brokers
/// never costs the quorum.
pub fn start_cluster_roles(
    n: usize,
    dedicated_controller: bool,
    extra: &[(&str, &str)],
) -> (String, Option<Broker>, Vec<Broker>) {
    start_cluster_prepared(n, dedicated_controller, extra, &mut |_, _| {})
}

/// `start_cluster_roles`, with `prepare(node id, node)` called on each node before it
/// starts (the controller-only node is 100).
pub fn start_cluster_prepared(
    n: usize,
    dedicated_controller: bool,
    extra: &[(&str, &str)],
    prepare: &mut dyn FnMut(i32, &mut Broker),
) -> (String, Option<Broker>, Vec<Broker>) {
    let cluster_id = random_cluster_id();
    let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
    let controller_port = free_port();
    let voters = if dedicated_controller {
        format!("100@127.0.0.1:{controller_port}")
    } else {
        ports.iter().enumerate().map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1)).collect::<Vec<_>>().join(",")
    };
    let node = |id: String, roles: &str, listeners: String, port: u16| {
        cluster_node(&cluster_id, &voters, &id, roles, listeners, port, extra)
    };
    let mut controller = dedicated_controller.then(|| {
        node("100".into(), "controller", format!("CONTROLLER://127.0.0.1:{controller_port}"), controller_port)
    });
    let mut brokers = Vec::new();
    for (i, (port, cport)) in ports.iter().enumerate() {
        let (roles, listeners) = if dedicated_controller {
            ("broker", format!("PLAINTEXT://127.0.0.1:{port}"))
        } else {
            ("broker,controller", format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}"))
        };
        brokers.push(node((i + 1).to_string(), roles, listeners, *port));
    }
    if let Some(c) = controller.as_mut() {
        prepare(100, c);
        c.spawn();
    }
    for (i, b) in brokers.iter_mut().enumerate() {
        prepare(i as i32 + 1, b);
        b.spawn();
    }
    for b in brokers.iter_mut() {
        b.wait_ready();
    }
    (cluster_id, controller, brokers)
}

/// One node of a cluster (formatted, not started): `voters` is the
/// `controller.quorum.voters` value, `listeners` its listeners.
pub fn cluster_node(
    cluster_id: &str,
    voters: &str,
    id: &str,
    roles: &str,
    listeners: String,
    port: u16,
    extra: &[(&str, &str)],
) -> Broker {
    let mut overrides = vec![
        ("node.id".to_string(), id.to_string()),
        ("process.roles".to_string(), roles.to_string()),
        ("controller.quorum.voters".to_string(), voters.to_string()),
        ("listeners".to_string(), listeners),
    ];
    overrides.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut broker = Broker::unstarted(port, &overrides, 1);
    broker.format(cluster_id);
    broker
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
