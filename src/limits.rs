//! Every bound on untrusted input, every queue depth and every buffer size, in one place.
//!
//! Nothing read from the wire is used to size an allocation before it is checked
//! against a bound from this module (DESIGN §7).

/// Smallest legal request frame: api key (2) + api version (2) + correlation id (4).
pub const FRAME_BYTES_MIN: u32 = 8;
/// Default for `socket.request.max.bytes` (Kafka's default, 100 MiB).
pub const FRAME_BYTES_MAX_DEFAULT: u32 = 104_857_600;
/// Default for `queued.max.request.bytes`: request frames read and not yet answered, all
/// connections together. A reader waits for room before it allocates a frame, so clients
/// that send large requests slowly, or never read their responses, cannot grow the broker
/// past this (Kafka's default is unbounded).
pub const QUEUED_REQUEST_BYTES_DEFAULT: u64 = 512 << 20;
/// Request frames are read (and their memory taken) in steps of at most this many bytes, so
/// a client that announces a large request and stalls holds little.
pub const FRAME_READ_STEP_BYTES: usize = 1 << 20;
/// Request frames up to this size take their memory from the small pool of the request
/// budget, which large requests cannot exhaust (see `server::request_budget`).
pub const SMALL_FRAME_BYTES: usize = 64 * 1024;
/// A request frame whose bytes stop arriving for this long closes its connection, giving
/// back the memory it holds (the wait for the size prefix of the next frame is not bounded:
/// idle connections are fine).
pub const FRAME_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Requests a single connection may have in flight before the broker stops reading from it.
/// A TLS handshake that has not finished in this long is abandoned and its connection
/// closed (a client that opens the connection and never speaks holds nothing longer).
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
pub const CONNECTION_INFLIGHT_MAX: usize = 128;
/// Depth of each cross-shard channel; a full channel is backpressure.
pub const SHARD_CHANNEL_DEPTH: usize = 1024;
/// Messages from other shards a shard runs at once (each a task); past that its channels
/// fill and the senders wait.
pub const SHARD_MESSAGES_IN_FLIGHT_MAX: usize = 1024;
/// Cross-shard long polls (Fetch `WaitForData`) a shard holds at once, apart from the work
/// above: idle consumers must not take the permits produce needs.
pub const SHARD_WAITS_IN_FLIGHT_MAX: usize = 16 * 1024;
/// Longest legal topic name (Kafka: 249).
pub const TOPIC_NAME_LEN_MAX: usize = 249;
/// Most partitions one topic may have.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;
/// Most records one batch may claim to hold (compressed batches can claim more than their
/// byte length, so this is an absolute cap on top of the byte-based check).
pub const RECORDS_PER_BATCH_MAX: i32 = 10_000_000;
/// Smallest possible encoded record: length, attributes, timestamp delta, offset delta,
/// key length, value length, header count: one byte each.
pub const RECORD_BYTES_MIN: usize = 7;
/// O_DIRECT alignment for segment writes and reads.
pub const DMA_ALIGN: u64 = 4096;
/// Segment writes in flight per partition (whole-block writes pipelined; see the writer).
pub const WRITES_IN_FLIGHT_MAX: usize = 4;
/// Per-shard DMA memory registered with io_uring. glommio's default (10 MiB) is less than
/// four multi-MiB writes in flight; buffers past it come from the general allocator, and the
/// produce ceiling fell by a fifth (BENCHMARKS.md).
pub const IO_MEMORY_BYTES_DEFAULT: u64 = 64 << 20;
/// Largest chunk read from a segment in one DMA read when serving a fetch or scanning.
pub const READ_CHUNK_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Chunk used by recovery scans.
pub const RECOVERY_CHUNK_BYTES: usize = 1024 * 1024;
/// Bytes between two sparse offset-index entries (Kafka's `index.interval.bytes`).
pub const INDEX_INTERVAL_BYTES: u64 = 4096;
/// Bounds for `log.segment.bytes` / `segment.bytes`.
pub const SEGMENT_BYTES_MIN: u64 = 4096;
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;
/// Default per-shard fetch cache budget.
pub const FETCH_CACHE_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;
/// Most bytes a single fetch response may carry, whatever the client asks for.
pub const FETCH_RESPONSE_BYTES_MAX: i32 = 64 * 1024 * 1024;
/// Longest a fetch may long-poll, whatever the client asks for.
pub const FETCH_WAIT_MS_MAX: i32 = 60_000;
/// Most metadata records one topic configuration may carry.
pub const TOPIC_CONFIGS_MAX: usize = 256;
/// Most partitions in one DescribeTopicPartitions response (Kafka's
/// `max.request.partition.size.limit` default); the client pages on with the cursor.
pub const DESCRIBE_TOPIC_PARTITIONS_MAX: usize = 2000;
/// Default port of the admin HTTP listener (`admin.listeners`; Redpanda's admin port).
pub const ADMIN_PORT_DEFAULT: u16 = 9644;
/// Longest admin HTTP request head (request line and headers); longer gets 431.
pub const ADMIN_REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// An admin HTTP request head must arrive within this; the connection is closed after.
pub const ADMIN_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// An admin HTTP response must be taken by the client within this.
pub const ADMIN_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// After an admin response, at most this many further request bytes are read and dropped
/// before the connection closes (see the lingering close in `server::admin`).
pub const ADMIN_LINGER_BYTES_MAX: usize = 64 * 1024;
/// … and for at most this long.
pub const ADMIN_LINGER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Admin HTTP connections served at once; more are closed at once.
pub const ADMIN_CONNECTIONS_MAX: usize = 16;
/// How long a scrape waits for each shard's statistics; a shard that does not answer in
/// time is left out of that scrape.
pub const ADMIN_COLLECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Most (group, partition) committed-offset series one scrape exports, over all shards.
pub const METRICS_GROUP_OFFSETS_MAX: usize = 10_000;
/// Kafka API keys counted per shard (keys are below this; 92 is the highest in 4.0).
pub const API_KEYS_MAX: usize = 128;

