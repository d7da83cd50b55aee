//! Partition log tests against real files: roll, read back, recover, pipelined writes,
//! the zero-copy append, idempotent retries.
use super::*;
use crate::config::BrokerConfig;
use crate::protocol::batch::tests::make_batch;

pub(super) fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    let _one_at_a_time = super::super::executor_test_lock();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).spawn(f).unwrap().join().unwrap();
}

pub(super) fn small_segments() -> TopicConfig {
    let broker = BrokerConfig { log_segment_bytes: 8192, ..Default::default() };
    TopicConfig::resolve(&broker, &Default::default())
}

pub(super) async fn open(dir: &Path) -> Rc<PartitionLog> {
    open_with(dir, small_segments()).await
}

pub(super) async fn open_with(dir: &Path, config: TopicConfig) -> Rc<PartitionLog> {
    std::fs::create_dir_all(dir).unwrap();
    super::super::io::write_iopoll_probe(dir).unwrap();
    super::super::io::prime_iopoll_probe(dir).await.unwrap();
    let tq = glommio::executor().current_task_queue();
    PartitionLog::open(
        TopicPartition::new("t", 0),
        dir.join("t-0"),
        config,
        Rc::new(ShardCache::new(1 << 20)),
        LogTaskQueues::single(tq),
    )
    .await
    .unwrap()
}

pub(super) async fn read_all(log: &PartitionLog) -> Vec<i64> {
    let mut offsets = Vec::new();
    let mut at = log.log_start_offset().0;
    while at < log.written_offset().0 {
        let r = log.read_all(Offset(at), 1 << 20).await.unwrap();
        let bytes = r.records.expect("data below the high watermark").to_bytes();
        for (_, b) in batch::BatchIter::new(&bytes) {
            batch::validate(b, usize::MAX).unwrap();
            let h = BatchHeader::read(b).unwrap();
            offsets.push(h.base_offset.get());
            at = h.last_offset() + 1;
        }
    }
    offsets
}

#[test]
fn appends_roll_read_back_and_recover_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open(&path).await;
        let mut expected = Vec::new();
        for i in 0..60 {
            let out = log.append(make_batch(0, 5, 100, 1000 + i).into()).unwrap();
            expected.push(out.base_offset.0);
            log.wait_durable(out.end_offset, i % 10 == 0).await.unwrap();
        }
        assert_eq!(log.written_offset().0, 300);
        assert!(log.segment_count() > 1, "8 KiB segments must roll");
        assert_eq!(read_all(&log).await, expected, "read from the cache");
        assert_eq!(log.offset_for_timestamp(1030, Offset(i64::MAX)).await.unwrap().map(|(o, _)| o.0), Some(150));
        assert!(matches!(log.read_all(Offset(301), 100).await, Err(ReadError::OutOfRange { .. })));
        log.close().await;

        // Reopen: everything comes from disk now.
        let log = open(&path).await;
        assert_eq!(log.written_offset().0, 300);
        assert_eq!(read_all(&log).await, expected, "read from disk");
        log.close().await;

        // Tear the last batch of the last segment: recovery drops exactly that batch.
        let logs = segment_files(&path);
        let last = logs.last().unwrap();
        let len = std::fs::metadata(last).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(last).unwrap();
        f.set_len(len - 10).unwrap();
        drop(f);
        let log = open(&path).await;
        assert_eq!(log.written_offset().0, 295);
        expected.pop();
        assert_eq!(read_all(&log).await, expected);
        let out = log.append(make_batch(0, 1, 10, 5).into()).unwrap();
        assert_eq!(out.base_offset.0, 295, "offsets continue after the truncation");
        log.wait_durable(out.end_offset, true).await.unwrap();
        log.close().await;
    });
}

#[test]
fn a_uniquely_owned_request_buffer_is_kept_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open(&path).await;
        // Sole owner: the cache serves the very bytes the caller handed in, patched.
        let unique = Bytes::from(make_batch(0, 3, 10, 7));
        let ptr = unique.as_ptr();
        let out = log.append(unique).unwrap();
        log.wait_durable(out.end_offset, false).await.unwrap();
        let set = log.read_all(Offset(0), 1 << 20).await.unwrap().records.unwrap();
        assert_eq!(set.chunks()[0].as_ptr(), ptr);
        // Shared: the caller's bytes stay untouched (offsets are patched on a copy).
        let shared = Bytes::from(make_batch(0, 2, 10, 8));
        let keep = shared.clone();
        let out = log.append(shared).unwrap();
        log.wait_durable(out.end_offset, false).await.unwrap();
        assert_eq!(BatchHeader::read(&keep).unwrap().base_offset.get(), 0);
        let set = log.read_all(Offset(3), 1 << 20).await.unwrap().records.unwrap();
        assert_ne!(set.chunks()[0].as_ptr(), keep.as_ptr());
        assert_eq!(BatchHeader::read(&set.chunks()[0]).unwrap().base_offset.get(), 3);
        log.close().await;
    });
}

