//! Transactions (issue 22) through confluent-kafka: commit and abort as each isolation
//! level sees them, consume-transform-produce with offsets committed in the transaction,
//! fencing of a zombie instance, an abandoned transaction aborted after its timeout, and
//! the coordinator and the log across a kill -9 (tests/clients/transactions.py); a
//! consume-transform-produce app (confluent-kafka and the Java client) with the app, the
//! broker, or one node of a cluster killed at random moments gives one output per input.
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rdkafka::admin::{NewTopic, TopicReplication};

/// Runs one scenario of tests/clients/transactions.py; its stdout.
fn scenario(name: &str, boot: &str, topic: &str, args: &[&str]) -> String {
    let script = common::external::repo_root().join("tests/clients/transactions.py");
    let out = Command::new("timeout")
        .arg("150")
        .arg("python3")
        .arg(script)
        .args([name, boot, topic])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python3 (scripts/install-test-deps.sh installs confluent-kafka)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scenario {name} failed ({}):\n{text}", out.status);
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no {prefix:?} line in:\n{out}")).trim()
}

/// Small internal topics: a test broker creates them fast.
const TXN_OVERRIDES: &[(&str, &str)] = &[
    ("transaction.state.log.num.partitions", "4"),
    ("offsets.topic.num.partitions", "4"),
    ("transaction.abort.timed.out.transaction.cleanup.interval.ms", "200"),
];

#[test]
fn transactions_commit_abort_fence_and_carry_offsets() {
    let broker = Broker::start_with(TXN_OVERRIDES, 2);
    let boot = broker.bootstrap();

    let out = scenario("commit-abort", &boot, "txn-basic", &[]);
    let committed: Vec<&str> = line(&out, "read_committed").split_whitespace().collect();
    assert_eq!(committed.len(), 13, "{out}");
    assert!(committed.iter().all(|v| !v.starts_with("aborted")), "{out}");
    assert_eq!(line(&out, "read_uncommitted").split_whitespace().count(), 18, "{out}");

    let out = scenario("consume-transform-produce", &boot, "txn-ctp", &[]);
    assert_eq!(line(&out, "committed"), "10", "the aborted transaction's offsets are not committed:\n{out}");
    let output: Vec<&str> = line(&out, "output").split_whitespace().collect();
    let mut expected: Vec<String> = (0..10).map(|i| format!("out-{i}")).collect();
    expected.sort();
    assert_eq!(output, expected, "exactly the committed transaction's output:\n{out}");

    let out = scenario("fencing", &boot, "txn-fence", &[]);
    assert_eq!(line(&out, "zombie refused"), "True", "the zombie's commit is refused:\n{out}");
    assert_eq!(line(&out, "read_committed"), "new", "{out}");
}

/// KIP-890 part 1: a transactional write is appended only to a partition in the producer's
/// ongoing transaction, as the coordinator confirms: not before AddPartitionsToTxn, and not
/// after the commit (a hanging write that would leave a transaction open for good and
/// hold the last stable offset back). Partition 1 lives on the other shard than partition
/// 0; the coordinator on another broker is in `librdkafka_transaction_tests`. The same
/// passes against Apache Kafka 4.4 (`hanging_writes_against_the_reference`).
#[test]
fn writes_outside_an_ongoing_transaction_are_refused() {
    let broker = Broker::start_with(TXN_OVERRIDES, 2);
    let boot = broker.bootstrap();
    create_topic(&boot, "txn-hang", 2);
    wait_for_topic(&boot, "txn-hang", 2);
    for p in 0..2 {
        txn_probe::hanging_writes_are_refused(&boot, &boot, "txn-hang", p, &format!("hang-{p}"));
    }
}

