//! Cross-client compatibility: runs the pytest suite in `tests/clients/`
//! (kafka-python, confluent-kafka/librdkafka and kcat) against the `sluice`
//! binary built by cargo.
//!
//! The Python packages and kcat are installed by `bash scripts/install-test-deps.sh`.
//! Missing dependencies make this test FAIL (never skip) so CI cannot go green
//! without actually exercising the clients.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const OVERALL_TIMEOUT: Duration = Duration::from_secs(300);
const INSTALL_HINT: &str = "run `bash scripts/install-test-deps.sh` (apt kcat + pip -r tests/clients/requirements.txt)";

fn check_deps() {
    let py =
        Command::new("python3").args(["-c", "import kafka, confluent_kafka, pytest"]).stdin(Stdio::null()).output();
    match py {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "python client test dependencies are missing ({}); {}",
            String::from_utf8_lossy(&out.stderr).trim(),
            INSTALL_HINT
        ),
        Err(e) => panic!("cannot run python3 ({e}); {INSTALL_HINT}"),
    }
    let kcat = Command::new("kcat").arg("-V").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
    if kcat.is_err() {
        panic!("`kcat` is not on PATH; {INSTALL_HINT}");
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

#[test]
fn python_clients() {
    check_deps();

    let manifest_dir = env!("CARGO_MANIFEST_DIR");
    let mut child = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/clients"])
        .current_dir(manifest_dir)
        .env("SLUICE_BIN", env!("CARGO_BIN_EXE_sluice"))
        // Keep the work tree clean (no __pycache__ next to the tests).
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group, so a timeout kills pytest *and* the broker it spawned.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("failed to spawn python3 -m pytest: {e}; {INSTALL_HINT}"));

    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());

    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait().expect("waiting for pytest") {
            Some(status) => break status,
            None if start.elapsed() > OVERALL_TIMEOUT => {
                timed_out = true;
                let pgid = format!("-{}", child.id());
                let _ = Command::new("kill").args(["-KILL", "--", &pgid]).status();
                let _ = child.kill();
                break child.wait().expect("waiting for killed pytest");
            }
            None => thread::sleep(Duration::from_millis(100)),
        }
    };

    let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    println!("---- pytest stdout ----\n{stdout}");
    if !stderr.trim().is_empty() {
        println!("---- pytest stderr ----\n{stderr}");
    }

    assert!(!timed_out, "python client tests did not finish within {OVERALL_TIMEOUT:?} and were killed");
    assert!(status.success(), "python client tests failed ({status}); see pytest output above");
}
