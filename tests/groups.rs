//! Consumer groups (classic protocol), black-box: rdkafka consumers that
//! `subscribe()` and let the broker's group coordinator split partitions,
//! rebalance, expire dead members and keep committed offsets.
//!
//! Every test starts its own broker (`--cores 2`) and the tests of this file run
//! one at a time (see `serial()`): they depend on session timeouts and
//! rebalance timing, which a machine loaded with several brokers at once
//! would make needlessly slow. Every wait is bounded.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Run the tests of this file one after another (poison-tolerant).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A broker whose minimum session timeout is low enough for fast session-expiry tests.
fn group_broker(extra: &[(&str, &str)]) -> Broker {
    let mut o: Vec<(&str, &str)> = vec![("group.min.session.timeout.ms", "1000")];
    o.extend_from_slice(extra);
    Broker::start_with(&o, 2)
}

/// A rebalance event as seen by one consumer's rebalance callback.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Assign(BTreeSet<i32>),
    Revoke(BTreeSet<i32>),
    Error(String),
}

/// Consumer context that records every rebalance callback and tracks the partitions
/// the consumer owns. With `commit_on_revoke`, it synchronously commits the consumed
/// positions (offsets stored for the messages `poll` returned) before giving partitions
/// up, so that their next owner resumes exactly there.
struct GroupCtx {
    name: String,
    commit_on_revoke: bool,
    events: Mutex<Vec<Ev>>,
    owned: Mutex<BTreeSet<i32>>,
    commit_errors: Mutex<Vec<String>>,
    /// While set, every assignment is paused right away (see `release`).
    hold: std::sync::atomic::AtomicBool,
}

fn tpl_partitions(tpl: &TopicPartitionList) -> BTreeSet<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

impl ClientContext for GroupCtx {}

impl ConsumerContext for GroupCtx {
    fn pre_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        let cooperative = matches!(c.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let ev = match r {
            Rebalance::Assign(tpl) => {
                let ps = tpl_partitions(tpl);
                let mut owned = self.owned.lock().unwrap();
                if !cooperative {
                    owned.clear();
                }
                owned.extend(&ps);
                Ev::Assign(ps)
            }
            Rebalance::Revoke(tpl) => {
                let ps = tpl_partitions(tpl);
                if self.commit_on_revoke {
                    match c.commit_consumer_state(CommitMode::Sync) {
                        Ok(()) => {}
                        // Nothing consumed since the last commit.
                        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                        Err(e) => self.commit_errors.lock().unwrap().push(format!("commit on revoke of {ps:?}: {e}")),
                    }
                }
                self.owned.lock().unwrap().retain(|p| !ps.contains(p));
                Ev::Revoke(ps)
            }
            Rebalance::Error(e) => Ev::Error(e.to_string()),
        };
        self.events.lock().unwrap().push(ev);
    }

    fn post_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = r {
            if self.hold.load(std::sync::atomic::Ordering::SeqCst) && tpl.count() > 0 {
                if let Err(e) = c.pause(tpl) {
                    self.commit_errors.lock().unwrap().push(format!("pause {tpl:?}: {e}"));
                }
            }
        }
    }
}

type GC = BaseConsumer<GroupCtx>;

impl GroupCtx {
    fn events(&self) -> Vec<Ev> {
        self.events.lock().unwrap().clone()
    }
    fn owns(&self, p: i32) -> bool {
        self.owned.lock().unwrap().contains(&p)
    }
    fn commit_errors(&self) -> Vec<String> {
        self.commit_errors.lock().unwrap().clone()
    }
}

/// A group consumer (client.id = `name`) subscribed to `topic`.
fn group_consumer(bootstrap: &str, group: &str, name: &str, topic: &str, extra: &[(&str, &str)]) -> GC {
    subscribed(unsubscribed_consumer(bootstrap, group, name, extra, false), topic)
}

/// Like `group_consumer`, committing the consumed positions whenever partitions are revoked.
fn committing_consumer(bootstrap: &str, group: &str, name: &str, topic: &str, extra: &[(&str, &str)]) -> GC {
    subscribed(unsubscribed_consumer(bootstrap, group, name, extra, true), topic)
}

/// A group consumer that pauses whatever it is assigned until `release`d: it reads
/// nothing while the group is still forming.
fn holding_consumer(bootstrap: &str, group: &str, name: &str, topic: &str, extra: &[(&str, &str)]) -> GC {
    let c = unsubscribed_consumer(bootstrap, group, name, extra, false);
    c.context().hold.store(true, std::sync::atomic::Ordering::SeqCst);
    subscribed(c, topic)
}

/// Resume a `holding_consumer`'s current assignment and stop pausing new ones.
fn release(c: &GC) {
    c.context().hold.store(false, std::sync::atomic::Ordering::SeqCst);
    let a = c.assignment().expect("assignment()");
    if a.count() > 0 {
        c.resume(&a).unwrap_or_else(|e| panic!("{}: resume failed: {e}", c.context().name));
    }
}

fn subscribed(c: GC, topic: &str) -> GC {
    let name = c.context().name.clone();
    c.subscribe(&[topic]).unwrap_or_else(|e| panic!("{name}: subscribe({topic}) failed: {e}"));
    c
}