/// `writes_outside_an_ongoing_transaction_are_refused` against Apache Kafka: start it with
/// `scripts/kafka-reference.sh start`, then
/// `SLUICE_REFERENCE_BOOTSTRAP=127.0.0.1:19092 cargo test --test transactions -- --ignored`.
#[test]
#[ignore]
fn hanging_writes_against_the_reference() {
    let boot = std::env::var("SLUICE_REFERENCE_BOOTSTRAP").expect("SLUICE_REFERENCE_BOOTSTRAP");
    let topic = topic_name("txn-hang");
    create_topic(&boot, &topic, 1);
    wait_for_topic(&boot, &topic, 1);
    txn_probe::hanging_writes_are_refused(&boot, &boot, &topic, 0, &topic);
}

/// A producer that never ends its transaction: the coordinator aborts it after its
/// timeout, and the last stable offset moves on. Then the same across a kill -9 of the
/// broker: the coordinator reloads the open transaction and aborts it when it times out.
#[test]
fn abandoned_transactions_are_aborted_after_their_timeout_even_across_a_crash() {
    let mut broker = Broker::start_with(TXN_OVERRIDES, 2);
    let boot = broker.bootstrap();
    let out = scenario("abandon", &boot, "txn-abandon", &["2000"]);
    assert!(out.contains("abandoned"), "{out}");
    let out = scenario("commit-after", &boot, "txn-abandon", &["30"]);
    assert_eq!(line(&out, "read_committed"), "after", "{out}");
    assert_eq!(line(&out, "read_uncommitted"), "abandoned after", "{out}");

    // Across a crash: the open transaction is in __transaction_state and in the log's
    // producer state; both come back.
    let out = scenario("abandon", &boot, "txn-crash", &["4000"]);
    assert!(out.contains("abandoned"), "{out}");
    broker.kill9();
    broker.spawn();
    broker.wait_ready();
    let out = scenario("commit-after", &boot, "txn-crash", &["40"]);
    assert_eq!(line(&out, "read_committed"), "after", "{out}");
    assert_eq!(line(&out, "read_uncommitted"), "abandoned after", "{out}");
}

/// The broker dies after a PrepareCommit is durable and before any marker is written (a
/// test hook): after the restart, the new coordinator writes the markers, and a
/// read_committed reader sees the whole committed transaction and never the aborted one.
#[test]
fn a_commit_cut_short_before_its_markers_completes_after_a_restart() {
    let mut broker = Broker::start_with(TXN_OVERRIDES, 2);
    broker.kill9();
    broker.set_env("SLUICE_TEST_EXIT_BEFORE_TXN_MARKERS", "1");
    broker.spawn();
    broker.wait_ready();
    let boot = broker.bootstrap();
    let out = scenario("commit-crash", &boot, "txn-cut", &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while broker.is_running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!broker.is_running(), "the test hook stops the broker before the markers\n{out}");
    assert!(broker.log_tail(50).contains("test hook: exiting before transaction markers"), "{}", broker.log_tail(50));
    broker.kill9();
    broker.set_env("SLUICE_TEST_EXIT_BEFORE_TXN_MARKERS", "");
    broker.spawn();
    broker.wait_ready();
    let read = scenario("read", &boot, "txn-cut", &["read_committed", "2", "4"]);
    assert_eq!(
        line(&read, "read_committed"),
        "committed-0 committed-1 committed-2 committed-3",
        "after the restart (first run: {out})"
    );
}

fn python_ctp(boot: &str, topic: &str) -> Command {
    let mut c = Command::new("python3");
    c.arg(common::external::repo_root().join("tests/clients/transactions.py")).args(["ctp-loop", boot, topic, "2"]);
    c
}

fn java_ctp(boot: &str, topic: &str) -> Command {
    let mut c = common::external::java_client("CtpLoop", "256m");
    c.args([boot, topic, "2"]);
    c
}

/// Exactly one output per input with the app killed (SIGKILL) at random moments, through
/// confluent-kafka (tests/clients/transactions.py ctp-loop); see `ctp_kill_loop`.
#[test]
fn consume_transform_produce_gives_one_output_per_input_across_app_kills() {
    ctp_kill_loop("py", PY_TXN_ID, python_ctp, Kill::App);
}

