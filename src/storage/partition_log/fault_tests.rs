//! Partition log tests of storage failures, against real files with injected faults
//! (`storage::faults`): a failed fdatasync, and a full disk met by the writer and by the
//! finalization of a sealed segment.
use super::tests::{open, open_with, read_all, run, wait_finalized, wait_until};
use super::*;
use crate::config::BrokerConfig;
use crate::protocol::batch::tests::make_batch;

/// A failed fdatasync takes the partition offline for good: the waiter is told, appends
/// and reads are refused, and the syncer never tries again (a retry that succeeded would
/// report bytes as durable that the kernel may already have dropped). What was acknowledged
/// as durable before is there after a reopen.
#[test]
fn a_failed_fdatasync_takes_the_partition_offline_and_is_never_retried() {
    use super::super::faults::{self, Fault};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open(&path).await;
        let durable = log.append(make_batch(0, 3, 100, 1).into()).unwrap();
        log.wait_durable(durable.end_offset, true).await.unwrap();
        faults::inject(Fault { op: "fdatasync", path_contains: "t-0".into(), errno: libc::EIO });
        let next = log.append(make_batch(0, 3, 100, 2).into()).unwrap();
        let err = log.wait_durable(next.end_offset, true).await.expect_err("the fdatasync failed");
        assert!(err.to_string().contains("fdatasync"), "{err}");
        assert!(matches!(
            log.append(make_batch(0, 1, 10, 3).into()),
            Err(AppendError::Storage(StorageError::Offline(_)))
        ));
        assert!(matches!(log.read_all(Offset(0), 1 << 20).await, Err(ReadError::Storage(StorageError::Offline(_)))));
        faults::clear();
        glommio::timer::sleep(Duration::from_millis(300)).await;
        assert_eq!(faults::failures("fdatasync"), 1, "the syncer retried a failed fdatasync");
        assert!(log.wait_durable(next.end_offset, true).await.is_err(), "still offline once the fault is gone");
        log.close().await;

        let log = open(&path).await;
        assert!(log.written_offset().0 >= durable.end_offset.0);
        assert_eq!(read_all(&log).await[0], 0);
        log.close().await;
    });
}

/// No space to grow the segment (fallocate fails with ENOSPC): appends are refused and the
/// producer waiting on the unwritten one is told, while reads go on; once space returns the
/// writer finishes what it queued and appends are accepted again. Nothing is lost.
#[test]
fn a_full_disk_refuses_appends_until_space_returns() {
    use super::super::faults::{self, Fault};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let broker = BrokerConfig { log_segment_bytes: 1 << 30, ..Default::default() };
        let log = open_with(&path, TopicConfig::resolve(&broker, &Default::default())).await;
        let first = log.append(make_batch(0, 3, 100, 1).into()).unwrap();
        log.wait_durable(first.end_offset, false).await.unwrap();
        faults::inject(Fault { op: "fallocate", path_contains: "t-0".into(), errno: libc::ENOSPC });
        // Fill what was preallocated, then one batch more.
        let mut queued = Vec::new();
        let refused = loop {
            match log.append(make_batch(0, 10, 10_000, 2).into()) {
                Ok(out) => {
                    queued.push(out);
                    if let Err(e) = log.wait_durable(out.end_offset, false).await {
                        assert!(matches!(e, StorageError::NoSpace { .. }), "{e}");
                    }
                }
                Err(e) => break e,
            }
            assert!(queued.len() < 1000, "appends never refused");
        };
        assert!(matches!(refused, AppendError::Storage(StorageError::NoSpace { .. })), "{refused}");
        let before = log.written_offset().0;
        assert!(before < queued.last().unwrap().end_offset.0, "the last append cannot have been written");
        assert_eq!(read_all(&log).await.len() as i64, 1 + (before - 3) / 10, "reads go on below the high watermark");
        faults::clear();
        // The writer retries on its own (waiters arriving before it does are told the disk
        // is full, as they were).
        let end = queued.last().unwrap().end_offset.0;
        wait_until("the queued appends were not written once space returned", || log.written_offset().0 >= end).await;
        log.wait_durable(Offset(end), true).await.unwrap();
        let again = log.append(make_batch(0, 1, 10, 3).into()).expect("appends accepted again");
        assert_eq!(again.base_offset.0, end);
        log.wait_durable(again.end_offset, true).await.unwrap();
        log.close().await;
        let log = open_with(&path, TopicConfig::resolve(&broker, &Default::default())).await;
        assert_eq!(log.written_offset().0, again.end_offset.0);
        assert_eq!(read_all(&log).await.len(), queued.len() + 2);
        log.close().await;
    });
}

