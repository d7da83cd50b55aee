//! The transaction coordinator driven by hand (Kafka's flows one by one) and by a seeded
//! simulation with failed writes, lost answers, timeouts and coordinator failovers.
use super::coordinator::*;

/// A driver of the sort the broker has: it keeps `__transaction_state` as a list of
/// records, and answers Persist and WriteMarkers as told.
struct Harness {
    c: TxnCoordinator,
    log: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    next_pid: i64,
    answers: Vec<(ReqId, Result<Answer, TxnError>)>,
    /// Persist outputs not yet reported back.
    writes: Vec<(String, Vec<u8>, Option<Vec<u8>>)>,
    /// WriteMarkers outputs not yet reported back.
    markers: Vec<(String, i64, i16, bool, Vec<(String, i32)>)>,
    /// The start of the transaction each of `markers` ends (which transaction it is).
    marker_starts: Vec<i64>,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            c: TxnCoordinator::new(TxnConfig { max_timeout_ms: 60_000, id_expiration_ms: 600_000 }),
            log: Vec::new(),
            next_pid: 1000,
            answers: Vec::new(),
            writes: Vec::new(),
            markers: Vec::new(),
            marker_starts: Vec::new(),
        }
    }

    fn take(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Respond { req, result } => self.answers.push((req, result)),
                Output::Persist { transactional_id, key, value } => self.writes.push((transactional_id, key, value)),
                Output::WriteMarkers { transactional_id, producer_id, producer_epoch, commit, partitions } => {
                    self.marker_starts.push(self.c.meta(&transactional_id).map_or(-2, |m| m.start_ms));
                    self.markers.push((transactional_id, producer_id, producer_epoch, commit, partitions))
                }
            }
        }
    }

    fn init(&mut self, req: ReqId, id: &str, expected: Option<(i64, i16)>, now: Now) {
        let pid = &mut self.next_pid;
        let out = self.c.init_producer_id(req, id, 30_000, expected, now, &mut || {
            *pid += 1;
            *pid
        });
        self.take(out);
    }

    /// Makes every pending write durable (or fails them), in order.
    fn flush_writes(&mut self, ok: bool) {
        for (id, key, value) in std::mem::take(&mut self.writes) {
            if ok {
                self.log.push((key, value));
            }
            let out = self.c.persisted(&id, ok);
            self.take(out);
        }
    }

    fn flush_markers(&mut self, now: Now) -> Vec<(String, i64, i16, bool, Vec<(String, i32)>)> {
        let done = std::mem::take(&mut self.markers);
        self.marker_starts.clear();
        for m in &done {
            let out = self.c.markers_written(&m.0, now);
            self.take(out);
        }
        done
    }

    fn answer(&mut self, req: ReqId) -> Result<Answer, TxnError> {
        let at = self.answers.iter().position(|(r, _)| *r == req).unwrap_or_else(|| panic!("no answer to {req}"));
        self.answers.remove(at).1
    }

    /// A new coordinator (another broker, or this one restarted) loads the log.
    fn fail_over(&mut self) {
        self.c = TxnCoordinator::new(TxnConfig { max_timeout_ms: 60_000, id_expiration_ms: 600_000 });
        self.writes.clear();
        self.markers.clear();
        self.marker_starts.clear();
        for (k, v) in &self.log {
            self.c.replay(k, v.as_deref());
        }
        let out = self.c.loaded();
        self.take(out);
    }
}

/// A transaction: its id, producer id and start (an abort that fences carries a bumped
/// epoch, so the epoch does not name it).
type TxnKey = (String, i64, i64);
/// Partitions by the transaction their leaders were told (or whose markers) cover them.
type ByTxn = std::collections::HashMap<TxnKey, Vec<(String, i32)>>;

fn parts(list: &[(&str, i32)]) -> Vec<(String, i32)> {
    list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
}

