//! Entry points for the fuzz targets in `fuzz/` and their regression test
//! (`tests/fuzz_regressions.rs`): untrusted bytes through the same decoding and validation
//! the broker runs on them. Each must return, whatever the input: no panic, no abort, no
//! allocation sized by the input beyond its bounds.
use bytes::Bytes;
use kafka_protocol::messages::*;

use crate::protocol::batch::{self, BatchHeader, BatchIter};
use crate::protocol::frame::{parse_request, FrameError, Request};
use crate::server::handlers::SUPPORTED;

/// A request frame body (after the size prefix): header, then the body as the handler for
/// its API and version decodes it, then any record batches a Produce carries.
pub fn request_frame(data: &[u8]) {
    let Ok(req) = parse_request(Bytes::copy_from_slice(data)) else { return };
    let version = req.version();
    if !SUPPORTED.iter().any(|&(k, min, max)| k == req.api_key && (min..=max).contains(&version)) {
        return;
    }
    if let Ok(Some(records)) = decode_body(&req) {
        for r in records {
            record_batches(&r);
        }
    }
}

/// Decodes the body; for a Produce, returns the record sets it carries.
fn decode_body(req: &Request) -> Result<Option<Vec<Bytes>>, FrameError> {
    match req.api_key {
        ApiKey::Produce => {
            let r: ProduceRequest = req.decode()?;
            let sets = r.topic_data.into_iter().flat_map(|t| t.partition_data).filter_map(|p| p.records).collect();
            return Ok(Some(sets));
        }
        ApiKey::Fetch => drop(req.decode::<FetchRequest>()?),
        ApiKey::ListOffsets => drop(req.decode::<ListOffsetsRequest>()?),
        ApiKey::Metadata => drop(req.decode::<MetadataRequest>()?),
        ApiKey::CreateTopics => drop(req.decode::<CreateTopicsRequest>()?),
        ApiKey::DeleteTopics => drop(req.decode::<DeleteTopicsRequest>()?),
        ApiKey::DescribeCluster => drop(req.decode::<DescribeClusterRequest>()?),
        ApiKey::FindCoordinator => drop(req.decode::<FindCoordinatorRequest>()?),
        ApiKey::JoinGroup => drop(req.decode::<JoinGroupRequest>()?),
        ApiKey::SyncGroup => drop(req.decode::<SyncGroupRequest>()?),
        ApiKey::Heartbeat => drop(req.decode::<HeartbeatRequest>()?),
        ApiKey::LeaveGroup => drop(req.decode::<LeaveGroupRequest>()?),
        ApiKey::OffsetCommit => drop(req.decode::<OffsetCommitRequest>()?),
        ApiKey::OffsetFetch => drop(req.decode::<OffsetFetchRequest>()?),
        ApiKey::OffsetDelete => drop(req.decode::<OffsetDeleteRequest>()?),
        ApiKey::ListGroups => drop(req.decode::<ListGroupsRequest>()?),
        ApiKey::DescribeGroups => drop(req.decode::<DescribeGroupsRequest>()?),
        ApiKey::DeleteGroups => drop(req.decode::<DeleteGroupsRequest>()?),
        ApiKey::DescribeConfigs => drop(req.decode::<DescribeConfigsRequest>()?),
        ApiKey::AlterConfigs => drop(req.decode::<AlterConfigsRequest>()?),
        ApiKey::IncrementalAlterConfigs => drop(req.decode::<IncrementalAlterConfigsRequest>()?),
        ApiKey::CreatePartitions => drop(req.decode::<CreatePartitionsRequest>()?),
        ApiKey::InitProducerId => drop(req.decode::<InitProducerIdRequest>()?),
        ApiKey::DeleteRecords => drop(req.decode::<DeleteRecordsRequest>()?),
        ApiKey::ApiVersions => drop(req.decode::<ApiVersionsRequest>()?),
        _ => {}
    }
    Ok(None)
}

