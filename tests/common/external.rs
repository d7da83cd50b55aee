//! Harness for the client-family tests (Java, Kafka's tools, Streams, Connect, Go,
//! KafkaJS): the broker they talk to, and bounded runs of their programs.
//!
//! The broker is Sluice, started here, unless `SLUICE_TEST_BOOTSTRAP=host:port` names
//! another one: Apache Kafka started by `scripts/kafka-reference.sh start`, which is how
//! the tests themselves are checked (a test that fails against Kafka is a wrong test).
//! Both are configured alike: `SLUICE_FAMILY_OVERRIDES` below is what the reference
//! script writes into Kafka's `server.properties` too.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Broker;

/// Broker settings every client-family test runs with, on Sluice and on Kafka alike
/// (scripts/kafka-reference.sh writes the same keys). A new group's first rebalance
/// does not wait for more members, so the tests do not spend 3 s on every group.
pub const FAMILY_OVERRIDES: &[(&str, &str)] =
    &[("group.initial.rebalance.delay.ms", "0"), ("num.partitions", "1"), ("auto.create.topics.enable", "true")];

/// The environment variable that points the client-family tests at another broker.
pub const EXTERNAL_BOOTSTRAP_ENV: &str = "SLUICE_TEST_BOOTSTRAP";

/// The broker under test.
pub enum Target {
    Sluice(Broker),
    /// Another broker (Apache Kafka), already running at this bootstrap address.
    External(String),
}

impl Target {
    /// Sluice with [`FAMILY_OVERRIDES`] plus `extra`, or the external broker if
    /// `SLUICE_TEST_BOOTSTRAP` is set (then `extra` must already be its configuration).
    pub fn start(extra: &[(&str, &str)]) -> Target {
        if let Ok(b) = std::env::var(EXTERNAL_BOOTSTRAP_ENV) {
            if !b.trim().is_empty() {
                eprintln!("[harness] using the external broker at {b} ({EXTERNAL_BOOTSTRAP_ENV})");
                return Target::External(b.trim().to_string());
            }
        }
        let mut overrides: Vec<(&str, &str)> = FAMILY_OVERRIDES.to_vec();
        for (k, v) in extra {
            overrides.retain(|(ok, _)| ok != k);
            overrides.push((k, v));
        }
        Target::Sluice(Broker::start_with(&overrides, super::DEFAULT_CORES))
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Target::Sluice(b) => b.bootstrap(),
            Target::External(b) => b.clone(),
        }
    }

    /// "sluice" or "kafka": passed to the programs, which may differ only where the
    /// README says Sluice differs.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Sluice(_) => "sluice",
            Target::External(_) => "kafka",
        }
    }

    pub fn log_tail(&self, n: usize) -> String {
        match self {
            Target::Sluice(b) => b.log_tail(n),
            Target::External(b) => format!("(external broker at {b}: its log is not read here)"),
        }
    }

    pub fn broker(&mut self) -> Option<&mut Broker> {
        match self {
            Target::Sluice(b) => Some(b),
            Target::External(_) => None,
        }
    }
}

