//! Log recovery from damaged segment tails. Data is produced with rskafka
//! (one produce call = one record batch), the broker is stopped with SIGTERM,
//! the last `.log` segment is damaged on disk, and the broker is restarted:
//!  (a) tail truncated inside the last batch  -> batches before it survive,
//!      new data continues at the torn batch's base offset;
//!  (b) bytes flipped inside the last batch   -> that batch is dropped;
//!  (c) zero padding appended (O_DIRECT-like) -> nothing lost;
//!  (d) .index/.timeindex deleted             -> everything still served,
//!      ListOffsets by timestamp still correct.
//! Before damaging anything the on-disk format itself is checked: a chain of
//! valid Kafka v2 record batches (magic 2, CRC-32C ok, contiguous offsets).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use rskafka::client::partition::{Compression, OffsetAt};
use rskafka::record::Record;

const TOPIC: &str = "torn";
const BATCHES: usize = 50;
const PER_BATCH: usize = 50;
const N: i64 = (BATCHES * PER_BATCH) as i64;
const TS_BASE: i64 = 1_700_000_000_000;

fn record(n: usize) -> Record {
    let v = format!("torn-{n:06}-{}", "v".repeat(900 + n % 100)).into_bytes();
    let k = format!("k{n}").into_bytes();
    let h = n.to_string().into_bytes();
    rs_record(Some(&k), Some(&v), &[("n", h.as_slice())], TS_BASE + 10 * n as i64)
}

fn all_records() -> Vec<Record> {
    (0..N as usize).map(record).collect()
}

struct Setup {
    broker: Broker,
    rt: tokio::runtime::Runtime,
    records: Vec<Record>,
}

/// Start a broker, produce BATCHES batches, stop it cleanly, check the on-disk
/// format.
fn setup(overrides: &[(&str, &str)]) -> Setup {
    let mut broker = Broker::start_with(overrides, DEFAULT_CORES);
    let bs = broker.bootstrap();
    create_topic(&bs, TOPIC, 1);
    let rt = runtime();
    let records = all_records();
    rt.block_on(async {
        let client = rs_client(&bs).await;
        let pc = rs_partition(&client, TOPIC, 0).await;
        for (b, chunk) in records.chunks(PER_BATCH).enumerate() {
            let offs =
                within(Duration::from_secs(30), "produce", pc.produce(chunk.to_vec(), Compression::NoCompression))
                    .await
                    .unwrap_or_else(|e| panic!("produce batch {b} failed: {e}"));
            let first = (b * PER_BATCH) as i64;
            assert_eq!(offs, (first..first + chunk.len() as i64).collect::<Vec<_>>());
        }
    });
    broker.stop();
    check_disk_format(&broker);
    Setup { broker, rt, records }
}

/// All segments of the partition parse as a contiguous chain of valid batches
/// covering offsets 0..N. Returns (segment path, its batches) for each segment.
fn check_disk_format(broker: &Broker) -> Vec<(PathBuf, Vec<DiskBatch>)> {
    let dir = broker.partition_dir(TOPIC, 0);
    assert!(dir.is_dir(), "partition directory {} does not exist", dir.display());
    let segs = segment_files(&dir);
    assert!(!segs.is_empty(), "no .log segment in {}", dir.display());
    let mut next = 0i64;
    let mut out = Vec::new();
    for seg in segs {
        let name = seg.file_stem().unwrap().to_string_lossy().to_string();
        assert_eq!(name.len(), 20, "segment file name {name} is not a 20-digit base offset");
        let base: i64 = name.parse().expect("segment name is numeric");
        let batches = parse_segment(&seg);
        if let Some(first) = batches.first() {
            assert_eq!(
                first.base_offset,
                base,
                "segment {} name does not match its first batch's base offset",
                seg.display()
            );
        }
        for b in &batches {
            assert_eq!(b.magic, 2, "batch at {}:{} has magic {}", seg.display(), b.pos, b.magic);
            assert!(b.crc_ok, "batch at {}:{} fails its CRC-32C", seg.display(), b.pos);
            assert_eq!(
                b.base_offset,
                next,
                "batch at {}:{} starts at offset {} (expected {next})",
                seg.display(),
                b.pos,
                b.base_offset
            );
            next = b.last_offset() + 1;
        }
        out.push((seg, batches));
    }
    assert_eq!(next, N, "on-disk batches cover offsets 0..{next}, expected 0..{N}");
    out
}

/// The last segment that contains batches, and its last batch.
fn last_batch(broker: &Broker) -> (PathBuf, DiskBatch) {
    let segs = check_disk_format(broker);
    let (seg, batches) = segs.into_iter().rev().find(|(_, b)| !b.is_empty()).expect("a segment with batches");
    let last = batches.last().unwrap().clone();
    (seg, last)
}