fn unsubscribed_consumer(
    bootstrap: &str,
    group: &str,
    name: &str,
    extra: &[(&str, &str)],
    commit_on_revoke: bool,
) -> GC {
    let mut cfg = base_config(bootstrap);
    cfg.set("group.id", group)
        .set("client.id", name)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .set("fetch.wait.max.ms", "100")
        .set("heartbeat.interval.ms", "500")
        .set("session.timeout.ms", "6000")
        .set("check.crcs", "true");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create_with_context(GroupCtx {
        name: name.to_string(),
        commit_on_revoke,
        events: Mutex::new(Vec::new()),
        owned: Mutex::new(BTreeSet::new()),
        commit_errors: Mutex::new(Vec::new()),
        hold: std::sync::atomic::AtomicBool::new(false),
    })
    .unwrap_or_else(|e| panic!("create consumer {name}: {e}"))
}

/// Close a consumer (LeaveGroup), serving its callbacks, bounded by 30 s.
fn close(c: GC) {
    let name = c.context().name.clone();
    if let Err(e) = c.close_queue() {
        panic!("{name}: close_queue failed: {e}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c.closed() {
        if Instant::now() >= deadline {
            // Dropping would loop forever; leak it and fail.
            std::mem::forget(c);
            panic!("consumer {name} did not close within 30s");
        }
        let _ = c.poll(Duration::from_millis(100));
    }
    drop(c);
}

fn assigned(c: &GC) -> BTreeSet<i32> {
    tpl_partitions(&c.assignment().unwrap_or_else(|e| panic!("{}: assignment() failed: {e}", c.context().name)))
}

/// One consumed message and which consumer (index) got it.
#[derive(Debug, Clone)]
struct Got {
    who: usize,
    /// The consumer owned the partition (per its rebalance callbacks) when it got this.
    owned: bool,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// Poll every consumer once (briefly), draining what is ready.
fn pump(cs: &[&GC], got: &mut Vec<Got>, errors: &mut Vec<String>) {
    for (who, c) in cs.iter().enumerate() {
        let mut wait = Duration::from_millis(10);
        for _ in 0..500 {
            match c.poll(wait) {
                None => break,
                Some(Err(e)) => errors.push(format!("{}: {e}", c.context().name)),
                Some(Ok(m)) => got.push(Got {
                    who,
                    owned: c.context().owns(m.partition()),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| k.to_vec()),
                    value: m.payload().map(|v| v.to_vec()),
                }),
            }
            wait = Duration::ZERO;
        }
    }
}

fn describe(cs: &[&GC], got: &[Got], errors: &[String]) -> String {
    let mut s = String::new();
    for (i, c) in cs.iter().enumerate() {
        let n = got.iter().filter(|g| g.who == i).count();
        s += &format!(
            "\n  consumer #{i} {}: assignment {:?}, {n} messages, rebalance events {:?}",
            c.context().name,
            c.assignment().map(|t| tpl_partitions(&t)),
            c.context().events()
        );
    }
    s += &format!(
        "\n  {} messages in all; last consumer errors: {:?}",
        got.len(),
        &errors[errors.len().saturating_sub(10)..]
    );
    s
}

/// Pump the consumers until `cond` holds; panic with a description after `timeout`.
fn pump_until(
    cs: &[&GC],
    got: &mut Vec<Got>,
    errors: &mut Vec<String>,
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut(&[Got]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        pump(cs, got, errors);
        if cond(got) {
            return;
        }
        if Instant::now() >= deadline {
            panic!("not within {timeout:?}: {what}{}", describe(cs, got, errors));
        }
    }
}

/// Pump the consumers for `d`.
fn pump_for(cs: &[&GC], got: &mut Vec<Got>, errors: &mut Vec<String>, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        pump(cs, got, errors);
    }
}

/// The partition sets are disjoint, cover exactly `0..n`, and each has at least `min_each`.
fn is_split(sets: &[BTreeSet<i32>], n: i32, min_each: usize) -> bool {
    let total: usize = sets.iter().map(|s| s.len()).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    total == n as usize && union == (0..n).collect() && sets.iter().all(|s| s.len() >= min_each)
}

/// Wait until the consumers' assignments form a split of `0..n` (each ≥ `min_each`), then
/// check that it stays unchanged for 2 s. Returns the assignments.
fn wait_split(
    cs: &[&GC],
    got: &mut Vec<Got>,
    errors: &mut Vec<String>,
    n: i32,
    min_each: usize,
    timeout: Duration,
) -> Vec<BTreeSet<i32>> {
    pump_until(
        cs,
        got,
        errors,
        timeout,
        &format!("assignments split {n} partitions, each consumer ≥ {min_each}"),
        |_| is_split(&cs.iter().map(|c| assigned(c)).collect::<Vec<_>>(), n, min_each),
    );
    let sets: Vec<BTreeSet<i32>> = cs.iter().map(|c| assigned(c)).collect();
    pump_for(cs, got, errors, Duration::from_secs(2));
    let again: Vec<BTreeSet<i32>> = cs.iter().map(|c| assigned(c)).collect();
    assert_eq!(sets, again, "assignments changed after the group had settled{}", describe(cs, got, errors));
    sets
}

