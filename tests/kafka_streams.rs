//! Kafka Streams (org.apache.kafka:kafka-streams 4.4.0, at_least_once and exactly_once_v2)
//! against Sluice: the program in `tests/clients/streams` (`StreamsTests`) runs a word
//! count (a repartition topic, a state store with a compacted changelog) to exact counts,
//! restarts it on the same and on a fresh state dir (the store restored from its
//! changelog) and counts on without recounting, and runs two instances of one application
//! that share and then hand over its tasks. It prints `PASS name` or `FAIL name: why` per
//! scenario and `STEP` lines on the way; each test here runs one scenario against its own
//! broker and fails on any FAIL line.
//!
//! Maven and a JDK 17+ build the program offline (`mvn -o package`, once per test binary,
//! so edits to the Java sources are picked up); the jars come from `bash
//! scripts/install-test-deps.sh` (tests/clients/streams/install.sh). Missing tools or jars
//! FAIL these tests, never skip them.
//!
//! `SLUICE_TEST_BOOTSTRAP=127.0.0.1:19092` (after `bash scripts/kafka-reference.sh start`)
//! runs the same scenarios against Apache Kafka 4.4: a scenario failing there is a wrong
//! test.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::external::*;

const INSTALL_HINT: &str = "install the Kafka Streams tests' dependencies (a JDK 17+, Maven, the kafka-streams jars \
     in ~/.m2) with `bash scripts/install-test-deps.sh`";

/// The whole JVM's bound for one scenario (the program bounds each of its waits at 90 s;
/// a scenario takes 10 to 30 s).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(200);

fn streams_dir() -> PathBuf {
    repo_root().join("tests/clients/streams")
}

/// Builds the program once per test binary (offline); the error message if that failed.
fn build() -> &'static Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(|| {
        maven_build(
            "streams",
            &[
                "target/classes/StreamsTests.class",
                "target/lib/kafka-streams-4.4.0.jar",
                "target/lib/kafka-clients-4.4.0.jar",
            ],
            INSTALL_HINT,
        )
    })
}

/// Runs one scenario in its own JVM against a fresh broker (or the external one); fails
/// on a FAIL line, a missing verdict, a crash or a timeout.
fn run_scenario(scenario: &str) {
    if let Err(e) = build() {
        panic!("{e}");
    }
    let target = Target::start(&[]);
    // The state dirs: under target/tmp (Streams warns about state in the OS temp dir).
    let work = tempfile::Builder::new()
        .prefix("kafka-streams-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a work dir for the state dirs");
    let prefix = unique("streams");
    let mut java = Command::new("java");
    java.current_dir(streams_dir())
        .args(["-XX:+UseSerialGC", "-Xmx768m", "-cp", "target/classes:target/lib/*", "StreamsTests"])
        .arg(target.bootstrap())
        .arg(target.kind())
        .arg(work.path())
        .arg(&prefix)
        .arg(scenario);
    let t0 = Instant::now();
    let out = run_bounded(java, SCENARIO_TIMEOUT);
    println!(
        "[{scenario}] against {} ({}) in {:.1} s:\n{}",
        target.kind(),
        target.bootstrap(),
        t0.elapsed().as_secs_f64(),
        out.stdout.trim_end()
    );
    let verdict = out
        .stdout
        .lines()
        .any(|l| l.starts_with(&format!("PASS {scenario}")) || l.starts_with(&format!("FAIL {scenario}:")));
    let failures = if verdict { scenario_failures(&out) } else { Vec::new() };
    if !verdict || !failures.is_empty() || !out.success() {
        panic!(
            "{scenario}: {}\n{}\n---- broker log (last lines) ----\n{}",
            if verdict { failures.join("\n") } else { "no verdict".to_string() },
            out.describe("StreamsTests"),
            target.log_tail(60)
        );
    }
}

/// The word count reaches the exact counts (a repartition topic, a compacted changelog
/// holding the counts, repartition records purged once committed); closed and started
/// again on the same state dir and then on a fresh one (restored from the changelog), it
/// counts the new input on top of the old counts, never from scratch, never twice.
#[test]
fn word_count_survives_restarts_and_restores_from_changelog() {
    run_scenario("wordcount-restart");
}

/// Two instances of one application share its 8 tasks; one leaves, the other takes them
/// all over (restoring their stores) and the counts stay exact.
#[test]
fn two_instances_share_tasks_and_hand_them_over() {
    run_scenario("two-instances");
}

/// processing.guarantee=exactly_once_v2: the application dies in the middle of a
/// transaction, a new run resumes, and a read_committed reader of the output sees the exact
/// counts, none counted twice.
#[test]
fn exactly_once_word_count_survives_a_crash_mid_transaction() {
    run_scenario("wordcount-eos-crash");
}