#[test]
fn pipelined_writes_of_odd_sizes_read_back_byte_for_byte_after_reopen() {
    for segment_bytes in [8192, 1 << 30] {
        let mut broker = BrokerConfig::default();
        broker.log_segment_bytes = segment_bytes;
        pipelined_writes_read_back(TopicConfig::resolve(&broker, &Default::default()));
    }
}

fn pipelined_writes_read_back(config: TopicConfig) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open_with(&path, config.clone()).await;
        // Many appends without waiting: whole-block writes overlap; sizes are not block
        // multiples, so most writes split a batch at a block boundary. 8 KiB segments roll
        // every few batches, mixing pipelined writes with finalization.
        let mut expected = Vec::new();
        let mut last_end = 0;
        for i in 0..400u64 {
            let records = 1 + (i * 7 % 13) as i32;
            let value = 10 + (i * 37 % 900) as usize;
            let b = make_batch(0, records, value, i as i64);
            let out = log.append(Bytes::from(b)).unwrap();
            futures_lite::future::yield_now().await; // let the writer submit as data arrives
            last_end = out.end_offset.0;
            expected.push(out.base_offset.0);
            if i % 50 == 49 {
                // Now and then the writer drains (a barrier write of the partial block).
                log.wait_durable(out.end_offset, false).await.unwrap();
            }
        }
        log.wait_durable(Offset(last_end), true).await.unwrap();
        if config.segment_bytes > 1 << 20 {
            assert!(log.writes_in_flight_peak() > 1, "writes were not pipelined");
        }
        let from_cache = read_all(&log).await;
        assert_eq!(from_cache, expected);
        let cached: Vec<u8> = {
            let mut all = Vec::new();
            let mut at = 0;
            while at < log.written_offset().0 {
                let set = log.read_all(Offset(at), 1 << 20).await.unwrap().records.unwrap().to_bytes();
                for (_, b) in batch::BatchIter::new(&set) {
                    at = BatchHeader::read(b).unwrap().last_offset() + 1;
                }
                all.extend_from_slice(&set);
            }
            all
        };
        log.close().await;
        let log = open_with(&path, config).await;
        assert_eq!(log.written_offset().0, last_end);
        let mut from_disk = Vec::new();
        let mut at = 0;
        while at < log.written_offset().0 {
            let set = log.read_all(Offset(at), 1 << 20).await.unwrap().records.unwrap().to_bytes();
            for (_, b) in batch::BatchIter::new(&set) {
                batch::validate(b, usize::MAX).unwrap();
                at = BatchHeader::read(b).unwrap().last_offset() + 1;
            }
            from_disk.extend_from_slice(&set);
        }
        assert_eq!(from_disk, cached, "bytes on disk differ from what was appended");
        log.close().await;
    });
}

pub(super) fn idempotent_batch(pid: i64, epoch: i16, seq: i32, records: i32) -> Bytes {
    let mut b = make_batch(0, records, 10, 1);
    let h = BatchHeader::read_mut(&mut b).unwrap();
    h.producer_id.set(pid);
    h.producer_epoch.set(epoch);
    h.base_sequence.set(seq);
    let crc = crc32c::crc32c(&b[batch::CRC_START..]);
    BatchHeader::read_mut(&mut b).unwrap().crc.set(crc);
    Bytes::from(b)
}