/// Produce `n` keyed messages; returns (partition, offset) -> (key, value).
fn produce_keyed(bootstrap: &str, topic: &str, n: usize, tag: &str) -> BTreeMap<(i32, i64), (Vec<u8>, Vec<u8>)> {
    let msgs: Vec<TestMsg> = (0..n)
        .map(|i| {
            let k = format!("{tag}-key-{i}");
            let v = format!("{tag}-value-{i}");
            TestMsg::kv(Some(k.as_bytes()), Some(v.as_bytes()))
        })
        .collect();
    let p = producer(bootstrap, &[]);
    let res = produce_ok(&p, topic, &msgs, Duration::from_secs(60));
    let mut out = BTreeMap::new();
    for (m, (part, off)) in msgs.iter().zip(res) {
        let prev = out.insert((part, off), (m.key.clone().unwrap(), m.value.clone().unwrap()));
        assert!(prev.is_none(), "two produced messages got {part}/{off}");
    }
    out
}

/// Every produced message was consumed exactly once, with its key and value, and by a
/// consumer that owned its partition at the time.
fn assert_exactly_once(produced: &BTreeMap<(i32, i64), (Vec<u8>, Vec<u8>)>, got: &[Got], what: &str) {
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    let mut dups = Vec::new();
    for g in got {
        if let Some(prev) = seen.insert((g.partition, g.offset), g.who) {
            dups.push((g.partition, g.offset, prev, g.who));
        }
    }
    assert!(
        dups.is_empty(),
        "{what}: {} messages consumed more than once (partition, offset, first consumer, second consumer), first: {:?}",
        dups.len(),
        &dups[..dups.len().min(10)]
    );
    let missing: Vec<&(i32, i64)> = produced.keys().filter(|k| !seen.contains_key(k)).collect();
    let extra: Vec<&(i32, i64)> = seen.keys().filter(|k| !produced.contains_key(k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} produced messages never consumed (first {:?}), {} consumed messages never produced (first {:?})",
        missing.len(),
        &missing[..missing.len().min(10)],
        extra.len(),
        &extra[..extra.len().min(10)]
    );
    for g in got {
        let (k, v) = &produced[&(g.partition, g.offset)];
        assert_eq!(
            (g.key.as_deref(), g.value.as_deref()),
            (Some(k.as_slice()), Some(v.as_slice())),
            "{what}: wrong key/value at {}/{}",
            g.partition,
            g.offset
        );
        assert!(
            g.owned,
            "{what}: consumer #{} got {}/{} while that partition was not assigned to it",
            g.who, g.partition, g.offset
        );
    }
}

/// ListGroups + DescribeGroups of one group via rdkafka, from a client outside the group.
#[derive(Debug, Clone)]
struct GroupView {
    state: String,
    protocol_type: String,
    protocol: String,
    /// client.id -> (client host, metadata, assignment)
    members: BTreeMap<String, (String, Vec<u8>, Vec<u8>)>,
}

fn describe_group(bootstrap: &str, group: &str) -> Option<GroupView> {
    let c: BaseConsumer = base_config(bootstrap).create().expect("admin consumer");
    let list = c
        .fetch_group_list(Some(group), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("fetch_group_list({group}) failed: {e}"));
    let gs: Vec<_> = list.groups().iter().filter(|g| g.name() == group).collect();
    assert!(gs.len() <= 1, "group {group} listed {} times", gs.len());
    gs.first().map(|g| GroupView {
        state: g.state().to_string(),
        protocol_type: g.protocol_type().to_string(),
        protocol: g.protocol().to_string(),
        members: g
            .members()
            .iter()
            .map(|m| {
                (
                    m.client_id().to_string(),
                    (
                        m.client_host().to_string(),
                        m.metadata().unwrap_or_default().to_vec(),
                        m.assignment().unwrap_or_default().to_vec(),
                    ),
                )
            })
            .collect(),
    })
}

/// Names of all groups (ListGroups).
fn list_group_names(bootstrap: &str) -> Vec<String> {
    let c: BaseConsumer = base_config(bootstrap).create().expect("admin consumer");
    let list = c
        .fetch_group_list(None, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("fetch_group_list(None) failed: {e}"));
    list.groups().iter().map(|g| g.name().to_string()).collect()
}

/// Decode a ConsumerProtocolAssignment: topic -> partitions.
fn decode_assignment(b: &[u8]) -> BTreeMap<String, BTreeSet<i32>> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> &[u8] {
        assert!(pos + n <= b.len(), "assignment bytes too short: {b:?}");
        let s = &b[pos..pos + n];
        pos += n;
        s
    };
    let _version = i16::from_be_bytes(take(2).try_into().unwrap());
    let ntopics = i32::from_be_bytes(take(4).try_into().unwrap());
    let mut out = BTreeMap::new();
    for _ in 0..ntopics.max(0) {
        let len = i16::from_be_bytes(take(2).try_into().unwrap()) as usize;
        let topic = String::from_utf8(take(len).to_vec()).expect("topic name utf8");
        let np = i32::from_be_bytes(take(4).try_into().unwrap());
        let mut ps = BTreeSet::new();
        for _ in 0..np.max(0) {
            ps.insert(i32::from_be_bytes(take(4).try_into().unwrap()));
        }
        out.insert(topic, ps);
    }
    out
}