/// The same through the Java client 4.4 (tests/clients/java, `CtpLoop`).
#[test]
fn java_consume_transform_produce_gives_one_output_per_input_across_app_kills() {
    ctp_kill_loop("java", JAVA_TXN_ID, java_ctp, Kill::App);
}

/// With the broker killed and restarted under a running app instead. The app sets
/// `metadata.recovery.strategy=none`: otherwise librdkafka 2.16 re-bootstraps when its only
/// broker is down, and a group coordinator decommissioned on the way hangs
/// `send_offsets_to_transaction` for good (librdkafka issues #5511 and #5456, a client
/// bug; it stalled about one run in two here).
#[test]
fn consume_transform_produce_across_broker_kills() {
    ctp_kill_loop("py", PY_TXN_ID, python_ctp, Kill::Broker);
}

#[test]
fn java_consume_transform_produce_across_broker_kills() {
    ctp_kill_loop("java", JAVA_TXN_ID, java_ctp, Kill::Broker);
}

/// On a three-node cluster (every topic with three replicas, `__transaction_state`'s
/// min.insync.replicas 2), one node at a time killed and restarted under a running app:
/// the coordinator of the app's transactional id, its group's coordinator and the
/// partitions' leaders move, and the new coordinator finishes what the old one had begun.
#[test]
fn consume_transform_produce_across_cluster_node_kills() {
    ctp_kill_loop("py", PY_TXN_ID, python_ctp, Kill::ClusterNode);
}

#[test]
fn java_consume_transform_produce_across_cluster_node_kills() {
    ctp_kill_loop("java", JAVA_TXN_ID, java_ctp, Kill::ClusterNode);
}

/// What `ctp_kill_loop` kills.
#[derive(Clone, Copy, PartialEq)]
enum Kill {
    /// The app.
    App,
    /// The only broker, under a running app.
    Broker,
    /// One node of three at a time, under a running app.
    ClusterNode,
}

/// A consume-transform-produce app (`app(bootstrap, topic)`: up to 20 records per
/// transaction, offsets committed in it) copies 3000 records, killed with SIGKILL at
/// random moments and restarted until it finishes; or a broker is killed and restarted
/// under a running app (an app that fails exits, and a new instance takes over). A read_committed reader over the whole output finds every input exactly
/// once. Seeded: `SLUICE_TEST_SEED` reproduces the kill moments.
/// The transactional ids of the ctp-loop apps (transactions.py, CtpLoop.java).
const PY_TXN_ID: &str = "ctp-loop-app";
const JAVA_TXN_ID: &str = "ctp-loop-java-app";