/// Check that offsets [0, upto) hold exactly the original records, that the
/// high watermark is `upto`, then produce one more batch, expect it at offset
/// `upto`, and read everything back with rskafka and rdkafka.
fn verify_after_restart(s: &Setup, upto: i64, what: &str) {
    let bs = s.broker.bootstrap();
    wait_for_topic(&bs, TOPIC, 1);
    s.rt.block_on(async {
        let client = rs_client(&bs).await;
        let pc = rs_partition(&client, TOPIC, 0).await;
        let earliest = within(Duration::from_secs(20), "earliest", pc.get_offset(OffsetAt::Earliest))
            .await
            .expect("ListOffsets earliest");
        let latest = within(Duration::from_secs(20), "latest", pc.get_offset(OffsetAt::Latest))
            .await
            .expect("ListOffsets latest");
        assert_eq!(earliest, 0, "{what}: earliest offset after restart");
        assert_eq!(latest, upto, "{what}: latest offset (high watermark) after restart");

        let got = rs_fetch_range(&pc, 0, upto, Duration::from_secs(60)).await;
        assert_eq!(got.len() as i64, upto, "{what}: records surviving recovery");
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.offset, i as i64, "{what}: offsets not contiguous");
            assert_eq!(r.record, s.records[i], "{what}: record at offset {i} changed");
        }

        // New data continues right after the surviving data.
        let new: Vec<Record> = (0..10)
            .map(|j| rs_record(None, Some(format!("after-{j}").as_bytes()), &[], TS_BASE + 10 * N + 1000 + j))
            .collect();
        let offs = within(
            Duration::from_secs(30),
            "produce after restart",
            pc.produce(new.clone(), Compression::NoCompression),
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: produce after restart failed: {e}"));
        assert_eq!(
            offs,
            (upto..upto + 10).collect::<Vec<_>>(),
            "{what}: offsets of data produced after recovery must continue at {upto}"
        );
        let tail = rs_fetch_range(&pc, upto, upto + 10, Duration::from_secs(30)).await;
        let tail_recs: Vec<Record> = tail.into_iter().map(|r| r.record).collect();
        assert_eq!(tail_recs, new, "{what}: data produced after recovery");
    });
    // rdkafka (CRC-checking consumer) sees a clean, contiguous log too.
    let got = consume_range(&bs, TOPIC, &[(0, 0, upto + 10)], Duration::from_secs(60)).remove(&0).unwrap();
    assert_contiguous(&got, 0, what);
    assert_eq!(got.len() as i64, upto + 10, "{what}: rdkafka consumed count");
}

#[test]
fn truncated_mid_batch_drops_only_the_torn_batch() {
    let mut s = setup(&[("log.segment.bytes", "1048576")]);
    let (seg, last) = last_batch(&s.broker);
    set_len(&seg, last.pos + last.size / 2);
    s.broker.restart();
    verify_after_restart(&s, last.base_offset, "truncated mid-batch");
}

#[test]
fn truncated_inside_batch_header() {
    let mut s = setup(&[]);
    let (seg, last) = last_batch(&s.broker);
    // Leave only 7 bytes of the last batch (not even a full base offset).
    set_len(&seg, last.pos + 7);
    s.broker.restart();
    verify_after_restart(&s, last.base_offset, "truncated in batch header");
}

#[test]
fn corrupted_last_batch_is_dropped() {
    let mut s = setup(&[]);
    let (seg, last) = last_batch(&s.broker);
    // Flip bytes inside the CRC-covered region (record data near the end).
    let pos = last.pos + last.size - 20;
    let orig = read_at(&seg, pos, 4);
    let flipped: Vec<u8> = orig.iter().map(|b| b ^ 0xff).collect();
    write_at(&seg, pos, &flipped);
    let reparsed = parse_segment(&seg);
    assert!(!reparsed.last().unwrap().crc_ok, "test bug: corruption did not break the CRC");
    s.broker.restart();
    verify_after_restart(&s, last.base_offset, "corrupted last batch");
}

#[test]
fn corrupted_batch_length_field_is_dropped() {
    let mut s = setup(&[]);
    let (seg, last) = last_batch(&s.broker);
    // A batch length that points far beyond the end of the file.
    write_at(&seg, last.pos + 8, &(0x0fff_ffffi32).to_be_bytes());
    s.broker.restart();
    verify_after_restart(&s, last.base_offset, "corrupted batch length");
}

#[test]
fn zero_padding_at_tail_loses_nothing() {
    let mut s = setup(&[]);
    let (seg, _last) = last_batch(&s.broker);
    let len = file_len(&seg);
    let new_len = len.div_ceil(4096) * 4096 + 4096;
    set_len(&seg, new_len);
    s.broker.restart();
    verify_after_restart(&s, N, "zero padding appended");
    // And once more: a clean stop/start after recovery keeps everything.
    s.broker.stop();
    s.broker.restart();
    let bs = s.broker.bootstrap();
    assert_eq!(watermarks(&bs, TOPIC, 0), (0, N + 10), "after second restart");
}