#[test]
fn retried_batches_get_their_offsets_back_and_are_not_written_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open(&path).await;
        let a = log.append(idempotent_batch(9, 0, 0, 3)).unwrap();
        let b = log.append(idempotent_batch(9, 0, 3, 2)).unwrap();
        assert_eq!((a.base_offset.0, b.base_offset.0), (0, 3));
        // Retries of both, as after a lost response.
        let ra = log.append(idempotent_batch(9, 0, 0, 3)).unwrap();
        let rb = log.append(idempotent_batch(9, 0, 3, 2)).unwrap();
        assert_eq!((ra.base_offset.0, ra.end_offset.0), (0, 3));
        assert_eq!((rb.base_offset.0, rb.end_offset.0), (3, 5));
        log.wait_durable(Offset(5), true).await.unwrap();
        assert_eq!(log.written_offset().0, 5, "nothing was written twice");
        // A gap, and an old epoch once a newer one has written.
        assert!(matches!(
            log.append(idempotent_batch(9, 0, 9, 1)),
            Err(AppendError::Sequence(crate::storage::producer_state::SequenceError::OutOfOrder { expected: 5, .. }))
        ));
        log.append(idempotent_batch(9, 1, 0, 1)).unwrap();
        assert!(matches!(
            log.append(idempotent_batch(9, 0, 5, 1)),
            Err(AppendError::Sequence(crate::storage::producer_state::SequenceError::FencedEpoch { .. }))
        ));
        log.wait_durable(Offset(6), true).await.unwrap();
        log.close().await;
        // After a restart the state is rebuilt from the log: a late retry is still caught.
        let log = open(&path).await;
        let r = log.append(idempotent_batch(9, 1, 0, 1)).unwrap();
        assert_eq!((r.base_offset.0, r.end_offset.0), (5, 6));
        assert_eq!(log.append(idempotent_batch(9, 1, 1, 1)).unwrap().base_offset.0, 6);
        log.wait_durable(Offset(7), true).await.unwrap();
        assert_eq!(log.written_offset().0, 7);
        log.close().await;
    });
}

/// A batch of exactly `size` bytes.
fn batch_of_size(size: usize, ts: i64) -> Bytes {
    let mut value = size.saturating_sub(80);
    loop {
        let b = make_batch(0, 1, value, ts);
        match b.len().cmp(&size) {
            std::cmp::Ordering::Equal => return Bytes::from(b),
            std::cmp::Ordering::Less => value += 1,
            std::cmp::Ordering::Greater => value -= 1,
        }
    }
}

/// Every append becomes durable without any later append to push it out. A write from an
/// idle writer that ends exactly on a block boundary is not a barrier, so the next append's
/// write goes out beside it, whole blocks only; the partial last block it leaves behind
/// must still be written once the pipeline drains, and before its segment, if sealed by a
/// roll, is trimmed and finalized. (It once was not: the high watermark stopped short and a
/// producer waiting for its acknowledgement hung.)
#[test]
fn the_partial_last_block_is_written_when_the_pipeline_drains() {
    // (segment.bytes, a third batch that rolls the segment right after the partial block)
    for (segment_bytes, roll_with) in [(1u64 << 30, None), (60_000, Some(40_960usize))] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        run(move || async move {
            let mut broker = BrokerConfig::default();
            broker.log_segment_bytes = segment_bytes;
            let config = TopicConfig::resolve(&broker, &Default::default());
            let log = open_with(&path, config.clone()).await;
            let mut expected = Vec::new();
            let mut position = 0usize; // in the active segment, mirroring the roll rule
            for round in 0..50usize {
                let fill = match 4096 - position % 4096 {
                    f if f < 200 => f + 4096,
                    f => f,
                };
                let mut end = 0;
                for size in [Some(fill), Some(5000 + round * 97 % 3000), roll_with].into_iter().flatten() {
                    if position > 0 && (position + size) as u64 > segment_bytes {
                        position = 0;
                    }
                    let out = log.append(batch_of_size(size, round as i64)).unwrap();
                    expected.push(out.base_offset.0);
                    position += size;
                    end = out.end_offset.0;
                    futures_lite::future::yield_now().await; // the writer submits
                }
                let waited = log
                    .wait_durable(Offset(end), round % 7 == 0)
                    .or(async {
                        glommio::timer::sleep(Duration::from_secs(10)).await;
                        Err(StorageError::Closed)
                    })
                    .await;
                assert!(waited.is_ok(), "round {round}: offset {end} never became durable");
            }
            assert!(log.writes_in_flight_peak() > 1, "writes were not pipelined");
            assert_eq!(read_all(&log).await, expected);
            log.close().await;
            let log = open_with(&path, config).await;
            assert_eq!(read_all(&log).await, expected, "read back from disk");
            log.close().await;
        });
    }
}