const _: () = assert!(SEGMENT_BYTES_MIN % DMA_ALIGN == 0);
const _: () = assert!(READ_CHUNK_BYTES_MAX as u64 % DMA_ALIGN == 0);
const _: () = assert!(RECOVERY_CHUNK_BYTES as u64 % DMA_ALIGN == 0);
const _: () = assert!(DMA_ALIGN.is_power_of_two());
const _: () = assert!(FRAME_BYTES_MIN >= 8);
/// Entries a leader-epoch checkpoint may hold (a damaged count is not trusted further).
pub const LEADER_EPOCH_ENTRIES_MAX: usize = 1 << 20;

// The controller quorum and its listener.
/// Largest frame on the controller listener, and largest entry in the controller log: a
/// batch of Raft entries or a snapshot chunk (openraft sends snapshots in 3 MiB chunks).
pub const CONTROLLER_FRAME_MAX: usize = 32 << 20;
/// The controller log is rewritten without its purged prefix once that prefix is this big
/// and more than half the file.
pub const CONTROLLER_LOG_REWRITE_BYTES: u64 = 4 << 20;
/// The active controller's Raft heartbeat to the other voters.
pub const CONTROLLER_RAFT_HEARTBEAT_MS: u64 = 250;
/// A voter that hears no leader for this long (to twice this, at random) starts an election.
pub const CONTROLLER_ELECTION_TIMEOUT_MS: u64 = 1000;
/// How long a metadata operation may wait for an active controller (including forwarding).
pub const CONTROLLER_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// A controller-listener connection idle this long is closed.
pub const CONTROLLER_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
const _: () = assert!(CONTROLLER_RAFT_HEARTBEAT_MS * 3 <= CONTROLLER_ELECTION_TIMEOUT_MS);
/// How often the active controller looks for expired broker sessions.
pub const CONTROLLER_SESSION_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
/// How long a voter holds a broker's metadata poll open waiting for a newer image.
pub const CONTROLLER_IMAGE_POLL: std::time::Duration = std::time::Duration::from_secs(2);