#[test]
fn deleted_indexes_are_rebuilt_or_not_needed() {
    let mut s = setup(&[("log.segment.bytes", "1048576")]);
    let dir = s.broker.partition_dir(TOPIC, 0);
    let mut removed = 0;
    for ext in ["index", "timeindex"] {
        for f in files_with_ext(&dir, ext) {
            std::fs::remove_file(&f).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 0, "expected .index/.timeindex files in {}", dir.display());
    s.broker.restart();
    let bs = s.broker.bootstrap();
    wait_for_topic(&bs, TOPIC, 1);

    // ListOffsets by timestamp: first offset whose timestamp >= target.
    s.rt.block_on(async {
        let client = rs_client(&bs).await;
        let pc = rs_partition(&client, TOPIC, 0).await;
        let probes: Vec<(i64, i64)> = vec![
            (TS_BASE - 1_000_000, 0),
            (TS_BASE, 0),
            (TS_BASE + 1, 1),
            (TS_BASE + 10 * 777, 777),
            (TS_BASE + 10 * 1234 + 5, 1235),
            (TS_BASE + 10 * 2000 - 1, 2000),
            (TS_BASE + 10 * (N - 1), N - 1),
        ];
        for (ts, want) in probes {
            let got = within(
                Duration::from_secs(20),
                "ListOffsets by timestamp",
                pc.get_offset(OffsetAt::Timestamp(rs_ts(ts))),
            )
            .await
            .unwrap_or_else(|e| panic!("ListOffsets(ts={ts}) failed: {e}"));
            assert_eq!(got, want, "ListOffsets(timestamp={ts}) after index deletion");
        }
    });
    verify_after_restart(&s, N, "indexes deleted");
}

/// Damage in the middle of an older segment (one whose indexes were saved, so recovery
/// does not rescan it) is caught by the CRC when that data is read: the fetch gets
/// KAFKA_STORAGE_ERROR, the broker log names the file and position, the damaged batch is
/// never served, and everything else (the batches before it, other segments, produce)
/// keeps working.
#[test]
fn corruption_inside_an_older_segment_is_reported_never_served() {
    let mut s = setup(&[("log.segment.bytes", "262144")]);
    let segs = check_disk_format(&s.broker);
    assert!(segs.len() > 3, "expected several segments, got {}", segs.len());
    let (seg, batches) = &segs[1];
    let bad = batches[batches.len() / 2].clone();
    let pos = bad.pos + bad.size / 2;
    let orig = read_at(seg, pos, 1);
    write_at(seg, pos, &[orig[0] ^ 0x10]);
    assert!(!parse_segment(seg).iter().any(|b| b.pos == bad.pos && b.crc_ok), "test bug: CRC still matches");
    s.broker.restart();
    let bs = s.broker.bootstrap();
    wait_for_topic(&bs, TOPIC, 1);
    assert_eq!(watermarks(&bs, TOPIC, 0), (0, N), "recovery keeps the whole log (the damage is not in the tail)");
    s.rt.block_on(async {
        let client = rs_client(&bs).await;
        let pc = rs_partition(&client, TOPIC, 0).await;
        // Fetching at the damaged batch fails with KAFKA_STORAGE_ERROR, every time.
        for _ in 0..2 {
            let err = within(Duration::from_secs(20), "fetch", pc.fetch_records(bad.base_offset, 1..4_000_000, 500))
                .await
                .expect_err("a damaged batch must not be served");
            assert_eq!(
                rs_protocol_error(&err),
                Some(rskafka::client::error::ProtocolError::KafkaStorageError),
                "fetch at the damaged batch: {err}"
            );
        }
        // Everything before it, in the same segment, is served and stops short of it.
        let before = rs_fetch_range(&pc, batches[0].base_offset, bad.base_offset, Duration::from_secs(30)).await;
        assert_eq!(before.len() as i64, bad.base_offset - batches[0].base_offset);
        for r in &before {
            assert_eq!(r.record, s.records[r.offset as usize], "record at offset {} changed", r.offset);
        }
        // Later segments and new produce are unaffected.
        let later = segs[2].1[0].base_offset;
        let after = rs_fetch_range(&pc, later, N, Duration::from_secs(60)).await;
        assert_eq!(after.len() as i64, N - later);
        let offs = within(
            Duration::from_secs(30),
            "produce",
            pc.produce(vec![rs_record(None, Some(b"still-writable"), &[], TS_BASE)], Compression::NoCompression),
        )
        .await
        .expect("produce after a read error");
        assert_eq!(offs, vec![N]);
    });
    let log = s.broker.log_tail(400);
    let name = seg.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        log.lines()
            .any(|l| l.contains("read failed") && l.contains(&name) && l.contains(&format!("position {}", bad.pos))),
        "the broker log must name the damaged file and position ({name}, {}):\n{log}",
        bad.pos
    );
}
