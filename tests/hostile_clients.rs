//! Garbage on the wire: each bad request gets the connection closed (as Kafka does for
//! unparseable frames), and the broker keeps serving well-behaved clients afterwards.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends raw bytes on a fresh connection; returns what came back before the broker closed
/// it (or the read timed out).
fn send_raw(bootstrap: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(bootstrap).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Request header v1: api key, version, correlation id, client id "x".
fn header(api: i16, version: i16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&api.to_be_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&7i32.to_be_bytes());
    h.extend_from_slice(&1i16.to_be_bytes());
    h.push(b'x');
    h
}

fn assert_healthy(broker: &mut common::Broker, after: &str) {
    assert!(broker.is_running(), "broker died after {after}");
    let md = common::metadata(&broker.bootstrap(), None);
    assert_eq!(md.brokers.len(), 1, "metadata after {after}");
}

#[test]
fn bad_frames_close_the_connection_and_harm_nobody() {
    let mut broker = common::Broker::start();
    let b = broker.bootstrap();
    common::create_topic(&b, "ok", 1);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a 2 GiB frame size", 0x7fff_fff0i32.to_be_bytes().to_vec()),
        ("a negative frame size", (-5i32).to_be_bytes().to_vec()),
        ("a frame shorter than a header", frame(&[0, 3])),
        ("random garbage", (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
        ("an unknown API key", frame(&header(999, 0))),
        ("an unsupported Produce version", frame(&header(0, 2))),
        ("an array count of 2^31-1 in a tiny request", {
            let mut body = header(3, 1);
            body.extend_from_slice(&i32::MAX.to_be_bytes());
            frame(&body)
        }),
        ("a compact array count of 2^32-2 (flexible Metadata v9)", {
            let mut body = header(3, 9);
            body.push(0); // header tagged fields
            body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
            frame(&body)
        }),
        ("a string length past the frame end", {
            let mut body = header(19, 0); // CreateTopics v0
            body.extend_from_slice(&1i32.to_be_bytes());
            body.extend_from_slice(&30000i16.to_be_bytes());
            body.extend_from_slice(b"short");
            frame(&body)
        }),
        ("a truncated frame, then close", {
            let mut f = frame(&header(3, 1));
            f.truncate(8);
            f
        }),
    ];
    for (what, bytes) in &cases {
        let reply = send_raw(&b, bytes);
        assert!(reply.is_empty(), "{what}: expected the connection to be closed, got {} bytes", reply.len());
        assert_healthy(&mut broker, what);
    }

    // A produce whose batch claims a billion records (valid CRC) is refused with
    // CORRUPT_MESSAGE, and nothing is appended.
    let mut batch = sluice::protocol::batch::build_batch(0, 3, 10, 0);
    {
        let h = sluice::protocol::batch::BatchHeader::read_mut(&mut batch).unwrap();
        h.records_count.set(1_000_000_000);
        h.last_offset_delta.set(999_999_999);
    }
    let crc = sluice::protocol::batch::compute_crc(&batch);
    sluice::protocol::batch::BatchHeader::read_mut(&mut batch).unwrap().crc.set(crc);
    let code = produce_raw(&b, "ok", batch);
    assert_eq!(code, 2, "CORRUPT_MESSAGE for a batch claiming a billion records");
    assert_eq!(common::watermarks(&b, "ok", 0), (0, 0), "nothing appended");
    assert_healthy(&mut broker, "everything");
}

/// Sends one Produce v3 (acks=1) with `records` to partition 0; returns its error code.
fn produce_raw(bootstrap: &str, topic: &str, records: Vec<u8>) -> i16 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 5000;
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(bytes::Bytes::from(records));
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_string(topic.to_string()));
    td.partition_data = vec![pd];
    req.topic_data = vec![td];
    let mut header = RequestHeader::default();
    header.request_api_key = 0;
    header.request_api_version = 3;
    header.correlation_id = 1;
    let mut body = bytes::BytesMut::new();
    header.encode(&mut body, 1).unwrap();
    req.encode(&mut body, 3).unwrap();
    let mut s = TcpStream::connect(bootstrap).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&frame(&body)).unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("a Produce response");
    let mut reply = vec![0u8; 4 + i32::from_be_bytes(size) as usize];
    reply[..4].copy_from_slice(&size);
    s.read_exact(&mut reply[4..]).expect("the whole response");
    let mut resp = bytes::Bytes::copy_from_slice(&reply[8..]);
    let resp = ProduceResponse::decode(&mut resp, 3).unwrap();
    resp.responses[0].partition_responses[0].error_code
}

