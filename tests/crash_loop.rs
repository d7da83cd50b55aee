//! Crash loop: a producer streams numbered messages while the broker is killed with
//! SIGKILL at random moments (seeded: `SLUICE_TEST_SEED` reproduces a run) and restarted,
//! many cycles against the same data directory, in two phases:
//!  * acks=1, no retries: every message is sent at most once;
//!  * acks=all with `log.flush.interval.messages=1` (fdatasync before every ack) and the
//!    idempotent producer: retries are deduplicated by the broker.
//!
//! After every restart:
//!  * every acknowledged message is present, byte for byte, at the offset its delivery
//!    report gave;
//!  * offsets are contiguous from 0 (no holes);
//!  * no message appears twice, acknowledged or not;
//!  * nothing appears that was never sent, and nothing lands in the wrong partition.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer};

const TOPIC: &str = "crashy";
const PARTITIONS: i32 = 2;
const MAX_PER_CYCLE: usize = 400_000;

fn value_for(seq: usize) -> Vec<u8> {
    format!("seq-{seq:010}-{}", "p".repeat(80)).into_bytes()
}

fn seq_of(value: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(value).ok()?;
    s.strip_prefix("seq-")?.get(..10)?.parse().ok()
}

#[derive(Default)]
struct Ledger {
    /// seq -> (partition, offset, acked before the kill)
    acked: HashMap<usize, (i32, i64, bool)>,
    /// every seq that was handed to the producer
    sent: std::collections::HashSet<usize>,
    failed: usize,
}

struct CycleResult {
    sent: Vec<usize>,
    reports: Vec<(usize, Delivery, bool)>,
}

/// Producer thread: streams messages until `stop`, then flushes (bounded).
fn spawn_producer(
    bs: String,
    config: &'static [(&'static str, &'static str)],
    first_seq: usize,
    stop: Arc<AtomicBool>,
    killed: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
) -> thread::JoinHandle<CycleResult> {
    thread::spawn(move || {
        let mut settings = vec![
            ("message.timeout.ms", "15000"),
            ("request.timeout.ms", "5000"),
            ("retry.backoff.ms", "100"),
            ("linger.ms", "5"),
            ("queue.buffering.max.messages", "50000"),
        ];
        settings.extend_from_slice(config);
        let p = producer_with(&bs, &settings, killed, acked);
        let mut sent = Vec::new();
        let mut seq = first_seq;
        let hard_deadline = Instant::now() + Duration::from_secs(180);
        'outer: while !stop.load(Ordering::SeqCst) && sent.len() < MAX_PER_CYCLE {
            let value = value_for(seq);
            let part = (seq % PARTITIONS as usize) as i32;
            loop {
                let rec: BaseRecord<'_, [u8], [u8], usize> =
                    BaseRecord::with_opaque_to(TOPIC, seq).payload(value.as_slice()).partition(part);
                match p.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        p.poll(Duration::from_millis(10));
                        if stop.load(Ordering::SeqCst) || Instant::now() > hard_deadline {
                            break 'outer;
                        }
                    }
                    Err((e, _)) => panic!("send() failed: {e}"),
                }
            }
            sent.push(seq);
            seq += 1;
            if seq % 256 == 0 {
                p.poll(Duration::ZERO);
            }
        }
        // Every message gets a report within message.timeout.ms (15 s).
        let deadline = Instant::now() + Duration::from_secs(60);
        while p.in_flight_count() > 0 && Instant::now() < deadline {
            let _ = p.flush(Duration::from_millis(500));
        }
        p.poll(Duration::from_millis(100));
        assert_eq!(p.in_flight_count(), 0, "producer still had messages in flight 60 s after stopping");
        let reports = std::mem::take(&mut *p.context().reports.lock().unwrap());
        CycleResult { sent, reports }
    })
}