/// Committed offsets of `topic` partitions `0..n` for `group`, read by a fresh group
/// consumer (OffsetFetch). Retries on request errors (a restarted broker may still be
/// loading), for at most 30 s.
fn committed_of(bootstrap: &str, group: &str, topic: &str, n: i32) -> BTreeMap<i32, Offset> {
    let c = unsubscribed_consumer(bootstrap, group, "offset-reader", &[], false);
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition(topic, p);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let res = loop {
        match c.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(r) => break r,
            Err(e) => {
                if Instant::now() >= deadline {
                    panic!("committed_offsets for group {group} kept failing for 30s, last error: {e}");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    let out = res
        .elements()
        .iter()
        .map(|e| {
            assert!(e.error().is_ok(), "committed offset of {topic}/{} returned error {:?}", e.partition(), e.error());
            (e.partition(), e.offset())
        })
        .collect();
    close(c);
    out
}

/// A child process killed (SIGKILL) and reaped when dropped.
struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    fn kill9(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Two consumers split a 4-partition topic and together read everything exactly once.
/// `strategy = None` uses librdkafka's default (`range,roundrobin`). Returns the two
/// consumers' assignments (by index: a, b) and the broker-selected protocol name.
///
/// The 2000 messages are produced before the consumers start. So that no partition
/// changes hands after it was read from (which, without commits, would re-deliver), the
/// consumers keep their partitions paused until the group has settled on a split.
/// (`commit_on_revoke_hands_over_position` covers handing a read partition over.)
fn two_consumer_split(strategy: Option<&str>) -> (Vec<BTreeSet<i32>>, String) {
    let b = group_broker(&[]);
    let bs = b.bootstrap();
    let topic = topic_name("split");
    create_topic(&bs, &topic, 4);
    let produced = produce_keyed(&bs, &topic, 2000, "split");
    let per_part: BTreeSet<i32> = produced.keys().map(|(p, _)| *p).collect();
    assert_eq!(per_part, (0..4).collect(), "2000 keyed messages should hit all 4 partitions");

    let group = "g-split";
    let extra: Vec<(&str, &str)> = strategy.map(|s| vec![("partition.assignment.strategy", s)]).unwrap_or_default();
    let ca = holding_consumer(&bs, group, "split-a", &topic, &extra);
    let cb = holding_consumer(&bs, group, "split-b", &topic, &extra);
    let cs = [&ca, &cb];
    let (mut got, mut errors) = (Vec::new(), Vec::new());
    let sets = wait_split(&cs, &mut got, &mut errors, 4, 2, Duration::from_secs(60));
    assert!(got.is_empty(), "paused consumers got messages{}", describe(&cs, &got, &errors));
    cs.iter().for_each(|c| release(c));
    pump_until(&cs, &mut got, &mut errors, Duration::from_secs(60), "all 2000 messages consumed", |g| {
        g.len() >= produced.len()
    });
    // Anything else (a re-delivery) would show up now.
    pump_for(&cs, &mut got, &mut errors, Duration::from_secs(1));
    let now: Vec<BTreeSet<i32>> = cs.iter().map(|c| assigned(c)).collect();
    assert_eq!(now, sets, "assignment changed while consuming{}", describe(&cs, &got, &errors));
    for c in cs {
        assert!(c.context().commit_errors().is_empty(), "{}: {:?}", c.context().name, c.context().commit_errors());
        let evs = c.context().events();
        assert!(!evs.iter().any(|e| matches!(e, Ev::Error(_))), "{}: rebalance errors {evs:?}", c.context().name);
    }
    assert_exactly_once(&produced, &got, "two consumers in one group");
    for (i, set) in sets.iter().enumerate() {
        let read: BTreeSet<i32> = got.iter().filter(|g| g.who == i).map(|g| g.partition).collect();
        assert_eq!(&read, set, "consumer #{i} read from partitions {read:?}, assigned {set:?}");
    }
    let view = describe_group(&bs, group).expect("group listed");
    assert_eq!(view.state, "Stable", "{view:?}");
    close(ca);
    close(cb);
    (sets, view.protocol)
}

/// A consumer that read everything commits its position when its partitions are revoked
/// by a new member's join (the usual `onPartitionsRevoked` commit, done while the group is
/// PreparingRebalance with the member's still-current generation); the partitions' new
/// owner then resumes there and reads nothing twice.
#[test]
fn commit_on_revoke_hands_over_position() {
    let _s = serial();
    let b = group_broker(&[]);
    let bs = b.bootstrap();
    let topic = topic_name("handover");
    create_topic(&bs, &topic, 2);
    let produced = produce_keyed(&bs, &topic, 1000, "handover");
    let group = "g-handover";
    let c1 = committing_consumer(&bs, group, "handover-1", &topic, &[]);
    let (mut got, mut errors) = (Vec::new(), Vec::new());
    pump_until(&[&c1], &mut got, &mut errors, Duration::from_secs(60), "first consumer reads all 1000", |g| {
        g.len() >= produced.len()
    });
    let c2 = committing_consumer(&bs, group, "handover-2", &topic, &[]);
    let cs = [&c1, &c2];
    wait_split(&cs, &mut got, &mut errors, 2, 1, Duration::from_secs(60));
    pump_for(&cs, &mut got, &mut errors, Duration::from_secs(2));
    assert!(c1.context().commit_errors().is_empty(), "handover-1: {:?}", c1.context().commit_errors());
    assert_exactly_once(&produced, &got, "handover after commit on revoke");
    close(c2);
    close(c1);
}

#[test]
fn two_consumers_split_partitions_and_read_everything_once() {
    let _s = serial();
    let (sets, protocol) = two_consumer_split(None);
    assert!(sets.iter().all(|s| s.len() == 2), "4 partitions over 2 consumers should be 2 + 2: {sets:?}");
    // librdkafka's default strategy list is "range,roundrobin": range is everyone's first choice.
    assert_eq!(protocol, "range");
}

#[test]
fn range_assignor_splits_contiguous_ranges() {
    let _s = serial();
    let (sets, protocol) = two_consumer_split(Some("range"));
    assert_eq!(protocol, "range");
    let mut sorted = sets.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![BTreeSet::from([0, 1]), BTreeSet::from([2, 3])],
        "range assignment of 4 partitions to 2 members"
    );
}

#[test]
fn roundrobin_assignor_interleaves() {
    let _s = serial();
    let (sets, protocol) = two_consumer_split(Some("roundrobin"));
    assert_eq!(protocol, "roundrobin");
    let mut sorted = sets.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![BTreeSet::from([0, 2]), BTreeSet::from([1, 3])],
        "roundrobin assignment of 4 partitions to 2 members"
    );
}

#[test]
fn third_consumer_joining_moves_partitions() {
    let _s = serial();
    let b = group_broker(&[]);
    let bs = b.bootstrap();
    let topic = topic_name("join3");
    create_topic(&bs, &topic, 4);
    produce_keyed(&bs, &topic, 200, "join3");
    let group = "g-join3";
    let c1 = group_consumer(&bs, group, "join3-1", &topic, &[]);
    let c2 = group_consumer(&bs, group, "join3-2", &topic, &[]);
    let (mut got, mut errors) = (Vec::new(), Vec::new());
    let before = wait_split(&[&c1, &c2], &mut got, &mut errors, 4, 2, Duration::from_secs(60));
    assert_eq!(before.iter().map(|s| s.len()).collect::<Vec<_>>(), vec![2, 2]);

    let c3 = group_consumer(&bs, group, "join3-3", &topic, &[]);
    let cs = [&c1, &c2, &c3];
    let after = wait_split(&cs, &mut got, &mut errors, 4, 1, Duration::from_secs(60));
    let mut sizes: Vec<usize> = after.iter().map(|s| s.len()).collect();
    sizes.sort();
    assert_eq!(sizes, vec![1, 1, 2], "4 partitions over 3 consumers: {after:?}");
    let view = describe_group(&bs, group).expect("group listed");
    assert_eq!(view.state, "Stable", "{view:?}");
    assert_eq!(view.members.len(), 3, "{view:?}");
    for (name, (_, _, asg)) in &view.members {
        let i = ["join3-1", "join3-2", "join3-3"].iter().position(|n| n == name).expect("known member");
        assert_eq!(
            decode_assignment(asg),
            BTreeMap::from([(topic.clone(), after[i].clone())]),
            "DescribeGroups assignment of {name} differs from what the consumer has"
        );
    }
    close(c3);
    close(c2);
    close(c1);
}

#[test]
fn killed_member_partitions_move_after_session_timeout() {
    let _s = serial();
    let b = group_broker(&[]);
    let bs = b.bootstrap();
    let topic = topic_name("kill");
    create_topic(&bs, &topic, 4);
    produce_keyed(&bs, &topic, 200, "kill");
    let group = "g-kill";

    let survivor = group_consumer(&bs, group, "survivor", &topic, &[]);
    let stderr_path = std::env::temp_dir().join(format!("sluice-groups-kcat-{}.log", b.port()));
    let stderr = std::fs::File::create(&stderr_path).expect("kcat stderr file");
    let mut victim = KillOnDrop(Some(
        Command::new("kcat")
            .args(["-b", &bs, "-G", group, "-q", "-u"])
            .args(["-X", "client.id=victim", "-X", "session.timeout.ms=2000", "-X", "heartbeat.interval.ms=500"])
            .args(["-X", "auto.offset.reset=earliest", "-X", "broker.address.family=v4"])
            .arg(&topic)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn kcat (is /usr/bin/kcat installed?)"),
    ));
    let cs = [&survivor];
    let (mut got, mut errors) = (Vec::new(), Vec::new());
    let kcat_log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    // Both members in a stable group, the survivor with 2 of the 4 partitions.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        pump_for(&cs, &mut got, &mut errors, Duration::from_millis(300));
        if assigned(&survivor).len() == 2 {
            if let Some(v) = describe_group(&bs, group) {
                if v.state == "Stable" && v.members.len() == 2 && v.members.contains_key("victim") {
                    let theirs = decode_assignment(&v.members["victim"].2);
                    let mine = assigned(&survivor);
                    assert_eq!(theirs.len(), 1, "victim assignment {theirs:?}");
                    let t = &theirs[&topic];
                    assert!(t.is_disjoint(&mine) && t.len() == 2, "victim has {t:?}, survivor {mine:?}");
                    break;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "group did not become Stable with survivor + kcat within 60s: {:?}{}\nkcat stderr:\n{}",
            describe_group(&bs, group),
            describe(&cs, &got, &errors),
            kcat_log()
        );
    }

    // kill -9: no LeaveGroup, the broker only notices by the missing heartbeats.
    victim.kill9();
    let killed = Instant::now();
    pump_until(
        &cs,
        &mut got,
        &mut errors,
        Duration::from_secs(30),
        "survivor owns all 4 partitions after kcat was killed",
        |_| assigned(&survivor).len() == 4,
    );
    let took = killed.elapsed();
    eprintln!("survivor got all partitions {took:?} after the kill");
    let view = describe_group(&bs, group).expect("group listed");
    assert_eq!(view.members.keys().collect::<Vec<_>>(), vec!["survivor"], "{view:?}");
    assert_eq!(view.state, "Stable", "{view:?}");
    close(survivor);
    let _ = std::fs::remove_file(&stderr_path);
}

/// Consume part of a 2-partition topic, commit exactly what was consumed, and check that
/// the commit is seen by new consumers, across a broker restart (`kill9 == false`: SIGTERM;
/// `true`: SIGKILL), and that the group resumes exactly there.
fn committed_offsets_survive_restart(kill9: bool) {
    let mut b = group_broker(&[]);
    let bs = b.bootstrap();
    let topic = topic_name("commit");
    create_topic(&bs, &topic, 2);
    let msgs: Vec<TestMsg> = (0..1000)
        .map(|i| {
            let mut m = TestMsg::kv(Some(format!("k{i}").as_bytes()), Some(format!("v{i}").as_bytes()));
            m.partition = Some(i % 2);
            m
        })
        .collect();
    let p = producer(&bs, &[]);
    let res = produce_ok(&p, &topic, &msgs, Duration::from_secs(60));
    drop(p);
    let produced: BTreeMap<(i32, i64), (Vec<u8>, Vec<u8>)> =
        msgs.iter().zip(res).map(|(m, po)| (po, (m.key.clone().unwrap(), m.value.clone().unwrap()))).collect();
    let group = "g-commit";

    // 1. Consume the first 120 messages of partition 0 and 230 of partition 1 (what is
    //    delivered beyond that is ignored), commit exactly that, close.
    let want: BTreeMap<i32, usize> = BTreeMap::from([(0, 120), (1, 230)]);
    let c = group_consumer(&bs, group, "commit-1", &topic, &[]);
    let mut got: Vec<Got> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let count = |got: &[Got], p: i32| got.iter().filter(|g| g.partition == p).count();
    while !want.iter().all(|(p, n)| count(&got, *p) >= *n) {
        assert!(
            Instant::now() < deadline,
            "first consumer did not read {want:?} messages within 60s{}",
            describe(&[&c], &got, &errors)
        );
        match c.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => errors.push(e.to_string()),
            Some(Ok(m)) => {
                if count(&got, m.partition()) < want[&m.partition()] {
                    got.push(Got {
                        who: 0,
                        owned: c.context().owns(m.partition()),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(|k| k.to_vec()),
                        value: m.payload().map(|v| v.to_vec()),
                    });
                }
            }
        }
    }
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for g in &got {
        let e = next.entry(g.partition).or_insert(0);
        assert_eq!(g.offset, *e, "first consumer: offsets of partition {} not contiguous from 0", g.partition);
        *e = g.offset + 1;
    }
    let mut tpl = TopicPartitionList::new();
    for (p, o) in &next {
        tpl.add_partition_offset(&topic, *p, Offset::Offset(*o)).unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).unwrap_or_else(|e| panic!("synchronous commit of {next:?} failed: {e}"));
    let first_read: BTreeSet<(i32, i64)> = got.iter().map(|g| (g.partition, g.offset)).collect();
    close(c);
    assert_eq!(next, BTreeMap::from([(0, 120), (1, 230)]));
    let expected: BTreeMap<i32, Offset> = next.iter().map(|(p, o)| (*p, Offset::Offset(*o))).collect();

    // 2. A new consumer sees the commit.
    assert_eq!(committed_of(&bs, group, &topic, 2), expected, "committed offsets read by a new consumer");

    // 3. ... and so after a broker restart.
    if kill9 {
        b.kill9();
        // The killed process's io_uring (and the listening socket it holds) is torn down
        // asynchronously by the kernel: wait until the port can be bound again.
        let port = b.port();
        wait_until(Duration::from_secs(20), "listener port of the killed broker is free", || {
            std::net::TcpListener::bind(("127.0.0.1", port)).ok().map(drop)
        });
    } else {
        let st = b.stop();
        assert!(st.success(), "broker exited with {st} after SIGTERM");
    }
    b.restart();
    assert_eq!(committed_of(&bs, group, &topic, 2), expected, "committed offsets after the broker restart");

    // 4. The group resumes exactly after the committed position.
    let c = group_consumer(&bs, group, "commit-2", &topic, &[]);
    let (mut got, mut errors) = (Vec::new(), Vec::new());
    let remaining = 1000 - first_read.len();
    pump_until(
        &[&c],
        &mut got,
        &mut errors,
        Duration::from_secs(60),
        "second consumer reads the remaining messages",
        |g| g.len() >= remaining,
    );
    pump_for(&[&c], &mut got, &mut errors, Duration::from_secs(1));
    for p in 0..2 {
        let first = got.iter().find(|g| g.partition == p).map(|g| g.offset);
        assert_eq!(first, Some(next[&p]), "partition {p}: resumed at {first:?}, committed {}", next[&p]);
    }
    let rest: BTreeMap<(i32, i64), (Vec<u8>, Vec<u8>)> =
        produced.iter().filter(|(k, _)| !first_read.contains(k)).map(|(k, v)| (*k, v.clone())).collect();
    assert_exactly_once(&rest, &got, "resumed consumer");
    close(c);
}

#[test]
fn committed_offsets_survive_consumer_and_broker_restart() {
    let _s = serial();
    committed_offsets_survive_restart(false);
}

#[test]
fn committed_offsets_survive_broker_kill9() {
    let _s = serial();
    committed_offsets_survive_restart(true);
}

#[test]
fn cooperative_sticky_rebalance_is_incremental() {
    let _s = serial();
    let b = group_broker(&[]);
    let bs = b.bootstrap();
    let topic = topic_name("coop");
    create_topic(&bs, &topic, 4);
    produce_keyed(&bs, &topic, 400, "coop");
    let group = "g-coop";
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];

    let c1 = group_consumer(&bs, group, "coop-1", &topic, &coop);
    let (mut got, mut errors) = (Vec::new(), Vec::new());
    wait_split(&[&c1], &mut got, &mut errors, 4, 4, Duration::from_secs(60));
    assert!(
        matches!(c1.rebalance_protocol(), RebalanceProtocol::Cooperative),
        "coop-1 does not use the cooperative protocol"
    );
    assert_eq!(c1.context().events(), vec![Ev::Assign((0..4).collect())]);

    let c2 = group_consumer(&bs, group, "coop-2", &topic, &coop);
    let cs = [&c1, &c2];
    let sets = wait_split(&cs, &mut got, &mut errors, 4, 2, Duration::from_secs(60));
    let (kept, moved) = (&sets[0], &sets[1]);
    assert_eq!(kept.len(), 2, "{sets:?}");

    // c1: one incremental revoke of exactly the moved partitions; never all of them, and
    // its assignment never became empty on the way.
    let ev1 = c1.context().events();
    let mut owned: BTreeSet<i32> = BTreeSet::new();
    let mut revoked: BTreeSet<i32> = BTreeSet::new();
    for (i, ev) in ev1.iter().enumerate() {
        match ev {
            Ev::Assign(ps) => {
                assert!(
                    ps.is_disjoint(&owned),
                    "coop-1 event #{i}: incremental assign {ps:?} of already owned {owned:?}"
                );
                owned.extend(ps);
            }
            Ev::Revoke(ps) => {
                assert!(
                    ps.is_subset(&owned),
                    "coop-1 event #{i}: revoke {ps:?} of not-owned partitions (owned {owned:?})"
                );
                assert!(ps.len() < 4, "coop-1 event #{i}: revoke of all 4 partitions: not incremental; events {ev1:?}");
                owned.retain(|p| !ps.contains(p));
                revoked.extend(ps);
            }
            Ev::Error(e) => panic!("coop-1 rebalance error {e}; events {ev1:?}"),
        }
        if i > 0 {
            assert!(!owned.is_empty(), "coop-1 lost all partitions after event #{i}; events {ev1:?}");
        }
    }
    assert_eq!(&owned, kept, "coop-1's incremental events {ev1:?} do not add up to its assignment");
    assert_eq!(
        &revoked, moved,
        "coop-1 should have revoked exactly the partitions that moved to coop-2; events {ev1:?}"
    );

    // c2 only ever gets partitions added.
    let ev2 = c2.context().events();
    assert!(ev2.iter().all(|e| matches!(e, Ev::Assign(_))), "coop-2 events {ev2:?}");
    let added: BTreeSet<i32> =
        ev2.iter().flat_map(|e| if let Ev::Assign(p) = e { p.clone() } else { BTreeSet::new() }).collect();
    assert_eq!(&added, moved, "coop-2 events {ev2:?}");

    let view = describe_group(&bs, group).expect("group listed");
    assert_eq!(view.protocol, "cooperative-sticky", "{view:?}");
    assert_eq!(view.state, "Stable", "{view:?}");
    close(c2);
    close(c1);
}

#[test]
fn more_members_than_partitions() {
    let _s = serial();
    // All three join the first generation: a member that first got both partitions alone
    // and then lost one could fetch from the one it kept before its pause took effect
    // (librdkafka fetches at once from a partition whose position it already knows).
    let b = group_broker(&[("group.initial.rebalance.delay.ms", "3000")]);
    let bs = b.bootstrap();
    let topic = topic_name("idle");
    create_topic(&bs, &topic, 2);
    let produced = produce_keyed(&bs, &topic, 1000, "idle");
    let group = "g-idle";
    let c1 = holding_consumer(&bs, group, "idle-1", &topic, &[]);
    let c2 = holding_consumer(&bs, group, "idle-2", &topic, &[]);
    let c3 = holding_consumer(&bs, group, "idle-3", &topic, &[]);
    let cs = [&c1, &c2, &c3];
    let (mut got, mut errors) = (Vec::new(), Vec::new());
    // All three members in the group (one of them with nothing), paused until then.
    pump_until(&cs, &mut got, &mut errors, Duration::from_secs(60), "group Stable with 3 members", |_| {
        describe_group(&bs, group).is_some_and(|v| v.state == "Stable" && v.members.len() == 3)
    });
    let sets = wait_split(&cs, &mut got, &mut errors, 2, 0, Duration::from_secs(60));
    let mut sizes: Vec<usize> = sets.iter().map(|s| s.len()).collect();
    sizes.sort();
    assert_eq!(sizes, vec![0, 1, 1], "2 partitions over 3 members: {sets:?}{}", describe(&cs, &got, &errors));
    assert!(got.is_empty(), "paused consumers got messages{}", describe(&cs, &got, &errors));
    cs.iter().for_each(|c| release(c));
    pump_until(&cs, &mut got, &mut errors, Duration::from_secs(60), "all 1000 messages consumed", |g| {
        g.len() >= produced.len()
    });
    pump_for(&cs, &mut got, &mut errors, Duration::from_secs(1));
    let now: Vec<BTreeSet<i32>> = cs.iter().map(|c| assigned(c)).collect();
    assert_eq!(now, sets, "assignment changed while consuming{}", describe(&cs, &got, &errors));
    assert_exactly_once(&produced, &got, "3 members on 2 partitions");
    for (i, set) in sets.iter().enumerate() {
        let read: BTreeSet<i32> = got.iter().filter(|g| g.who == i).map(|g| g.partition).collect();
        assert_eq!(&read, set, "consumer #{i} read from partitions {read:?}, assigned {set:?}");
    }
    let view = describe_group(&bs, group).expect("group listed");
    assert_eq!((view.state.as_str(), view.members.len()), ("Stable", 3), "{view:?}");
    close(c1);
    close(c2);
    close(c3);
}

/// `group.initial.rebalance.delay.ms`: the first rebalance of an empty group waits that
/// long for more members, then completes (it must not wait for the rebalance timeout,
/// librdkafka's `max.poll.interval.ms`, 300 s by default). Two consumers started together
/// end up in that first generation: each gets exactly one assignment.
#[test]
fn initial_rebalance_delay_completes_first_join() {
    let _s = serial();
    let b = group_broker(&[("group.initial.rebalance.delay.ms", "3000")]);
    let bs = b.bootstrap();
    let topic = topic_name("delay");
    create_topic(&bs, &topic, 4);
    let group = "g-delay";
    let started = Instant::now();
    let c1 = group_consumer(&bs, group, "delay-1", &topic, &[]);
    let c2 = group_consumer(&bs, group, "delay-2", &topic, &[]);
    let cs = [&c1, &c2];
    let (mut got, mut errors) = (Vec::new(), Vec::new());
    let sets = wait_split(&cs, &mut got, &mut errors, 4, 2, Duration::from_secs(30));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2500), "first rebalance completed after {took:?}, before the 3 s delay");
    for (c, set) in cs.iter().zip(&sets) {
        assert_eq!(c.context().events(), vec![Ev::Assign(set.clone())], "{}: one generation only", c.context().name);
    }
    close(c1);
    close(c2);
}

