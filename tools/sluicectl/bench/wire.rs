//! The native client's wire layer: blocking request/response on `std::net::TcpStream`
//! with kafka-protocol messages, pre-encoded Produce frames, and zero-copy parsing of Fetch
//! responses down to record-batch headers.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreateTopicsRequest, CreateTopicsResponse, FetchRequest,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

pub const PRODUCE_VERSION: i16 = 7;
pub const FETCH_VERSION: i16 = 11;
const METADATA_VERSION: i16 = 8;
const LIST_OFFSETS_VERSION: i16 = 2;
const CREATE_TOPICS_VERSION: i16 = 4;
const API_VERSIONS_VERSION: i16 = 2;
/// Byte position of the correlation id in a request frame (size, api key, version).
pub const CORRELATION_POS: usize = 8;
const CLIENT_ID: &str = "sluicectl-bench";

/// What the benchmark needs to know about the topic.
#[derive(Clone, Debug)]
pub struct TopicMeta {
    pub topic: String,
    /// Leader address per partition index.
    pub partitions: Vec<String>,
}

fn io_err(what: &str, e: std::io::Error) -> String {
    format!("{what}: {e}")
}

/// Connects to `addr`, or with a bootstrap list ("host:port,host:port") to the first of
/// them that answers.
pub fn connect(addr: &str) -> Result<TcpStream, String> {
    let mut last = format!("no address in {addr:?}");
    for one in addr.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        match connect_one(one) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn connect_one(addr: &str) -> Result<TcpStream, String> {
    let sa = addr
        .to_socket_addrs()
        .map_err(|e| io_err(&format!("resolving {addr}"), e))?
        .next()
        .ok_or_else(|| format!("resolving {addr}: no address"))?;
    let s = TcpStream::connect_timeout(&sa, Duration::from_secs(10))
        .map_err(|e| io_err(&format!("connecting to {addr}"), e))?;
    s.set_nodelay(true).map_err(|e| io_err("TCP_NODELAY", e))?;
    Ok(s)
}

/// Encodes a complete request frame (size prefix, header, body).
pub fn encode_request<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Vec<u8>, String> {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str(CLIENT_ID));
    let hv = api.request_header_version(version);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0, 0, 0, 0]);
    header.encode(&mut buf, hv).map_err(|e| format!("encoding {api:?} header: {e}"))?;
    body.encode(&mut buf, version).map_err(|e| format!("encoding {api:?} v{version}: {e}"))?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.to_vec())
}

/// Reads one response frame into `buf` (without the size prefix). Returns false on a clean EOF
/// before the first byte.
pub fn read_frame<S: Read + ?Sized>(s: &mut S, buf: &mut Vec<u8>) -> Result<bool, String> {
    let mut size = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match s.read(&mut size[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err("connection closed inside a response frame".into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("reading response", e)),
        }
    }
    let n = i32::from_be_bytes(size);
    if n < 4 {
        return Err(format!("response frame of {n} bytes"));
    }
    buf.clear();
    buf.resize(n as usize, 0);
    s.read_exact(buf).map_err(|e| io_err("reading response", e))?;
    Ok(true)
}

/// One synchronous round trip; decodes the response body.
pub fn call<S: Read + Write + ?Sized, Req: Encodable, Resp: Decodable>(
    s: &mut S,
    api: ApiKey,
    version: i16,
    corr: i32,
    req: &Req,
) -> Result<Resp, String> {
    let frame = encode_request(api, version, corr, req)?;
    s.write_all(&frame).map_err(|e| io_err(&format!("sending {api:?}"), e))?;
    let mut buf = Vec::new();
    if !read_frame(s, &mut buf)? {
        return Err(format!("broker closed the connection on {api:?} v{version}"));
    }
    let mut b = Bytes::from(buf);
    let hv = api.response_header_version(version);
    let h = ResponseHeader::decode(&mut b, hv).map_err(|e| format!("decoding {api:?} response header: {e}"))?;
    if h.correlation_id != corr {
        return Err(format!("{api:?}: correlation id {} in response to {corr}", h.correlation_id));
    }
    Resp::decode(&mut b, version).map_err(|e| format!("decoding {api:?} v{version} response: {e}"))
}

