//! Producing and consuming through rdkafka with per-message delivery reports and
//! bounded waits.

use super::*;

/// A message to produce (and later compare against what is consumed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestMsg {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
    /// Explicit partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
}

impl TestMsg {
    pub fn kv(key: Option<&[u8]>, value: Option<&[u8]>) -> TestMsg {
        TestMsg {
            key: key.map(|k| k.to_vec()),
            value: value.map(|v| v.to_vec()),
            headers: vec![],
            timestamp: None,
            partition: None,
        }
    }
    pub fn value(v: impl Into<Vec<u8>>) -> TestMsg {
        TestMsg { key: None, value: Some(v.into()), headers: vec![], timestamp: None, partition: None }
    }
}

/// Outcome of a delivery report.
pub type Delivery = Result<(i32, i64), KafkaError>;

/// Producer context that records every delivery report, keyed by the opaque
/// message id given at send time.
pub struct RecordingContext {
    /// (opaque id, outcome, value of `flag` when the report was served)
    pub reports: Mutex<Vec<(usize, Delivery, bool)>>,
    /// Set by a test (e.g. before a kill -9); recorded with every later report.
    pub flag: Arc<AtomicBool>,
    /// Number of successful delivery reports so far.
    pub acked: Arc<AtomicUsize>,
}

impl ClientContext for RecordingContext {}

impl ProducerContext for RecordingContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, r: &DeliveryResult<'_>, id: usize) {
        let d = match r {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _m)) => Err(e.clone()),
        };
        let flag = self.flag.load(Ordering::SeqCst);
        if d.is_ok() {
            self.acked.fetch_add(1, Ordering::SeqCst);
        }
        self.reports.lock().unwrap().push((id, d, flag));
    }
}

pub type TestProducer = BaseProducer<RecordingContext>;

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> TestProducer {
    producer_with(bootstrap, extra, Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)))
}

/// Producer whose delivery reports record `flag` and count successes in `acked`.
pub fn producer_with(
    bootstrap: &str,
    extra: &[(&str, &str)],
    flag: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
) -> TestProducer {
    let mut c = base_config(bootstrap);
    c.set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("queue.buffering.max.messages", "200000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create_with_context(RecordingContext { reports: Mutex::new(Vec::new()), flag, acked })
        .expect("create rdkafka producer")
}

fn to_owned_headers(h: &[(String, Option<Vec<u8>>)]) -> Option<OwnedHeaders> {
    if h.is_empty() {
        return None;
    }
    let mut oh = OwnedHeaders::new_with_capacity(h.len());
    for (k, v) in h {
        oh = oh.insert(Header { key: k.as_str(), value: v.as_deref() });
    }
    Some(oh)
}

/// Enqueue one message (retrying on a full local queue for up to 60 s).
pub fn send_one(p: &TestProducer, topic: &str, id: usize, m: &TestMsg) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut rec: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(topic, id);
        if let Some(k) = &m.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(v) = &m.value {
            rec = rec.payload(v.as_slice());
        }
        if let Some(ts) = m.timestamp {
            rec = rec.timestamp(ts);
        }
        if let Some(part) = m.partition {
            rec = rec.partition(part);
        }
        if let Some(h) = to_owned_headers(&m.headers) {
            rec = rec.headers(h);
        }
        match p.send(rec) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                if Instant::now() >= deadline {
                    panic!("producer queue stayed full for 60s");
                }
                p.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("producer send() failed for message {id}: {e}"),
        }
    }
}

/// Produce all `msgs` to `topic` and wait (≤ `timeout`) for all delivery reports.
/// Returns one `Delivery` per message, in input order.
pub fn produce_all(p: &TestProducer, topic: &str, msgs: &[TestMsg], timeout: Duration) -> Vec<Delivery> {
    p.context().reports.lock().unwrap().clear();
    for (i, m) in msgs.iter().enumerate() {
        send_one(p, topic, i, m);
        if i % 1000 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let _ = p.flush(Duration::from_millis(500));
        let n = p.context().reports.lock().unwrap().len();
        if n >= msgs.len() && p.in_flight_count() == 0 {
            break;
        }
        if Instant::now() >= deadline {
            panic!(
                "only {n} of {} delivery reports arrived within {timeout:?} ({} in flight)",
                msgs.len(),
                p.in_flight_count()
            );
        }
    }
    let mut out: Vec<Option<Delivery>> = (0..msgs.len()).map(|_| None).collect();
    for (id, d, _) in p.context().reports.lock().unwrap().drain(..) {
        assert!(out[id].is_none(), "two delivery reports for message {id}");
        out[id] = Some(d);
    }
    out.into_iter()
        .enumerate()
        .map(|(i, d)| d.unwrap_or_else(|| panic!("no delivery report for message {i}")))
        .collect()
}