fn pid_epoch(a: Result<Answer, TxnError>) -> (i64, i16) {
    match a {
        Ok(Answer::ProducerId { producer_id, producer_epoch }) => (producer_id, producer_epoch),
        other => panic!("not a producer id: {other:?}"),
    }
}

#[test]
fn a_transaction_commits_through_prepare_markers_and_complete() {
    let mut h = Harness::new();
    h.init(1, "app", None, 0);
    assert!(h.answers.is_empty(), "answered only once durable");
    h.flush_writes(true);
    let (pid, epoch) = pid_epoch(h.answer(1));
    assert_eq!(epoch, 0);
    let out = h.c.add_partitions(2, "app", pid, epoch, &parts(&[("a", 0), ("b", 1)]), 10);
    h.take(out);
    h.flush_writes(true);
    assert_eq!(h.answer(2), Ok(Answer::Done));
    assert_eq!(h.c.describe("app").unwrap().state, TxnState::Ongoing);
    let out = h.c.add_partitions(3, "app", pid, epoch, &parts(&[("a", 0)]), 11);
    assert_eq!(out, vec![Output::Respond { req: 3, result: Ok(Answer::Done) }], "nothing new to persist");
    let out = h.c.end_txn(4, "app", pid, epoch, true, 20);
    h.take(out);
    assert!(h.markers.is_empty(), "markers only after the Prepare is durable");
    h.flush_writes(true);
    assert_eq!(h.answer(4), Ok(Answer::Done));
    assert_eq!(h.c.describe("app").unwrap().state, TxnState::PrepareCommit);
    let out = h.c.add_partitions(5, "app", pid, epoch, &parts(&[("c", 0)]), 21);
    assert_eq!(out, vec![Output::Respond { req: 5, result: Err(TxnError::ConcurrentTransactions) }]);
    let markers = h.flush_markers(30);
    assert_eq!(markers, vec![("app".to_string(), pid, epoch, true, parts(&[("a", 0), ("b", 1)]))]);
    h.flush_writes(true);
    let m = h.c.meta("app").unwrap();
    assert_eq!((m.state, m.partitions.len()), (TxnState::CompleteCommit, 0));
    // A retried EndTxn(commit) is answered; an abort of a committed one is not valid.
    let out = h.c.end_txn(6, "app", pid, epoch, true, 31);
    assert_eq!(out, vec![Output::Respond { req: 6, result: Ok(Answer::Done) }]);
    let out = h.c.end_txn(7, "app", pid, epoch, false, 31);
    assert_eq!(out, vec![Output::Respond { req: 7, result: Err(TxnError::InvalidTxnState) }]);
    // The next transaction starts from the first partition added.
    let out = h.c.add_partitions(8, "app", pid, epoch, &parts(&[("c", 0)]), 40);
    h.take(out);
    h.flush_writes(true);
    let m = h.c.meta("app").unwrap();
    assert_eq!((m.state, m.start_ms, m.partitions.len()), (TxnState::Ongoing, 40, 1));
}