/// Out of space for the next segment's file, then also for the sealed segment's indexes,
/// then space for the segment only: the writer writes what it had queued, yet appends stay
/// refused until the indexes are saved too. (The writer's success used to clear the
/// finalizer's state as well, and the full disk accepted appends until the finalizer's next
/// retry: a `tests/disk_full.rs` failure in CI.) Nothing is lost.
#[test]
fn appends_stay_refused_while_a_sealed_segment_cannot_save_its_indexes() {
    use super::super::faults::{self, Fault};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open(&path).await;
        let first = log.append(make_batch(0, 3, 100, 1).into()).unwrap();
        log.wait_durable(first.end_offset, false).await.unwrap();
        let index_fault = || Fault { op: "write", path_contains: ".index".into(), errno: libc::ENOSPC };
        faults::inject(index_fault());
        faults::inject(Fault { op: "fallocate", path_contains: "t-0".into(), errno: libc::ENOSPC });
        // Finalizing segment 0 waits in its fdatasync, so that the writer runs out first
        // and the two retry out of step.
        faults::hold_syncs(&segment_file_name(Offset(0), "log"));
        let mut queued = vec![first];
        wait_until("the roll never ran out of space", || {
            if let Ok(out) = log.append(make_batch(0, 3, 1000, 2).into()) {
                queued.push(out);
            }
            faults::failures("fallocate") > 0
        })
        .await;
        let end = queued.last().unwrap().end_offset.0;
        assert!(log.written_offset().0 < end, "the last append cannot have been written");
        glommio::timer::sleep(Duration::from_millis(20)).await;
        faults::release();
        wait_until("finalizing segment 0 never ran out of space", || faults::failures("write") > 0).await;

        // Space for the segment, none for the indexes: the writer's retry writes what was
        // queued; the finalizer's retries keep failing, and appends stay refused.
        faults::clear();
        faults::inject(index_fault());
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let mut refused = 0;
        while std::time::Instant::now() < deadline && (log.written_offset().0 < end || refused < 100) {
            match log.append(make_batch(0, 1, 10, 3).into()) {
                Err(AppendError::Storage(StorageError::NoSpace { .. })) => refused += 1,
                other => panic!("appended while the indexes cannot be saved: {other:?}"),
            }
            glommio::timer::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(log.written_offset().0, end, "the writer did not write what it queued");
        assert!(log.state.borrow().segments.iter().any(|s| s.sealed && !s.finalized));

        // Space returns: the indexes are saved and appends are accepted.
        faults::clear();
        wait_finalized(&log).await;
        let again = log.append(make_batch(0, 1, 10, 3).into()).expect("appends accepted again");
        assert_eq!(again.base_offset.0, end);
        log.wait_durable(again.end_offset, true).await.unwrap();
        log.close().await;
        let log = open(&path).await;
        assert_eq!(log.written_offset().0, again.end_offset.0);
        assert_eq!(read_all(&log).await.len(), queued.len() + 1);
        log.close().await;
    });
}

/// What a crash or a full disk leaves of files written whole and then renamed into place
/// (`*.tmp`, a compacted `*.cleaned` segment) is removed when the log opens; the log itself
/// is untouched.
#[test]
fn opening_removes_unfinished_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open(&path).await;
        let out = log.append(make_batch(0, 3, 100, 1).into()).unwrap();
        log.wait_durable(out.end_offset, true).await.unwrap();
        log.close().await;
        let part = path.join("t-0");
        let junk = [
            segment_file_name(Offset(0), "index.tmp"),
            segment_file_name(Offset(3), "snapshot.tmp"),
            format!("{}.cleaned", segment_file_name(Offset(0), "log")),
            "cleaner-offset-checkpoint..tmp".to_string(),
        ];
        for name in &junk {
            std::fs::write(part.join(name), b"partial").unwrap();
        }
        let log = open(&path).await;
        for name in &junk {
            assert!(!part.join(name).exists(), "{name} is still there");
        }
        assert_eq!(read_all(&log).await, vec![0], "the batch at offset 0");
        log.close().await;
    });
}
