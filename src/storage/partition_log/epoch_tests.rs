//! Leader epochs in the log: every appended batch carries the epoch the partition
//! assigned, the epoch cache is saved as `leader-epoch-checkpoint`, and recovery rebuilds
//! it from the batches when that file is missing or damaged.
use super::tests::{open, run};
use super::*;
use crate::protocol::batch::tests::make_batch;

/// (base offset, partition_leader_epoch) of every batch in the log.
async fn stamped(log: &PartitionLog) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset().0;
    while at < log.written_offset().0 {
        let bytes = log.read_all(Offset(at), 1 << 20).await.unwrap().records.unwrap().to_bytes();
        for (_, b) in batch::BatchIter::new(&bytes) {
            let h = BatchHeader::read(b).unwrap();
            out.push((h.base_offset.get(), h.partition_leader_epoch.get()));
            at = h.last_offset() + 1;
        }
    }
    out
}

fn entries(log: &PartitionLog) -> Vec<(i32, i64)> {
    log.leader_epoch_cache().entries().iter().map(|e| (e.epoch.0, e.start_offset.0)).collect()
}

#[test]
fn batches_carry_their_epoch_and_recovery_rebuilds_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open(&path).await;
        // Three leaderships: epochs 0, 2 and 5, each with data; 8 KiB segments roll, so the
        // epochs span several segments.
        for (epoch, batches) in [(0, 12), (2, 9), (5, 7)] {
            log.assign_epoch(LeaderEpoch(epoch)).await.unwrap();
            for i in 0..batches {
                let out = log.append(make_batch(0, 5, 100, 1000 + i).into()).unwrap();
                log.wait_durable(out.end_offset, false).await.unwrap();
            }
        }
        assert!(log.segment_count() > 2);
        let want = vec![(0, 0), (2, 60), (5, 105)];
        assert_eq!(entries(&log), want);
        let stamps = stamped(&log).await;
        assert_eq!(stamps.len(), 28);
        assert!(stamps.iter().all(|&(o, e)| e
            == if o < 60 {
                0
            } else if o < 105 {
                2
            } else {
                5
            }));
        // OffsetForLeaderEpoch's answers: an epoch ends where the next begins; the latest at
        // the log end; a gap answers with the epoch below it; a future one is unknown.
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(0)), (LeaderEpoch(0), Offset(60)));
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(3)), (LeaderEpoch(2), Offset(105)));
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(5)), (LeaderEpoch(5), Offset(140)));
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(6)), (LeaderEpoch(-1), Offset(-1)));
        log.close().await;
        let checkpoint = path.join("t-0").join("leader-epoch-checkpoint");
        assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), "0\n3\n0 0\n2 60\n5 105\n");

        // Reopened with the checkpoint.
        let log = open(&path).await;
        assert_eq!(entries(&log), want);
        log.close().await;

        // Without it: rebuilt from every segment's batches, and saved again.
        std::fs::remove_file(&checkpoint).unwrap();
        let log = open(&path).await;
        assert_eq!(entries(&log), want, "rebuilt from the batches");
        assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), "0\n3\n0 0\n2 60\n5 105\n");
        log.close().await;

        // Damaged, or naming an epoch past the log end (a torn tail lost its batches): the
        // batches win.
        std::fs::write(&checkpoint, "0\n3\n0 0\n9 x\n").unwrap();
        let log = open(&path).await;
        assert_eq!(entries(&log), want);
        log.close().await;
        std::fs::write(&checkpoint, "0\n4\n0 0\n2 60\n5 105\n7 500\n").unwrap();
        let log = open(&path).await;
        assert_eq!(entries(&log), want, "an epoch starting past the log end is dropped");
        // A new leadership after the restart starts at the log end.
        log.assign_epoch(LeaderEpoch(8)).await.unwrap();
        let out = log.append(make_batch(0, 1, 10, 5000).into()).unwrap();
        log.wait_durable(out.end_offset, false).await.unwrap();
        assert_eq!(stamped(&log).await.last(), Some(&(140, 8)));
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(5)), (LeaderEpoch(5), Offset(140)));
        log.close().await;
    });
}

/// A follower cuts its log back to where it and the leader agree: truncation keeps the
/// whole batches below the offset, and reopening rebuilds the epoch cache, the indexes and
/// the producer state from what is left.
#[test]
fn truncation_keeps_whole_batches_below_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let tp = TopicPartition::new("t", 0);
        let log = open(&path).await;
        for (epoch, batches) in [(0, 12), (3, 30)] {
            log.assign_epoch(LeaderEpoch(epoch)).await.unwrap();
            for i in 0..batches {
                let out = log.append(make_batch(0, 5, 100, 1000 + i).into()).unwrap();
                log.wait_durable(out.end_offset, false).await.unwrap();
            }
        }
        assert!(log.segment_count() > 2, "8 KiB segments: later segments go whole");
        log.close().await;
        let partition_dir = path.join("t-0");

        // Inside a batch (72 is in the batch at 70): the batch goes too.
        assert_eq!(PartitionLog::truncate_closed(&tp, &partition_dir, Offset(72)).await.unwrap(), Offset(70));
        let log = open(&path).await;
        assert_eq!(log.log_end_offset(), Offset(70));
        assert_eq!(stamped(&log).await.last(), Some(&(65, 3)));
        assert_eq!(entries(&log), vec![(0, 0), (3, 60)]);
        log.close().await;

        // At the start of epoch 3: its entry goes; later appends follow on.
        assert_eq!(PartitionLog::truncate_closed(&tp, &partition_dir, Offset(60)).await.unwrap(), Offset(60));
        let log = open(&path).await;
        assert_eq!(entries(&log), vec![(0, 0)]);
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(0)), (LeaderEpoch(0), Offset(60)));
        log.assign_epoch(LeaderEpoch(5)).await.unwrap();
        let out = log.append(make_batch(0, 5, 100, 9000).into()).unwrap();
        log.wait_durable(out.end_offset, false).await.unwrap();
        assert_eq!(out.base_offset, Offset(60));
        let all = stamped(&log).await;
        assert_eq!(all.len(), 13);
        assert_eq!(all.last(), Some(&(60, 5)));
        log.close().await;
    });
}