/// (position, size, base offset, next offset) of each batch in a segment file.
fn batches_in(path: &Path) -> Vec<(u64, u64, i64, i64)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let size = batch::peek_batch_bytes(&bytes[at..]).unwrap();
        let h = BatchHeader::read(&bytes[at..]).unwrap();
        out.push((at as u64, size as u64, h.base_offset.get(), h.last_offset() + 1));
        at += size;
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Recovery from damage at many random places, each on a fresh copy of one clean log:
/// the tail segment truncated anywhere, a random byte flipped in one of its last batches
/// (anywhere but the partition leader epoch, which no CRC covers and nothing reads; often
/// in the base offset, which no CRC covers either), and every index file deleted. Each time exactly the batches before the damage survive,
/// byte for byte, and new appends continue at the first lost offset.
#[test]
fn recovery_keeps_exactly_the_batches_before_random_damage() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    run(move || async move {
        let clean = root.join("clean");
        let log = open(&clean).await;
        let mut last_end = 0;
        for i in 0..120u64 {
            let b = make_batch(0, 1 + (i % 4) as i32, 20 + (i * 131 % 700) as usize, i as i64);
            last_end = log.append(Bytes::from(b)).unwrap().end_offset.0;
        }
        log.wait_durable(Offset(last_end), true).await.unwrap();
        log.close().await;
        let segments = segment_files(&clean);
        assert!(segments.len() > 3, "8 KiB segments must roll");
        let tail_name = segments.last().unwrap().file_name().unwrap().to_owned();
        let tail_batches = batches_in(segments.last().unwrap());
        let tail_bytes = std::fs::read(segments.last().unwrap()).unwrap();
        let tail_base = tail_batches[0].2;
        // What a recovered copy must hold: every batch of the clean log up to `upto`.
        let clean_log = open(&clean).await;
        let clean_bytes = read_range(&clean_log, 0, last_end).await;
        clean_log.close().await;

        let mut rng = 0x5eed_u64;
        let mut next = move || {
            rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for case in 0..60 {
            let copy = root.join(format!("case-{case}"));
            copy_dir(&clean.join("t-0"), &copy.join("t-0"));
            let tail = copy.join("t-0").join(&tail_name);
            let (what, survivors_end) = match case % 4 {
                0 => {
                    let at = next() % tail_bytes.len() as u64;
                    std::fs::OpenOptions::new().write(true).open(&tail).unwrap().set_len(at).unwrap();
                    let end = tail_batches.iter().filter(|b| b.0 + b.1 <= at).map(|b| b.3).last();
                    (format!("truncated at {at}"), end.unwrap_or(tail_base))
                }
                1 | 2 => {
                    let (pos, size, base, _) = tail_batches[tail_batches.len() - 1 - (next() % 3) as usize];
                    // Half of them in the base offset, the one field no CRC covers.
                    let mut within = if case % 4 == 1 { next() % 8 } else { next() % size };
                    if (12..16).contains(&within) {
                        within = 16;
                    }
                    let mut bytes = tail_bytes.clone();
                    bytes[(pos + within) as usize] ^= 1 << (next() % 8);
                    std::fs::write(&tail, &bytes).unwrap();
                    (format!("bit flipped at {} (byte {within} of the batch at {pos})", pos + within), base)
                }
                _ => {
                    for e in std::fs::read_dir(copy.join("t-0")).unwrap().flatten() {
                        if e.path().extension().is_some_and(|x| x != "log") {
                            std::fs::remove_file(e.path()).unwrap();
                        }
                    }
                    ("indexes deleted".to_string(), last_end)
                }
            };
            let log = open(&copy).await;
            assert_eq!(log.written_offset().0, survivors_end, "case {case}, {what}: recovered end");
            let got = read_range(&log, 0, survivors_end).await;
            let want = read_prefix(&clean_bytes, survivors_end);
            assert!(got == want, "case {case}, {what}: recovered bytes differ from the clean log's");
            let out = log.append(Bytes::from(make_batch(0, 2, 50, 7))).unwrap();
            assert_eq!(out.base_offset.0, survivors_end, "case {case}, {what}: next offset");
            log.wait_durable(out.end_offset, true).await.unwrap();
            log.close().await;
            std::fs::remove_dir_all(&copy).unwrap();
        }
    });
}

/// Every batch in [from, to), concatenated.
async fn read_range(log: &PartitionLog, from: i64, to: i64) -> Vec<u8> {
    let mut all = Vec::new();
    let mut at = from;
    while at < to {
        let set = log.read_all(Offset(at), 1 << 20).await.unwrap().records.unwrap().to_bytes();
        for (_, b) in batch::BatchIter::new(&set) {
            let h = BatchHeader::read(b).unwrap();
            if h.base_offset.get() >= to {
                break;
            }
            all.extend_from_slice(b);
            at = h.last_offset() + 1;
        }
    }
    all
}

/// The batches of `bytes` whose offsets end at or before `end`.
fn read_prefix(bytes: &[u8], end: i64) -> Vec<u8> {
    let mut len = 0;
    for (_, b) in batch::BatchIter::new(bytes) {
        if BatchHeader::read(b).unwrap().last_offset() >= end {
            break;
        }
        len += b.len();
    }
    bytes[..len].to_vec()
}