/// A connection from `source` (any 127.x address: loopback answers them all).
fn connect_from(source: &str, bootstrap: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&format!("{source}:0").parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    s.connect(&bootstrap.parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Whether the connection answers an ApiVersions request (false: the broker closed it).
fn answers(s: &mut TcpStream) -> bool {
    if s.write_all(&frame(&header(18, 0))).is_err() {
        return false;
    }
    let mut size = [0u8; 4];
    if s.read_exact(&mut size).is_err() {
        return false;
    }
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).is_ok()
}

#[test]
fn max_connections_and_max_connections_per_ip_close_the_extra_connections() {
    let mut broker = common::Broker::start_with(&[("max.connections", "8"), ("max.connections.per.ip", "5")], 2);
    let b = broker.bootstrap();
    // Let the harness's readiness probes (connected and closed at start) be counted out.
    std::thread::sleep(Duration::from_millis(500));
    let mut from_1: Vec<TcpStream> = (0..5).map(|_| connect_from("127.0.0.1", &b)).collect();
    for s in &mut from_1 {
        assert!(answers(s), "one of the first five connections from 127.0.0.1 was refused");
    }
    let mut sixth = connect_from("127.0.0.1", &b);
    assert!(!answers(&mut sixth), "a sixth connection from 127.0.0.1 must be closed (max.connections.per.ip=5)");
    let mut from_2: Vec<TcpStream> = (0..3).map(|_| connect_from("127.0.0.2", &b)).collect();
    for s in &mut from_2 {
        assert!(answers(s), "connections from another address count separately per ip");
    }
    let mut ninth = connect_from("127.0.0.3", &b);
    assert!(!answers(&mut ninth), "a ninth connection must be closed (max.connections=8)");
    // A place given back is a place to take.
    drop(from_1.pop());
    common::wait_until(Duration::from_secs(10), "a freed connection place", || {
        let mut s = connect_from("127.0.0.3", &b);
        answers(&mut s).then_some(())
    });
    assert!(broker.log_tail(200).contains("connection refused"), "refusals are logged:\n{}", broker.log_tail(20));
    drop(from_1);
    drop(from_2);
    assert_healthy(&mut broker, "the connection limits");
}

/// A connection that has announced a Produce request frame of `size` bytes and sent only
/// its size and header; writes to it time out after `write_timeout`.
fn announce_produce(bootstrap: &str, size: i32, write_timeout: Duration) -> TcpStream {
    let mut s = TcpStream::connect(bootstrap).unwrap();
    s.set_write_timeout(Some(write_timeout)).unwrap();
    let mut f = size.to_be_bytes().to_vec();
    f.extend_from_slice(&header(0, 3));
    s.write_all(&f).unwrap();
    s
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kb * 1024
}

/// Thousands of idle connections, clients that never read their responses, clients that
/// announce 100 MiB requests and then stall, then a burst of producers: the broker keeps
/// serving a well-behaved client throughout, and its memory stays within its budgets (RSS
/// measured).
#[test]
fn idle_stalled_and_never_reading_clients_cost_bounded_memory() {
    let mut broker = common::Broker::start_with(
        &[("queued.max.request.bytes", "134217728"), ("sluice.fetch.cache.bytes", "33554432")],
        2,
    );
    let b = broker.bootstrap();
    common::create_topic(&b, "mem", 1);
    let p = common::producer(&b, &[]);
    let value = vec![b'm'; 1000];
    let msgs: Vec<common::TestMsg> = (0..2000).map(|_| common::TestMsg::value(value.clone())).collect();
    common::produce_ok(&p, "mem", &msgs, Duration::from_secs(30));
    let pid = broker.pid().unwrap();
    let baseline = rss_bytes(pid);

    // 3000 idle connections.
    let idle: Vec<TcpStream> = (0..3000).map(|_| TcpStream::connect(&b).expect("idle connect")).collect();
    // 20 clients that announce a 100 MiB request, send 30 MiB of it (600 MiB in all), and
    // stall. Without a bound the broker would hold all 600 MiB.
    let stalled: Vec<std::thread::JoinHandle<TcpStream>> = (0..20)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                let mut s = announce_produce(&b, 100 << 20, Duration::from_secs(3));
                let chunk = vec![0u8; 1 << 20];
                for _ in 0..30 {
                    if s.write_all(&chunk).is_err() {
                        break; // the broker stopped reading: its budget is taken
                    }
                }
                s
            })
        })
        .collect();
    let stalled: Vec<TcpStream> = stalled.into_iter().map(|h| h.join().unwrap()).collect();
    // 20 clients that pipeline Fetch requests for 1 MB each and never read a response.
    let fetch = {
        let mut body = header(1, 4);
        body.extend_from_slice(&(-1i32).to_be_bytes()); // replica id
        body.extend_from_slice(&0i32.to_be_bytes()); // max wait
        body.extend_from_slice(&1i32.to_be_bytes()); // min bytes
        body.extend_from_slice(&(1i32 << 20).to_be_bytes()); // max bytes
        body.push(0); // isolation level
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&3i16.to_be_bytes());
        body.extend_from_slice(b"mem");
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes()); // partition
        body.extend_from_slice(&0i64.to_be_bytes()); // fetch offset
        body.extend_from_slice(&(1i32 << 20).to_be_bytes()); // partition max bytes
        frame(&body)
    };
    let deaf: Vec<std::thread::JoinHandle<TcpStream>> = (0..20)
        .map(|_| {
            let (b, fetch) = (b.clone(), fetch.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&b).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
                // Until the broker stops reading (the socket buffers fill up).
                for _ in 0..5000 {
                    if s.write_all(&fetch).is_err() {
                        break;
                    }
                }
                s
            })
        })
        .collect();
    let deaf: Vec<TcpStream> = deaf.into_iter().map(|h| h.join().unwrap()).collect();

    // A well-behaved client is served meanwhile: its requests are small (under 64 KiB), and
    // the stalled ones cannot take the small requests' share of the budget. (A large
    // request would wait for the stalled frames to time out: see README.)
    let got = common::consume_range(&b, "mem", &[(0, 0, 2000)], Duration::from_secs(20)).remove(&0).unwrap();
    assert_eq!(got.len(), 2000);
    common::produce_ok(&p, "mem", &msgs[..40], Duration::from_secs(20));
    let loaded = rss_bytes(pid);
    // The budgets: request frames (128 MiB here) and the two shards' caches (32 MiB each);
    // connections themselves must be cheap (well under 64 KiB each).
    let budget = (128u64 << 20) + (64 << 20);
    let per_connection = 64u64 << 10;
    let bound = baseline + budget + 3040 * per_connection;
    assert!(loaded < bound, "broker RSS grew from {} MiB to {} MiB", baseline >> 20, loaded >> 20);

    // The stalled clients give up; then a burst of producers: 16 at once, 25 requests of
    // 0.9 MB each (360 MB in all).
    drop(stalled);
    let burst: Vec<std::thread::JoinHandle<()>> = (0..16)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let batch = sluice::protocol::batch::build_batch(0, 900, 1000, i);
                    assert_eq!(produce_raw(&b, "mem", batch), 0, "a produce in the burst failed");
                }
            })
        })
        .collect();
    for h in burst {
        h.join().unwrap();
    }
    let after_burst = rss_bytes(pid);
    eprintln!(
        "[memory] broker RSS: {} MiB at rest, {} MiB with 3000 idle, 20 stalled and 20 deaf clients, {} MiB after a 360 MB produce burst",
        baseline >> 20,
        loaded >> 20,
        after_burst >> 20
    );
    assert!(after_burst < bound, "broker RSS grew from {} MiB to {} MiB", baseline >> 20, after_burst >> 20);
    drop((idle, deaf));
    assert_healthy(&mut broker, "idle, stalled and deaf clients and a produce burst");
}

