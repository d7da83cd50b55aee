//! The fuzz targets' seed corpus and every input a fuzzer ever found to crash them
//! (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`), replayed through the same entry
//! points on every test run: what was fixed stays fixed, without a fuzzer in CI.
use std::path::Path;

// As in the broker and the fuzz targets (see `sluice::alloc`).
#[global_allocator]
static ALLOC: sluice::alloc::BrokerAllocator = sluice::alloc::BrokerAllocator;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        let dir = root.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).unwrap();
            let path = e.path();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} panics", path.display());
            n += 1;
        }
    }
    assert!(n > 0, "no inputs for fuzz target {target}");
    eprintln!("[fuzz regressions] {target}: {n} inputs");
}

#[test]
fn request_frame_inputs() {
    replay("request_frame", sluice::fuzzing::request_frame);
}

#[test]
fn record_batches_inputs() {
    replay("record_batches", sluice::fuzzing::record_batches);
}
