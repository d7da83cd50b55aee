//! The librdkafka load generator: rdkafka's synchronous BaseProducer (latency from the
//! delivery report) and BaseConsumer (assigned to every partition).
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::native::{claim, consumer_should_stop, partitions_of, precise_timers, share, sleep_until};
use super::stats::{now_ns, Hist};
use super::wire::{self, TopicMeta};
use super::{finish_producers, join_consumers, spawn, BenchArgs, Mode, Shared};

const MEASURED_BIT: u64 = 1 << 63;

/// The benchmark clients' configuration, with `--command-config`'s security settings.
fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("broker.address.family", "v4").set("client.id", "sluicectl-bench");
    crate::util::apply_security(&mut c);
    c
}

pub fn run(
    shared: &Arc<Shared>,
    bootstrap: &str,
    args: &BenchArgs,
    mode: Mode,
    meta: &TopicMeta,
) -> Result<(), String> {
    let np = meta.partitions.len();
    let mut consumers = Vec::new();
    if mode != Mode::Produce {
        let all: Vec<i32> = (0..np as i32).collect();
        let ts = if mode == Mode::E2e { -1 } else { -2 };
        let mut starts = BTreeMap::new();
        let mut by_addr: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for &p in &all {
            by_addr.entry(meta.partitions[p as usize].as_str()).or_default().push(p);
        }
        for (addr, parts) in by_addr {
            starts.extend(wire::list_offsets(addr, &meta.topic, &parts, ts)?);
        }
        for c in 0..args.consumers {
            let parts: Vec<(i32, i64)> =
                partitions_of(c, args.consumers, np).into_iter().map(|p| (p, starts[&p])).collect();
            let (s, a, t, b) = (shared.clone(), args.clone(), meta.topic.clone(), bootstrap.to_string());
            let hist = shared.histogram();
            consumers
                .push(spawn(format!("rdk-consumer-{c}"), shared, move || consume(&s, &b, &a, mode, &t, parts, hist)));
        }
    }
    if mode != Mode::Consume {
        let mut producers = Vec::new();
        let n = args.producers;
        for i in 0..n {
            let parts = partitions_of(i, n, np);
            let quota = shared.target_messages.map(|t| share(t, n, i));
            let rate = args.rate.map(|r| r / n as f64);
            let (s, a, t, b) = (shared.clone(), args.clone(), meta.topic.clone(), bootstrap.to_string());
            producers.push(spawn(format!("rdk-producer-{i}"), shared, move || {
                produce(&s, &b, &a, mode, &t, &parts, quota, rate, i)
            }));
        }
        finish_producers(shared, producers, mode);
    }
    join_consumers(shared, consumers)
}

