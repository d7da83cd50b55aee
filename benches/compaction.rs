//! The CPU of a compaction pass over one 4 MiB segment of keyed records, as
//! `sluicectl bench produce --keyed` writes them (batches of 1000 records, keys
//! `key-000000`..`key-000999`, 100-byte values): mapping the keys (pass 1) and cleaning
//! (pass 2) with the record walker, against decoding every record with kafka-protocol's
//! decoder, which the cleaner did in each pass before (its cost was at least twice
//! `decode_segment`).
use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::records::RecordBatchDecoder;
use sluice::protocol::batch::{encode_batch, set_base_offset};
use sluice::storage::cleaner::{clean_batches, KeyMap};

const SEGMENT: usize = 4 << 20;

/// Batches of 1000 keyed records filling `SEGMENT`, with their offsets, from offset `base`.
fn segment(base: i64, keys: &[Vec<u8>]) -> Vec<Bytes> {
    let value = vec![b'v'; 100];
    let records: Vec<(Option<&[u8]>, Option<&[u8]>)> =
        keys.iter().map(|k| (Some(k.as_slice()), Some(value.as_slice()))).collect();
    let (mut out, mut bytes, mut next) = (Vec::new(), 0, base);
    while bytes < SEGMENT {
        let mut b = encode_batch(0, &records, 1_700_000_000_000);
        set_base_offset(&mut b, next);
        next += records.len() as i64;
        bytes += b.len();
        out.push(Bytes::from(b));
    }
    out
}

fn bench(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..1000).map(|i| format!("key-{i:06}").into_bytes()).collect();
    let seg = segment(0, &keys);
    let records = (seg.len() * keys.len()) as u64;
    let mut g = c.benchmark_group("compaction_4MiB_segment");
    g.throughput(Throughput::Elements(records));
    g.sample_size(20);
    g.bench_function("decode_segment (the old cleaner's per-pass floor)", |b| {
        b.iter(|| {
            for batch in &seg {
                black_box(RecordBatchDecoder::decode(&mut batch.clone()).unwrap());
            }
        })
    });
    g.bench_function("map_keys", |b| {
        b.iter(|| {
            let mut map = KeyMap::default();
            map.add_batches(black_box(&seg)).unwrap();
            map
        })
    });
    let mut all = KeyMap::default();
    all.add_batches(&seg).unwrap();
    // Every batch but the last superseded by it: dropped whole.
    g.bench_function("clean_superseded", |b| b.iter(|| clean_batches(black_box(&seg), &all, 0).unwrap()));
    // A later segment rewrote half the keys: every batch rebuilt from its other half.
    let half: Vec<Vec<u8>> = keys.iter().step_by(2).cloned().collect();
    let mut later = KeyMap::default();
    later.add_batches(&segment(1 << 40, &half)[..1]).unwrap();
    g.bench_function("clean_half_superseded", |b| b.iter(|| clean_batches(black_box(&seg), &later, 0).unwrap()));
    // Nothing newer: every batch copied as it is.
    g.bench_function("clean_nothing_superseded", |b| {
        b.iter(|| clean_batches(black_box(&seg), &KeyMap::default(), 0).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
