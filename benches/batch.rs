//! Micro-benchmarks of the produce hot path's per-batch work: validation (CRC32C over the
//! batch) and in-place offset patching.
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let batch = sluice::protocol::batch::build_batch(0, 1000, 100, 1_700_000_000_000);
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Bytes(batch.len() as u64));
    g.bench_function("validate_1000x100B", |b| {
        b.iter(|| sluice::protocol::batch::validate(black_box(&batch), usize::MAX).unwrap())
    });
    let mut patched = batch.clone();
    g.bench_function("set_base_offset", |b| {
        b.iter(|| sluice::protocol::batch::set_base_offset(black_box(&mut patched), black_box(42)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