/// A sealed segment's finalization (trim, fdatasync, indexes and snapshot) runs beside the
/// writer: with the first segment's fdatasync held, as by a slow disk or a journal busy
/// with compaction's commits, appends that rolled into the next segments are still written
/// and acknowledged. Once it is released the first segment is finalized, and everything
/// reads back after a reopen.
#[test]
fn appends_after_a_roll_do_not_wait_for_the_sealed_segment_to_be_finalized() {
    use super::super::faults;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open(&path).await;
        faults::hold_syncs(&segment_file_name(Offset(0), "log"));
        let mut expected = Vec::new();
        for i in 0..40 {
            let out = log.append(make_batch(0, 5, 100, 1000 + i).into()).unwrap();
            expected.push(out.base_offset.0);
            let acked = async { Some(log.wait_durable(out.end_offset, false).await) }
                .or(async {
                    glommio::timer::sleep(Duration::from_secs(10)).await;
                    None
                })
                .await;
            assert!(acked.is_some_and(|r| r.is_ok()), "append {i} waited for the held finalization");
        }
        assert!(log.segment_count() > 2, "8 KiB segments must roll");
        let index = path.join("t-0").join(segment_file_name(Offset(0), "index"));
        assert!(!index.exists(), "the first segment was finalized while its fdatasync was held");
        faults::release();
        for _ in 0..1000 {
            if index.exists() {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        assert!(index.exists(), "the first segment was not finalized once released");
        log.close().await;
        let log = open(&path).await;
        assert_eq!(read_all(&log).await, expected);
        log.close().await;
    });
}

/// Polls `done` until it holds; fails with `what` after 10 s.
pub(super) async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (bounded) until the writer has finalized every sealed segment.
pub(super) async fn wait_finalized(log: &PartitionLog) {
    wait_until("sealed segments not finalized", || {
        !log.state.borrow().segments.iter().any(|s| s.sealed && !s.finalized)
    })
    .await;
}

fn segment_files(path: &Path) -> Vec<PathBuf> {
    super::super::segment_logs(&path.join("t-0"))
}

/// Retention deletes whole sealed segments, oldest first, never the active one: by age
/// (`retention.ms`, from the records' timestamps) and by size (`retention.bytes`); the log
/// start offset moves to the first kept segment and reads below it are out of range.
/// DeleteRecords moves it inside a segment, and a restart keeps that.
#[test]
fn retention_and_delete_records_move_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let mut broker = BrokerConfig::default();
        broker.log_segment_bytes = 8192;
        let mut config = TopicConfig::resolve(&broker, &Default::default());
        let log = open_with(&path, config.clone()).await;
        let day = 24 * 3600 * 1000;
        let now = now_ms();
        let mut end = 0;
        // 40 batches ten days old (offsets 0..80), then 80 from now.
        for i in 0..120 {
            let ts = if i < 40 { now - 10 * day } else { now };
            end = log.append(make_batch(0, 2, 500, ts).into()).unwrap().end_offset.0;
        }
        log.wait_durable(Offset(end), true).await.unwrap();
        wait_finalized(&log).await;
        let files_before = segment_files(&path).len();

        // By age: the default 7 days removes the segments holding only the old batches.
        let deleted = log.enforce_retention(now).await.unwrap();
        assert!(deleted > 0, "10-day-old segments must go");
        let start = log.log_start_offset().0;
        assert!(start > 0 && start <= 80, "log start {start} must be at the segment holding offset 80");
        assert_eq!(segment_files(&path).len(), files_before - deleted, "their files are deleted");
        assert!(matches!(log.read_all(Offset(start - 1), 1 << 20).await, Err(ReadError::OutOfRange { .. })));
        assert_eq!(read_all(&log).await.last(), Some(&(end - 2)), "everything from the start is readable");
        assert_eq!(log.enforce_retention(now).await.unwrap(), 0, "nothing more has expired");

        // By size: keep at least 16 KiB, deleting whole segments while that still holds.
        config.retention_bytes = 16384;
        log.set_config(config.clone());
        assert!(log.enforce_retention(now).await.unwrap() > 0);
        let sizes: Vec<u64> = log.state.borrow().segments.iter().map(|s| s.size).collect();
        let total: u64 = sizes.iter().sum();
        assert!(total >= 16384 && total - sizes[0] < 16384, "kept {sizes:?}");

        // DeleteRecords: inside a segment, persisted; past the end is out of range.
        let mid = log.log_start_offset().0 + 3;
        assert_eq!(log.delete_records(Offset(mid), Offset(i64::MAX)).await.unwrap().0, mid);
        assert!(matches!(log.read_all(Offset(mid - 1), 1 << 20).await, Err(ReadError::OutOfRange { .. })));
        assert!(log.read_all(Offset(mid), 1 << 20).await.unwrap().records.is_some());
        assert_eq!(log.delete_records(Offset(mid - 2), Offset(i64::MAX)).await.unwrap().0, mid, "never backwards");
        assert!(matches!(
            log.delete_records(Offset(end + 1), Offset(i64::MAX)).await,
            Err(ReadError::OutOfRange { .. })
        ));
        log.close().await;
        let log = open_with(&path, config.clone()).await;
        assert_eq!(log.log_start_offset().0, mid, "the log start survives a restart");
        assert_eq!(log.written_offset().0, end);
        // -1: up to the high watermark; the active segment stays (empty to readers).
        assert_eq!(log.delete_records(log.written_offset(), Offset(i64::MAX)).await.unwrap().0, end);
        assert!(log.read_all(Offset(end), 1 << 20).await.unwrap().records.is_none());
        let next = log.append(make_batch(0, 1, 10, now).into()).unwrap();
        assert_eq!(next.base_offset.0, end);
        log.close().await;
    });
}

