//! Transactions in the log against real files: the last stable offset, markers, the
//! aborted-transactions index, across rolls, restarts and replication.
use super::tests::{idempotent_batch, open, read_all, run};
use super::*;
use crate::storage::producer_state::SequenceError;

fn txn_batch(pid: i64, epoch: i16, seq: i32, records: i32) -> Bytes {
    let mut b = idempotent_batch(pid, epoch, seq, records).to_vec();
    let h = BatchHeader::read_mut(&mut b).unwrap();
    h.attributes.set(h.attributes.get() | batch::ATTR_TRANSACTIONAL);
    let crc = crc32c::crc32c(&b[batch::CRC_START..]);
    BatchHeader::read_mut(&mut b).unwrap().crc.set(crc);
    Bytes::from(b)
}

fn plain(n: i32) -> Bytes {
    crate::protocol::batch::tests::make_batch(0, n, 200, 1).into()
}

#[test]
fn open_transactions_hold_the_stable_offset_and_aborts_are_indexed_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open(&path).await;
        let a0 = log.append(plain(2)).unwrap();
        let t7 = log.append(txn_batch(7, 0, 0, 3)).unwrap();
        let t8 = log.append(txn_batch(8, 0, 0, 2)).unwrap();
        log.append(txn_batch(7, 0, 3, 1)).unwrap();
        let end = log.append(plain(1)).unwrap().end_offset;
        assert_eq!(a0.base_offset, Offset(0));
        assert_eq!(log.last_stable_offset(end), t7.base_offset, "producer 7's transaction is the oldest open one");
        assert_eq!(log.last_stable_offset(Offset(1)), Offset(1), "never past the high watermark");
        // A client may not write markers; the coordinator may not under an old epoch.
        let forged = crate::protocol::control::marker_batch(8, 0, 0, true, 1);
        assert!(matches!(log.append(Bytes::from(forged)), Err(AppendError::ControlBatch)));
        log.append(txn_batch(9, 3, 0, 1)).unwrap();
        assert!(matches!(
            log.append_marker(ProducerId(9), 2, 0, false),
            Err(AppendError::Sequence(SequenceError::FencedEpoch { .. }))
        ));
        let abort8 = log.append_marker(ProducerId(8), 0, 0, false).unwrap();
        let commit7 = log.append_marker(ProducerId(7), 0, 0, true).unwrap();
        assert_eq!(log.last_stable_offset(commit7.end_offset), Offset(9), "only producer 9's is open");
        let aborted = log.aborted_between(Offset(0), commit7.end_offset);
        assert_eq!(aborted.len(), 1);
        assert_eq!((aborted[0].producer_id, aborted[0].first_offset), (ProducerId(8), t8.base_offset));
        assert_eq!(aborted[0].last_offset, abort8.base_offset);
        assert!(log.aborted_between(abort8.base_offset.next(), commit7.end_offset).is_empty(), "after its marker");
        assert!(log.aborted_between(Offset(0), t8.base_offset).is_empty(), "before its data");
        // Enough data to seal and finalize the segments holding all of that.
        let mut end = commit7.end_offset;
        for _ in 0..80 {
            end = log.append(plain(1)).unwrap().end_offset;
        }
        log.wait_durable(end, true).await.unwrap();
        let markers_before = read_all(&log).await;
        log.close().await;
        let files: Vec<String> = std::fs::read_dir(path.join("t-0"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(files.iter().any(|f| f.ends_with(".txnindex")), "{files:?}");

        let log = open(&path).await;
        assert!(log.state.borrow().segments[0].finalized, "the first segment is not rescanned");
        assert_eq!(log.aborted_between(Offset(0), end), aborted, "the index was saved");
        assert_eq!(log.last_stable_offset(end), Offset(9), "producer 9's transaction is still open");
        assert_eq!(read_all(&log).await, markers_before);
        let abort9 = log.append_marker(ProducerId(9), 3, 0, false).unwrap();
        assert_eq!(log.last_stable_offset(abort9.end_offset), abort9.end_offset);
        let all = log.aborted_between(Offset(0), abort9.end_offset);
        assert_eq!(all.iter().map(|a| (a.producer_id.0, a.first_offset.0)).collect::<Vec<_>>(), [(8, 5), (9, 9)]);
        log.close().await;

        // The last marker sits in the active segment: recovery finds it by scanning.
        let log = open(&path).await;
        assert_eq!(log.aborted_between(Offset(0), abort9.end_offset), all);
        assert_eq!(log.last_stable_offset(abort9.end_offset), abort9.end_offset);
        log.close().await;
    });
}

#[test]
fn a_follower_learns_transactions_from_the_replicated_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let leader = open(&path.join("leader")).await;
        leader.append(txn_batch(5, 1, 0, 2)).unwrap();
        leader.append(plain(1)).unwrap();
        leader.append(txn_batch(6, 0, 0, 1)).unwrap();
        leader.append_marker(ProducerId(5), 1, 0, false).unwrap();
        let end = leader.append(plain(1)).unwrap().end_offset;
        leader.wait_durable(end, false).await.unwrap();
        let bytes = leader.read_all(Offset(0), 1 << 20).await.unwrap().records.unwrap().to_bytes();
        let follower = open(&path.join("follower")).await;
        follower.append_replicated(bytes).await.unwrap();
        assert_eq!(follower.aborted_between(Offset(0), end), leader.aborted_between(Offset(0), end));
        assert_eq!(follower.last_stable_offset(end), Offset(3), "producer 6's transaction is open");
        leader.close().await;
        follower.close().await;
    });
}

/// KIP-890: a transactional batch that would open a transaction needs the guard of a
/// verification that still holds; a marker between the verification and the append (the
/// transaction ended meanwhile) spends the guard, and the late write is refused.
#[test]
fn a_write_verified_before_its_transaction_ended_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = open(&path).await;
        let check = |g| TxnCheck::Verified(g);
        let first = txn_batch(7, 0, 0, 1);
        assert!(matches!(log.append_checked(first.clone(), check(None)), Err(AppendError::NotInTransaction)));
        let (pid, epoch, guard) = log.start_txn_verification(&first).expect("it would open a transaction");
        assert_eq!((pid, epoch), (ProducerId(7), 0));
        assert!(matches!(
            log.append_checked(first.clone(), check(Some(guard + 1))),
            Err(AppendError::NotInTransaction)
        ));
        log.append_checked(first, check(Some(guard))).unwrap();
        // Inside the open transaction: nothing to verify.
        assert_eq!(log.start_txn_verification(&txn_batch(7, 0, 1, 1)), None);
        log.append_checked(txn_batch(7, 0, 1, 1), check(None)).unwrap();
        // The next transaction: verified, but its transaction is aborted (a marker) before
        // the write arrives.
        log.append_marker(ProducerId(7), 0, 0, true).unwrap();
        let late = txn_batch(7, 0, 2, 1);
        let (_, _, guard) = log.start_txn_verification(&late).unwrap();
        let end = log.append_marker(ProducerId(7), 0, 0, false).unwrap().end_offset;
        assert!(matches!(log.append_checked(late, check(Some(guard))), Err(AppendError::NotInTransaction)));
        assert_eq!(log.log_end_offset(), end, "nothing appended");
        assert_eq!(log.last_stable_offset(end), end, "no transaction left open");
        // Not transactional, or not checked (the broker's own writes): as before.
        log.append_checked(plain(1), check(None)).unwrap();
        log.append_checked(txn_batch(8, 0, 0, 1), TxnCheck::Off).unwrap();
        log.close().await;
    });
}