#[test]
fn a_partition_leader_verifies_against_the_durable_transaction() {
    let mut h = Harness::new();
    h.init(1, "app", None, 0);
    h.flush_writes(true);
    let (pid, epoch) = pid_epoch(h.answer(1));
    let a0 = parts(&[("a", 0)]);
    let both = parts(&[("a", 0), ("b", 0)]);
    assert_eq!(h.c.verify("app", pid, epoch, &a0), Ok(vec![false]), "no transaction yet");
    let out = h.c.add_partitions(2, "app", pid, epoch, &a0, 1);
    h.take(out);
    assert_eq!(h.c.verify("app", pid, epoch, &a0), Ok(vec![false]), "not durable yet");
    h.flush_writes(true);
    assert_eq!(h.c.verify("app", pid, epoch, &both), Ok(vec![true, false]));
    // A pending AddPartitions for another partition neither counts nor holds it up.
    let out = h.c.add_partitions(3, "app", pid, epoch, &parts(&[("b", 0)]), 2);
    h.take(out);
    assert_eq!(h.c.verify("app", pid, epoch, &both), Ok(vec![true, false]));
    h.flush_writes(true);
    assert_eq!(h.c.verify("app", pid, epoch, &both), Ok(vec![true, true]));
    assert_eq!(h.c.verify("app", pid, epoch + 1, &a0), Err(TxnError::ProducerFenced));
    assert_eq!(h.c.verify("app", pid + 1, epoch, &a0), Err(TxnError::InvalidProducerIdMapping));
    assert_eq!(h.c.verify("other", pid, epoch, &a0), Err(TxnError::InvalidProducerIdMapping));
    // Ending: CONCURRENT_TRANSACTIONS from the EndTxn until the markers are written.
    let out = h.c.end_txn(4, "app", pid, epoch, true, 3);
    h.take(out);
    assert_eq!(h.c.verify("app", pid, epoch, &a0), Err(TxnError::ConcurrentTransactions));
    h.flush_writes(true);
    assert_eq!(h.c.verify("app", pid, epoch, &a0), Err(TxnError::ConcurrentTransactions));
    h.flush_markers(4);
    h.flush_writes(true);
    assert_eq!(h.c.verify("app", pid, epoch, &both), Ok(vec![false, false]), "a late write of the ended one");
}

#[test]
fn a_second_instance_fences_the_first() {
    let mut h = Harness::new();
    h.init(1, "app", None, 0);
    h.flush_writes(true);
    let (pid, e0) = pid_epoch(h.answer(1));
    h.init(2, "app", None, 1);
    h.flush_writes(true);
    let (pid2, e1) = pid_epoch(h.answer(2));
    assert_eq!((pid2, e1), (pid, e0 + 1));
    let out = h.c.add_partitions(3, "app", pid, e0, &parts(&[("a", 0)]), 2);
    assert_eq!(out, vec![Output::Respond { req: 3, result: Err(TxnError::ProducerFenced) }]);
    let out = h.c.end_txn(4, "app", pid + 1, e1, true, 2);
    assert_eq!(out, vec![Output::Respond { req: 4, result: Err(TxnError::InvalidProducerIdMapping) }]);
    let out = h.c.end_txn(5, "app", pid, e1, true, 2);
    assert_eq!(out, vec![Output::Respond { req: 5, result: Err(TxnError::InvalidTxnState) }], "nothing to end");
}

#[test]
fn init_during_an_open_transaction_aborts_it_under_a_fenced_epoch() {
    let mut h = Harness::new();
    h.init(1, "app", None, 0);
    h.flush_writes(true);
    let (pid, e0) = pid_epoch(h.answer(1));
    let out = h.c.add_partitions(2, "app", pid, e0, &parts(&[("a", 0)]), 1);
    h.take(out);
    h.flush_writes(true);
    h.answer(2).unwrap();
    h.init(3, "app", None, 2);
    assert_eq!(h.answer(3), Err(TxnError::ConcurrentTransactions), "the client retries");
    h.flush_writes(true);
    let markers = h.flush_markers(3);
    assert_eq!(markers, vec![("app".to_string(), pid, e0 + 1, false, parts(&[("a", 0)]))], "aborted, fenced");
    // The old instance is fenced from here on.
    let out = h.c.end_txn(4, "app", pid, e0, true, 3);
    assert_eq!(out, vec![Output::Respond { req: 4, result: Err(TxnError::ProducerFenced) }]);
    h.flush_writes(true);
    h.init(5, "app", None, 4);
    h.flush_writes(true);
    assert_eq!(pid_epoch(h.answer(5)), (pid, e0 + 2));
}