#[test]
fn list_and_describe_groups() {
    let _s = serial();
    let b = group_broker(&[]);
    let bs = b.bootstrap();
    let topic = topic_name("adm");
    create_topic(&bs, &topic, 4);
    produce_keyed(&bs, &topic, 100, "adm");
    let group = "g-admin";
    let ca = group_consumer(&bs, group, "adm-a", &topic, &[]);
    let cb = group_consumer(&bs, group, "adm-b", &topic, &[]);
    let cs = [&ca, &cb];
    let (mut got, mut errors) = (Vec::new(), Vec::new());
    let sets = wait_split(&cs, &mut got, &mut errors, 4, 2, Duration::from_secs(60));
    pump_until(&cs, &mut got, &mut errors, Duration::from_secs(30), "all 100 messages consumed", |g| g.len() >= 100);
    // Commit what was read.
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for g in &got {
        let e = next.entry(g.partition).or_insert(0);
        *e = (*e).max(g.offset + 1);
    }
    for (i, c) in cs.iter().enumerate() {
        let mut tpl = TopicPartitionList::new();
        for p in &sets[i] {
            tpl.add_partition_offset(&topic, *p, Offset::Offset(next.get(p).copied().unwrap_or(0))).unwrap();
        }
        c.commit(&tpl, CommitMode::Sync).unwrap_or_else(|e| panic!("commit {tpl:?}: {e}"));
    }

    assert!(list_group_names(&bs).contains(&group.to_string()), "ListGroups: {:?}", list_group_names(&bs));
    let view = describe_group(&bs, group).expect("DescribeGroups lists the group");
    assert_eq!(view.state, "Stable", "{view:?}");
    assert_eq!(view.protocol_type, "consumer", "{view:?}");
    assert_eq!(view.protocol, "range", "{view:?}");
    assert_eq!(view.members.keys().collect::<Vec<_>>(), vec!["adm-a", "adm-b"], "{view:?}");
    for (i, name) in ["adm-a", "adm-b"].iter().enumerate() {
        let (host, meta, asg) = &view.members[*name];
        assert!(host.contains("127.0.0.1"), "member {name} client host {host:?}");
        assert!(!meta.is_empty(), "member {name} has empty protocol metadata");
        assert_eq!(
            decode_assignment(asg),
            BTreeMap::from([(topic.clone(), sets[i].clone())]),
            "member {name} assignment"
        );
    }

    close(ca);
    close(cb);
    // Without members the group is Empty but still known (it has committed offsets).
    let view = wait_until(Duration::from_secs(20), "group Empty after both consumers left", || {
        describe_group(&bs, group).filter(|v| v.state == "Empty")
    });
    assert!(view.members.is_empty(), "{view:?}");
    assert!(list_group_names(&bs).contains(&group.to_string()), "ListGroups: {:?}", list_group_names(&bs));
    let committed = committed_of(&bs, group, &topic, 4);
    let expected: BTreeMap<i32, Offset> =
        (0..4).map(|p| (p, Offset::Offset(next.get(&p).copied().unwrap_or(0)))).collect();
    assert_eq!(committed, expected);
}