/// Like `produce_all` but asserts every message was delivered; returns (partition, offset).
pub fn produce_ok(p: &TestProducer, topic: &str, msgs: &[TestMsg], timeout: Duration) -> Vec<(i32, i64)> {
    let res = produce_all(p, topic, msgs, timeout);
    let failures: Vec<(usize, &KafkaError)> =
        res.iter().enumerate().filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e))).collect();
    assert!(
        failures.is_empty(),
        "{} of {} messages to {topic} failed delivery; first failures: {:?}",
        failures.len(),
        msgs.len(),
        &failures[..failures.len().min(5)]
    );
    res.into_iter().map(|r| r.unwrap()).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Timestamp,
}

impl Consumed {
    /// Compare the payload fields with what was produced.
    pub fn matches(&self, m: &TestMsg) -> bool {
        self.key == m.key
            && self.value == m.value
            && self.headers == m.headers
            && m.timestamp.map(|t| self.timestamp == Timestamp::CreateTime(t)).unwrap_or(true)
    }
}

pub fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = base_config(bootstrap);
    c.set("group.id", "sluice-test-consumer")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("allow.auto.create.topics", "false")
        .set("fetch.wait.max.ms", "100")
        .set("check.crcs", "true");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("create rdkafka consumer")
}

/// Consume `topic` partitions from the given start offsets until each partition
/// reaches its end offset (exclusive). Returns messages per partition, in
/// consumption order. Panics after `timeout`, or on a consumer error that
/// persists.
pub fn consume_range(
    bootstrap: &str,
    topic: &str,
    ranges: &[(i32, i64, i64)],
    timeout: Duration,
) -> BTreeMap<i32, Vec<Consumed>> {
    let c = consumer(bootstrap, &[]);
    let mut tpl = TopicPartitionList::new();
    let mut out: BTreeMap<i32, Vec<Consumed>> = BTreeMap::new();
    let mut pos: HashMap<i32, i64> = HashMap::new();
    let mut end: HashMap<i32, i64> = HashMap::new();
    for &(p, from, to) in ranges {
        out.insert(p, Vec::new());
        if to > from {
            tpl.add_partition_offset(topic, p, Offset::Offset(from)).expect("tpl add");
            pos.insert(p, from);
            end.insert(p, to);
        }
    }
    if tpl.count() == 0 {
        return out;
    }
    c.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut errors: Vec<String> = Vec::new();
    while pos.iter().any(|(p, o)| *o < end[p]) {
        if Instant::now() >= deadline {
            panic!(
                "consume of {topic} did not finish within {timeout:?}: positions {pos:?}, wanted end {end:?}, consumer errors: {:?}",
                &errors[errors.len().saturating_sub(10)..]
            );
        }
        match c.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => {
                errors.push(e.to_string());
            }
            Some(Ok(m)) => {
                let p = m.partition();
                let Some(cur) = pos.get_mut(&p) else {
                    panic!("got message from unassigned partition {p}");
                };
                let e = end[&p];
                if m.offset() >= e {
                    // Past the requested range (more data than expected); ignore.
                    *cur = (*cur).max(m.offset() + 1).max(e);
                    continue;
                }
                let headers = m
                    .headers()
                    .map(|h| h.iter().map(|hd| (hd.key.to_string(), hd.value.map(|v| v.to_vec()))).collect())
                    .unwrap_or_default();
                out.get_mut(&p).unwrap().push(Consumed {
                    partition: p,
                    offset: m.offset(),
                    key: m.key().map(|k| k.to_vec()),
                    value: m.payload().map(|v| v.to_vec()),
                    headers,
                    timestamp: m.timestamp(),
                });
                *cur = m.offset() + 1;
            }
        }
    }
    out
}

/// Low/high watermarks of a partition via rdkafka.
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let c = consumer(bootstrap, &[]);
    c.fetch_watermarks(topic, partition, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("fetch_watermarks({topic}/{partition}) failed: {e}"))
}

/// Consume a whole partition from offset 0 up to its current high watermark.
pub fn consume_all_partition(bootstrap: &str, topic: &str, partition: i32) -> Vec<Consumed> {
    let (_lo, hi) = watermarks(bootstrap, topic, partition);
    consume_range(bootstrap, topic, &[(partition, 0, hi)], Duration::from_secs(120)).remove(&partition).unwrap()
}

/// Assert offsets in `msgs` are exactly `from, from+1, ...`.
pub fn assert_contiguous(msgs: &[Consumed], from: i64, what: &str) {
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(
            m.offset,
            from + i as i64,
            "{what}: offsets not contiguous: message #{i} has offset {} (expected {})",
            m.offset,
            from + i as i64
        );
    }
}
