//! Console producer (lines from stdin) and console consumer (formatted records).
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::json;

use crate::util::{self, code_desc, kerr, print_json, Compression};

#[derive(Clone, Copy, ValueEnum)]
pub enum Acks {
    #[value(name = "0")]
    Zero,
    #[value(name = "1")]
    One,
    #[value(name = "all", alias = "-1")]
    All,
}

#[derive(Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Split each line into key and value at the first SEP.
    #[arg(short = 'k', long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Header KEY=VALUE added to every record (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = util::kv_arg)]
    pub headers: Vec<(String, String)>,
    /// Produce to this partition (default: the partitioner chooses).
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Required acknowledgements.
    #[arg(long, value_enum, default_value = "all")]
    pub acks: Acks,
    /// Compression codec.
    #[arg(short = 'z', long, value_enum, default_value = "none")]
    pub compression: Compression,
}

#[derive(Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Start at the earliest offset (default: only new records).
    #[arg(short = 'b', long)]
    pub from_beginning: bool,
    /// Consume as a member of this group (subscribes, commits offsets).
    #[arg(short, long)]
    pub group: Option<String>,
    /// Consume only this partition.
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Start offset with --partition: N, "earliest" or "latest".
    #[arg(short, long, requires = "partition")]
    pub offset: Option<String>,
    /// Exit after COUNT records.
    #[arg(short = 'n', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,
    /// Exit when the end of every assigned partition is reached.
    #[arg(short = 'e', long)]
    pub exit_at_end: bool,
    /// Output format: %k key, %v value, %p partition, %o offset, %t timestamp (ms),
    /// %h headers (k=v,k=v), %T topic, %% percent; \n and \t escapes.
    #[arg(short, long, default_value = "%v")]
    pub format: String,
}

// ---------------------------------------------------------------------------
// produce
// ---------------------------------------------------------------------------

#[derive(Default)]
struct DeliveryState {
    ok: AtomicUsize,
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
    per_partition: Mutex<BTreeMap<i32, (i64, i64, usize)>>,
}

struct ProduceContext(Arc<DeliveryState>);

impl ClientContext for ProduceContext {}

impl ProducerContext for ProduceContext {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(m) => {
                self.0.ok.fetch_add(1, Ordering::SeqCst);
                let mut pp = self.0.per_partition.lock().unwrap();
                let e = pp.entry(m.partition()).or_insert((m.offset(), m.offset(), 0));
                e.0 = e.0.min(m.offset());
                e.1 = e.1.max(m.offset());
                e.2 += 1;
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::SeqCst);
                let mut fe = self.0.first_error.lock().unwrap();
                if fe.is_none() {
                    *fe = Some(kerr(e));
                }
            }
        }
    }
}

