//! A request frame body (after the size prefix), decoded as the broker decodes it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::request_frame(data));
