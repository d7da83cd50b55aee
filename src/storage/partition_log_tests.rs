//! Partition log tests against real files: roll, read back, recover, pipelined writes,
//! the zero-copy append, idempotent retries.
use super::*;
use crate::config::BrokerConfig;
use crate::protocol::batch::tests::make_batch;

fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).spawn(f).unwrap().join().unwrap();
}

fn small_segments() -> TopicConfig {
    let mut broker = BrokerConfig::default();
    broker.log_segment_bytes = 8192;
    TopicConfig::resolve(&broker, &Default::default())
}

async fn open(dir: &Path) -> Rc<PartitionLog> {
    open_with(dir, small_segments()).await
}

async fn open_with(dir: &Path, config: TopicConfig) -> Rc<PartitionLog> {
    std::fs::create_dir_all(dir).unwrap();
    super::super::io::write_iopoll_probe(dir).unwrap();
    super::super::io::prime_iopoll_probe(dir).await.unwrap();
    let tq = glommio::executor().current_task_queue();
    PartitionLog::open(TopicPartition::new("t", 0), dir.join("t-0"), config, Rc::new(ShardCache::new(1 << 20)), tq)
        .await
        .unwrap()
}

async fn read_all(log: &PartitionLog) -> Vec<i64> {
    let mut offsets = Vec::new();
    let mut at = log.log_start_offset();
    while at < log.high_watermark() {
        let r = log.read(at, 1 << 20).await.unwrap();
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
            expected.push(out.base_offset);
            log.wait_durable(out.end_offset, i % 10 == 0).await.unwrap();
        }
        assert_eq!(log.high_watermark(), 300);
        assert!(log.segment_count() > 1, "8 KiB segments must roll");
        assert_eq!(read_all(&log).await, expected, "read from the cache");
        assert_eq!(log.offset_for_timestamp(1030).await.unwrap().map(|(o, _)| o), Some(150));
        assert!(matches!(log.read(301, 100).await, Err(ReadError::OutOfRange { .. })));
        log.close().await;

        // Reopen: everything comes from disk now.
        let log = open(&path).await;
        assert_eq!(log.high_watermark(), 300);
        assert_eq!(read_all(&log).await, expected, "read from disk");
        log.close().await;

        // Tear the last batch of the last segment: recovery drops exactly that batch.
        let mut logs: Vec<_> = std::fs::read_dir(path.join("t-0"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        let last = logs.last().unwrap();
        let len = std::fs::metadata(last).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(last).unwrap();
        f.set_len(len - 10).unwrap();
        drop(f);
        let log = open(&path).await;
        assert_eq!(log.high_watermark(), 295);
        expected.pop();
        assert_eq!(read_all(&log).await, expected);
        let out = log.append(make_batch(0, 1, 10, 5).into()).unwrap();
        assert_eq!(out.base_offset, 295, "offsets continue after the truncation");
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
        let set = log.read(0, 1 << 20).await.unwrap().records.unwrap();
        assert_eq!(set.chunks()[0].as_ptr(), ptr);
        // Shared: the caller's bytes stay untouched (offsets are patched on a copy).
        let shared = Bytes::from(make_batch(0, 2, 10, 8));
        let keep = shared.clone();
        let out = log.append(shared).unwrap();
        log.wait_durable(out.end_offset, false).await.unwrap();
        assert_eq!(BatchHeader::read(&keep).unwrap().base_offset.get(), 0);
        let set = log.read(3, 1 << 20).await.unwrap().records.unwrap();
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
            last_end = out.end_offset;
            expected.push(out.base_offset);
            if i % 50 == 49 {
                // Now and then the writer drains (a barrier write of the partial block).
                log.wait_durable(out.end_offset, false).await.unwrap();
            }
        }
        log.wait_durable(last_end, true).await.unwrap();
        if config.segment_bytes > 1 << 20 {
            assert!(log.writes_in_flight_peak() > 1, "writes were not pipelined");
        }
        let from_cache = read_all(&log).await;
        assert_eq!(from_cache, expected);
        let cached: Vec<u8> = {
            let mut all = Vec::new();
            let mut at = 0;
            while at < log.high_watermark() {
                let set = log.read(at, 1 << 20).await.unwrap().records.unwrap().to_bytes();
                for (_, b) in batch::BatchIter::new(&set) {
                    at = BatchHeader::read(b).unwrap().last_offset() + 1;
                }
                all.extend_from_slice(&set);
            }
            all
        };
        log.close().await;
        let log = open_with(&path, config).await;
        assert_eq!(log.high_watermark(), last_end);
        let mut from_disk = Vec::new();
        let mut at = 0;
        while at < log.high_watermark() {
            let set = log.read(at, 1 << 20).await.unwrap().records.unwrap().to_bytes();
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

fn idempotent_batch(pid: i64, epoch: i16, seq: i32, records: i32) -> Bytes {
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
        assert_eq!((a.base_offset, b.base_offset), (0, 3));
        // Retries of both, as after a lost response.
        let ra = log.append(idempotent_batch(9, 0, 0, 3)).unwrap();
        let rb = log.append(idempotent_batch(9, 0, 3, 2)).unwrap();
        assert_eq!((ra.base_offset, ra.end_offset), (0, 3));
        assert_eq!((rb.base_offset, rb.end_offset), (3, 5));
        log.wait_durable(5, true).await.unwrap();
        assert_eq!(log.high_watermark(), 5, "nothing was written twice");
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
        log.wait_durable(6, true).await.unwrap();
        log.close().await;
        // After a restart the state is rebuilt from the log: a late retry is still caught.
        let log = open(&path).await;
        let r = log.append(idempotent_batch(9, 1, 0, 1)).unwrap();
        assert_eq!((r.base_offset, r.end_offset), (5, 6));
        assert_eq!(log.append(idempotent_batch(9, 1, 1, 1)).unwrap().base_offset, 6);
        log.wait_durable(7, true).await.unwrap();
        assert_eq!(log.high_watermark(), 7);
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
                    expected.push(out.base_offset);
                    position += size;
                    end = out.end_offset;
                    futures_lite::future::yield_now().await; // the writer submits
                }
                let waited = log
                    .wait_durable(end, round % 7 == 0)
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
