//! `sluicectl bench produce|consume|e2e`: load benchmarks in the spirit of
//! kafka-producer-perf-test / kafka-consumer-perf-test / the OpenMessaging Benchmark.
//!
//! Two clients:
//! - `native` (default): a pipelined Kafka client on `std::net::TcpStream` (see `wire.rs`,
//!   `native.rs`). Produce requests are encoded once per partition and only the correlation
//!   id is patched per send; a window of requests is in flight per connection, with one
//!   writer and one reader thread each. Fetches are pipelined per partition.
//! - `librdkafka`: rdkafka's synchronous `BaseProducer` / `BaseConsumer` (`rdk.rs`).
//!
//! Latency is recorded in an HdrHistogram (ns). With `--rate`, every batch has an intended
//! send time on a fixed schedule and latency is measured from that time, so a stalled
//! broker is not hidden by the client waiting for it (coordinated omission).
//! Results: a live line per second on stderr, a summary on stdout, `--json [FILE]`
//! (global `--json` flag followed by an optional file), `--plot FILE.svg`.
mod native;
mod rdk;
mod report;
mod stats;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

pub use crate::util::Compression;
pub use stats::Shared;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Produce load; latency = acknowledgement time − (intended) send time.
    Produce(BenchArgs),
    /// Consume a topic from its beginning; throughput of fetched records.
    Consume(BenchArgs),
    /// Produce and consume in one process; latency = consume time − send time embedded in
    /// each record.
    E2e(BenchArgs),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Client {
    /// Pipelined client on std TcpStream with pre-encoded record batches.
    Native,
    /// rdkafka BaseProducer / BaseConsumer.
    Librdkafka,
}

#[derive(Args, Clone, Debug, Serialize)]
pub struct BenchArgs {
    /// Topic to use.
    #[arg(long, default_value = "sluice-bench")]
    pub topic: String,
    /// Partitions to create the topic with if it does not exist.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Producer clients (each its own connection(s)).
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Consumer clients (partitions are split among them).
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Record value size in bytes (no key).
    #[arg(long, default_value_t = 100)]
    pub message_size: usize,
    /// Records per batch (native: per Produce request; librdkafka: batch.num.messages).
    #[arg(long, default_value_t = 1000)]
    pub batch_messages: usize,
    /// Native: give record i of every batch the key `key-<i>` (as many keys as
    /// --batch-messages), so a compacted topic keeps one batch's worth of records and its
    /// cleaner always has work: a compaction load.
    #[arg(long)]
    pub keyed: bool,
    /// 0, 1 or all.
    #[arg(long, default_value = "1", value_parser = ["0", "1", "all", "-1"])]
    pub acks: String,
    /// Compression codec (native client: none only).
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// Fixed total rate in messages/s (all producers together); latency is measured from
    /// each batch's intended send time. Default: as fast as possible.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measure for this many seconds (after the warmup). Default 10 unless --messages.
    #[arg(long, conflicts_with = "messages")]
    pub duration: Option<f64>,
    /// Measure exactly this many messages (after the warmup), all producers/consumers together.
    #[arg(long)]
    pub messages: Option<u64>,
    /// Seconds of load before measuring starts; excluded from all results.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Write the latency percentile curve as an SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Which client library generates the load.
    #[arg(long, value_enum, default_value_t = Client::Native)]
    pub client: Client,
    /// Fetch size per partition (partition_max_bytes and max_bytes).
    #[arg(long, default_value_t = 1 << 20)]
    pub fetch_bytes: i32,
    /// Native: requests in flight per producer connection.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Native: fetches in flight per partition (consume; e2e always uses 1).
    #[arg(long, default_value_t = 4)]
    pub fetch_depth: usize,
    /// librdkafka: linger.ms.
    #[arg(long, default_value_t = 5.0)]
    pub linger_ms: f64,
    /// Consume: on reaching the end of a partition, start over from its beginning (measures
    /// fetches of data already in the broker's cache over a long --duration).
    #[arg(long)]
    pub rewind: bool,
    /// Give up (error) after this many seconds in total.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
    /// librdkafka producers write in transactions: each producer's id is this with its
    /// index appended, and it commits every `--commit-interval-ms`.
    #[arg(long)]
    pub transactional_id: Option<String>,
    /// With `--transactional-id`: how often each producer commits.
    #[arg(long, default_value_t = 100)]
    pub commit_interval_ms: u64,
    /// librdkafka consumers: `read_committed` (librdkafka's default) or `read_uncommitted`.
    #[arg(long, default_value = "read_committed", value_parser = ["read_committed", "read_uncommitted"])]
    pub isolation_level: String,
    /// A PLAINTEXT listener to prepare the topic on (metadata, creation) when `--bootstrap`
    /// is an SSL or SASL listener the librdkafka client reaches with `--command-config`.
    #[arg(long)]
    pub prepare_bootstrap: Option<String>,
    /// With the global --json flag: the file to write the result to (stdout if absent).
    #[arg(value_name = "JSON_FILE")]
    pub json_file: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Produce,
    Consume,
    E2e,
}