fn ctp_kill_loop(name: &str, txn_id: &str, app: impl Fn(&str, &str) -> Command, kill: Kill) {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("SLUICE_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("[ctp kill loop] {name}: SLUICE_TEST_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    const INPUTS: usize = 3000;
    const KILLS: usize = 4;
    let (mut brokers, replicas) = match kill {
        Kill::ClusterNode => (start_cluster(3, TXN_OVERRIDES).1, 3),
        Kill::App | Kill::Broker => (vec![Broker::start_with(TXN_OVERRIDES, 2)], 1),
    };
    let boot = brokers.iter().map(|b| b.bootstrap()).collect::<Vec<_>>().join(",");
    let logs = tempfile::tempdir().unwrap();
    {
        let what = match kill {
            Kill::App => "app",
            Kill::Broker => "broker",
            Kill::ClusterNode => "node",
        };
        let topic = format!("ctp-{name}-kill-{what}");
        let out = format!("{topic}-out");
        let created = create_topics_raw(
            &boot,
            &[
                NewTopic::new(&topic, 2, TopicReplication::Fixed(replicas)),
                NewTopic::new(&out, 2, TopicReplication::Fixed(replicas)),
            ],
            &admin_opts(),
        );
        assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
        wait_for_topic(&boot, &topic, 2);
        wait_for_topic(&boot, &out, 2);
        let p = producer(&boot, &[]);
        // Both partitions get input (a producer's sticky partitioner may fill just one).
        let inputs: Vec<TestMsg> = (0..INPUTS)
            .map(|i| TestMsg { partition: Some((i % 2) as i32), ..TestMsg::value(format!("in-{i}")) })
            .collect();
        produce_ok(&p, &topic, &inputs, Duration::from_secs(60));
        drop(p);

        // The app process itself (no wrapper), so that a kill is a SIGKILL of the app; and
        // killed if the test fails.
        struct App(std::process::Child);
        impl Drop for App {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let spawn_app = |instances: &mut usize| {
            *instances += 1;
            let log = std::fs::File::create(logs.path().join(format!("{topic}-{instances}.log"))).unwrap();
            App(app(&boot, &topic)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start the app"))
        };
        let last_log = |instances: usize| {
            std::fs::read_to_string(logs.path().join(format!("{topic}-{instances}.log"))).unwrap_or_default()
        };
        let mut instances = 0;
        let mut running = spawn_app(&mut instances);
        let (mut kills, mut failures) = (0, 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "{topic}: not done in 300 s (seed {seed}); the last instance's output:\n{}",
                last_log(instances)
            );
            // The app needs only 2-3 s of work in all: kills come often enough that two or
            // more land before it is done (an app kill also costs it its start-up).
            let wait = if kill == Kill::App { rng.random_range(200..1200) } else { rng.random_range(100..700) };
            let window = std::time::Instant::now() + Duration::from_millis(wait);
            let exited = loop {
                if let Some(status) = running.0.try_wait().unwrap() {
                    break Some(status);
                }
                if std::time::Instant::now() >= window {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            match exited {
                Some(s) if s.success() => break,
                Some(_) => {
                    failures += 1;
                    running = spawn_app(&mut instances);
                }
                None if kills < KILLS => {
                    kills += 1;
                    if kill == Kill::App {
                        running.0.kill().unwrap();
                        running.0.wait().unwrap();
                        running = spawn_app(&mut instances);
                    } else {
                        // Every other kill on a cluster takes the transactional id's
                        // coordinator, so that its state changes hands.
                        let node = if kill == Kill::ClusterNode && kills % 2 == 1 {
                            common::txn_probe::find_coordinator(&brokers[0].bootstrap(), txn_id).0 as usize - 1
                        } else {
                            rng.random_range(0..brokers.len())
                        };
                        eprintln!("[ctp kill loop] kill {kills}: node {}", node + 1);
                        let broker = &mut brokers[node];
                        broker.kill9();
                        broker.spawn();
                        broker.wait_ready();
                    }
                }
                None => {}
            }
        }
        eprintln!("[ctp kill loop] {topic}: {kills} kills, {failures} failed instances, {instances} instances");
        // How often a coordinator took over transaction state (after a restart, or from a
        // killed node): the failovers this run went through.
        let takeovers: usize =
            brokers.iter().map(|b| b.log_tail(50_000_000).matches("loaded transaction state").count()).sum();
        eprintln!("[ctp kill loop] {topic}: transaction state loaded {takeovers} times");
        assert!(kills >= 2, "{topic}: the app finished before the kills (seed {seed})");
        let read = scenario("read", &boot, &out, &["read_committed", "2", &INPUTS.to_string()]);
        let mut got: Vec<&str> = line(&read, "read_committed").split_whitespace().collect();
        got.sort_unstable();
        let mut expected: Vec<String> = (0..INPUTS).map(|i| format!("out-in-{i}")).collect();
        expected.sort_unstable();
        let twice = got.windows(2).filter(|w| w[0] == w[1]).count();
        assert_eq!(
            got.len(),
            INPUTS,
            "{topic}: {} outputs for {INPUTS} inputs, {twice} twice (seed {seed})",
            got.len()
        );
        assert_eq!(got, expected, "{topic}: seed {seed}");
    }
}
