//! Kafka Connect (org.apache.kafka:connect-runtime 4.4.0) against Sluice: Connect's own
//! workers (`ConnectStandalone`, `ConnectDistributed`) copy a file through a topic into
//! another file with the file connectors of `tests/clients/connect` (a source that tails a
//! file, one record per line; a sink that appends each record as a line).
//!
//! - standalone: worker properties and connector properties files, source offsets in a
//!   file; the copy is exact, and after a SIGTERM and a restart the lines appended since
//!   arrive once (the sink's consumer group resumes from its committed offsets).
//! - distributed: configs, offsets and status in compacted topics Connect creates, the
//!   worker in a group of protocol type `connect`, connectors created through the REST
//!   API; after a SIGTERM and a restart the connectors come back from the config topic,
//!   the source resumes from the offsets topic, and the appended lines arrive exactly once.
//!
//! Maven and a JDK 17+ build the classpath offline (`mvn -o package`, once per test
//! binary); the jars come from `bash scripts/install-test-deps.sh`
//! (tests/clients/connect/install.sh). Missing tools or jars FAIL these tests, never skip.
//! Every worker is a child process killed (its whole process group) when the test ends,
//! panics included; every wait is bounded.
//!
//! `SLUICE_TEST_BOOTSTRAP=127.0.0.1:19092` (after `bash scripts/kafka-reference.sh start`)
//! runs the same tests against Apache Kafka 4.4: a test failing there is a wrong test.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::external::*;
use rdkafka::admin::ResourceSpecifier;
use rdkafka::consumer::Consumer;

const INSTALL_HINT: &str = "install the Kafka Connect tests' dependencies (a JDK 17+, Maven, the connect-runtime \
     jars in ~/.m2) with `bash scripts/install-test-deps.sh`";
/// How long a worker may take to start answering REST (a JVM, the plugin scan, joining).
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long lines may take to go from the source file to the sink file.
const COPY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a worker may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the sink file must stay unchanged once complete (no late duplicates).
const QUIET: Duration = Duration::from_secs(3);

const SOURCE_CLASS: &str = "dev.sluice.connect.LineFileSourceConnector";
const SINK_CLASS: &str = "dev.sluice.connect.LineFileSinkConnector";

fn connect_dir() -> PathBuf {
    repo_root().join("tests/clients/connect")
}