struct Ctx {
    shared: Arc<Shared>,
    hist: Option<Hist>,
    size: u64,
    mode: Mode,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let op = opaque as u64;
        let measured = op & MEASURED_BIT != 0;
        let send_ns = op & !MEASURED_BIT;
        if let Err((e, _)) = result {
            self.shared.fail(format!("librdkafka delivery failed: {e}"));
            return;
        }
        let now = now_ns();
        if let (Some(h), true) = (&self.hist, measured) {
            let _ = h.lock().unwrap().record(now.saturating_sub(send_ns).max(1));
        }
        if self.mode == Mode::Produce {
            self.shared.complete(measured, 1, self.size, now);
        } else if measured {
            self.shared.produced_measured.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn produce(
    shared: &Arc<Shared>,
    bootstrap: &str,
    args: &BenchArgs,
    mode: Mode,
    topic: &str,
    parts: &[i32],
    quota: Option<u64>,
    rate: Option<f64>,
    index: usize,
) -> Result<(), String> {
    precise_timers();
    let size = args.message_size;
    let b = args.batch_messages;
    let batch_bytes = (b * (size + 24) + 1024).min(900_000_000);
    let mut cfg = base_config(bootstrap);
    cfg.set("acks", if args.acks == "-1" { "all" } else { args.acks.as_str() })
        .set("compression.type", args.compression.librdkafka_name())
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.num.messages", b.to_string())
        .set("batch.size", batch_bytes.to_string())
        .set("message.max.bytes", (batch_bytes + 4096).max(1_000_000).to_string())
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2097151")
        .set("enable.idempotence", if args.transactional_id.is_some() { "true" } else { "false" })
        .set("message.timeout.ms", "120000");
    if let Some(id) = &args.transactional_id {
        // librdkafka wants message.timeout.ms at most transaction.timeout.ms.
        cfg.set("transactional.id", format!("{id}-{index}")).set("transaction.timeout.ms", "120000");
    }
    let hist = if mode == Mode::Produce { Some(shared.histogram()) } else { None };
    let ctx = Ctx { shared: shared.clone(), hist, size: size as u64, mode };
    let producer: BaseProducer<Ctx> = cfg.create_with_context(ctx).map_err(|e| format!("creating producer: {e}"))?;
    // Transactions: one open at a time, committed every --commit-interval-ms (the commit
    // waits for every message in it, as an application's commit does).
    let txn_timeout = Duration::from_secs(60);
    let commit_every = Duration::from_millis(args.commit_interval_ms.max(1));
    let mut last_commit = std::time::Instant::now();
    let transactional = args.transactional_id.is_some();
    if transactional {
        producer.init_transactions(txn_timeout).map_err(|e| format!("init_transactions: {e}"))?;
        producer.begin_transaction().map_err(|e| format!("begin_transaction: {e}"))?;
    }
    let mut payload = vec![b'v'; size];
    let t0 = shared.start_ns;
    let mut sent: u64 = 0;
    let mut measured_sent: u64 = 0;
    let mut pi = 0usize;
    let mut in_batch = 0usize;
    let result = 'outer: loop {
        if shared.stopped() {
            break Ok(());
        }
        if shared.timed_out() {
            break Err("--timeout reached while producing".to_string());
        }
        let intended = rate.map(|r| t0 + (sent as f64 / r * 1e9) as u64);
        let now = now_ns();
        let at = intended.unwrap_or(now);
        if let Some(end) = shared.measure_end_ns {
            if at >= end {
                break Ok(());
            }
        }
        let measured = at >= shared.measure_start_ns;
        if measured {
            if let Some(q) = quota {
                if measured_sent >= q {
                    break Ok(());
                }
            }
        }
        if let Some(i) = intended {
            if i > now + 100_000 {
                producer.poll(Duration::ZERO);
                sleep_until(i);
            }
        }
        let send_ns = intended.unwrap_or(now);
        if mode == Mode::E2e {
            payload[..8].copy_from_slice(&send_ns.to_le_bytes());
        }
        let opaque = (send_ns | if measured { MEASURED_BIT } else { 0 }) as usize;
        let mut rec = BaseRecord::with_opaque_to(topic, opaque).payload(&payload[..]).partition(parts[pi]);
        loop {
            match producer.send::<[u8], [u8]>(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(1));
                    if shared.stopped() {
                        break 'outer Ok(());
                    }
                }
                Err((e, _)) => break 'outer Err(format!("librdkafka send: {e}")),
            }
        }
        sent += 1;
        if measured {
            measured_sent += 1;
        }
        in_batch += 1;
        if in_batch == b {
            in_batch = 0;
            pi = (pi + 1) % parts.len();
        }
        if sent % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
        if transactional && sent % 64 == 0 && last_commit.elapsed() >= commit_every {
            // Drained here, not by commit_transaction's own flush: rust-rdkafka's
            // BaseProducer::flush polls in steps of 100 ms and its poll always waits out
            // its timeout, so each commit would idle the pipeline for 100 ms or more.
            while producer.in_flight_count() > 0 {
                if shared.stopped() || shared.timed_out() {
                    break;
                }
                producer.poll(Duration::from_micros(200));
            }
            if let Err(e) = producer.commit_transaction(txn_timeout) {
                break Err(format!("commit_transaction: {e}"));
            }
            last_commit = std::time::Instant::now();
            if let Err(e) = producer.begin_transaction() {
                break Err(format!("begin_transaction: {e}"));
            }
        }
    };
    if transactional && result.is_ok() {
        producer.commit_transaction(txn_timeout).map_err(|e| format!("commit_transaction: {e}"))?;
    }
    let flushed = producer.flush(Duration::from_secs(120));
    producer.poll(Duration::ZERO);
    result?;
    flushed.map_err(|e| format!("librdkafka flush: {e}"))
}