fn verify(bs: &str, ledger: &Ledger, cycle: usize) {
    let mut occurrences: HashMap<usize, Vec<(i32, i64)>> = HashMap::new();
    let mut total = 0usize;
    for part in 0..PARTITIONS {
        let (lo, hi) = watermarks(bs, TOPIC, part);
        assert_eq!(lo, 0, "cycle {cycle}: partition {part} low watermark");
        let got = consume_range(bs, TOPIC, &[(part, 0, hi)], Duration::from_secs(180)).remove(&part).unwrap();
        assert_eq!(got.len() as i64, hi, "cycle {cycle}: partition {part}: consumed count vs high watermark");
        assert_contiguous(&got, 0, &format!("cycle {cycle}: partition {part}"));
        for c in &got {
            total += 1;
            let v = c.value.as_deref().unwrap_or_else(|| panic!("cycle {cycle}: {part}/{} has a null value", c.offset));
            let seq = seq_of(v).unwrap_or_else(|| {
                panic!(
                    "cycle {cycle}: {part}/{} holds a value that was never produced: {:?}",
                    c.offset,
                    String::from_utf8_lossy(&v[..v.len().min(40)])
                )
            });
            assert_eq!(v, value_for(seq).as_slice(), "cycle {cycle}: corrupted value at {part}/{}", c.offset);
            assert!(
                ledger.sent.contains(&seq),
                "cycle {cycle}: {part}/{} holds seq {seq}, which was never sent",
                c.offset
            );
            assert_eq!(
                part,
                (seq % PARTITIONS as usize) as i32,
                "cycle {cycle}: seq {seq} found in the wrong partition"
            );
            occurrences.entry(seq).or_default().push((part, c.offset));
        }
    }

    let mut missing = Vec::new();
    let mut moved = Vec::new();
    for (&seq, &(p, o, _)) in &ledger.acked {
        match occurrences.get(&seq) {
            None => missing.push(seq),
            Some(locs) if !locs.contains(&(p, o)) => moved.push((seq, (p, o), locs.clone())),
            Some(_) => {}
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "cycle {cycle}: {} acknowledged messages are missing after crash+restart; first: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        moved.is_empty(),
        "cycle {cycle}: {} acknowledged messages are not at the offset their delivery report gave; first: {:?}",
        moved.len(),
        &moved[..moved.len().min(5)]
    );
    let mut twice: Vec<_> = occurrences.iter().filter(|(_, v)| v.len() > 1).collect();
    twice.sort();
    assert!(
        twice.is_empty(),
        "cycle {cycle}: {} messages appear more than once; first: {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    eprintln!(
        "[crash loop] cycle {cycle}: {total} records on disk, {} acked, {} failed deliveries",
        ledger.acked.len(),
        ledger.failed
    );
}

const CYCLES: usize = 6;

#[test]
fn acks_1_without_retries_survives_a_kill_9_loop() {
    crash_loop("acks=1", &[], &[("acks", "1"), ("enable.idempotence", "false"), ("message.send.max.retries", "0")]);
}

#[test]
fn acks_all_with_flushing_and_idempotence_survives_a_kill_9_loop() {
    crash_loop(
        "acks=all+flush",
        &[("log.flush.interval.messages", "1")],
        &[("acks", "all"), ("enable.idempotence", "true")],
    );
}

fn crash_loop(phase: &str, broker_config: &[(&str, &str)], producer_config: &'static [(&'static str, &'static str)]) {
    let seed: u64 = std::env::var("SLUICE_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("[crash loop] {phase}: SLUICE_TEST_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut broker = Broker::start_with(broker_config, DEFAULT_CORES);
    let bs = broker.bootstrap();
    create_topic(&bs, TOPIC, PARTITIONS);

    let mut ledger = Ledger::default();
    for cycle in 0..CYCLES {
        let stop = Arc::new(AtomicBool::new(false));
        let killed = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let handle = spawn_producer(
            bs.clone(),
            producer_config,
            (cycle + 1) * 1_000_000,
            stop.clone(),
            killed.clone(),
            acked.clone(),
        );

        // Crash at a random moment of the stream: after a random number of acknowledgements,
        // plus a random fraction of a millisecond.
        let threshold = rng.random_range(100..60_000);
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked.load(Ordering::SeqCst) < threshold && !handle.is_finished() {
            assert!(Instant::now() < deadline, "{phase} cycle {cycle}: {threshold} acknowledgements took over 120 s");
            thread::sleep(Duration::from_micros(200));
        }
        thread::sleep(Duration::from_micros(rng.random_range(0..1000)));
        killed.store(true, Ordering::SeqCst);
        broker.kill9();
        let acked_at_kill = acked.load(Ordering::SeqCst);
        thread::sleep(Duration::from_millis(rng.random_range(0..500)));
        broker.restart();

        // Let the producer deliver some more to the restarted broker.
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.load(Ordering::SeqCst) < acked_at_kill + 2_000 && Instant::now() < deadline && !handle.is_finished()
        {
            thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::SeqCst);
        let res = handle.join().expect("producer thread panicked");

        ledger.sent.extend(res.sent.iter().copied());
        let mut reports_seen = std::collections::HashSet::new();
        let mut acked_after_restart = 0usize;
        for (seq, d, after_kill) in res.reports {
            assert!(reports_seen.insert(seq), "two delivery reports for seq {seq}");
            match d {
                Ok((p, o)) => {
                    assert_eq!(p, (seq % PARTITIONS as usize) as i32, "seq {seq} acked in wrong partition");
                    assert!(o >= 0, "seq {seq} acked with invalid offset {o}");
                    if after_kill {
                        acked_after_restart += 1;
                    }
                    ledger.acked.insert(seq, (p, o, !after_kill));
                }
                Err(_) => ledger.failed += 1,
            }
        }
        assert_eq!(
            reports_seen.len(),
            res.sent.len(),
            "cycle {cycle}: every sent message must get exactly one delivery report"
        );
        assert!(
            acked_after_restart > 0,
            "cycle {cycle}: the producer got no acknowledgement from the restarted broker within 30 s"
        );

        // Check the two acked-offset sets do not collide (two different
        // messages acknowledged at the same offset = lost acknowledged data).
        let mut by_loc: BTreeMap<(i32, i64), usize> = BTreeMap::new();
        for (&seq, &(p, o, _)) in &ledger.acked {
            if let Some(other) = by_loc.insert((p, o), seq) {
                panic!("{phase} cycle {cycle}: messages {other} and {seq} were both acknowledged at {p}/{o}");
            }
        }

        verify(&bs, &ledger, cycle);
    }

    // Finally a clean restart must preserve everything too.
    broker.stop();
    broker.restart();
    verify(&broker.bootstrap(), &ledger, CYCLES);
}
