//! Sluice: a Kafka-compatible message broker, thread-per-core on glommio.
//!
//! Layout (what each module owns):
//! - `limits`: every bound on untrusted input and every queue depth, in one place.
//! - `config`: `server.properties` parsing and per-topic configuration.
//! - `model`: newtypes for offsets, epochs, shards, nodes, producers, partitions.
//! - `cluster`: sans-IO partition state: leader epochs, high watermark, in-sync replicas.
//! - `protocol`: record-batch header layout, validation and in-place patching; frame codec.
//! - `metadata`: the metadata image, a state machine fed by records.
//! - `controller`: the controller quorum (openraft) whose log holds those records, and the
//!   active controller's logic; on a thread of its own.
//! - `rpc`: the controller listener's transport (Raft messages, forwarded operations).
//! - `storage`: partition logs: segments, indexes, recovery, the fetch cache (glommio I/O in `storage::io`).
//! - `shard`: executors, partition placement, cross-shard messages.
//! - `security`: what clients may do (so far: Kafka's answer without an authorizer).
//! - `server`: the TCP listener, connections, one handler module per Kafka API, and the
//!   admin HTTP listener (metrics, health, status).
//! - `metrics`: per-shard counters and histograms, and their Prometheus text encoding.
//! - `fuzzing`: entry points for the fuzz targets in `fuzz/`.
pub mod alloc;
pub mod cluster;
pub mod config;
pub mod controller;
#[doc(hidden)]
pub mod fuzzing;
pub mod group;
pub mod limits;
pub mod metadata;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod rpc;
pub mod security;
pub mod server;
pub mod shard;
pub mod storage;
pub mod sync;
pub mod txn;
