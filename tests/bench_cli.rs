//! `sluicectl bench produce|consume|e2e` against a real broker, with both clients: the JSON
//! result has the documented fields, message counts match what was asked, `--plot` writes an
//! SVG. Every command runs under a timeout.
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Broker;
use serde_json::Value;

const CMD_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `sluicectl --bootstrap B bench ARGS...`, panics on failure or timeout.
fn bench(broker: &Broker, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluicectl"))
        .arg("--bootstrap")
        .arg(broker.bootstrap())
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn sluicectl");
    let deadline = Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "sluicectl bench {args:?} did not finish within {CMD_TIMEOUT:?}\nstderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "sluicectl bench {args:?} failed with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    stdout
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", path.display()))
}

/// The documented result fields, and `messages` == `want`.
fn check_result(v: &Value, want: u64, with_latency: bool, what: &str) {
    assert_eq!(v["messages"].as_u64(), Some(want), "{what}: messages in {v}");
    for k in ["messages_per_sec", "bytes_per_sec", "duration_sec"] {
        let x = v[k].as_f64().unwrap_or_else(|| panic!("{what}: {k} missing in {v}"));
        assert!(x > 0.0, "{what}: {k} = {x}");
    }
    assert!(v["config"].is_object(), "{what}: config missing");
    for k in ["topic", "partitions", "producers", "consumers", "message_size", "batch_messages", "acks", "client"] {
        assert!(!v["config"][k].is_null(), "{what}: config.{k} missing in {v}");
    }
    if with_latency {
        let l = &v["latency_ms"];
        let mut prev = 0.0;
        for k in ["p50", "p90", "p99", "p999", "p9999", "max"] {
            let x = l[k].as_f64().unwrap_or_else(|| panic!("{what}: latency_ms.{k} missing in {v}"));
            assert!(x > 0.0 && x >= prev, "{what}: latency_ms.{k} = {x} (previous {prev})");
            prev = x;
        }
    }
}

fn run_client(client: &str) {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let topic = format!("bench-{client}");
    let produce_json = dir.path().join("produce.json");
    let svg = dir.path().join("latency.svg");
    let common = ["--topic", &topic, "--partitions", "2", "--client", client, "--messages", "20000"];

    let mut args = vec!["produce"];
    args.extend(common);
    args.extend(["--message-size", "100", "--batch-messages", "500", "--json", produce_json.to_str().unwrap()]);
    args.extend(["--plot", svg.to_str().unwrap()]);
    let stdout = bench(&broker, &args);
    assert!(stdout.contains("msgs/s"), "summary on stdout: {stdout}");
    let v = read_json(&produce_json);
    check_result(&v, 20000, true, "produce");
    assert_eq!(v["config"]["client"], client);
    let svg_text = std::fs::read_to_string(&svg).expect("--plot wrote the SVG");
    assert!(svg_text.starts_with("<svg") && svg_text.contains("<polyline") && svg_text.trim_end().ends_with("</svg>"));

    // What was produced is in the topic: the broker's offsets agree.
    let total: i64 = (0..2).map(|p| common::watermarks(&broker.bootstrap(), &topic, p).1).sum();
    assert_eq!(total, 20000, "high watermarks after producing 20000 messages");

    let consume_json = dir.path().join("consume.json");
    let mut args = vec!["consume"];
    args.extend(common);
    args.extend(["--json", consume_json.to_str().unwrap()]);
    bench(&broker, &args);
    check_result(&read_json(&consume_json), 20000, false, "consume");

    let e2e_json = dir.path().join("e2e.json");
    let e2e_topic = format!("bench-e2e-{client}");
    let args = [
        "e2e",
        "--topic",
        &e2e_topic,
        "--partitions",
        "2",
        "--client",
        client,
        "--messages",
        "20000",
        "--rate",
        "40000",
        "--batch-messages",
        "100",
        "--acks",
        "all",
        "--json",
        e2e_json.to_str().unwrap(),
    ];
    bench(&broker, &args);
    let v = read_json(&e2e_json);
    check_result(&v, 20000, true, "e2e");
    assert_eq!(v["config"]["acks"], "all");
    // Exactly the e2e messages were produced: nothing before the consumer's start offsets.
    let total: i64 = (0..2).map(|p| common::watermarks(&broker.bootstrap(), &e2e_topic, p).1).sum();
    assert_eq!(total, 20000, "high watermarks after e2e of 20000 messages");
}

#[test]
fn bench_native_client() {
    run_client("native");
}

#[test]
fn bench_librdkafka_client() {
    run_client("librdkafka");
}

#[test]
fn bench_duration_warmup_and_json_to_stdout() {
    let broker = Broker::start();
    let out = bench(&broker, &["produce", "--duration", "1", "--warmup", "0.5", "--batch-messages", "100", "--json"]);
    let v: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("--json without a file prints JSON: {e}\n{out}"));
    assert!(v["messages"].as_u64().unwrap() > 0);
    let d = v["duration_sec"].as_f64().unwrap();
    assert!(d > 0.5 && d < 10.0, "measured duration {d} excludes the warmup");
    assert_eq!(v["config"]["warmup"].as_f64(), Some(0.5));
}

#[test]
fn bench_rejects_bad_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluicectl"))
        .args(["--bootstrap", "127.0.0.1:1", "bench", "produce", "--compression", "zstd"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("librdkafka"), "{}", String::from_utf8_lossy(&out.stderr));
}