/// ApiVersions, checking the versions this client speaks.
pub fn check_versions(s: &mut TcpStream) -> Result<(), String> {
    let r: ApiVersionsResponse = call(s, ApiKey::ApiVersions, API_VERSIONS_VERSION, 0, &ApiVersionsRequest::default())?;
    if r.error_code != 0 {
        return Err(format!("ApiVersions failed with error code {}", r.error_code));
    }
    for (api, v) in [
        (ApiKey::Produce, PRODUCE_VERSION),
        (ApiKey::Fetch, FETCH_VERSION),
        (ApiKey::Metadata, METADATA_VERSION),
        (ApiKey::ListOffsets, LIST_OFFSETS_VERSION),
    ] {
        let ok = r.api_keys.iter().any(|k| k.api_key == api as i16 && k.min_version <= v && v <= k.max_version);
        if !ok {
            return Err(format!("broker does not support {api:?} v{v}, which the native client uses"));
        }
    }
    Ok(())
}

fn metadata(s: &mut TcpStream, topic: &str, corr: i32) -> Result<MetadataResponse, String> {
    let mut req = MetadataRequest::default();
    let mut t = MetadataRequestTopic::default();
    t.name = Some(TopicName(StrBytes::from_string(topic.to_string())));
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = false;
    call(s, ApiKey::Metadata, METADATA_VERSION, corr, &req)
}