/// A unique suffix for topic and group names, so that tests sharing an external broker
/// (or reruns against it) never see each other's data.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{}-{nanos:x}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// What a bounded program run printed.
pub struct RunOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl RunOutput {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    /// Both streams, for a failure message.
    pub fn describe(&self, what: &str) -> String {
        format!(
            "{what}: {}{}\n---- stdout ----\n{}\n---- stderr ----\n{}",
            self.status,
            if self.timed_out { " (timed out and killed)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

/// Run `cmd` in its own process group with no stdin; past `timeout` the whole group
/// (the program and anything it started) is SIGKILLed. Never hangs.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> RunOutput {
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait().expect("waiting for a test program") {
            Some(s) => break s,
            None if start.elapsed() > timeout => {
                timed_out = true;
                kill_group(child.id());
                let _ = child.kill();
                break child.wait().expect("waiting for a killed test program");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    // Anything the program left running in its group goes too.
    kill_group(child.id());
    RunOutput { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default(), timed_out }
}

fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run a build step (Maven, `go build`, `npm ci`) once; panics with its output if it
/// fails. The build's own outputs are ignored by git (`target/` dirs).
pub fn build_step(what: &str, mut cmd: Command, dir: &Path, timeout: Duration) {
    cmd.current_dir(dir);
    let out = run_bounded(cmd, timeout);
    assert!(
        out.success(),
        "{}\nInstall the test dependencies with `bash scripts/install-test-deps.sh`.",
        out.describe(&format!("building {what} failed"))
    );
}

/// Summary lines of a test program: `PASS name`, `FAIL name: why`, `SKIP name: why`.
/// Returns the failures; panics if the program ran no scenario at all.
pub fn scenario_failures(out: &RunOutput) -> Vec<String> {
    let mut passed = 0;
    let mut failed = Vec::new();
    for line in out.stdout.lines() {
        if line.starts_with("PASS ") {
            passed += 1;
        } else if line.starts_with("FAIL ") {
            failed.push(line.to_string());
        }
    }
    assert!(passed + failed.len() > 0, "{}", out.describe("the program reported no scenario"));
    failed
}

/// Builds the Maven project in `tests/clients/<family>` offline (`mvn -o -q -B package`;
/// its dependencies come from `install.sh`) and checks that `expect` (paths inside it)
/// exist afterwards. A missing JDK, Maven or artifact is an error naming `install_hint`.
/// Callers keep the result in a `OnceLock`, so each test binary builds once.
pub fn maven_build(family: &str, expect: &[&str], install_hint: &str) -> Result<(), String> {
    for (tool, arg) in [("java", "-version"), ("mvn", "-v")] {
        match Command::new(tool).arg(arg).stdin(Stdio::null()).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                return Err(format!(
                    "`{tool} {arg}` failed ({}): {}; {install_hint}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
            Err(e) => return Err(format!("cannot run `{tool}` ({e}); {install_hint}")),
        }
    }
    let dir = repo_root().join("tests/clients").join(family);
    let t0 = Instant::now();
    let mut mvn = Command::new("mvn");
    mvn.args(["-o", "-q", "-B", "package"]).current_dir(&dir);
    let out = run_bounded(mvn, Duration::from_secs(300));
    if !out.success() {
        return Err(format!(
            "{}\n(an offline build: a missing artifact means the dependencies are not installed; {install_hint})",
            out.describe(&format!("building tests/clients/{family} (mvn -o -q -B package) failed"))
        ));
    }
    for f in expect {
        if !dir.join(f).is_file() {
            return Err(format!("tests/clients/{family}/{f} is missing after the build; {install_hint}"));
        }
    }
    eprintln!("[harness] built tests/clients/{family} in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// A `java` command for `main` of the Java client program (`tests/clients/java`,
/// kafka-clients 4.4) with a heap of `heap` (e.g. "256m"); the program is built once per
/// test binary, and a failed build fails the caller. Short-lived JVMs on 2 cores start
/// fastest with the C1 compiler only and the serial collector.
pub fn java_client(main: &str, heap: &str) -> Command {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        maven_build(
            "java",
            &["target/sluice-java-clients.jar", "target/lib/kafka-clients-4.4.0.jar"],
            "install the Java client tests' dependencies (a JDK 17+, Maven, the kafka-clients jars in ~/.m2) with \
             `bash scripts/install-test-deps.sh`",
        )
    });
    built.as_ref().unwrap_or_else(|e| panic!("{e}"));
    let mut java = Command::new("java");
    java.current_dir(repo_root().join("tests/clients/java"))
        .args(["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"])
        .arg(format!("-Xmx{heap}"))
        .args(["-cp", "target/sluice-java-clients.jar:target/lib/*", main]);
    java
}

/// Prints a family program's output, then panics with the failures, the program's output
/// and the broker's log tail if any scenario failed, one of `expected` (if given) got no
/// verdict, or the program did not exit cleanly.
pub fn assert_scenarios(what: &str, out: &RunOutput, target: &Target, expected: &[&str]) {
    println!("---- {what}: stdout ----\n{}", out.stdout.trim_end());
    println!("---- {what}: stderr ----\n{}", out.stderr.trim_end());
    let failures = scenario_failures(out);
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|s| !out.stdout.lines().any(|l| l == format!("PASS {s}") || l.starts_with(&format!("FAIL {s}:"))))
        .collect();
    if !failures.is_empty() || !missing.is_empty() || !out.success() {
        panic!(
            "{what}: {} scenario(s) failed{}:\n{}\n\n{}\n---- broker log (tail) ----\n{}",
            failures.len(),
            if missing.is_empty() { String::new() } else { format!(", no verdict for {missing:?}") },
            failures.join("\n"),
            out.describe(what),
            target.log_tail(150)
        );
    }
}