#[test]
fn an_open_transaction_is_aborted_after_its_timeout() {
    let mut h = Harness::new();
    h.init(1, "app", None, 0);
    h.flush_writes(true);
    let (pid, e0) = pid_epoch(h.answer(1));
    let out = h.c.add_partitions(2, "app", pid, e0, &parts(&[("a", 0)]), 1_000);
    h.take(out);
    h.flush_writes(true);
    assert!(h.c.tick(31_000).is_empty(), "30 s timeout: not yet");
    let out = h.c.tick(31_001);
    h.take(out);
    h.flush_writes(true);
    let markers = h.flush_markers(31_002);
    assert_eq!(markers, vec![("app".to_string(), pid, e0 + 1, false, parts(&[("a", 0)]))]);
    h.flush_writes(true);
    assert_eq!(h.c.meta("app").unwrap().state, TxnState::CompleteAbort);
    let out = h.c.add_partitions(3, "app", pid, e0, &parts(&[("a", 0)]), 31_003);
    assert_eq!(out, vec![Output::Respond { req: 3, result: Err(TxnError::ProducerFenced) }], "the zombie is fenced");
}

#[test]
fn a_new_coordinator_finishes_what_the_last_one_prepared() {
    let mut h = Harness::new();
    h.init(1, "app", None, 0);
    h.flush_writes(true);
    let (pid, e0) = pid_epoch(h.answer(1));
    let out = h.c.add_partitions(2, "app", pid, e0, &parts(&[("a", 0), ("a", 1)]), 1);
    h.take(out);
    h.flush_writes(true);
    let out = h.c.end_txn(3, "app", pid, e0, true, 2);
    h.take(out);
    h.flush_writes(true);
    assert_eq!(h.answer(3), Ok(Answer::Done));
    // The coordinator dies before its markers are written.
    h.fail_over();
    assert_eq!(h.markers, vec![("app".to_string(), pid, e0, true, parts(&[("a", 0), ("a", 1)]))]);
    h.flush_markers(3);
    h.flush_writes(true);
    assert_eq!(h.c.meta("app").unwrap().state, TxnState::CompleteCommit);
}

#[test]
fn a_write_that_fails_changes_nothing() {
    let mut h = Harness::new();
    h.init(1, "app", None, 0);
    h.flush_writes(false);
    assert_eq!(h.answer(1), Err(TxnError::NotCoordinator));
    assert!(h.c.describe("app").is_none(), "a new id that never became durable is gone");
    h.init(2, "app", None, 0);
    h.flush_writes(true);
    let (pid, e0) = pid_epoch(h.answer(2));
    let out = h.c.add_partitions(3, "app", pid, e0, &parts(&[("a", 0)]), 1);
    h.take(out);
    h.flush_writes(true);
    let out = h.c.end_txn(4, "app", pid, e0, false, 2);
    h.take(out);
    h.flush_writes(false);
    assert_eq!(h.answer(4), Err(TxnError::NotCoordinator));
    assert_eq!(h.c.meta("app").unwrap().state, TxnState::Ongoing);
    // The Complete write fails: the markers are written again on the next tick.
    let out = h.c.end_txn(5, "app", pid, e0, false, 3);
    h.take(out);
    h.flush_writes(true);
    h.flush_markers(4);
    h.flush_writes(false);
    assert_eq!(h.c.meta("app").unwrap().state, TxnState::PrepareAbort);
    let out = h.c.tick(5);
    h.take(out);
    assert_eq!(h.markers.len(), 1);
    h.flush_markers(6);
    h.flush_writes(true);
    assert_eq!(h.c.meta("app").unwrap().state, TxnState::CompleteAbort);
}

#[test]
fn idle_ids_expire_and_bad_timeouts_are_refused() {
    let mut h = Harness::new();
    h.init(1, "app", None, 0);
    h.flush_writes(true);
    h.answer(1).unwrap();
    let out = h.c.init_producer_id(2, "big", 60_001, None, 0, &mut || 1);
    assert_eq!(out, vec![Output::Respond { req: 2, result: Err(TxnError::InvalidTransactionTimeout) }]);
    assert!(h.c.tick(600_000).is_empty());
    let out = h.c.tick(600_001);
    h.take(out);
    assert_eq!(h.writes.len(), 1);
    assert_eq!(h.writes[0].2, None, "a tombstone");
    h.flush_writes(true);
    assert!(h.c.describe("app").is_none());
    h.fail_over();
    assert!(h.c.describe("app").is_none(), "the tombstone holds after a reload");
}

