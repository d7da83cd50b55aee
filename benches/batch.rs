//! Micro-benchmarks of the produce hot path's per-batch work: validation (CRC32C over the
//! batch) and in-place offset patching.
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

fn encoded_batch(records: usize, value_bytes: usize) -> Vec<u8> {
    let recs: Vec<Record> = (0..records)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(bytes::Bytes::from(vec![b'x'; value_bytes])),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &recs, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .unwrap();
    buf.to_vec()
}

fn bench(c: &mut Criterion) {
    let batch = encoded_batch(1000, 100);
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Bytes(batch.len() as u64));
    g.bench_function("validate_1000x100B", |b| {
        b.iter(|| sluice::protocol::batch::validate(black_box(&batch), usize::MAX).unwrap())
    });
    let mut patched = batch.clone();
    g.bench_function("set_base_offset", |b| b.iter(|| sluice::protocol::batch::set_base_offset(black_box(&mut patched), black_box(42))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