pub fn produce(cli: &crate::Cli, args: &ProduceArgs) -> Result<(), String> {
    // Check the topic (and the connection) first, for a clear and fast error.
    {
        let c = util::query_consumer(cli, None)?;
        let parts = util::topic_partitions(cli, &c, &args.topic)?;
        if let Some(p) = args.partition {
            if !parts.contains(&p) {
                return Err(format!("unknown partition {p} of topic '{}'", args.topic));
            }
        }
    }
    let state = Arc::new(DeliveryState::default());
    let mut cfg = util::base_config(cli);
    cfg.set(
        "acks",
        match args.acks {
            Acks::Zero => "0",
            Acks::One => "1",
            Acks::All => "all",
        },
    )
    .set("compression.type", args.compression.librdkafka_name())
    .set("linger.ms", "5")
    .set("message.timeout.ms", "30000")
    .set("allow.auto.create.topics", "false");
    if matches!(args.acks, Acks::Zero | Acks::One) {
        // Idempotence requires acks=all.
        cfg.set("enable.idempotence", "false");
    }
    let producer: BaseProducer<ProduceContext> = cfg
        .create_with_context(ProduceContext(state.clone()))
        .map_err(|e| format!("cannot create producer: {}", kerr(&e)))?;

    let headers: Option<OwnedHeaders> = if args.headers.is_empty() {
        None
    } else {
        let mut h = OwnedHeaders::new_with_capacity(args.headers.len());
        for (k, v) in &args.headers {
            h = h.insert(Header { key: k, value: Some(v.as_bytes()) });
        }
        Some(h)
    };

    let stdin = std::io::stdin();
    let mut lines = 0usize;
    for line in stdin.lock().split(b'\n') {
        let mut line = line.map_err(|e| format!("reading stdin: {e}"))?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let (key, value): (Option<&[u8]>, &[u8]) = match &args.key_separator {
            Some(sep) if !sep.is_empty() => match find(&line, sep.as_bytes()) {
                Some(i) => (Some(&line[..i]), &line[i + sep.len()..]),
                None => (None, &line[..]),
            },
            _ => (None, &line[..]),
        };
        let mut rec: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(&args.topic).payload(value);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(p) = args.partition {
            rec = rec.partition(p);
        }
        if let Some(h) = &headers {
            rec = rec.headers(h.clone());
        }
        let mut rec = Some(rec);
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(r) = rec.take() {
            match producer.send(r) {
                Ok(()) => {}
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    if Instant::now() >= deadline {
                        return Err("produce: local queue stayed full for 60 s".into());
                    }
                    producer.poll(Duration::from_millis(20));
                    rec = Some(r);
                }
                Err((e, _)) => return Err(format!("produce to '{}': {}", args.topic, kerr(&e))),
            }
        }
        lines += 1;
        producer.poll(Duration::ZERO);
    }
    // Flush at EOF: wait for every delivery report (bounded by message.timeout.ms).
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let _ = producer.flush(Duration::from_millis(500));
        let reported = state.ok.load(Ordering::SeqCst) + state.failed.load(Ordering::SeqCst);
        if reported >= lines && producer.in_flight_count() == 0 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "produce to '{}': {} of {lines} records not acknowledged in time",
                args.topic,
                lines - reported
            ));
        }
    }
    let ok = state.ok.load(Ordering::SeqCst);
    let failed = state.failed.load(Ordering::SeqCst);
    if failed > 0 {
        let e = state.first_error.lock().unwrap().clone().unwrap_or_default();
        return Err(format!("produce to '{}': {failed} of {lines} records failed: {e}", args.topic));
    }
    if cli.json {
        let pp = state.per_partition.lock().unwrap();
        let parts: Vec<_> = pp
            .iter()
            .map(|(p, (lo, hi, n))| json!({"partition": p, "first_offset": lo, "last_offset": hi, "records": n}))
            .collect();
        print_json(&json!({"topic": args.topic, "records": ok, "partitions": parts}));
    } else {
        println!("produced {ok} records to '{}'", args.topic);
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// consume
// ---------------------------------------------------------------------------

fn format_record(fmt: &str, m: &BorrowedMessage<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = fmt.chars().peekable();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('k') => out.extend_from_slice(m.key().unwrap_or(b"null")),
                Some('v') => out.extend_from_slice(m.payload().unwrap_or(b"null")),
                Some('p') => out.extend_from_slice(m.partition().to_string().as_bytes()),
                Some('o') => out.extend_from_slice(m.offset().to_string().as_bytes()),
                Some('t') => out.extend_from_slice(m.timestamp().to_millis().unwrap_or(-1).to_string().as_bytes()),
                Some('T') => out.extend_from_slice(m.topic().as_bytes()),
                Some('h') => out.extend_from_slice(headers_string(m).as_bytes()),
                Some('%') => out.push(b'%'),
                Some(o) => {
                    out.push(b'%');
                    out.extend_from_slice(o.encode_utf8(&mut buf).as_bytes());
                }
                None => out.push(b'%'),
            },
            '\\' => match chars.peek() {
                Some('n') => {
                    chars.next();
                    out.push(b'\n')
                }
                Some('t') => {
                    chars.next();
                    out.push(b'\t')
                }
                Some('\\') => {
                    chars.next();
                    out.push(b'\\')
                }
                _ => out.push(b'\\'),
            },
            c => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
    out.push(b'\n');
    out
}

