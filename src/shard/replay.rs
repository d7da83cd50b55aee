//! Reading an internal topic's partition back from its start (the group and transaction
//! coordinators' state, when a partition comes to be led here).
use bytes::Bytes;
use kafka_protocol::records::{Record, RecordBatchDecoder};

use crate::model::Offset;
use crate::protocol::batch::{self, BatchHeader};
use crate::storage::PartitionLog;

/// Calls `f` with every batch of `log` written so far, in order, and its decoded records
/// (a batch that does not decode is skipped). A read that fails ends the replay, logged
/// as `what`.
pub async fn each_batch(log: &PartitionLog, what: &str, mut f: impl FnMut(&BatchHeader, &[u8], Vec<Record>)) {
    let mut at = log.log_start_offset().0;
    let end = log.written_offset().0;
    while at < end {
        let chunk = match log.read_all(Offset(at), 4 << 20).await {
            Ok(r) => match r.records {
                Some(set) => set.to_bytes(),
                None => break,
            },
            Err(e) => {
                tracing::error!(partition = %log.topic_partition(), error = %e, "cannot load {what}");
                break;
            }
        };
        for (_, b) in batch::BatchIter::new(&chunk) {
            let h = BatchHeader::read(b).expect("whole batch");
            at = h.last_offset() + 1;
            let mut bytes = Bytes::copy_from_slice(b);
            if let Ok(set) = RecordBatchDecoder::decode(&mut bytes) {
                f(h, b, set.records);
            }
        }
    }
}
