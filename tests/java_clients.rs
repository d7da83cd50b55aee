//! The Java client (org.apache.kafka:kafka-clients 4.4.0) against Sluice: the program in
//! `tests/clients/java` (`ClientTests`) runs named scenarios and prints `PASS name` or
//! `FAIL name: why` for each; every test here runs some of them in one JVM against its
//! own broker and fails on any FAIL line.
//!
//! Maven and a JDK 17+ build the program offline (`mvn -o package`, once per test binary,
//! so edits to the Java sources are picked up); the jars come from `bash
//! scripts/install-test-deps.sh` (tests/clients/java/install.sh). Missing tools or jars
//! FAIL these tests, never skip them.
//!
//! `SLUICE_TEST_BOOTSTRAP=127.0.0.1:19092` (after `bash scripts/kafka-reference.sh start`)
//! runs the same scenarios against Apache Kafka 4.4: a scenario failing there is a wrong
//! test.

mod common;

use std::time::{Duration, Instant};

use common::external::*;

/// Each scenario's bound inside the program; the JVM as a whole gets this per scenario plus
/// [`JVM_SLACK`].
const SCENARIO_TIMEOUT_S: u64 = 60;
const JVM_SLACK: Duration = Duration::from_secs(60);

/// Runs `scenarios` in one JVM against a fresh broker (or the external one); fails on any
/// FAIL line, a missing verdict, a crash or a timeout.
fn run_scenarios(test: &str, scenarios: &[&str]) {
    let mut java = java_client("ClientTests", "512m");
    let target = Target::start(&[]);
    java.args([
        "--bootstrap",
        &target.bootstrap(),
        "--broker",
        target.kind(),
        "--timeout-s",
        &SCENARIO_TIMEOUT_S.to_string(),
        "--scenarios",
        &scenarios.join(","),
    ]);
    let t0 = Instant::now();
    let out = run_bounded(java, Duration::from_secs(SCENARIO_TIMEOUT_S * scenarios.len() as u64) + JVM_SLACK);
    println!(
        "[{test}] {} scenarios against {} ({}) in {:.1} s:",
        scenarios.len(),
        target.kind(),
        target.bootstrap(),
        t0.elapsed().as_secs_f64()
    );
    assert_scenarios(&format!("ClientTests ({test})"), &out, &target, scenarios);
}

/// The default producer (idempotent, acks=all): murmur2 partitioning, contiguous offsets;
/// every codec round-trips keys, values, headers and timestamps.
#[test]
fn java_producer() {
    run_scenarios(
        "java_producer",
        &["producer_defaults", "compression_gzip", "compression_snappy", "compression_lz4", "compression_zstd"],
    );
}

/// One consumer: seek/seekToBeginning/seekToEnd, offsetsForTimes, pause/resume, and a
/// group's committed offsets (commitSync, commitAsync, auto commit) resumed by a new member.
#[test]
fn java_consumer() {
    run_scenarios("java_consumer", &["seek", "offsets_for_times", "pause_resume", "commit_sync_async", "auto_commit"]);
}

/// Two members of a classic group (range; cooperative-sticky) split partitions and
/// rebalance when one leaves; group.protocol=consumer works or fails clearly.
#[test]
fn java_consumer_groups() {
    run_scenarios("java_consumer_groups", &["group_range", "group_cooperative_sticky", "consumer_protocol"]);
}

/// AdminClient: topics, configs (topic and broker), the cluster, consumer groups,
/// deleteRecords, listOffsets.
#[test]
fn java_admin() {
    run_scenarios(
        "java_admin",
        &[
            "admin_topics",
            "admin_configs",
            "admin_cluster",
            "admin_groups",
            "admin_delete_records",
            "admin_list_offsets",
            "admin_list_offsets_max_timestamp",
        ],
    );
}

/// Transactions: commit and abort as each isolation level sees them, consume-transform-
/// produce with sendOffsetsToTransaction, and a second instance fencing the first.
#[test]
fn java_transactions() {
    run_scenarios("java_transactions", &["txn_commit_abort", "txn_consume_transform_produce", "txn_fencing"]);
}