fn consume(
    shared: &Arc<Shared>,
    bootstrap: &str,
    args: &BenchArgs,
    mode: Mode,
    topic: &str,
    parts: Vec<(i32, i64)>,
    hist: Hist,
) -> Result<(), String> {
    let mut cfg = base_config(bootstrap);
    cfg.set("group.id", "sluicectl-bench")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("max.partition.fetch.bytes", args.fetch_bytes.to_string())
        .set(
            "fetch.max.bytes",
            (args.fetch_bytes as i64 * parts.len() as i64).clamp(1 << 20, 2_000_000_000).to_string(),
        )
        .set(
            "receive.message.max.bytes",
            (args.fetch_bytes as i64 * parts.len() as i64 + (1 << 20)).clamp(1 << 21, 2_147_483_647).to_string(),
        )
        .set("fetch.wait.max.ms", "100")
        .set("isolation.level", args.isolation_level.as_str())
        .set("queued.min.messages", "1000000")
        .set("check.crcs", "false");
    let consumer: BaseConsumer = cfg.create().map_err(|e| format!("creating consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for &(p, off) in &parts {
        tpl.add_partition_offset(topic, p, Offset::Offset(off)).map_err(|e| e.to_string())?;
    }
    consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    let e2e = mode == Mode::E2e;
    let size = args.message_size as u64;
    let (mut m_msgs, mut m_bytes, mut u_msgs, mut u_bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut last_flush = now_ns();
    let mut h = super::stats::new_histogram();
    loop {
        if consumer_should_stop(shared, mode)? {
            break;
        }
        let msg = consumer.poll(Duration::from_millis(50));
        let now = now_ns();
        match msg {
            None => {}
            Some(Err(e)) => return Err(format!("librdkafka consumer: {e}")),
            Some(Ok(m)) => {
                let payload = m.payload().unwrap_or(&[]);
                let len = (payload.len() + m.key().map(|k| k.len()).unwrap_or(0)) as u64;
                let measured = if e2e {
                    let ts = if payload.len() >= 8 { u64::from_le_bytes(payload[..8].try_into().unwrap()) } else { 0 };
                    let measured = shared.is_measured(ts) && claim(shared, 1) == 1;
                    if measured {
                        let _ = h.record(now.saturating_sub(ts).max(1));
                    }
                    measured
                } else {
                    shared.is_measured(now) && claim(shared, 1) == 1
                };
                if measured {
                    m_msgs += 1;
                    m_bytes += if e2e { size } else { len };
                } else {
                    u_msgs += 1;
                    u_bytes += len;
                }
            }
        }
        if m_msgs + u_msgs >= 4096 || now > last_flush + 20_000_000 {
            flush(shared, &hist, &mut h, &mut m_msgs, &mut m_bytes, &mut u_msgs, &mut u_bytes, now);
            last_flush = now;
        }
    }
    flush(shared, &hist, &mut h, &mut m_msgs, &mut m_bytes, &mut u_msgs, &mut u_bytes, now_ns());
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn flush(
    shared: &Shared,
    hist: &Hist,
    h: &mut hdrhistogram::Histogram<u64>,
    m_msgs: &mut u64,
    m_bytes: &mut u64,
    u_msgs: &mut u64,
    u_bytes: &mut u64,
    now: u64,
) {
    if !h.is_empty() {
        let _ = hist.lock().unwrap().add(&*h);
        h.reset();
    }
    if *m_msgs > 0 {
        shared.complete(true, *m_msgs, *m_bytes, now);
    }
    if *u_msgs > 0 {
        shared.complete(false, *u_msgs, *u_bytes, now);
    }
    *m_msgs = 0;
    *m_bytes = 0;
    *u_msgs = 0;
    *u_bytes = 0;
}