#[test]
fn kip_360_recovery_bumps_only_the_current_epoch() {
    let mut h = Harness::new();
    h.init(1, "app", None, 0);
    h.flush_writes(true);
    let (pid, e0) = pid_epoch(h.answer(1));
    h.init(2, "app", Some((pid, e0 + 5)), 1);
    assert_eq!(h.answer(2), Err(TxnError::ProducerFenced));
    h.init(3, "app", Some((pid, e0)), 1);
    h.flush_writes(true);
    assert_eq!(pid_epoch(h.answer(3)), (pid, e0 + 1));
    // Its answer was lost: the retry gets the same epoch, not another bump.
    h.init(4, "app", Some((pid, e0)), 2);
    assert_eq!(pid_epoch(h.answer(4)), (pid, e0 + 1));
    assert!(h.writes.is_empty());
}

#[test]
fn list_and_describe_show_states() {
    let mut h = Harness::new();
    for (i, id) in ["b", "a"].iter().enumerate() {
        h.init(i as u64, id, None, 0);
    }
    h.flush_writes(true);
    let (pid, e) = pid_epoch(h.answer(1));
    let out = h.c.add_partitions(9, "a", pid, e, &parts(&[("t", 3)]), 1);
    h.take(out);
    h.flush_writes(true);
    let all = h.c.list(&[], &[]);
    assert_eq!(
        all.iter().map(|(id, _, s)| (id.as_str(), s.name())).collect::<Vec<_>>(),
        [("a", "Ongoing"), ("b", "Empty")]
    );
    assert_eq!(h.c.list(&["Ongoing".into()], &[]).len(), 1);
    assert_eq!(h.c.list(&[], &[pid]).len(), 1);
    let d = h.c.describe("a").unwrap();
    assert_eq!((d.state, d.start_ms, d.partitions), (TxnState::Ongoing, 1, parts(&[("t", 3)])));
}

/// A small seeded generator (xorshift64*), so a failing run can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random clients, failed writes, lost markers, timeouts and fail-overs. Checked
/// throughout: a transaction's markers agree with what its Prepare record decided, a
/// committed EndTxn always ends in commit markers, nobody gets both a commit and an
/// abort for one transaction, and a reload of the log gives back every settled state.
#[test]
fn seeded_simulation_keeps_commits_and_aborts_apart() {
    for seed in 1..=200u64 {
        simulate(seed);
    }
}