/// A producer seen only in older segments (with saved indexes, so recovery does not rescan
/// them) is still known after a restart, from the snapshot written when its segment was
/// finalized: its retry is recognized and a gap refused, as before the restart.
#[test]
fn producer_state_survives_restarts_through_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open(&path).await;
        let mut originals = Vec::new();
        for seq in 0..5 {
            originals.push(log.append(idempotent_batch(7, 0, seq * 2, 2)).unwrap());
        }
        // Another producer fills several more segments.
        let mut end = 0;
        for seq in 0..200 {
            end = log.append(idempotent_batch(8, 0, seq * 10, 10)).unwrap().end_offset.0;
        }
        log.wait_durable(Offset(end), true).await.unwrap();
        log.close().await;
        assert!(segment_files(&path).len() > 3);
        assert!(
            std::fs::read_dir(path.join("t-0"))
                .unwrap()
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "snapshot")),
            "finalized segments leave producer snapshots"
        );

        let log = open(&path).await;
        assert!(log.state.borrow().segments[0].finalized, "the first segment is not rescanned");
        let retry = log.append(idempotent_batch(7, 0, 6, 2)).unwrap();
        assert_eq!(retry.base_offset.0, originals[3].base_offset.0, "a retry from an old segment is a duplicate");
        let gap = log.append(idempotent_batch(7, 0, 14, 2));
        assert!(
            matches!(
                gap,
                Err(AppendError::Sequence(crate::storage::producer_state::SequenceError::OutOfOrder {
                    expected: 10,
                    ..
                }))
            ),
            "{gap:?}"
        );
        let next = log.append(idempotent_batch(7, 0, 10, 2)).unwrap();
        assert_eq!(next.base_offset.0, end);
        log.close().await;
    });
}

/// Passes after the first build their key map from the segments sealed since (Kafka's
/// dirty section) and still leave, across all sealed segments, only the latest record of
/// each key: a key updated in a new segment loses its record in an already-cleaned one.
#[test]
fn later_compaction_passes_clean_old_segments_against_new_keys() {
    use kafka_protocol::records::RecordBatchDecoder;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open_with(&path, compacted(4096)).await;
        let now = now_ms();
        let mut keys: Vec<Vec<u8>> = Vec::new(); // the key at each offset
        let append_round = |round: usize, keys: &mut Vec<Vec<u8>>| {
            let mut end = 0;
            for n in 0..30 {
                let recs: Vec<(Vec<u8>, Vec<u8>)> = (0..4)
                    .map(|j| {
                        let k = format!("k{}", (n * 4 + j + round * 7) % 25).into_bytes();
                        (k, format!("r{round}-{n}-{j}-{}", "y".repeat(60)).into_bytes())
                    })
                    .collect();
                let refs: Vec<(Option<&[u8]>, Option<&[u8]>)> =
                    recs.iter().map(|(k, v)| (Some(k.as_slice()), Some(v.as_slice()))).collect();
                let out = log.append(Bytes::from(batch::encode_batch(0, &refs, now))).unwrap();
                assert_eq!(out.base_offset.0 as usize, keys.len());
                keys.extend(recs.into_iter().map(|(k, _)| k));
                end = out.end_offset.0;
            }
            end
        };
        for round in 0..3 {
            let end = append_round(round, &mut keys);
            log.wait_durable(Offset(end), true).await.unwrap();
            wait_finalized(&log).await;
            let stats = log.compact(now).await.unwrap();
            assert!(stats.records_removed > 0, "round {round}: {stats:?}");
            let active_base = log.state.borrow().segments.last().unwrap().base_offset.0;
            let mut at = 0;
            let mut seen = std::collections::HashSet::new();
            while at < active_base {
                let set = log.read_all(Offset(at), 1 << 20).await.unwrap().records.unwrap().to_bytes();
                let mut buf = Bytes::from(set.to_vec());
                for s in RecordBatchDecoder::decode_all(&mut buf).unwrap() {
                    for r in s.records {
                        at = r.offset + 1;
                        if r.offset >= active_base {
                            continue;
                        }
                        let k = r.key.unwrap().to_vec();
                        assert_eq!(keys[r.offset as usize], k, "round {round}: key at {}", r.offset);
                        let latest = (0..active_base as usize).rev().find(|&o| keys[o] == k).unwrap();
                        assert_eq!(r.offset as usize, latest, "round {round}: {k:?} at {} is not its latest", r.offset);
                        assert!(seen.insert(k), "round {round}: a key twice in the sealed segments");
                    }
                }
            }
            let sealed_keys: std::collections::HashSet<_> = keys[..active_base as usize].iter().cloned().collect();
            assert_eq!(seen, sealed_keys, "round {round}: every key keeps its latest record");
        }
        log.close().await;
    });
}

