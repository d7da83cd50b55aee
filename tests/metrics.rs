//! The admin HTTP listener against a real broker: /metrics in the Prometheus text format
//! moves with real rdkafka traffic (requests, bytes, records, offsets, latency, fdatasync,
//! connections, group lag), /health and /v1/status answer, and bad HTTP gets 400/405/404/431
//! without disturbing the listener.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const N: usize = 2_000;
const VALUE_BYTES: usize = 100;

/// Sends `request` as it is and returns the status code and body of the response.
fn http_raw(addr: &str, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).expect("send request");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read response");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response head in {text:?}"));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad head {head:?}"));
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
    assert_eq!(body.len(), len, "body length matches Content-Length");
    (status, body.to_string())
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_raw(addr, format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
}

type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the text format strictly enough to catch mistakes: every sample belongs to the
/// family declared last by `# TYPE`, and every family is declared once.
fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut families = std::collections::HashSet::new();
    let mut family = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            family = parts.next().unwrap().to_string();
            let kind = parts.next().unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(families.insert(family.clone()), "family {family} declared twice");
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels {line:?}"))),
            None => (series, ""),
        };
        assert!(name.starts_with("sluice_"), "{line}");
        assert!(name.starts_with(&family), "{name} outside its family {family}");
        let mut map = BTreeMap::new();
        if !labels.is_empty() {
            for pair in labels.split("\",") {
                let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line:?}"));
                map.insert(k.to_string(), v.trim_end_matches('"').to_string());
            }
        }
        out.push((name.to_string(), map, value));
    }
    out
}

/// Sum of the samples named `name` whose labels include `with`.
fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, labels, _)| n == name && with.iter().all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, _, v)| v)
        .sum()
}

fn scrape(addr: &str) -> Vec<Sample> {
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    parse_metrics(&body)
}

#[test]
fn metrics_health_and_status_follow_real_traffic() {
    let broker = Broker::start();
    let (bs, admin) = (broker.bootstrap(), broker.admin_addr());

    assert_eq!(http_get(&admin, "/health"), (200, "ready\n".to_string()));
    let (status, body) = http_get(&admin, "/v1/status");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(json["shards"], DEFAULT_CORES);
    assert_eq!(json["partitions_per_shard"].as_array().map(Vec::len), Some(DEFAULT_CORES));
    assert!(json["node_id"].is_i64() && json["uptime_seconds"].is_u64() && json["version"].is_string(), "{json}");

    // Every produce is fdatasync'ed before it is acknowledged.
    let topic = "metered";
    create_topic_with_config(&bs, topic, 1, &[("flush.messages", "1")]);
    let before = scrape(&admin);

    let msgs: Vec<TestMsg> = (0..N).map(|i| TestMsg::value(format!("{i:0width$}", width = VALUE_BYTES))).collect();
    let p = producer(&bs, &[("acks", "all"), ("linger.ms", "5")]);
    produce_ok(&p, topic, &msgs, Duration::from_secs(60));
    let consumed = consume_range(&bs, topic, &[(0, 0, N as i64)], Duration::from_secs(60));
    assert_eq!(consumed[&0].len(), N);

    // A committed offset halfway: the group's lag is the other half.
    let c = consumer(&bs, &[("group.id", "metrics-group")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(N as i64 / 2)).unwrap();
    c.commit(&tpl, CommitMode::Sync).expect("commit");

    let after = scrape(&admin);
    let grew = |name: &str, with: &[(&str, &str)]| sum(&after, name, with) - sum(&before, name, with);

    assert!(grew("sluice_requests_total", &[("api", "Produce")]) >= 1.0);
    assert!(grew("sluice_requests_total", &[("api", "Fetch")]) >= 1.0);
    assert!(grew("sluice_produce_bytes_total", &[]) >= (N * VALUE_BYTES) as f64);
    assert!(grew("sluice_produce_messages_total", &[]) >= N as f64);
    assert!(grew("sluice_fetch_bytes_total", &[]) >= (N * VALUE_BYTES) as f64);
    assert!(grew("sluice_fetch_messages_total", &[]) >= N as f64);
    let partition = [("topic", topic), ("partition", "0")];
    assert_eq!(sum(&after, "sluice_partition_log_end_offset", &partition), N as f64);
    assert_eq!(sum(&after, "sluice_partition_high_watermark", &partition), N as f64);
    assert_eq!(sum(&after, "sluice_partition_log_start_offset", &partition), 0.0);
    assert_eq!(sum(&after, "sluice_partition_segments", &partition), 1.0);
    assert!(grew("sluice_request_latency_seconds_count", &[("api", "Fetch")]) >= 1.0);
    assert!(grew("sluice_request_latency_seconds_count", &[("api", "Produce")]) >= 1.0);
    let produce_inf = sum(&after, "sluice_request_latency_seconds_bucket", &[("api", "Produce"), ("le", "+Inf")]);
    assert_eq!(produce_inf, sum(&after, "sluice_request_latency_seconds_count", &[("api", "Produce")]));
    assert!(grew("sluice_fdatasync_latency_seconds_count", &[]) >= 1.0);
    assert!(sum(&after, "sluice_connections", &[]) >= 1.0, "the producer and consumer are connected");
    assert!(sum(&after, "sluice_connections_accepted_total", &[]) >= 2.0);
    assert!(grew("sluice_cross_shard_messages_sent_total", &[]) >= 1.0);
    assert!(
        sum(&after, "sluice_fetch_cache_hits_total", &[]) + sum(&after, "sluice_fetch_cache_misses_total", &[]) >= 1.0
    );
    assert!(sum(&after, "sluice_consumer_groups", &[]) >= 1.0);
    let group = [("group", "metrics-group"), ("topic", topic), ("partition", "0")];
    assert_eq!(sum(&after, "sluice_group_committed_offset", &group), (N / 2) as f64);
    assert_eq!(sum(&after, "sluice_group_lag", &group), (N - N / 2) as f64);
    assert_eq!(sum(&after, "sluice_ready", &[]), 1.0);
    drop(c);
    drop(p);
}

#[test]
fn bad_http_is_refused_and_the_listener_keeps_serving() {
    let broker = Broker::start();
    let admin = broker.admin_addr();

    assert_eq!(http_raw(&admin, b"GARBAGE\r\n\r\n").0, 400);
    assert_eq!(http_raw(&admin, b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n").0, 400);
    let big = format!("GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(16 * 1024));
    assert_eq!(http_raw(&admin, big.as_bytes()).0, 431);
    // A head that never ends, past the limit, without the blank line.
    let endless = format!("GET /metrics HTTP/1.1\r\nX-Big: {}", "b".repeat(9 * 1024));
    assert_eq!(http_raw(&admin, endless.as_bytes()).0, 431);
    assert_eq!(http_raw(&admin, b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").0, 405);
    assert_eq!(http_get(&admin, "/nope").0, 404);

    // A client that connects and sends nothing holds nothing for long.
    let idle = TcpStream::connect(&admin).unwrap();
    let samples = scrape(&admin);
    assert_eq!(sum(&samples, "sluice_ready", &[]), 1.0);
    assert_eq!(http_get(&admin, "/health").0, 200);
    drop(idle);

    // The Kafka listener is untouched.
    let bs = broker.bootstrap();
    create_topic(&bs, "after-bad-http", 1);
}
