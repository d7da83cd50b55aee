//! Round trips for every compression codec (none, gzip, snappy, lz4, zstd),
//! produced both with rdkafka (`compression.type`) and rskafka (`Compression`),
//! and read back with both clients.

mod common;

use std::time::Duration;

use common::*;
use rskafka::client::partition::Compression;

const RD_MSGS: usize = 3000;
const RS_BATCHES: usize = 20;
const RS_PER_BATCH: usize = 50;

fn rd_messages(codec: &str) -> Vec<TestMsg> {
    let base = now_millis() - 1_000_000;
    (0..RD_MSGS)
        .map(|i| {
            // Mix of highly compressible and pseudo-random payloads.
            let value = if i % 2 == 0 {
                format!("{codec}-compressible-{i}-{}", "abcabc".repeat(i % 100)).into_bytes()
            } else {
                let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                (0..(i % 300))
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect()
            };
            TestMsg {
                key: Some(format!("{codec}-k{i}").into_bytes()),
                value: Some(value),
                headers: if i % 5 == 0 { vec![("codec".to_string(), Some(codec.as_bytes().to_vec()))] } else { vec![] },
                timestamp: Some(base + i as i64),
                partition: Some(0),
            }
        })
        .collect()
}

fn rs_batches(codec: &str) -> Vec<Vec<rskafka::record::Record>> {
    let base = now_millis() - 500_000;
    (0..RS_BATCHES)
        .map(|b| {
            (0..RS_PER_BATCH)
                .map(|j| {
                    let n = b * RS_PER_BATCH + j;
                    let v = format!("rs-{codec}-{n}-{}", "zz".repeat(n % 200)).into_bytes();
                    let k = format!("rs-k{n}").into_bytes();
                    let h_owned = n.to_string().into_bytes();
                    let headers: Vec<(&str, &[u8])> = if n % 3 == 0 { vec![("n", h_owned.as_slice())] } else { vec![] };
                    rs_record(Some(&k), Some(&v), &headers, base + n as i64)
                })
                .collect()
        })
        .collect()
}

fn run_codec(rd_codec: &str, rs_codec: Compression) {
    let broker = Broker::start();
    let bs = broker.bootstrap();
    let topic = format!("comp-{rd_codec}");
    create_topic(&bs, &topic, 1);

    // --- rdkafka produce ---
    let msgs = rd_messages(rd_codec);
    let p = producer(&bs, &[("compression.type", rd_codec), ("linger.ms", "20"), ("batch.num.messages", "500")]);
    let deliveries = produce_ok(&p, &topic, &msgs, Duration::from_secs(120));
    drop(p);
    for (i, d) in deliveries.iter().enumerate() {
        assert_eq!(*d, (0, i as i64), "{rd_codec}: delivery report of message {i}");
    }

    // --- rskafka produce ---
    let batches = rs_batches(rd_codec);
    let rt = runtime();
    rt.block_on(async {
        let client = rs_client(&bs).await;
        let pc = rs_partition(&client, &topic, 0).await;
        let mut next = RD_MSGS as i64;
        for (b, recs) in batches.iter().enumerate() {
            let offsets = within(Duration::from_secs(30), "rskafka produce", pc.produce(recs.clone(), rs_codec))
                .await
                .unwrap_or_else(|e| panic!("{rd_codec}: rskafka produce of batch {b} failed: {e}"));
            let want: Vec<i64> = (next..next + recs.len() as i64).collect();
            assert_eq!(offsets, want, "{rd_codec}: rskafka produce offsets of batch {b}");
            next += recs.len() as i64;
        }
    });
    let rs_flat: Vec<rskafka::record::Record> = batches.into_iter().flatten().collect();
    let total = RD_MSGS as i64 + rs_flat.len() as i64;

    // --- consume everything with rdkafka ---
    let got = consume_range(&bs, &topic, &[(0, 0, total)], Duration::from_secs(120)).remove(&0).unwrap();
    assert_eq!(got.len() as i64, total, "{rd_codec}: rdkafka consumed count");
    assert_contiguous(&got, 0, &format!("{rd_codec} rdkafka consume"));
    for (i, m) in msgs.iter().enumerate() {
        assert!(
            got[i].matches(m),
            "{rd_codec}: rdkafka-produced message {i} differs after rdkafka consume:\nproduced {m:?}\nconsumed {:?}",
            got[i]
        );
    }
    for (j, r) in rs_flat.iter().enumerate() {
        let c = &got[RD_MSGS + j];
        let headers: Vec<(String, Option<Vec<u8>>)> =
            r.headers.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        assert_eq!(
            (&c.key, &c.value, &c.headers, c.timestamp),
            (&r.key, &r.value, &headers, rdkafka::Timestamp::CreateTime(r.timestamp.timestamp_millis())),
            "{rd_codec}: rskafka-produced record {j} differs after rdkafka consume"
        );
    }

    // --- consume everything with rskafka ---
    rt.block_on(async {
        let client = rs_client(&bs).await;
        let pc = rs_partition(&client, &topic, 0).await;
        let recs = rs_fetch_range(&pc, 0, total, Duration::from_secs(120)).await;
        assert_eq!(recs.len() as i64, total, "{rd_codec}: rskafka fetched count");
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.offset, i as i64, "{rd_codec}: rskafka fetch offsets not contiguous");
        }
        for (i, m) in msgs.iter().enumerate() {
            let r = &recs[i].record;
            let headers: Vec<(String, Option<Vec<u8>>)> =
                r.headers.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
            assert_eq!(
                (&r.key, &r.value, &headers, r.timestamp.timestamp_millis()),
                (&m.key, &m.value, &m.headers, m.timestamp.unwrap()),
                "{rd_codec}: rdkafka-produced message {i} differs after rskafka fetch"
            );
        }
        for (j, want) in rs_flat.iter().enumerate() {
            assert_eq!(
                &recs[RD_MSGS + j].record,
                want,
                "{rd_codec}: rskafka-produced record {j} differs after rskafka fetch"
            );
        }
    });
}

#[test]
fn compression_none() {
    run_codec("none", Compression::NoCompression);
}

#[test]
fn compression_gzip() {
    run_codec("gzip", Compression::Gzip);
}

#[test]
fn compression_snappy() {
    run_codec("snappy", Compression::Snappy);
}

#[test]
fn compression_lz4() {
    run_codec("lz4", Compression::Lz4);
}

#[test]
fn compression_zstd() {
    run_codec("zstd", Compression::Zstd);
}