fn headers_string(m: &BorrowedMessage<'_>) -> String {
    match m.headers() {
        None => String::new(),
        Some(h) => h
            .iter()
            .map(|h| match h.value {
                Some(v) => format!("{}={}", h.key, String::from_utf8_lossy(v)),
                None => h.key.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

fn record_json(m: &BorrowedMessage<'_>) -> serde_json::Value {
    let s = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    let headers: Vec<_> =
        m.headers().map(|h| h.iter().map(|h| json!({"key": h.key, "value": s(h.value)})).collect()).unwrap_or_default();
    json!({
        "topic": m.topic(),
        "partition": m.partition(),
        "offset": m.offset(),
        "timestamp": m.timestamp().to_millis(),
        "key": s(m.key()),
        "value": s(m.payload()),
        "headers": headers,
    })
}

fn parse_offset(s: &str) -> Result<Offset, String> {
    match s {
        "earliest" | "beginning" | "oldest" => Ok(Offset::Beginning),
        "latest" | "end" | "newest" => Ok(Offset::End),
        n => match n.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Offset::Offset(n)),
            _ => Err(format!("invalid --offset '{s}': expected a non-negative number, 'earliest' or 'latest'")),
        },
    }
}

pub fn consume(cli: &crate::Cli, args: &ConsumeArgs) -> Result<(), String> {
    let parts = {
        let c = util::query_consumer(cli, None)?;
        util::topic_partitions(cli, &c, &args.topic)?
    };
    if let Some(p) = args.partition {
        if !parts.contains(&p) {
            return Err(format!("unknown partition {p} of topic '{}'", args.topic));
        }
    }
    if args.group.is_some() && args.partition.is_some() {
        return Err("consume: --group and --partition cannot be combined".into());
    }
    let start = match &args.offset {
        Some(o) => parse_offset(o)?,
        None if args.from_beginning => Offset::Beginning,
        None => Offset::End,
    };

    let mut cfg = util::base_config(cli);
    cfg.set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("allow.auto.create.topics", "false")
        .set("fetch.wait.max.ms", "200")
        .set("auto.offset.reset", if args.from_beginning { "earliest" } else { "latest" });
    match &args.group {
        Some(g) => {
            cfg.set("group.id", g).set("session.timeout.ms", "10000");
        }
        None => {
            // Needed by librdkafka for a consumer; never joined or committed.
            cfg.set("group.id", "sluicectl-console");
        }
    }
    let consumer: BaseConsumer = cfg.create().map_err(|e| format!("cannot create consumer: {}", kerr(&e)))?;
    if let Some(g) = &args.group {
        consumer
            .subscribe(&[&args.topic])
            .map_err(|e| format!("subscribe to '{}' with group '{g}': {}", args.topic, kerr(&e)))?;
    } else {
        let mut tpl = TopicPartitionList::new();
        for p in parts.iter().copied().filter(|p| args.partition.is_none_or(|q| q == *p)) {
            tpl.add_partition_offset(&args.topic, p, start)
                .map_err(|e| format!("assign {}/{p}: {}", args.topic, kerr(&e)))?;
        }
        consumer.assign(&tpl).map_err(|e| format!("assign '{}': {}", args.topic, kerr(&e)))?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone());
    let _ = signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone());

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut seen: u64 = 0;
    // Next offset to commit, per partition (group mode).
    let mut to_commit: BTreeMap<i32, i64> = BTreeMap::new();
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    let mut last_commit = Instant::now();
    // Partitions at end of log (reset by a record on that partition).
    let mut at_end: BTreeSet<i32> = BTreeSet::new();
    let mut error: Option<String> = None;

    let commit = |consumer: &BaseConsumer,
                  to_commit: &BTreeMap<i32, i64>,
                  committed: &mut BTreeMap<i32, i64>|
     -> Result<(), String> {
        let mut tpl = TopicPartitionList::new();
        for (p, o) in to_commit {
            if committed.get(p) != Some(o) {
                let _ = tpl.add_partition_offset(&args.topic, *p, Offset::Offset(*o));
            }
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        consumer.commit(&tpl, CommitMode::Sync).map_err(|e| format!("commit offsets: {}", kerr(&e)))?;
        committed.extend(to_commit.iter().map(|(p, o)| (*p, *o)));
        Ok(())
    };

    while !stop.load(Ordering::SeqCst) {
        if args.count.is_some_and(|n| seen >= n) {
            break;
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                let r = if cli.json {
                    let mut v = serde_json::to_vec(&record_json(&m)).unwrap_or_default();
                    v.push(b'\n');
                    out.write_all(&v)
                } else {
                    out.write_all(&format_record(&args.format, &m))
                };
                if let Err(e) = r.and_then(|_| out.flush()) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        break;
                    }
                    error = Some(format!("writing output: {e}"));
                    break;
                }
                seen += 1;
                if args.group.is_some() {
                    to_commit.insert(m.partition(), m.offset() + 1);
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => {
                let code = e.rdkafka_error_code();
                match code {
                    Some(RDKafkaErrorCode::UnknownTopicOrPartition) | Some(RDKafkaErrorCode::UnknownTopic) => {
                        error = Some(format!("unknown topic '{}'", args.topic));
                        break;
                    }
                    Some(RDKafkaErrorCode::AutoOffsetReset) | Some(RDKafkaErrorCode::OffsetOutOfRange) => {
                        error = Some(format!("consume '{}': offset out of range", args.topic));
                        break;
                    }
                    Some(c @ RDKafkaErrorCode::GroupAuthorizationFailed)
                    | Some(c @ RDKafkaErrorCode::TopicAuthorizationFailed) => {
                        error = Some(format!("consume '{}': {}", args.topic, code_desc(c)));
                        break;
                    }
                    // Transient (transport, rebalance): librdkafka retries.
                    _ => {}
                }
            }
        }
        if args.exit_at_end {
            let assigned: BTreeSet<i32> = consumer
                .assignment()
                .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
                .unwrap_or_default();
            if !assigned.is_empty() && assigned.is_subset(&at_end) {
                break;
            }
        }
        if args.group.is_some() && last_commit.elapsed() >= Duration::from_secs(1) {
            last_commit = Instant::now();
            if let Err(e) = commit(&consumer, &to_commit, &mut committed) {
                eprintln!("sluicectl: warning: {e}");
            }
        }
    }
    let _ = out.flush();
    drop(out);
    if args.group.is_some() {
        commit(&consumer, &to_commit, &mut committed)?;
        // Leave the group promptly.
        consumer.unsubscribe();
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
