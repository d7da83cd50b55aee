//! Broker metrics and their Prometheus text encoding (format 0.0.4).
//!
//! Counting: every shard owns one `ShardMetrics` block (in an `Arc`, created by `main`)
//! and is the only thread that writes it. Counters are Relaxed atomics updated with a
//! plain load and store (single writer: no lock, no read-modify-write, no allocation), so
//! the hot paths pay a few instructions per request, never per message. Histograms are a
//! fixed array of bucket counters. Storage code, which has no handle on its shard, counts
//! through a thread-local pointer to the block of the shard running on that thread.
//!
//! Reading: the admin listener (shard 0, background task queue) reads every block directly
//! at scrape time, and asks each shard over the message mesh for a `ShardStats` snapshot of
//! the state that lives in its `Rc`/`RefCell` structures (partition offsets, the fetch
//! cache, groups). Aggregation and formatting happen only then.
//!
//! Plain Rust: no glommio here.
use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt::{Display, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

use crate::limits;
use crate::model::TopicPartition;
use crate::storage::partition_log::LogStats;

/// A counter or gauge written by one thread (its shard) and read by any.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Only the owning shard's thread may call this: a load and a store, not an atomic
    /// add, because there is a single writer.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }
    #[inline]
    pub fn sub(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency buckets, in microseconds (0.1 ms … 1 s; plus +Inf).
pub const LATENCY_BUCKETS_US: [u64; 12] =
    [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];
const BUCKETS: usize = LATENCY_BUCKETS_US.len() + 1;

/// A latency histogram: one counter per bucket (not cumulative; the encoder sums them) and
/// the sum of all observations in microseconds.
#[derive(Default)]
pub struct Histogram {
    buckets: [Counter; BUCKETS],
    sum_us: Counter,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HistogramSnapshot {
    pub counts: [u64; BUCKETS],
    pub sum_us: u64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl Histogram {
    #[inline]
    pub fn observe(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let i = LATENCY_BUCKETS_US.partition_point(|&bound| bound < us);
        self.buckets[i].add(1);
        self.sum_us.add(us);
    }
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot { counts: std::array::from_fn(|i| self.buckets[i].get()), sum_us: self.sum_us.get() }
    }
}

/// One shard's counters. Written only by that shard (see the module comment).
pub struct ShardMetrics {
    /// Requests handled, by Kafka API key.
    requests: [Counter; limits::API_KEYS_MAX],
    /// Requests that failed: closed for a bad request, an unsupported version or a handler
    /// panic, or Produce/Fetch requests with at least one partition error.
    request_errors: [Counter; limits::API_KEYS_MAX],
    /// Produce and Fetch handling time, from the decoded request to the response built
    /// (a Fetch includes its long-poll wait, as Kafka's `TotalTimeMs` does).
    pub produce_latency: Histogram,
    pub fetch_latency: Histogram,
    /// Record-batch bytes and records accepted by Produce requests received on this shard.
    pub produce_bytes: Counter,
    pub produce_messages: Counter,
    /// Record-batch bytes and records sent in Fetch responses from this shard.
    pub fetch_bytes: Counter,
    pub fetch_messages: Counter,
    pub connections_open: Counter,
    pub connections_accepted: Counter,
    pub connections_refused: Counter,
    /// Messages this shard sent to each other shard (index: destination).
    cross_shard_sent_to: Box<[Counter]>,
    /// Messages this shard received from the others.
    pub cross_shard_received: Counter,
    /// ISR changes this shard's leaders made (AlterPartition accepted): fewer members, more.
    pub isr_shrinks: Counter,
    pub isr_expands: Counter,
    /// fdatasync of segment files (the count is the histogram's).
    pub fdatasync: Histogram,
}

impl ShardMetrics {
    pub fn new(shards: usize) -> ShardMetrics {
        ShardMetrics {
            requests: std::array::from_fn(|_| Counter::default()),
            request_errors: std::array::from_fn(|_| Counter::default()),
            produce_latency: Histogram::default(),
            fetch_latency: Histogram::default(),
            produce_bytes: Counter::default(),
            produce_messages: Counter::default(),
            fetch_bytes: Counter::default(),
            fetch_messages: Counter::default(),
            connections_open: Counter::default(),
            connections_accepted: Counter::default(),
            connections_refused: Counter::default(),
            cross_shard_sent_to: (0..shards).map(|_| Counter::default()).collect(),
            cross_shard_received: Counter::default(),
            isr_shrinks: Counter::default(),
            isr_expands: Counter::default(),
            fdatasync: Histogram::default(),
        }
    }

    /// One request of `api` handled in `elapsed`; `failed` adds it to the errors.
    #[inline]
    pub fn request(&self, api: ApiKey, elapsed: Duration, failed: bool) {
        let i = api as i16 as usize;
        if i < limits::API_KEYS_MAX {
            self.requests[i].add(1);
            if failed {
                self.request_errors[i].add(1);
            }
        }
        match api {
            ApiKey::Produce => self.produce_latency.observe(elapsed),
            ApiKey::Fetch => self.fetch_latency.observe(elapsed),
            _ => {}
        }
    }

    /// A request of `api` that failed in part (counted as a request by `request`).
    #[inline]
    pub fn request_failed(&self, api: ApiKey) {
        let i = api as i16 as usize;
        if i < limits::API_KEYS_MAX {
            self.request_errors[i].add(1);
        }
    }

    #[inline]
    pub fn cross_shard_sent(&self, to: usize) {
        if let Some(c) = self.cross_shard_sent_to.get(to) {
            c.add(1);
        }
    }

    fn cross_shard_sent_to(&self, to: usize) -> u64 {
        self.cross_shard_sent_to.get(to).map(Counter::get).unwrap_or(0)
    }
}

thread_local! {
    static CURRENT: OnceCell<Arc<ShardMetrics>> = const { OnceCell::new() };
}

/// Makes `m` the block that code on this thread without a shard handle (storage) counts
/// into. Called once per shard thread; later calls are ignored.
pub fn install_for_this_thread(m: Arc<ShardMetrics>) {
    CURRENT.with(|c| {
        let _ = c.set(m);
    });
}

/// Counts one segment fdatasync on this thread's shard (nothing outside a shard thread).
pub fn record_fdatasync(elapsed: Duration) {
    CURRENT.with(|c| {
        if let Some(m) = c.get() {
            m.fdatasync.observe(elapsed);
        }
    });
}

/// One partition's state at scrape time.
#[derive(Debug, Clone)]
pub struct PartitionStats {
    pub tp: TopicPartition,
    pub log: LogStats,
    /// From the partition, not the log: what consumers may read up to.
    pub high_watermark: i64,
    pub leader_epoch: i32,
    /// The partition's leader (-1: none), replica count and in-sync replica count, as
    /// this node knows them.
    pub leader: i32,
    pub replicas: usize,
    pub isr: usize,
    pub is_leader: bool,
    /// Followed here: how far this replica's log end is behind the leader's high
    /// watermark as last learned (0 on the leader).
    pub follower_lag: i64,
}

/// One committed offset of a group whose coordinator is on the reporting shard.
#[derive(Debug, Clone)]
pub struct GroupOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// What one shard reports to a scrape: the state behind its `Rc`s, copied out.
#[derive(Debug, Clone, Default)]
pub struct ShardStats {
    pub shard: usize,
    pub partitions: Vec<PartitionStats>,
    pub cache_used_bytes: u64,
    pub cache_budget_bytes: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Groups whose coordinator is this shard (with members or only committed offsets).
    pub groups: usize,
    /// At most `limit` of their committed offsets (see `METRICS_GROUP_OFFSETS_MAX`).
    pub group_offsets: Vec<GroupOffset>,
}

/// Broker-wide facts for the scrape.
#[derive(Debug, Clone)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub version: &'static str,
    pub uptime: Duration,
    pub ready: bool,
}

/// Writes the Prometheus text exposition of everything: `shards[i]` is shard i's block,
/// `stats` the snapshots that came back (a shard that did not answer is missing).
pub fn encode(out: &mut String, broker: &BrokerInfo, shards: &[Arc<ShardMetrics>], stats: &[ShardStats]) {
    let mut t = Text { out };
    t.family("sluice_build_info", "gauge", "Always 1; the version and node id are labels.");
    t.sample("sluice_build_info", &[("version", &broker.version), ("node_id", &broker.node_id)], 1);
    t.family("sluice_ready", "gauge", "1 once every shard has loaded its partitions, 0 before and during shutdown.");
    t.sample("sluice_ready", &[], broker.ready as u8);
    t.family("sluice_uptime_seconds", "gauge", "Seconds since the broker process started.");
    t.sample("sluice_uptime_seconds", &[], broker.uptime.as_secs_f64());

    let per_shard = |t: &mut Text, name: &str, kind: &str, help: &str, get: &dyn Fn(&ShardMetrics) -> u64| {
        t.family(name, kind, help);
        for (i, m) in shards.iter().enumerate() {
            t.sample(name, &[("shard", &i)], get(m));
        }
    };

    // Requests by API: a series appears once its count is non-zero.
    let apis = |get: &dyn Fn(&ShardMetrics, usize) -> u64| {
        let mut v = Vec::new();
        for (s, m) in shards.iter().enumerate() {
            for k in 0..limits::API_KEYS_MAX {
                let n = get(m, k);
                if n > 0 {
                    v.push((s, api_name(k), n));
                }
            }
        }
        v
    };
    t.family("sluice_requests_total", "counter", "Kafka requests handled, by shard and API.");
    for (s, api, n) in apis(&|m, k| m.requests[k].get()) {
        t.sample("sluice_requests_total", &[("shard", &s), ("api", &api)], n);
    }
    t.family(
        "sluice_request_errors_total",
        "counter",
        "Requests that failed: the connection closed (bad request, unsupported version), or a Produce/Fetch with a partition error.",
    );
    for (s, api, n) in apis(&|m, k| m.request_errors[k].get()) {
        t.sample("sluice_request_errors_total", &[("shard", &s), ("api", &api)], n);
    }
    per_shard(&mut t, "sluice_produce_bytes_total", "counter", "Record-batch bytes accepted by Produce.", &|m| {
        m.produce_bytes.get()
    });
    per_shard(&mut t, "sluice_produce_messages_total", "counter", "Records accepted by Produce.", &|m| {
        m.produce_messages.get()
    });
    per_shard(&mut t, "sluice_fetch_bytes_total", "counter", "Record-batch bytes sent in Fetch responses.", &|m| {
        m.fetch_bytes.get()
    });
    per_shard(&mut t, "sluice_fetch_messages_total", "counter", "Records sent in Fetch responses.", &|m| {
        m.fetch_messages.get()
    });
    per_shard(&mut t, "sluice_connections", "gauge", "Open Kafka client connections.", &|m| m.connections_open.get());
    per_shard(&mut t, "sluice_connections_accepted_total", "counter", "Kafka client connections accepted.", &|m| {
        m.connections_accepted.get()
    });
    per_shard(
        &mut t,
        "sluice_connections_refused_total",
        "counter",
        "Connections closed at once by max.connections or max.connections.per.ip.",
        &|m| m.connections_refused.get(),
    );
    per_shard(&mut t, "sluice_cross_shard_messages_sent_total", "counter", "Messages sent to other shards.", &|m| {
        (0..shards.len()).map(|d| m.cross_shard_sent_to(d)).sum()
    });
    per_shard(
        &mut t,
        "sluice_cross_shard_messages_received_total",
        "counter",
        "Messages received from other shards.",
        &|m| m.cross_shard_received.get(),
    );
    per_shard(&mut t, "sluice_isr_shrinks_total", "counter", "ISR shrinks by this shard's leaders.", &|m| {
        m.isr_shrinks.get()
    });
    per_shard(&mut t, "sluice_isr_expands_total", "counter", "ISR expansions by this shard's leaders.", &|m| {
        m.isr_expands.get()
    });
    t.family(
        "sluice_cross_shard_queue_depth",
        "gauge",
        "Messages sent to this shard and not yet received by it (approximate: counters read one by one).",
    );
    for (d, m) in shards.iter().enumerate() {
        let sent: u64 = shards.iter().map(|s| s.cross_shard_sent_to(d)).sum();
        t.sample("sluice_cross_shard_queue_depth", &[("shard", &d)], sent.saturating_sub(m.cross_shard_received.get()));
    }
    // From the shards' snapshots.
    let cache = |t: &mut Text, name: &str, kind: &str, help: &str, get: &dyn Fn(&ShardStats) -> u64| {
        t.family(name, kind, help);
        for s in stats {
            t.sample(name, &[("shard", &s.shard)], get(s));
        }
    };
    cache(&mut t, "sluice_fetch_cache_hits_total", "counter", "Reads served from the fetch cache.", &|s| s.cache_hits);
    cache(&mut t, "sluice_fetch_cache_misses_total", "counter", "Reads that went to the segment files.", &|s| {
        s.cache_misses
    });
    cache(&mut t, "sluice_fetch_cache_bytes", "gauge", "Bytes held by the fetch cache.", &|s| s.cache_used_bytes);
    cache(&mut t, "sluice_fetch_cache_budget_bytes", "gauge", "sluice.fetch.cache.bytes.", &|s| s.cache_budget_bytes);
    cache(&mut t, "sluice_partitions", "gauge", "Partitions owned by the shard.", &|s| s.partitions.len() as u64);
    cache(&mut t, "sluice_consumer_groups", "gauge", "Consumer groups coordinated by the shard.", &|s| s.groups as u64);

    t.family(
        "sluice_request_latency_seconds",
        "histogram",
        "Produce and Fetch handling time (a Fetch includes its long-poll wait).",
    );
    for (s, m) in shards.iter().enumerate() {
        t.histogram("sluice_request_latency_seconds", &[("shard", &s), ("api", &"Produce")], &m.produce_latency);
        t.histogram("sluice_request_latency_seconds", &[("shard", &s), ("api", &"Fetch")], &m.fetch_latency);
    }
    t.family("sluice_fdatasync_latency_seconds", "histogram", "fdatasync calls on segment files, and their duration.");
    for (s, m) in shards.iter().enumerate() {
        t.histogram("sluice_fdatasync_latency_seconds", &[("shard", &s)], &m.fdatasync);
    }

    let mut parts: Vec<(usize, &PartitionStats)> =
        stats.iter().flat_map(|s| s.partitions.iter().map(move |p| (s.shard, p))).collect();
    parts.sort_by(|a, b| a.1.tp.cmp(&b.1.tp));
    let partition_family = |t: &mut Text, name: &str, help: &str, get: &dyn Fn(&PartitionStats) -> i64| {
        t.family(name, "gauge", help);
        for (s, p) in &parts {
            t.sample(name, &[("shard", s), ("topic", &p.tp.topic), ("partition", &p.tp.partition)], get(p));
        }
    };
    partition_family(&mut t, "sluice_partition_log_end_offset", "The offset the next appended record gets.", &|p| {
        p.log.log_end_offset.0
    });
    partition_family(&mut t, "sluice_partition_high_watermark", "Offsets below this are committed and served.", &|p| {
        p.high_watermark
    });
    partition_family(&mut t, "sluice_partition_leader_epoch", "The leader epoch the partition acts under.", &|p| {
        p.leader_epoch as i64
    });
    partition_family(&mut t, "sluice_partition_leader", "The partition's leader (-1: none).", &|p| p.leader as i64);
    partition_family(&mut t, "sluice_partition_in_sync_replicas", "Replicas in the ISR.", &|p| p.isr as i64);
    partition_family(
        &mut t,
        "sluice_partition_under_replicated",
        "1 on the leader of a partition whose ISR is smaller than its replica set.",
        &|p| i64::from(p.is_leader && p.isr < p.replicas),
    );
    partition_family(
        &mut t,
        "sluice_partition_follower_lag",
        "On a follower: the leader's high watermark (as last learned) minus this log's end, at least 0.",
        &|p| p.follower_lag,
    );
    partition_family(&mut t, "sluice_partition_log_start_offset", "The first offset kept.", &|p| {
        p.log.log_start_offset.0
    });
    partition_family(&mut t, "sluice_partition_segments", "Segment files.", &|p| p.log.segments as i64);
    partition_family(&mut t, "sluice_partition_size_bytes", "Bytes in the partition's segments.", &|p| {
        p.log.size_bytes as i64
    });

    let hwm: HashMap<(&str, i32), i64> =
        parts.iter().map(|(_, p)| ((&*p.tp.topic, p.tp.partition), p.high_watermark)).collect();
    let mut offsets: Vec<&GroupOffset> = stats.iter().flat_map(|s| &s.group_offsets).collect();
    offsets.sort_by(|a, b| (&a.group, &a.topic, a.partition).cmp(&(&b.group, &b.topic, b.partition)));
    offsets.truncate(limits::METRICS_GROUP_OFFSETS_MAX);
    t.family("sluice_group_committed_offset", "gauge", "A consumer group's committed offset.");
    for o in &offsets {
        let labels: [(&str, &dyn Display); 3] = [("group", &o.group), ("topic", &o.topic), ("partition", &o.partition)];
        t.sample("sluice_group_committed_offset", &labels, o.offset);
    }
    t.family("sluice_group_lag", "gauge", "High watermark minus the committed offset (0 if the offset is past it).");
    for o in &offsets {
        if let Some(&end) = hwm.get(&(o.topic.as_str(), o.partition)) {
            let labels: [(&str, &dyn Display); 3] =
                [("group", &o.group), ("topic", &o.topic), ("partition", &o.partition)];
            t.sample("sluice_group_lag", &labels, (end - o.offset).max(0));
        }
    }
}

/// The Kafka name of an API key (`Produce`, `Fetch`, …).
fn api_name(key: usize) -> String {
    match ApiKey::try_from(key as i16) {
        Ok(k) => format!("{k:?}"),
        Err(_) => key.to_string(),
    }
}

struct Text<'a> {
    out: &'a mut String,
}

impl Text<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &dyn Display)], value: impl Display) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    fn labels(&mut self, labels: &[(&str, &dyn Display)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        let le = le.map(|v| ("le", v));
        for (k, v) in labels.iter().map(|(k, v)| (*k, v.to_string())).chain(le.map(|(k, v)| (k, v.to_string()))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.out.push_str("\\\\"),
                    '"' => self.out.push_str("\\\""),
                    '\n' => self.out.push_str("\\n"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        self.out.push('}');
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &dyn Display)], h: &Histogram) {
        let snap = h.snapshot();
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BUCKETS_US.iter().enumerate() {
            cumulative += snap.counts[i];
            self.out.push_str(&bucket);
            self.labels(labels, Some(&(*bound as f64 / 1e6).to_string()));
            let _ = writeln!(self.out, " {cumulative}");
        }
        self.out.push_str(&bucket);
        self.labels(labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", snap.count());
        self.sample(&format!("{name}_sum"), labels, snap.sum_us as f64 / 1e6);
        self.sample(&format!("{name}_count"), labels, snap.count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Offset;

    #[test]
    fn histogram_buckets_are_upper_bounds() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(100)); // le 0.0001
        h.observe(Duration::from_micros(101)); // le 0.00025
        h.observe(Duration::from_secs(5)); // +Inf
        let s = h.snapshot();
        assert_eq!(s.counts[0], 1);
        assert_eq!(s.counts[1], 1);
        assert_eq!(s.counts[BUCKETS - 1], 1);
        assert_eq!(s.count(), 3);
        assert_eq!(s.sum_us, 5_000_201);
    }

    #[test]
    fn text_format_groups_families_and_escapes_labels() {
        let m = Arc::new(ShardMetrics::new(2));
        m.request(ApiKey::Produce, Duration::from_micros(300), false);
        m.request(ApiKey::Fetch, Duration::from_millis(2), true);
        m.cross_shard_sent(1);
        let stats = vec![ShardStats {
            shard: 0,
            partitions: vec![PartitionStats {
                tp: TopicPartition::new("t", 0),
                log: LogStats {
                    log_end_offset: Offset(10),
                    written_offset: Offset(10),
                    log_start_offset: Offset(0),
                    segments: 1,
                    size_bytes: 99,
                },
                high_watermark: 10,
                leader_epoch: 3,
                leader: 1,
                replicas: 1,
                isr: 1,
                is_leader: true,
                follower_lag: 0,
            }],
            groups: 1,
            group_offsets: vec![GroupOffset { group: "g\"1".into(), topic: "t".into(), partition: 0, offset: 4 }],
            ..Default::default()
        }];
        let info = BrokerInfo { node_id: 1, version: "0.1.0", uptime: Duration::from_secs(3), ready: true };
        let mut out = String::new();
        encode(&mut out, &info, &[m, Arc::new(ShardMetrics::new(2))], &stats);
        assert!(out.contains("sluice_requests_total{shard=\"0\",api=\"Produce\"} 1\n"), "{out}");
        assert!(out.contains("sluice_request_errors_total{shard=\"0\",api=\"Fetch\"} 1\n"), "{out}");
        assert!(out.contains("sluice_request_latency_seconds_bucket{shard=\"0\",api=\"Produce\",le=\"0.0005\"} 1\n"));
        assert!(out.contains("sluice_request_latency_seconds_count{shard=\"0\",api=\"Fetch\"} 1\n"));
        assert!(out.contains("sluice_cross_shard_queue_depth{shard=\"1\"} 1\n"), "{out}");
        assert!(out.contains("sluice_partition_log_end_offset{shard=\"0\",topic=\"t\",partition=\"0\"} 10\n"));
        assert!(out.contains("sluice_group_lag{group=\"g\\\"1\",topic=\"t\",partition=\"0\"} 6\n"), "{out}");
        // Each family's HELP and TYPE once, and its samples right after them.
        let mut seen = std::collections::HashSet::new();
        let mut current = String::new();
        for line in out.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().unwrap().to_string();
                assert!(seen.insert(current.clone()), "{current} twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(name.starts_with(&current), "{name} outside its family {current}");
            }
        }
    }
}
