//! Record batches, validated and patched as a produce append does.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::record_batches(data));