fn simulate(seed: u64) {
    use std::collections::HashMap;
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut h = Harness::new();
    let ids = ["t0", "t1", "t2"];
    // What each client believes: its producer id and epoch.
    let mut clients: HashMap<&str, (i64, i16)> = HashMap::new();
    // Per transaction (id, producer id, epoch, start): the decision its markers carried.
    let mut decided: HashMap<(String, i64, i16, i64), bool> = HashMap::new();
    // Every PrepareCommit made durable must end in commit markers.
    let mut promised: Vec<(String, i64, i16, i64)> = Vec::new();
    // KIP-890: each partition a leader was told is in a transaction (by `verify`).
    let mut verified: Vec<(TxnKey, (String, i32))> = Vec::new();
    let mut marked: ByTxn = HashMap::new();
    let mut now: Now = 0;
    let mut req: ReqId = 0;
    let mut logged = 0;
    for _ in 0..400 {
        now += rng.below(3_000) as i64;
        req += 1;
        let id = ids[rng.below(3) as usize];
        match rng.below(10) {
            0 => h.init(req, id, None, now),
            1..=3 => {
                if let Some(&(pid, e)) = clients.get(id) {
                    let p = (format!("topic{}", rng.below(2)), rng.below(3) as i32);
                    let out = h.c.add_partitions(req, id, pid, e, &[p], now);
                    h.take(out);
                }
            }
            4 => {
                if let Some(&(pid, e)) = clients.get(id) {
                    let out = h.c.end_txn(req, id, pid, e, rng.below(2) == 0, now);
                    h.take(out);
                }
            }
            5 => {
                let ok = rng.below(5) != 0;
                h.flush_writes(ok);
            }
            6 => deliver_markers(&mut h, &mut decided, &mut marked, now, seed),
            7 => {
                let out = h.c.tick(now);
                h.take(out);
            }
            8 if rng.below(4) == 0 => h.fail_over(),
            9 => {
                if let Some(&(pid, e)) = clients.get(id) {
                    let p = (format!("topic{}", rng.below(2)), rng.below(3) as i32);
                    if h.c.verify(id, pid, e, std::slice::from_ref(&p)) == Ok(vec![true]) {
                        let start = h.c.meta(id).unwrap().start_ms;
                        verified.push(((id.to_string(), pid, start), p));
                    }
                }
            }
            _ => {}
        }
        // Clients learn their answers.
        for (r, a) in std::mem::take(&mut h.answers) {
            if let Ok(Answer::ProducerId { producer_id, producer_epoch }) = a {
                let id = ids.iter().find(|i| h.c.meta(i).is_some_and(|m| m.producer_id == producer_id)).copied();
                if let Some(id) = id {
                    clients.insert(id, (producer_id, producer_epoch));
                }
            }
            let _ = r;
        }
        // A commit answered Done is recorded from the Prepare in the log: check below.
        for (k, v) in &h.log[logged..] {
            if let (Some(id), Some(v)) = (super::records::parse_key(k), v) {
                let m = super::records::parse_value(&id, v).unwrap();
                let key = (id, m.producer_id, m.producer_epoch, m.start_ms);
                if m.state == TxnState::PrepareCommit && !promised.contains(&key) {
                    promised.push(key);
                }
            }
        }
        logged = h.log.len();
    }
    // Quiesce: everything written, every marker delivered, until nothing moves.
    for _ in 0..20 {
        h.flush_writes(true);
        deliver_markers(&mut h, &mut decided, &mut marked, now, seed);
        let out = h.c.tick(now);
        h.take(out);
    }
    for p in &promised {
        assert_eq!(decided.get(p), Some(&true), "seed {seed}: prepared commit {p:?} never got its markers");
    }
    // A verified partition gets its transaction's markers (or the transaction is still
    // open with it): data a leader let in under a verification is never left dangling.
    for (key, p) in &verified {
        let open = h.c.meta(&key.0).is_some_and(|m| {
            m.state == TxnState::Ongoing && (m.producer_id, m.start_ms) == (key.1, key.2) && m.partitions.contains(p)
        });
        let ended = marked.get(key).is_some_and(|ps| ps.contains(p));
        assert!(open || ended, "seed {seed}: {p:?} verified in {key:?}, which ended without a marker for it");
    }
    // The log read back gives the same settled states.
    let live: Vec<_> = ids.iter().map(|i| h.c.meta(i).cloned()).collect();
    h.fail_over();
    let reloaded: Vec<_> = ids.iter().map(|i| h.c.meta(i).cloned()).collect();
    assert_eq!(live, reloaded, "seed {seed}");
}

fn deliver_markers(
    h: &mut Harness,
    decided: &mut std::collections::HashMap<(String, i64, i16, i64), bool>,
    marked: &mut ByTxn,
    now: Now,
    seed: u64,
) {
    let starts = h.marker_starts.clone();
    for (m, start) in h.flush_markers(now).into_iter().zip(starts) {
        marked.entry((m.0.clone(), m.1, start)).or_default().extend(m.4.iter().cloned());
        let prior = decided.insert((m.0.clone(), m.1, m.2, start), m.3);
        assert!(prior.is_none() || prior == Some(m.3), "seed {seed}: {m:?} (start {start}) after {prior:?}");
    }
}
