//! The Go Kafka clients against Sluice: franz-go v1.22.3 (with its admin client kadm
//! v1.20.0) and Sarama v1.61.1, driven by the program in `tests/clients/go/` (one
//! `PASS name` / `FAIL name: why` line per scenario; see tests/clients/README.md).
//!
//! Each test starts its own Sluice (or uses the broker named by `SLUICE_TEST_BOOTSTRAP`,
//! e.g. the reference Kafka of `scripts/kafka-reference.sh`) and runs one client's
//! scenarios: the idempotent producer and every codec read back, a consumer group split
//! between two members that commit and a third that resumes from the commits, and the
//! admin API. Go and the modules are installed by `bash scripts/install-test-deps.sh`;
//! without them these tests fail (never skip).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::external::*;

const INSTALL_HINT: &str =
    "run `bash scripts/install-test-deps.sh` (Go 1.26+, then tests/clients/go/install.sh: go mod download and go build)";
/// One client's scenarios together (each is bounded by its own context timeout too).
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

fn go_dir() -> PathBuf {
    repo_root().join("tests/clients/go")
}

/// `go build -o bin/clients .`, once per test binary (incremental: fast when built).
fn scenario_binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let go = Command::new("go").arg("version").stdin(Stdio::null()).output();
        match go {
            Ok(out) if out.status.success() => {
                eprintln!("[go_clients] {}", String::from_utf8_lossy(&out.stdout).trim())
            }
            Ok(out) => panic!("`go version` failed: {}; {INSTALL_HINT}", String::from_utf8_lossy(&out.stderr).trim()),
            Err(e) => panic!("cannot run `go` ({e}); {INSTALL_HINT}"),
        }
        let mut cmd = Command::new("go");
        cmd.args(["build", "-o", "bin/clients", "."]);
        let started = Instant::now();
        build_step("the Go client scenarios (go build in tests/clients/go)", cmd, &go_dir(), Duration::from_secs(600));
        eprintln!("[go_clients] go build took {:.1}s", started.elapsed().as_secs_f64());
        go_dir().join("bin/clients")
    })
}

/// Run the scenarios matching `scenarios` (names or `prefix*`) against a fresh target.
fn run_scenarios(scenarios: &str) {
    let bin = scenario_binary();
    let target = Target::start(&[]);
    let mut cmd = Command::new(bin);
    cmd.args(["-bootstrap", &target.bootstrap(), "-broker", target.kind(), "-scenarios", scenarios]);
    cmd.current_dir(go_dir());
    let started = Instant::now();
    let out = run_bounded(cmd, RUN_TIMEOUT);
    eprintln!(
        "[go_clients] {scenarios} against {} ({}) took {:.1}s",
        target.kind(),
        target.bootstrap(),
        started.elapsed().as_secs_f64()
    );
    assert_scenarios(&format!("tests/clients/go/bin/clients -scenarios {scenarios}"), &out, &target, &[]);
}

#[test]
fn franz_go() {
    run_scenarios("franz-*");
}

#[test]
fn sarama() {
    run_scenarios("sarama-*");
}
