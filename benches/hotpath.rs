//! Micro-benchmarks of the broker's per-request hot path beyond batch validation
//! (`benches/batch.rs`): timestamp patching, the in-memory part of a segment append,
//! index lookups, Produce request decoding and Fetch response encoding (kafka-protocol's,
//! which copies the records, and the broker's hand-framed one, which does not).
use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchResponse, ProduceRequest, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice::protocol::batch::{build_batch, set_base_offset, set_log_append_time};
use sluice::protocol::fetch_response::{self, PartitionOut, TopicOut};
use sluice::protocol::record_set::RecordSet;
use sluice::storage::index::{OffsetIndex, TimeIndex};

const TS: i64 = 1_700_000_000_000;

fn patching(c: &mut Criterion) {
    let batch = build_batch(0, 1000, 100, TS);
    let mut g = c.benchmark_group("patch");
    g.throughput(Throughput::Bytes(batch.len() as u64));
    let mut b1 = batch.clone();
    g.bench_function("set_base_offset", |b| b.iter(|| set_base_offset(black_box(&mut b1), black_box(7))));
    let mut b2 = batch.clone();
    // Rewrites the header and recomputes the CRC over the whole 1000 x 100 B batch.
    g.bench_function("set_log_append_time_1000x100B", |b| {
        b.iter(|| set_log_append_time(black_box(&mut b2), black_box(TS + 1)))
    });
    g.finish();
}

/// The in-memory work of appending one batch to the active segment, as
/// `PartitionLog::append` does it: copy the request's records into an owned buffer, patch
/// the base offset, index it, append it to the segment's pending write buffer.
fn segment_append(c: &mut Criterion) {
    let batch = build_batch(0, 1000, 100, TS);
    let mut g = c.benchmark_group("segment_append");
    g.throughput(Throughput::Bytes(batch.len() as u64));
    // Pending buffer already allocated and faulted in: the copies and index pushes only.
    let cap = 32 << 20;
    let mut pending: Vec<u8> = vec![0u8; cap];
    pending.clear();
    let (mut index, mut timeindex, mut next) = (OffsetIndex::default(), TimeIndex::default(), 0u64);
    g.bench_function("copy_patch_index_append_1000x100B", |b| {
        b.iter(|| {
            if pending.len() + batch.len() > cap {
                pending.clear();
                (index, timeindex, next) = (OffsetIndex::default(), TimeIndex::default(), 0);
            }
            let position = pending.len() as u32;
            let mut owned = BytesMut::from(&batch[..]);
            set_base_offset(&mut owned, next as i64);
            index.push(next as u32, position);
            timeindex.push(TS + next as i64, next as u32 + 999);
            pending.extend_from_slice(&owned);
            next += 1000;
            black_box(pending.len())
        })
    });
    // The same, but the pending buffer starts empty for every 8 batches, as it does after
    // each `mem::take` by the segment writer: includes the Vec's growth (realloc + copy).
    g.throughput(Throughput::Bytes(8 * batch.len() as u64));
    g.bench_function("8_batches_into_fresh_vec", |b| {
        b.iter(|| {
            let mut fresh: Vec<u8> = Vec::new();
            for i in 0..8u64 {
                let mut owned = BytesMut::from(&batch[..]);
                set_base_offset(&mut owned, (i * 1000) as i64);
                fresh.extend_from_slice(&owned);
            }
            black_box(fresh.len())
        })
    });
    g.finish();
}

fn index_lookup(c: &mut Criterion) {
    let mut oi = OffsetIndex::default();
    let mut ti = TimeIndex::default();
    for i in 0..100_000u32 {
        oi.push(i * 1000, i * 4096 + 1);
        ti.push(TS + i as i64 * 10, i * 1000 + 999);
    }
    assert_eq!(oi.len(), 100_000);
    let mut g = c.benchmark_group("index_lookup_100k");
    let mut k = 0u32;
    g.bench_function("offset_index", |b| {
        b.iter(|| {
            k = k.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            oi.lookup(black_box(k % 100_000_000))
        })
    });
    let mut t = 0u64;
    g.bench_function("time_index", |b| {
        b.iter(|| {
            t = t.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ti.lookup(black_box(TS + (t % 1_000_000) as i64))
        })
    });
    g.finish();
}

fn produce_decode(c: &mut Criterion) {
    let batch = Bytes::from(build_batch(0, 1000, 100, TS));
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(batch.clone());
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_static_str("bench-topic"));
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![td];
    let mut g = c.benchmark_group("produce_request");
    g.throughput(Throughput::Bytes(batch.len() as u64));
    for version in [7i16, 9] {
        let mut buf = BytesMut::new();
        req.encode(&mut buf, version).unwrap();
        let encoded = buf.freeze();
        g.bench_function(format!("decode_v{version}_1000x100B"), |b| {
            b.iter(|| {
                let mut bytes = encoded.clone();
                ProduceRequest::decode(black_box(&mut bytes), version).unwrap()
            })
        });
    }
    g.finish();
}

fn fetch_encode(c: &mut Criterion) {
    let records = Bytes::from(vec![0x5au8; 1 << 20]);
    let mut pd = PartitionData::default();
    pd.partition_index = 0;
    pd.high_watermark = 1_000_000;
    pd.last_stable_offset = 1_000_000;
    pd.log_start_offset = 0;
    pd.preferred_read_replica = BrokerId(-1);
    pd.records = Some(records.clone());
    let mut tr = FetchableTopicResponse::default();
    tr.topic = TopicName(StrBytes::from_static_str("bench-topic"));
    tr.partitions = vec![pd];
    let mut resp = FetchResponse::default();
    resp.responses = vec![tr];
    let mut g = c.benchmark_group("fetch_response");
    g.throughput(Throughput::Bytes(records.len() as u64));
    for version in [11i16, 12] {
        g.bench_function(format!("encode_v{version}_1MiB"), |b| {
            let mut buf = BytesMut::with_capacity(2 << 20);
            b.iter(|| {
                buf.clear();
                let size = resp.compute_size(version).unwrap();
                resp.encode(&mut buf, version).unwrap();
                black_box((size, buf.len()))
            })
        });
        // What the broker sends: the frame built around ten cached 105 KiB batches,
        // which are referenced, not copied.
        let mut set = RecordSet::new();
        for chunk in records.chunks(records.len() / 10 + 1) {
            set.push(records.slice_ref(chunk));
        }
        g.bench_function(format!("hand_framed_v{version}_1MiB_10_batches"), |b| {
            b.iter(|| {
                let topics = [TopicOut {
                    name: "bench-topic",
                    partitions: vec![PartitionOut {
                        partition_index: 0,
                        error_code: 0,
                        high_watermark: 1_000_000,
                        last_stable_offset: 1_000_000,
                        log_start_offset: 0,
                        records: Some(set.clone()),
                        diverging_epoch: None,
                        aborted: Vec::new(),
                    }],
                }];
                black_box(fetch_response::encode(version, 1, 0, &topics))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, patching, segment_append, index_lookup, produce_decode, fetch_encode);
criterion_main!(benches);