/// Clients that announce large requests, send part of them and vanish: the budget their
/// frames held comes back as soon as their connections close, not after the stall
/// timeout, however they interleaved (taking a frame's budget piecemeal deadlocked here:
/// every frame held part of the pool and waited for more, none read its socket, so none
/// saw its client go).
#[test]
fn clients_that_vanish_mid_request_give_their_budget_back_at_once() {
    // 16 MiB in all: 14 MiB for large frames on the one shard.
    let mut broker = common::Broker::start_with(&[("queued.max.request.bytes", "16777216")], 1);
    let b = broker.bootstrap();
    common::create_topic(&b, "vanish", 1);
    // Six clients announce 10 MiB requests and send them 1 MiB at a time, in step with each
    // other, so the broker reads their frames side by side; they stop after 8 MiB.
    let in_step = std::sync::Arc::new(std::sync::Barrier::new(6));
    let senders: Vec<std::thread::JoinHandle<TcpStream>> = (0..6)
        .map(|_| {
            let (b, in_step) = (b.clone(), in_step.clone());
            std::thread::spawn(move || {
                let mut s = announce_produce(&b, 10 << 20, Duration::from_secs(1));
                let chunk = vec![0u8; 1 << 20];
                let mut writing = true;
                for _ in 0..8 {
                    // Once the broker stops reading, the write times out; the others still
                    // wait for this one at the barrier.
                    writing = writing && s.write_all(&chunk).is_ok();
                    in_step.wait();
                    std::thread::sleep(Duration::from_millis(100));
                }
                s
            })
        })
        .collect();
    let senders: Vec<TcpStream> = senders.into_iter().map(|h| h.join().unwrap()).collect();
    drop(senders);
    // Well inside the 30 s stall timeout (produce_raw waits 10 s for its answer).
    let started = std::time::Instant::now();
    let batch = sluice::protocol::batch::build_batch(0, 900, 1000, 0);
    assert_eq!(produce_raw(&b, "vanish", batch), 0);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_healthy(&mut broker, "clients vanishing mid-request");
}
