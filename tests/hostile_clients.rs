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
