//! A request frame body (after the size prefix), decoded as the broker decodes it.
#![no_main]

// The broker's allocator: the protocol decoder sizes some allocations by counts read from
// the wire, which the broker survives only because huge ones are lazily mapped.
#[global_allocator]
static ALLOC: sluice::alloc::BrokerAllocator = sluice::alloc::BrokerAllocator;

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::request_frame(data));