/// The settings of a `cleanup.policy=compact` topic with segments of `segment_bytes`.
fn compacted(segment_bytes: u64) -> TopicConfig {
    let mut broker = BrokerConfig::default();
    broker.log_segment_bytes = segment_bytes;
    let topic = [("cleanup.policy".to_string(), "compact".to_string())].into_iter().collect();
    TopicConfig::resolve(&broker, &topic)
}

/// `min.cleanable.dirty.ratio`: a pass waits until the bytes sealed since the last one are
/// that share of all sealed bytes, then cleans as usual; the point up to which the log is
/// clean is kept across a restart.
#[test]
fn compaction_waits_for_the_dirty_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let config = compacted(4096);
        assert_eq!(config.min_cleanable_dirty_ratio, 0.5, "Kafka's default");
        let log = open_with(&path, config.clone()).await;
        let now = now_ms();
        let append = |log: &PartitionLog, keys: std::ops::Range<usize>| {
            let mut end = 0;
            let values: Vec<(Vec<u8>, Vec<u8>)> = keys
                .map(|i| (format!("key-{i}").into_bytes(), format!("value-{i}-{}", "z".repeat(60)).into_bytes()))
                .collect();
            for chunk in values.chunks(4) {
                let refs: Vec<(Option<&[u8]>, Option<&[u8]>)> =
                    chunk.iter().map(|(k, v)| (Some(k.as_slice()), Some(v.as_slice()))).collect();
                end = log.append(Bytes::from(batch::encode_batch(0, &refs, now))).unwrap().end_offset.0;
            }
            end
        };
        // Ten or so segments of distinct keys: the first pass finds nothing to remove.
        let end = append(&log, 0..480);
        log.wait_durable(Offset(end), true).await.unwrap();
        wait_finalized(&log).await;
        assert_eq!(log.compact(now).await.unwrap().records_removed, 0);
        // The cleaning point survives a restart: what was cleaned is not dirty again.
        log.close().await;
        let log = open_with(&path, config.clone()).await;
        // About one more segment that rewrites keys of the first: dirty, but a small share.
        let end = append(&log, 0..60);
        log.wait_durable(Offset(end), true).await.unwrap();
        wait_finalized(&log).await;
        assert_eq!(log.compact(now).await.unwrap(), CompactionStats::default(), "under the dirty ratio");
        log.set_config(TopicConfig { min_cleanable_dirty_ratio: 0.05, ..config });
        let stats = log.compact(now).await.unwrap();
        assert!(stats.records_removed >= 40, "over a lower ratio the pass runs: {stats:?}");
        log.close().await;
    });
}