/// Record batches as a produce append checks them: each validated in turn, then patched
/// the way an append patches them, and read back. Run twice: as given, and with every
/// batch's CRC made to match (random bytes almost never pass a CRC, which would keep the
/// fuzzer from everything behind it).
pub fn record_batches(data: &[u8]) {
    check_batches(data);
    let mut fixed = data.to_vec();
    let mut at = 0;
    while let Ok(size) = batch::peek_batch_bytes(&fixed[at..]) {
        if size < batch::HEADER_BYTES || at + size > fixed.len() {
            break;
        }
        let crc = batch::compute_crc(&fixed[at..at + size]);
        BatchHeader::read_mut(&mut fixed[at..at + size]).expect("header-sized").crc.set(crc);
        at += size;
    }
    check_batches(&fixed);
}

fn check_batches(data: &[u8]) {
    let mut buf = data.to_vec();
    let mut at = 0;
    while at < buf.len() {
        let Ok(info) = batch::validate(&buf[at..], usize::MAX) else { break };
        let b = &mut buf[at..at + info.bytes];
        batch::set_base_offset(b, 1 << 40);
        batch::set_log_append_time(b, 1_700_000_000_000);
        assert!(batch::validate(b, usize::MAX).is_ok(), "a patched batch stays valid");
        let h = BatchHeader::read(b).expect("validated");
        assert_eq!(h.last_offset(), (1 << 40) + info.last_offset_delta as i64);
        let _ = crate::storage::producer_batch(h);
        at += info.bytes;
    }
    for (_, b) in BatchIter::new(data) {
        let _ = BatchHeader::read(b);
    }
}

#[cfg(test)]
mod seeds {
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    fn frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Vec<u8> {
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = 7;
        header.client_id = Some(StrBytes::from_static_str("seed"));
        let header_version = api.request_header_version(version);
        let mut out = BytesMut::new();
        header.encode(&mut out, header_version).unwrap();
        body.encode(&mut out, version).unwrap();
        out.to_vec()
    }

    /// Writes the seed corpus (`cargo test --lib write_fuzz_seeds -- --ignored`).
    #[test]
    #[ignore]
    fn write_fuzz_seeds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        let batches = [batch::build_batch(0, 3, 20, 1_000), batch::build_batch(5, 1, 0, 2_000)];
        let mut two = batches[0].clone();
        two.extend_from_slice(&batches[1]);
        std::fs::write(root.join("record_batches/one"), &batches[0]).unwrap();
        std::fs::write(root.join("record_batches/two"), &two).unwrap();

        let mut produce = ProduceRequest::default();
        produce.acks = 1;
        produce.timeout_ms = 1000;
        let mut pd = produce_request::PartitionProduceData::default();
        pd.records = Some(Bytes::from(two));
        let mut td = produce_request::TopicProduceData::default();
        td.name = TopicName(StrBytes::from_static_str("t"));
        td.partition_data = vec![pd];
        produce.topic_data = vec![td];
        let mut metadata = MetadataRequest::default();
        metadata.topics = Some(vec![{
            let mut t = metadata_request::MetadataRequestTopic::default();
            t.name = Some(TopicName(StrBytes::from_static_str("t")));
            t
        }]);
        let mut fetch = FetchRequest::default();
        fetch.max_bytes = 1 << 20;
        fetch.topics = vec![{
            let mut t = fetch_request::FetchTopic::default();
            t.topic = TopicName(StrBytes::from_static_str("t"));
            t.partitions = vec![fetch_request::FetchPartition::default()];
            t
        }];
        let seeds = [
            ("produce_v3", frame(ApiKey::Produce, 3, &produce)),
            ("produce_v9", frame(ApiKey::Produce, 9, &produce)),
            ("metadata_v1", frame(ApiKey::Metadata, 1, &metadata)),
            ("metadata_v12", frame(ApiKey::Metadata, 12, &metadata)),
            ("fetch_v4", frame(ApiKey::Fetch, 4, &fetch)),
            ("fetch_v12", frame(ApiKey::Fetch, 12, &fetch)),
            ("api_versions_v3", frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())),
            ("find_coordinator_v3", frame(ApiKey::FindCoordinator, 3, &FindCoordinatorRequest::default())),
            ("join_group_v5", frame(ApiKey::JoinGroup, 5, &JoinGroupRequest::default())),
            ("offset_commit_v8", frame(ApiKey::OffsetCommit, 8, &OffsetCommitRequest::default())),
        ];
        for (name, bytes) in seeds {
            std::fs::write(root.join("request_frame").join(name), bytes).unwrap();
        }
    }
}