/// Builds the classpath once per test binary (offline); panics with how to install.
fn build() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let r = BUILT.get_or_init(|| {
        maven_build(
            "connect",
            &[
                "target/classes/dev/sluice/connect/LineFileSourceConnector.class",
                "target/classes/log4j2.properties",
                "target/lib/connect-runtime-4.4.0.jar",
                "target/lib/kafka-clients-4.4.0.jar",
            ],
            INSTALL_HINT,
        )
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------
// A Connect worker: a child JVM, killed with its process group when dropped
// ---------------------------------------------------------------------------

struct Worker {
    what: String,
    child: Option<Child>,
    log: PathBuf,
    rest_port: u16,
}

impl Worker {
    /// Starts `main` (a Connect CLI class) with `args`; stdout and stderr go to `<name>.log`
    /// in `dir` (appended: a restarted worker keeps the earlier lines).
    fn spawn(what: &str, dir: &Path, rest_port: u16, main: &str, args: &[&Path]) -> Worker {
        let log = dir.join(format!("{}.log", what.replace(' ', "-")));
        let out = OpenOptions::new().create(true).append(true).open(&log).expect("the worker's log file");
        let err = out.try_clone().expect("the worker's log file");
        let mut cmd = Command::new("java");
        cmd.current_dir(connect_dir())
            .args([
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xmx512m",
                "-cp",
                "target/classes:target/lib/*",
                main,
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start the {what} ({main}): {e}"));
        eprintln!("[kafka_connect] started the {what} (pid {}, REST on port {rest_port})", child.id());
        Worker { what: what.to_string(), child: Some(child), log, rest_port }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running worker").id()
    }

    /// The worker's log (WARN and above, and anything it printed), last `n` lines.
    fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "---- {} log ({}), last lines ----\n{}",
            self.what,
            self.log.display(),
            lines[lines.len().saturating_sub(n)..].join("\n")
        )
    }

    /// Panics unless the worker is still running (it exits on a fatal error).
    fn assert_alive(&mut self) {
        if let Some(status) = self.child.as_mut().expect("a worker").try_wait().expect("waiting for a worker") {
            panic!("the {} exited early: {status}\n{}", self.what, self.log_tail(80));
        }
    }

    /// SIGTERM (Connect's shutdown hook stops the connectors and commits their offsets),
    /// then waits for the exit; past [`STOP_TIMEOUT`] the group is killed and this panics.
    fn stop(&mut self) -> ExitStatus {
        let pid = self.pid();
        let t0 = Instant::now();
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("waiting for a worker") {
                self.kill_group();
                self.child = None;
                eprintln!(
                    "[kafka_connect] the {} exited {:.1} s after SIGTERM: {status}",
                    self.what,
                    t0.elapsed().as_secs_f64()
                );
                return status;
            }
            if t0.elapsed() > STOP_TIMEOUT {
                let tail = self.log_tail(80);
                self.kill();
                panic!("the {} did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{tail}", self.what);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill_group(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    fn kill(&mut self) {
        self.kill_group();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// One REST call to this worker.
    fn rest(&self, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String), String> {
        http(self.rest_port, method, path, body)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.0 exchange (no chunking, the server closes): the status and the body.
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String), String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| format!("send: {e}"))?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(|e| format!("read: {e}"))?;
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP header end in {resp:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("no HTTP status in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// Polls `f` every 200 ms until it is true or `timeout` passes; false then.
fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// `n` distinct lines, `from` on: some long, some with UTF-8 past ASCII.
fn lines(tag: &str, from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| {
            let pad = "x".repeat(i % 7 * 13);
            if i % 5 == 0 {
                format!("{tag} line {i:05} ñandú 水 {pad}")
            } else {
                format!("{tag} line {i:05} {pad}")
            }
        })
        .collect()
}

fn append_lines(path: &Path, lines: &[String]) {
    let mut f = OpenOptions::new().create(true).append(true).open(path).expect("open the source file");
    let mut text = lines.join("\n");
    text.push('\n');
    f.write_all(text.as_bytes()).expect("append to the source file");
    f.sync_all().expect("sync the source file");
}

/// The complete lines of the sink file (a line still being written is left out).
fn sink_lines(path: &Path) -> Vec<String> {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    match text.rfind('\n') {
        Some(end) => text[..end].split('\n').map(str::to_string).collect(),
        None => Vec::new(),
    }
}

/// Waits until the sink file holds as many lines as `want`, then checks they are `want`
/// exactly and that nothing more arrives for [`QUIET`].
fn await_copy(sink: &Path, want: &[String], what: &str, worker: &mut Worker) {
    let t0 = Instant::now();
    let done = poll_until(COPY_TIMEOUT, || {
        worker.assert_alive();
        sink_lines(sink).len() >= want.len()
    });
    let have = sink_lines(sink);
    if !done {
        panic!(
            "{what}: the sink file has {} lines after {COPY_TIMEOUT:?}, expected {}\n{}",
            have.len(),
            want.len(),
            worker.log_tail(80)
        );
    }
    check_lines(&have, want, what, worker);
    std::thread::sleep(QUIET);
    check_lines(&sink_lines(sink), want, &format!("{what}, {QUIET:?} later"), worker);
    eprintln!("[kafka_connect] {what}: {} lines copied exactly in {:.1} s", want.len(), t0.elapsed().as_secs_f64());
}

fn check_lines(have: &[String], want: &[String], what: &str, worker: &Worker) {
    if have == want {
        return;
    }
    let first_diff = have.iter().zip(want).position(|(h, w)| h != w).unwrap_or(have.len().min(want.len()));
    let mut seen = std::collections::HashMap::new();
    let dups: Vec<&String> =
        have.iter().filter(|l| *seen.entry(l.as_str()).and_modify(|c| *c += 1).or_insert(1) == 2).collect();
    panic!(
        "{what}: the sink file differs from the source: {} lines, expected {}; first difference at line {}: {:?} vs expected {:?}; \
         {} lines duplicated (first: {:?})\n{}",
        have.len(),
        want.len(),
        first_diff + 1,
        have.get(first_diff),
        want.get(first_diff),
        dups.len(),
        dups.first(),
        worker.log_tail(80)
    );
}

fn write_props(path: &Path, props: &[(&str, String)]) {
    let text: String = props.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(path, text).expect("write a properties file");
}

fn work_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("kafka-connect-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a work dir")
}

/// Worker settings both modes share.
fn worker_common(bootstrap: &str, rest_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("bootstrap.servers", bootstrap.to_string()),
        ("key.converter", "org.apache.kafka.connect.storage.StringConverter".into()),
        ("value.converter", "org.apache.kafka.connect.storage.StringConverter".into()),
        ("offset.flush.interval.ms", "1000".into()),
        ("listeners", format!("http://127.0.0.1:{rest_port}")),
        ("rest.advertised.host.name", "127.0.0.1".into()),
        // The test's connectors carry ServiceLoader manifests: no classpath scan.
        ("plugin.discovery", "service_load".into()),
        // (the default; Sluice has no transactions)
        ("exactly.once.source.support", "disabled".into()),
    ]
}

/// The source connector's settings: Connect creates its topic (CreateTopics with the
/// broker's default replication factor).
fn source_props(name: &str, file: &Path, topic: &str) -> Vec<(&'static str, String)> {
    vec![
        ("name", name.to_string()),
        ("connector.class", SOURCE_CLASS.into()),
        ("tasks.max", "1".into()),
        ("file", file.display().to_string()),
        ("topic", topic.to_string()),
        ("topic.creation.default.replication.factor", "-1".into()),
        ("topic.creation.default.partitions", "1".into()),
    ]
}

fn sink_props(name: &str, file: &Path, topic: &str) -> Vec<(&'static str, String)> {
    vec![
        ("name", name.to_string()),
        ("connector.class", SINK_CLASS.into()),
        ("tasks.max", "1".into()),
        ("file", file.display().to_string()),
        ("topics", topic.to_string()),
    ]
}

fn json_object(props: &[(&str, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = props
        .iter()
        .filter(|(k, _)| *k != "name")
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The topic's partition count and configs, as the broker describes them.
fn topic_facts(bootstrap: &str, topic: &str) -> (usize, std::collections::BTreeMap<String, Option<String>>) {
    let md = common::metadata(bootstrap, Some(topic));
    let partitions = md.topic(topic).map(|t| t.partitions.len()).unwrap_or(0);
    let admin = common::admin(bootstrap);
    let res = common::block_on(
        Duration::from_secs(30),
        "DescribeConfigs",
        admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &common::admin_opts()),
    )
    .unwrap_or_else(|e| panic!("DescribeConfigs {topic}: {e}"));
    let cfg = res.into_iter().next().expect("one resource").unwrap_or_else(|e| panic!("DescribeConfigs {topic}: {e}"));
    (partitions, cfg.entries.into_iter().map(|e| (e.name, e.value)).collect())
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// A standalone worker copies a file through a topic (created by Connect) into another
/// file, exactly; stopped with SIGTERM and restarted on the same offsets file, it copies
/// the lines appended since, once.
#[test]
fn standalone_worker_copies_a_file_through_a_topic() {
    build();
    let target = Target::start(&[]);
    let bootstrap = target.bootstrap();
    let work = work_dir();
    let name = unique("connect-sa");
    let topic = format!("{name}-lines");
    let (source, sink) = (work.path().join("source.txt"), work.path().join("sink.txt"));
    let mut want = lines("standalone", 0, 300);
    append_lines(&source, &want);

    let rest_port = common::free_port();
    let mut worker_props = worker_common(&bootstrap, rest_port);
    worker_props.push(("offset.storage.file.filename", work.path().join("offsets").display().to_string()));
    let (wp, sp, kp) = (
        work.path().join("worker.properties"),
        work.path().join("source.properties"),
        work.path().join("sink.properties"),
    );
    write_props(&wp, &worker_props);
    write_props(&sp, &source_props(&format!("{name}-source"), &source, &topic));
    write_props(&kp, &sink_props(&format!("{name}-sink"), &sink, &topic));

    let t0 = Instant::now();
    let main = "org.apache.kafka.connect.cli.ConnectStandalone";
    let mut worker = Worker::spawn("standalone worker", work.path(), rest_port, main, &[&wp, &sp, &kp]);
    await_copy(&sink, &want, "standalone, first run", &mut worker);
    let (partitions, _) = topic_facts(&bootstrap, &topic);
    assert_eq!(
        partitions, 1,
        "the topic Connect created for the source ({topic}) has {partitions} partitions, expected 1"
    );
    let status = worker.stop();
    assert!(
        std::fs::metadata(work.path().join("offsets")).map(|m| m.len() > 0).unwrap_or(false),
        "the standalone worker ({status}) left no source offsets in its offsets file\n{}",
        worker.log_tail(80)
    );

    // Restart: the source resumes from the offsets file, the sink from its group's offsets.
    let mut worker = Worker::spawn("standalone worker", work.path(), rest_port, main, &[&wp, &sp, &kp]);
    let more = lines("standalone", 300, 120);
    append_lines(&source, &more);
    want.extend(more);
    await_copy(&sink, &want, "standalone, after a restart", &mut worker);
    worker.stop();
    println!("[standalone] against {} ({bootstrap}): passed in {:.1} s", target.kind(), t0.elapsed().as_secs_f64());
}

/// A distributed cluster's names and files: one group, its three internal topics, the
/// copied topic, the two connectors and their files.
struct Cluster {
    bootstrap: String,
    work: tempfile::TempDir,
    group: String,
    configs: String,
    offsets: String,
    statuses: String,
    topic: String,
    source_name: String,
    sink_name: String,
    source: PathBuf,
    sink: PathBuf,
}

const DISTRIBUTED_MAIN: &str = "org.apache.kafka.connect.cli.ConnectDistributed";

impl Cluster {
    fn new(bootstrap: &str, prefix: &str) -> Cluster {
        let name = unique(prefix);
        let work = work_dir();
        Cluster {
            bootstrap: bootstrap.to_string(),
            group: format!("{name}-cluster"),
            configs: format!("{name}-configs"),
            offsets: format!("{name}-offsets"),
            statuses: format!("{name}-status"),
            topic: format!("{name}-lines"),
            source_name: format!("{name}-source"),
            sink_name: format!("{name}-sink"),
            source: work.path().join("source.txt"),
            sink: work.path().join("sink.txt"),
            work,
        }
    }

    /// Writes `<what>.properties` for a worker of this cluster with its REST listener on
    /// `rest_port`, and starts it.
    fn spawn_worker(&self, what: &str, rest_port: u16, extra: &[(&'static str, &str)]) -> Worker {
        let mut props = worker_common(&self.bootstrap, rest_port);
        props.extend([
            ("group.id", self.group.clone()),
            ("config.storage.topic", self.configs.clone()),
            ("offset.storage.topic", self.offsets.clone()),
            ("status.storage.topic", self.statuses.clone()),
            ("config.storage.replication.factor", "1".into()),
            ("offset.storage.replication.factor", "1".into()),
            ("status.storage.replication.factor", "1".into()),
        ]);
        props.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let path = self.work.path().join(format!("{}.properties", what.replace(' ', "-")));
        write_props(&path, &props);
        Worker::spawn(what, self.work.path(), rest_port, DISTRIBUTED_MAIN, &[&path])
    }

    /// Creates the source and the sink connector through `worker`'s REST API.
    fn create_connectors(&self, worker: &mut Worker) {
        for (connector, props) in [
            (&self.source_name, source_props(&self.source_name, &self.source, &self.topic)),
            (&self.sink_name, sink_props(&self.sink_name, &self.sink, &self.topic)),
        ] {
            let body = json_object(&props);
            let path = format!("/connectors/{connector}/config");
            let mut last = Err(String::new());
            // A worker still joining its group answers 409 (rebalance in progress): retry.
            let ok = poll_until(START_TIMEOUT, || {
                worker.assert_alive();
                last = worker.rest("PUT", &path, Some(&body));
                matches!(last, Ok((201, _)))
            });
            assert!(ok, "PUT {path} did not create the connector: {last:?}\n{}", worker.log_tail(80));
        }
    }

    fn connectors(&self) -> [&str; 2] {
        [&self.source_name, &self.sink_name]
    }

    /// The group's state as DescribeGroups answers it: (state, protocol type, protocol,
    /// members), and a description.
    fn describe_group(&self) -> (String, String, String, usize) {
        let c = common::consumer(&self.bootstrap, &[]);
        let groups = c
            .fetch_group_list(Some(&self.group), Duration::from_secs(30))
            .expect("DescribeGroups of the Connect group");
        let g = groups.groups().first().unwrap_or_else(|| panic!("no group {} described", self.group));
        (g.state().to_string(), g.protocol_type().to_string(), g.protocol().to_string(), g.members().len())
    }
}

/// A distributed worker (its configs, offsets and status in compacted topics it creates;
/// a group of protocol type `connect`) runs connectors created through its REST API; after
/// a SIGTERM and a restart the connectors come back from the config topic, the source
/// resumes from the offsets topic, and lines appended since arrive exactly once.
#[test]
fn distributed_worker_via_rest_survives_a_restart() {
    build();
    let target = Target::start(&[]);
    let cl = Cluster::new(&target.bootstrap(), "connect-dist");
    let mut want = lines("distributed", 0, 300);
    append_lines(&cl.source, &want);
    let rest_port = common::free_port();

    let t0 = Instant::now();
    let mut worker = cl.spawn_worker("distributed worker", rest_port, &[]);
    await_rest(&mut worker);
    cl.create_connectors(&mut worker);
    await_running(&mut worker, &cl.connectors(), "first run");
    await_copy(&cl.sink, &want, "distributed, first run", &mut worker);

    // Connect created its three internal topics compacted, with its default partitions.
    for (t, parts) in [(&cl.configs, 1), (&cl.offsets, 25), (&cl.statuses, 5)] {
        let (partitions, cfg) = topic_facts(&cl.bootstrap, t);
        assert_eq!(partitions, parts, "Connect's internal topic {t} has {partitions} partitions, expected {parts}");
        let policy = cfg.get("cleanup.policy").cloned().flatten();
        assert_eq!(
            policy.as_deref(),
            Some("compact"),
            "Connect's internal topic {t}: cleanup.policy {policy:?}, expected compact"
        );
    }
    // The worker is the one member of a group of protocol type `connect`.
    // A connector or task config change starts a rebalance while the tasks run on: wait
    // for Stable rather than catch one in flight.
    let stable_view = ("Stable".to_string(), "connect".to_string(), "sessioned".to_string(), 1);
    let mut g = cl.describe_group();
    poll_until(START_TIMEOUT, || {
        g = cl.describe_group();
        g == stable_view
    });
    assert!(
        g == stable_view,
        "the Connect worker's group {}: (state, protocol type, protocol, members) = {g:?}; expected Stable, connect, sessioned, 1",
        cl.group
    );
    println!("[distributed] group {}: (state, protocol type, protocol, members) = {g:?}", cl.group);

    // SIGTERM: the worker stops its tasks, commits the source offsets, leaves the group.
    worker.stop();
    let mut worker = cl.spawn_worker("distributed worker", rest_port, &[]);
    await_rest(&mut worker);
    await_running(&mut worker, &cl.connectors(), "after a restart");
    let more = lines("distributed", 300, 150);
    append_lines(&cl.source, &more);
    want.extend(more);
    await_copy(&cl.sink, &want, "distributed, after a restart", &mut worker);
    worker.stop();
    println!(
        "[distributed] against {} ({}): passed in {:.1} s",
        target.kind(),
        cl.bootstrap,
        t0.elapsed().as_secs_f64()
    );
}

/// Two distributed workers in one group share the two connectors and their tasks (the
/// leader's incremental cooperative assignment); when one stops (SIGTERM: its tasks commit
/// their offsets, it leaves the group), the other takes everything over and the lines
/// appended since arrive exactly once.
#[test]
fn two_distributed_workers_share_and_hand_over_connectors() {
    build();
    let target = Target::start(&[]);
    let cl = Cluster::new(&target.bootstrap(), "connect-two");
    let mut want = lines("two workers", 0, 300);
    append_lines(&cl.source, &want);
    // A departed worker's connectors and tasks are reassigned after this delay (default 5 min).
    let extra = [("scheduled.rebalance.max.delay.ms", "1000")];
    let (port_a, port_b) = (common::free_port(), common::free_port());

    let t0 = Instant::now();
    let mut a = cl.spawn_worker("worker a", port_a, &extra);
    let mut b = cl.spawn_worker("worker b", port_b, &extra);
    await_rest(&mut a);
    await_rest(&mut b);
    cl.create_connectors(&mut a);
    // The connectors and their tasks end up on both workers: (a, b) run 2 units each.
    let mut last = Vec::new();
    let shared = poll_until(START_TIMEOUT, || {
        a.assert_alive();
        b.assert_alive();
        last = placement(&a, &cl.connectors());
        let on = |port: u16| {
            last.iter().filter(|(_, state, w)| state == "RUNNING" && w.ends_with(&format!(":{port}"))).count()
        };
        last.len() == 4 && on(port_a) == 2 && on(port_b) == 2
    });
    assert!(
        shared,
        "the two workers did not share the 2 connectors and 2 tasks 2/2 (a on port {port_a}, b on {port_b}): {last:?}\n{}\n{}",
        a.log_tail(60),
        b.log_tail(60)
    );
    println!("[two workers] placement: {last:?}");
    // Incremental cooperative rebalancing keeps tasks running through a rebalance, and
    // every connector and task config change starts one: "all running" does not mean the
    // group is Stable yet (against Kafka as against Sluice). Wait for it.
    let stable_view = ("Stable".to_string(), "connect".to_string(), "sessioned".to_string(), 2);
    let mut g = cl.describe_group();
    let stable = poll_until(START_TIMEOUT, || {
        g = cl.describe_group();
        g == stable_view
    });
    assert!(
        stable,
        "the Connect group {}: (state, protocol type, protocol, members) = {g:?}; expected Stable, connect, sessioned, 2\n{}\n{}",
        cl.group,
        a.log_tail(80),
        b.log_tail(80)
    );
    await_copy(&cl.sink, &want, "two workers", &mut a);

    b.stop();
    let mut last = Vec::new();
    let moved = poll_until(START_TIMEOUT, || {
        a.assert_alive();
        last = placement(&a, &cl.connectors());
        last.len() == 4 && last.iter().all(|(_, state, w)| state == "RUNNING" && w.ends_with(&format!(":{port_a}")))
    });
    assert!(moved, "worker a did not take over all 4 units after b stopped: {last:?}\n{}", a.log_tail(80));
    let more = lines("two workers", 300, 150);
    append_lines(&cl.source, &more);
    want.extend(more);
    await_copy(&cl.sink, &want, "worker a alone", &mut a);
    a.stop();
    println!(
        "[two workers] against {} ({}): passed in {:.1} s",
        target.kind(),
        cl.bootstrap,
        t0.elapsed().as_secs_f64()
    );
}

/// Each connector's and task's (name, state, worker id) from `worker`'s REST API.
fn placement(worker: &Worker, connectors: &[&str]) -> Vec<(String, String, String)> {
    let mut units = Vec::new();
    for c in connectors {
        let Ok((200, body)) = worker.rest("GET", &format!("/connectors/{c}/status"), None) else { continue };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else { continue };
        let s = |x: &serde_json::Value| x.as_str().unwrap_or("").to_string();
        units.push((c.to_string(), s(&v["connector"]["state"]), s(&v["connector"]["worker_id"])));
        for t in v["tasks"].as_array().cloned().unwrap_or_default() {
            units.push((format!("{c}-{}", t["id"]), s(&t["state"]), s(&t["worker_id"])));
        }
    }
    units
}

/// Waits until the worker's REST API answers `GET /connectors`.
fn await_rest(worker: &mut Worker) {
    let t0 = Instant::now();
    let mut last = Err(String::new());
    let ok = poll_until(START_TIMEOUT, || {
        worker.assert_alive();
        last = worker.rest("GET", "/connectors", None);
        matches!(last, Ok((200, _)))
    });
    assert!(ok, "the {}'s REST API did not answer GET /connectors: {last:?}\n{}", worker.what, worker.log_tail(80));
    eprintln!("[kafka_connect] the {}'s REST API answers after {:.1} s", worker.what, t0.elapsed().as_secs_f64());
}

/// Waits until each connector and its one task are RUNNING.
fn await_running(worker: &mut Worker, connectors: &[&str], what: &str) {
    for c in connectors {
        let path = format!("/connectors/{c}/status");
        let mut last = Err(String::new());
        let ok = poll_until(START_TIMEOUT, || {
            worker.assert_alive();
            last = worker.rest("GET", &path, None);
            let Ok((200, body)) = &last else { return false };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else { return false };
            let tasks = v["tasks"].as_array().cloned().unwrap_or_default();
            v["connector"]["state"] == "RUNNING" && tasks.len() == 1 && tasks[0]["state"] == "RUNNING"
        });
        assert!(ok, "{what}: {c} and its task are not RUNNING: GET {path}: {last:?}\n{}", worker.log_tail(80));
    }
}

/// Every Java consumer that Connect (and Streams) closes sends a last Fetch that closes its
/// fetch session: no partitions, `session_epoch` -1 (FINAL_EPOCH), `session_id` the session's
/// (0 on a broker without fetch sessions), and waits for its answer. Kafka answers a Fetch
/// without partitions at once (ReplicaManager.fetchMessages responds immediately when
/// there is nothing to fetch); a broker that holds it for `max_wait_ms` makes each consumer
/// close take `fetch.max.wait.ms` (500 ms by default: a distributed worker's SIGTERM closes
/// five consumers, one after another).
#[test]
fn a_fetch_without_partitions_is_answered_at_once() {
    use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse};
    let target = Target::start(&[]);
    for (version, epoch) in [(4i16, 0i32), (12, 0), (12, -1)] {
        let req = FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(3000)
            .with_min_bytes(1)
            .with_max_bytes(50 << 20)
            .with_session_id(0)
            .with_session_epoch(epoch);
        let t0 = Instant::now();
        let resp: FetchResponse = common::kafka_call(&target.bootstrap(), ApiKey::Fetch, version, &req);
        let took = t0.elapsed();
        assert_eq!(
            resp.error_code, 0,
            "Fetch v{version} (session epoch {epoch}, no partitions): error {}",
            resp.error_code
        );
        assert!(
            resp.responses.is_empty(),
            "Fetch v{version} without partitions answered partitions: {:?}",
            resp.responses
        );
        assert!(
            took < Duration::from_millis(1500),
            "Fetch v{version} (session id 0, session epoch {epoch}) without partitions, max_wait_ms 3000, min_bytes 1: \
             answered after {took:?}; Kafka answers at once (there is nothing to wait for)\n{}",
            target.log_tail(20)
        );
    }
}