/// Creates the topic if it is missing, waits until every partition has a leader, and returns
/// the leaders' addresses.
pub fn prepare_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<TopicMeta, String> {
    let mut s = connect(bootstrap)?;
    check_versions(&mut s)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut created = false;
    let mut corr = 1;
    loop {
        corr += 1;
        let m = metadata(&mut s, topic, corr)?;
        let brokers: BTreeMap<i32, String> =
            m.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port))).collect();
        let t = m.topics.first().ok_or("Metadata response without the topic")?;
        match t.error_code {
            0 => {
                let mut parts: Vec<(i32, i32)> =
                    t.partitions.iter().map(|p| (p.partition_index, p.leader_id.0)).collect();
                parts.sort();
                let ready = !parts.is_empty()
                    && parts
                        .iter()
                        .enumerate()
                        .all(|(i, (idx, leader))| *idx == i as i32 && brokers.contains_key(leader));
                if ready {
                    if !created && parts.len() as i32 != partitions {
                        eprintln!(
                            "sluicectl bench: topic {topic} exists with {} partitions (--partitions {partitions} applies only when creating it)",
                            parts.len()
                        );
                    }
                    return Ok(TopicMeta {
                        topic: topic.to_string(),
                        partitions: parts.iter().map(|(_, l)| brokers[l].clone()).collect(),
                    });
                }
            }
            3 if !created => {
                corr += 1;
                create_topic(&mut s, topic, partitions, corr)?;
                created = true;
                continue;
            }
            3 | 5 => {} // unknown (just created) / leader not available: retry
            code => return Err(format!("Metadata for {topic}: error code {code}")),
        }
        if Instant::now() > deadline {
            return Err(format!("topic {topic}: partitions have no leader after 30 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn create_topic(s: &mut TcpStream, topic: &str, partitions: i32, corr: i32) -> Result<(), String> {
    let mut t = CreatableTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.num_partitions = partitions;
    t.replication_factor = -1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 30_000;
    let r: CreateTopicsResponse = call(s, ApiKey::CreateTopics, CREATE_TOPICS_VERSION, corr, &req)?;
    for t in &r.topics {
        // 36: TOPIC_ALREADY_EXISTS (a concurrent creator): fine.
        if t.error_code != 0 && t.error_code != 36 {
            return Err(format!(
                "creating topic {topic}: error code {}{}",
                t.error_code,
                t.error_message.as_ref().map(|m| format!(" ({})", m.as_str())).unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// Offsets of `partitions` at `timestamp` (-1 latest, -2 earliest).
pub fn list_offsets(addr: &str, topic: &str, partitions: &[i32], timestamp: i64) -> Result<BTreeMap<i32, i64>, String> {
    let mut s = connect(addr)?;
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = partitions
        .iter()
        .map(|&p| {
            let mut lp = ListOffsetsPartition::default();
            lp.partition_index = p;
            lp.timestamp = timestamp;
            lp
        })
        .collect();
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    let r: ListOffsetsResponse = call(&mut s, ApiKey::ListOffsets, LIST_OFFSETS_VERSION, 1, &req)?;
    let mut out = BTreeMap::new();
    for t in &r.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(format!("ListOffsets {topic}/{}: error code {}", p.partition_index, p.error_code));
            }
            out.insert(p.partition_index, p.offset);
        }
    }
    Ok(out)
}

/// A Produce request for one partition carrying one batch, encoded once. Only the
/// correlation id (and, for e2e, the timestamps in the record values and the CRC) change
/// per send.
pub struct ProduceFrame {
    #[allow(dead_code)]
    pub partition: i32,
    pub frame: Vec<u8>,
    /// Where the record batch starts in `frame`.
    pub batch_pos: usize,
    pub records: usize,
    /// Positions of the record values in `frame` (e2e timestamp patching).
    pub value_pos: Vec<usize>,
}

impl ProduceFrame {
    pub fn new(
        topic: &str,
        partition: i32,
        acks: i16,
        records: usize,
        value_len: usize,
        keyed: bool,
    ) -> Result<ProduceFrame, String> {
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let batch = if keyed {
            let value = vec![b'v'; value_len];
            let keys: Vec<Vec<u8>> = (0..records).map(|i| format!("key-{i:06}").into_bytes()).collect();
            let recs: Vec<(Option<&[u8]>, Option<&[u8]>)> =
                keys.iter().map(|k| (Some(k.as_slice()), Some(value.as_slice()))).collect();
            sluice::protocol::batch::encode_batch(0, &recs, ts)
        } else {
            sluice::protocol::batch::build_batch(0, records as i32, value_len, ts)
        };
        let mut pd = PartitionProduceData::default();
        pd.index = partition;
        pd.records = Some(Bytes::from(batch.clone()));
        let mut td = TopicProduceData::default();
        td.name = TopicName(StrBytes::from_string(topic.to_string()));
        td.partition_data = vec![pd];
        let mut req = ProduceRequest::default();
        req.acks = acks;
        req.timeout_ms = 30_000;
        req.topic_data = vec![td];
        let frame = encode_request(ApiKey::Produce, PRODUCE_VERSION, 0, &req)?;
        // The records are the last field of the (only) partition of the (only) topic.
        let batch_pos = frame.len() - batch.len();
        if frame[batch_pos..] != batch[..] {
            return Err("internal: record batch is not at the end of the Produce frame".into());
        }
        let value_pos = record_values(&batch).into_iter().map(|(p, _)| batch_pos + p).collect();
        Ok(ProduceFrame { partition, frame, batch_pos, records, value_pos })
    }

    pub fn set_correlation_id(&mut self, corr: i32) {
        self.frame[CORRELATION_POS..CORRELATION_POS + 4].copy_from_slice(&corr.to_be_bytes());
    }

    /// Writes `ts_ns` into the first 8 bytes of every record value and fixes the batch CRC.
    pub fn stamp(&mut self, ts_ns: u64) {
        let b = ts_ns.to_le_bytes();
        for &p in &self.value_pos {
            self.frame[p..p + 8].copy_from_slice(&b);
        }
        let batch = &mut self.frame[self.batch_pos..];
        let crc = sluice::protocol::batch::compute_crc(batch);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

/// First error code in a Produce response frame body (header + body, no size).
pub fn produce_response_error(frame: &[u8]) -> Result<(i32, Option<String>), String> {
    let mut b = Bytes::copy_from_slice(frame);
    let h = ResponseHeader::decode(&mut b, ApiKey::Produce.response_header_version(PRODUCE_VERSION))
        .map_err(|e| format!("decoding Produce response header: {e}"))?;
    let r = ProduceResponse::decode(&mut b, PRODUCE_VERSION).map_err(|e| format!("decoding Produce response: {e}"))?;
    for t in &r.responses {
        for p in &t.partition_responses {
            if p.error_code != 0 {
                return Ok((
                    h.correlation_id,
                    Some(format!("Produce to {}/{}: error code {}", t.name.0.as_str(), p.index, p.error_code)),
                ));
            }
        }
    }
    Ok((h.correlation_id, None))
}

/// A single-partition Fetch request.
pub fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: i32,
    max_wait_ms: i32,
    corr: i32,
) -> Result<Vec<u8>, String> {
    let mut p = FetchPartition::default();
    p.partition = partition;
    p.current_leader_epoch = -1;
    p.fetch_offset = offset;
    p.log_start_offset = -1;
    p.partition_max_bytes = max_bytes;
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = max_wait_ms;
    req.min_bytes = 1;
    req.max_bytes = max_bytes;
    req.isolation_level = 0;
    req.session_id = 0;
    req.session_epoch = -1;
    req.topics = vec![t];
    encode_request(ApiKey::Fetch, FETCH_VERSION, corr, &req)
}

/// One partition's part of a Fetch response; `records` are byte ranges into the frame.
pub struct FetchPart {
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub records: std::ops::Range<usize>,
}

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.pos + n > self.b.len() {
            return Err("truncated Fetch response".into());
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
}

/// Parses a Fetch v11 response frame (header + body, no size prefix) without copying the
/// records. Returns the correlation id and the partitions.
pub fn parse_fetch_response(frame: &[u8]) -> Result<(i32, i16, Vec<FetchPart>), String> {
    let mut c = Cur { b: frame, pos: 0 };
    let corr = c.i32()?;
    let _throttle = c.i32()?;
    let top_error = c.i16()?;
    let _session = c.i32()?;
    let mut parts = Vec::new();
    let topics = c.i32()?;
    for _ in 0..topics.max(0) {
        let name_len = c.i16()?;
        c.take(name_len.max(0) as usize)?;
        let np = c.i32()?;
        for _ in 0..np.max(0) {
            let partition = c.i32()?;
            let error_code = c.i16()?;
            let high_watermark = c.i64()?;
            let _lso = c.i64()?;
            let _log_start = c.i64()?;
            let aborted = c.i32()?;
            if aborted > 0 {
                c.take(aborted as usize * 16)?;
            }
            let _preferred = c.i32()?;
            let len = c.i32()?;
            let start = c.pos;
            if len > 0 {
                c.take(len as usize)?;
            }
            parts.push(FetchPart {
                partition,
                error_code,
                high_watermark,
                records: start..start + len.max(0) as usize,
            });
        }
    }
    Ok((corr, top_error, parts))
}

/// A whole record batch found in a records buffer, from its header only.
pub struct BatchRef {
    pub pos: usize,
    pub size: usize,
    pub base_offset: i64,
    pub last_offset: i64,
    pub records: i32,
    pub compressed: bool,
}

/// Complete batches in `records` (a trailing partial batch is ignored, as clients do).
pub fn batches(records: &[u8]) -> impl Iterator<Item = BatchRef> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos + 61 > records.len() {
            return None;
        }
        let b = &records[pos..];
        let len = i32::from_be_bytes(b[8..12].try_into().unwrap());
        if len < 49 {
            return None;
        }
        let size = len as usize + 12;
        if size > b.len() {
            return None;
        }
        let base_offset = i64::from_be_bytes(b[0..8].try_into().unwrap());
        let delta = i32::from_be_bytes(b[23..27].try_into().unwrap());
        let attrs = i16::from_be_bytes(b[21..23].try_into().unwrap());
        let count = i32::from_be_bytes(b[57..61].try_into().unwrap());
        let r = BatchRef {
            pos,
            size,
            base_offset,
            last_offset: base_offset + delta as i64,
            records: count,
            compressed: attrs & 0x07 != 0,
        };
        pos += size;
        Some(r)
    })
}

fn varint(b: &[u8], pos: &mut usize) -> Option<i64> {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    Some(((v >> 1) as i64) ^ -((v & 1) as i64))
}

/// (position, length) of each record's value in an uncompressed batch (-1 length: null).
pub fn record_values(batch: &[u8]) -> Vec<(usize, i64)> {
    let mut out = Vec::new();
    let mut pos = 61;
    while pos < batch.len() {
        let Some(len) = varint(batch, &mut pos) else { break };
        let end = pos + len.max(0) as usize;
        if end > batch.len() {
            break;
        }
        let mut p = pos + 1; // attributes
        let ok = (|| {
            varint(batch, &mut p)?; // timestamp delta
            varint(batch, &mut p)?; // offset delta
            let klen = varint(batch, &mut p)?;
            p += klen.max(0) as usize;
            let vlen = varint(batch, &mut p)?;
            Some(vlen)
        })();
        match ok {
            Some(vlen) => out.push((p, vlen)),
            None => break,
        }
        pos = end;
    }
    out
}
