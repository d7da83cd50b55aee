//! KafkaJS 2.2.4 against Sluice, driven by `tests/clients/kafkajs/scenarios.js` (one
//! `PASS name` / `FAIL name: why` line per scenario; see tests/clients/README.md).
//!
//! Each test starts its own Sluice (or uses the broker named by `SLUICE_TEST_BOOTSTRAP`,
//! e.g. the reference Kafka of `scripts/kafka-reference.sh`) and runs some scenarios:
//! produce (idempotent, gzip: the only codec KafkaJS has built in) read back, a consumer
//! group split between two members that commit and a third that resumes from the commits,
//! and the admin API. Node and kafkajs are installed by `bash scripts/install-test-deps.sh`;
//! without them these tests fail (never skip).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::external::*;

const INSTALL_HINT: &str =
    "run `bash scripts/install-test-deps.sh` (Node.js and npm, then tests/clients/kafkajs/install.sh: npm ci)";
const KAFKAJS_VERSION: &str = "2.2.4";
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

fn js_dir() -> PathBuf {
    repo_root().join("tests/clients/kafkajs")
}

/// Node runs and node_modules holds the pinned kafkajs; panics (with the install hint) if not.
fn check_deps() {
    let node = Command::new("node").arg("--version").stdin(Stdio::null()).output();
    match node {
        Ok(out) if out.status.success() => {
            eprintln!("[kafkajs_clients] node {}", String::from_utf8_lossy(&out.stdout).trim())
        }
        Ok(out) => panic!("`node --version` failed: {}; {INSTALL_HINT}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => panic!("cannot run `node` ({e}); {INSTALL_HINT}"),
    }
    let manifest = js_dir().join("node_modules/kafkajs/package.json");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("kafkajs is not installed ({}: {e}); {INSTALL_HINT}", manifest.display()));
    let wanted = format!("\"version\": \"{KAFKAJS_VERSION}\"");
    assert!(text.contains(&wanted), "{} is not kafkajs {KAFKAJS_VERSION}; {INSTALL_HINT}", manifest.display());
}

fn run_scenarios(scenarios: &str) {
    check_deps();
    let target = Target::start(&[]);
    let mut cmd = Command::new("node");
    cmd.args(["scenarios.js", "--bootstrap", &target.bootstrap(), "--broker", target.kind(), "--scenarios", scenarios]);
    cmd.current_dir(js_dir());
    let started = Instant::now();
    let out = run_bounded(cmd, RUN_TIMEOUT);
    eprintln!(
        "[kafkajs_clients] {scenarios} against {} ({}) took {:.1}s",
        target.kind(),
        target.bootstrap(),
        started.elapsed().as_secs_f64()
    );
    assert_scenarios(&format!("node tests/clients/kafkajs/scenarios.js --scenarios {scenarios}"), &out, &target, &[]);
}

#[test]
fn kafkajs_produce() {
    run_scenarios("kafkajs-produce-*");
}

#[test]
fn kafkajs_group() {
    run_scenarios("kafkajs-group");
}

#[test]
fn kafkajs_admin() {
    run_scenarios("kafkajs-admin");
}