impl BenchArgs {
    pub fn acks_i16(&self) -> i16 {
        match self.acks.as_str() {
            "0" => 0,
            "1" => 1,
            _ => -1,
        }
    }
    /// Measured duration when running by time.
    pub fn duration_limit(&self) -> Option<Duration> {
        match (self.duration, self.messages) {
            (Some(d), _) => Some(Duration::from_secs_f64(d)),
            (None, Some(_)) => None,
            (None, None) => Some(Duration::from_secs(10)),
        }
    }
    fn check(&self, mode: Mode) -> Result<(), String> {
        if self.partitions < 1 {
            return Err("--partitions must be at least 1".into());
        }
        if self.producers < 1 || self.consumers < 1 {
            return Err("--producers and --consumers must be at least 1".into());
        }
        if self.batch_messages < 1 {
            return Err("--batch-messages must be at least 1".into());
        }
        if mode == Mode::E2e && self.message_size < 8 {
            return Err("e2e needs --message-size of at least 8 (the send timestamp is embedded)".into());
        }
        if let Some(r) = self.rate {
            if r.is_nan() || r <= 0.0 {
                return Err("--rate must be positive".into());
            }
        }
        if self.client == Client::Native && self.compression != Compression::None {
            return Err(
                "the native client sends uncompressed batches only; use --client librdkafka for --compression".into()
            );
        }
        if self.window < 1 || self.fetch_depth < 1 {
            return Err("--window and --fetch-depth must be at least 1".into());
        }
        if self.fetch_bytes < 1024 {
            return Err("--fetch-bytes must be at least 1024".into());
        }
        if self.transactional_id.is_some() && self.client != Client::Librdkafka {
            return Err("--transactional-id needs --client librdkafka".into());
        }
        if self.transactional_id.is_some() && self.acks != "all" && self.acks != "-1" {
            return Err("--transactional-id needs --acks all (transactions are idempotent)".into());
        }
        Ok(())
    }
}

pub fn run(cli: &crate::Cli, cmd: &BenchCmd) -> Result<(), String> {
    let (mode, args) = match cmd {
        BenchCmd::Produce(a) => (Mode::Produce, a),
        BenchCmd::Consume(a) => (Mode::Consume, a),
        BenchCmd::E2e(a) => (Mode::E2e, a),
    };
    args.check(mode)?;
    if let (Some(file), false) = (&args.json_file, cli.json) {
        return Err(format!("unexpected argument '{}' (a result file goes after --json: --json FILE)", file.display()));
    }
    // Topic and partition leaders, via the native protocol for both clients.
    let secured =
        crate::util::command_config().get("security.protocol").is_some_and(|p| !p.eq_ignore_ascii_case("PLAINTEXT"));
    if secured && (args.client == Client::Native || args.prepare_bootstrap.is_none()) {
        return Err(
            "over SSL or SASL: --client librdkafka, with --prepare-bootstrap naming a PLAINTEXT listener".into()
        );
    }
    let meta =
        wire::prepare_topic(args.prepare_bootstrap.as_deref().unwrap_or(&cli.bootstrap), &args.topic, args.partitions)?;
    let shared = Shared::new(args, mode);
    let progress = stats::spawn_progress(shared.clone(), mode);
    let result = match args.client {
        Client::Native => native::run(&shared, args, mode, &meta),
        Client::Librdkafka => rdk::run(&shared, &cli.bootstrap, args, mode, &meta),
    };
    shared.finish();
    let _ = progress.join();
    result?;
    let summary = report::Summary::collect(&shared, args, mode, &cli.bootstrap, &meta);
    report::print(&summary, cli.json && args.json_file.is_none());
    if cli.json {
        if let Some(path) = &args.json_file {
            let text = serde_json::to_string_pretty(&summary.to_json()).map_err(|e| e.to_string())?;
            std::fs::write(path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
    }
    if let Some(path) = &args.plot {
        let svg = report::svg(&shared.merged_histogram(), &summary.title());
        std::fs::write(path, svg).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Runs one load-generator thread; its error, if any, fails the whole run.
fn spawn<F: FnOnce() -> Result<(), String> + Send + 'static>(
    name: String,
    shared: &std::sync::Arc<Shared>,
    f: F,
) -> std::thread::JoinHandle<()> {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            if let Err(e) = f() {
                shared.fail(e);
            }
        })
        .expect("spawn bench thread")
}

/// Waits for the producers, then tells consumers no more data comes (and a produce-only
/// run to stop).
fn finish_producers(shared: &Shared, producers: Vec<std::thread::JoinHandle<()>>, mode: Mode) {
    use std::sync::atomic::Ordering;
    for p in producers {
        let _ = p.join();
    }
    shared.producers_done.store(true, Ordering::SeqCst);
    if mode == Mode::Produce {
        shared.stop.store(true, Ordering::SeqCst);
    }
}

/// Waits for the consumers; the run's result is the first error any thread reported.
fn join_consumers(shared: &Shared, consumers: Vec<std::thread::JoinHandle<()>>) -> Result<(), String> {
    for c in consumers {
        let _ = c.join();
    }
    match shared.error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