/// Compaction keeps, in the sealed segments, only the latest record of each key (as of all
/// sealed segments), drops a tombstone once it is older than `delete.retention.ms`, keeps
/// every record's offset, never touches the active segment, and the result survives a
/// restart, also one that must rescan the cleaned segments (offsets now have gaps).
#[test]
fn compaction_keeps_the_latest_record_per_key_at_its_offset() {
    use kafka_protocol::records::RecordBatchDecoder;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let config = compacted(8192);
        assert!(config.cleanup_compact && !config.cleanup_delete);
        let log = open_with(&path, config.clone()).await;
        let now = now_ms();
        let day = 24 * 3600 * 1000;
        // offset -> (key, value) of everything appended.
        let mut appended: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        let mut end = 0;
        for n in 0..60 {
            let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
            for j in 0..5 {
                let key = format!("k{}", (n * 5 + j) % 10).into_bytes();
                let value = match (n, j) {
                    (20, 3) => None, // k3: a tombstone, ten days old below, never updated after
                    (59, 4) => None, // k9: a fresh tombstone (in the active segment)
                    _ => Some(format!("v{n}-{j}-{}", "x".repeat(100)).into_bytes()),
                };
                records.push((key, value));
            }
            // k3 is never written again after its tombstone.
            records.retain(|(k, v)| !(k == b"k3" && v.is_some() && n > 20));
            let refs: Vec<(Option<&[u8]>, Option<&[u8]>)> =
                records.iter().map(|(k, v)| (Some(k.as_slice()), v.as_deref())).collect();
            let ts = if n <= 20 { now - 10 * day } else { now };
            let out = log.append(Bytes::from(batch::encode_batch(0, &refs, ts))).unwrap();
            assert_eq!(out.base_offset.0 as usize, appended.len());
            appended.extend(records);
            end = out.end_offset.0;
        }
        log.wait_durable(Offset(end), true).await.unwrap();
        wait_finalized(&log).await;
        let active_base = log.state.borrow().segments.last().unwrap().base_offset.0;
        assert!(active_base > 100, "several sealed segments");
        let stats = log.compact(now).await.unwrap();
        assert!(stats.records_removed > 0 && stats.bytes_after < stats.bytes_before, "{stats:?}");
        assert_eq!(log.compact(now).await.unwrap(), CompactionStats::default(), "nothing new to clean");
        // The shard closed its descriptor of each replaced file before the background
        // thread's last close (which frees the blocks, and must not be the shard's).
        let closes: Vec<usize> = super::compaction::REPLACED_FDS_AT_LAST_CLOSE
            .lock()
            .unwrap()
            .iter()
            .filter(|(dir, _)| dir.starts_with(&path))
            .map(|&(_, fds)| fds)
            .collect();
        assert!(!closes.is_empty() && closes.iter().all(|&fds| fds == 1), "{closes:?}");

        let check = |bytes: Vec<u8>, what: &str| {
            let mut buf = Bytes::from(bytes);
            let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
            let records: Vec<_> = sets.into_iter().flat_map(|s| s.records).collect();
            let mut last = -1;
            let mut seen_sealed = std::collections::HashSet::new();
            for r in &records {
                assert!(r.offset > last, "{what}: offsets must increase");
                last = r.offset;
                let (k, v) = &appended[r.offset as usize];
                assert_eq!(r.key.as_deref(), Some(k.as_slice()), "{what}: key at {}", r.offset);
                assert_eq!(r.value.as_deref(), v.as_deref(), "{what}: value at {}", r.offset);
                if r.offset < active_base {
                    assert!(seen_sealed.insert(k.clone()), "{what}: key {:?} twice in sealed segments", k);
                    let latest_sealed = (0..active_base as usize).rev().find(|&o| &appended[o].0 == k).unwrap();
                    assert_eq!(r.offset as usize, latest_sealed, "{what}: not the latest record of its key");
                }
            }
            let active: Vec<_> = records.iter().filter(|r| r.offset >= active_base).collect();
            assert_eq!(active.len() as i64, end - active_base, "{what}: the active segment is untouched");
            assert!(!records.iter().any(|r| r.key.as_deref() == Some(b"k3")), "{what}: the old tombstone went");
            assert!(
                records.iter().any(|r| r.key.as_deref() == Some(b"k9") && r.value.is_none()),
                "{what}: the fresh tombstone stays"
            );
        };
        let read_everything = |log: Rc<PartitionLog>| async move {
            let mut all = Vec::new();
            let mut at = 0;
            while at < log.written_offset().0 {
                let set = log.read_all(Offset(at), 1 << 20).await.unwrap().records.unwrap().to_bytes();
                for (_, b) in batch::BatchIter::new(&set) {
                    at = BatchHeader::read(b).unwrap().last_offset() + 1;
                }
                all.extend_from_slice(&set);
            }
            all
        };
        log.close().await;
        let log = open_with(&path, config.clone()).await;
        check(read_everything(log.clone()).await, "after compaction and a restart");
        log.close().await;
        for e in std::fs::read_dir(path.join("t-0")).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "index" || x == "timeindex") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        let log = open_with(&path, config).await;
        assert_eq!(log.written_offset().0, end);
        check(read_everything(log.clone()).await, "after a restart that rescans the compacted segments");
        assert!(
            matches!(log.append(make_batch(0, 2, 10, now).into()), Err(AppendError::KeylessRecords { ref indexes }) if indexes == &[0, 1]),
            "a compacted topic refuses records without a key"
        );
        let keyed = batch::encode_batch(0, &[(Some(b"k1".as_slice()), Some(b"v".as_slice()))], now);
        assert_eq!(log.append(Bytes::from(keyed)).unwrap().base_offset.0, end);
        log.close().await;
    });
}
