//! A follower's log: batches appended as the leader placed them (`append_replicated`)
//! make a log that is the leader's byte for byte, with the same epochs, and the same
//! idempotent-producer state.
use super::tests::{idempotent_batch, open, run};
use super::*;
use crate::protocol::batch::tests::make_batch;

/// Every byte of the log from its start to its written end.
async fn all_bytes(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset().0;
    while at < log.written_offset().0 {
        let bytes = log.read_all(Offset(at), 1 << 20).await.unwrap().records.unwrap().to_bytes();
        for (_, b) in batch::BatchIter::new(&bytes) {
            at = BatchHeader::read(b).unwrap().last_offset() + 1;
            out.extend_from_slice(b);
        }
    }
    out
}

#[test]
fn a_follower_log_is_its_leaders_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (lpath, fpath) = (dir.path().join("leader"), dir.path().join("follower"));
    run(move || async move {
        let leader = open(&lpath).await;
        for (epoch, batches) in [(0, 6), (3, 5)] {
            leader.assign_epoch(LeaderEpoch(epoch)).await.unwrap();
            for i in 0..batches {
                let out = leader.append(make_batch(0, 5, 100, 1000 + i).into()).unwrap();
                leader.wait_durable(out.end_offset, false).await.unwrap();
            }
        }
        let out = leader.append(idempotent_batch(7, 0, 0, 3)).unwrap();
        leader.wait_durable(out.end_offset, false).await.unwrap();
        let bytes = Bytes::from(all_bytes(&leader).await);

        let follower = open(&fpath).await;
        // A gap is refused, and nothing of it is appended.
        let mut later = make_batch(0, 2, 10, 1);
        batch::set_base_offset(&mut later, 10);
        assert!(matches!(follower.append_replicated(later.into()).await, Err(AppendError::Malformed)));
        assert_eq!(follower.written_offset(), Offset(0));
        // The leader's batches in two fetches, split inside the second epoch.
        let split = batch::BatchIter::new(&bytes).take(8).map(|(_, b)| b.len()).sum::<usize>();
        let a = follower.append_replicated(bytes.slice(..split)).await.unwrap();
        assert_eq!((a.base_offset, a.end_offset), (Offset(0), Offset(40)));
        let b = follower.append_replicated(bytes.slice(split..)).await.unwrap();
        assert_eq!((b.base_offset, b.end_offset), (Offset(40), Offset(58)));
        follower.wait_durable(b.end_offset, true).await.unwrap();
        assert_eq!(all_bytes(&follower).await, bytes.to_vec(), "offsets and epochs kept as the leader placed them");
        let epochs = |l: &PartitionLog| l.leader_epoch_cache().entries().to_vec();
        assert_eq!(epochs(&follower), epochs(&leader));
        // The producer's batch was replicated: a retry sent to this replica (once it leads)
        // is answered with the original offsets, not written again.
        let retry = follower.append(idempotent_batch(7, 0, 0, 3)).unwrap();
        assert_eq!((retry.base_offset, retry.end_offset), (Offset(55), Offset(58)));
        assert_eq!(follower.written_offset(), Offset(58));
        follower.close().await;
        // Recovery finds the same log and epochs.
        let reopened = open(&fpath).await;
        assert_eq!(all_bytes(&reopened).await, bytes.to_vec());
        assert_eq!(epochs(&reopened), epochs(&leader));
        reopened.close().await;
        leader.close().await;
    });
}
