//! The native load generator: pipelined producers (writer + reader thread per connection,
//! pre-encoded Produce frames) and pipelined fetchers (one thread per connection, several
//! speculative fetches in flight per partition).
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Duration;

use super::stats::{now_ns, Hist};
use super::wire::{self, ProduceFrame, TopicMeta};
use super::{finish_producers, join_consumers, spawn, BenchArgs, Mode, Shared};

const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How long e2e consumers wait for the last messages after the producers finished.
pub const DRAIN_TIMEOUT_NS: u64 = 15_000_000_000;

/// Partitions of client `i` of `n`: round robin, or one shared partition when there are
/// more clients than partitions.
pub fn partitions_of(i: usize, n: usize, partitions: usize) -> Vec<i32> {
    if n <= partitions {
        (0..partitions).filter(|p| p % n == i).map(|p| p as i32).collect()
    } else {
        vec![(i % partitions) as i32]
    }
}

/// Splits `total` over `n` shares.
pub fn share(total: u64, n: usize, i: usize) -> u64 {
    total / n as u64 + u64::from((i as u64) < total % n as u64)
}

fn by_leader(meta: &TopicMeta, parts: &[i32]) -> BTreeMap<String, Vec<i32>> {
    let mut m: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for &p in parts {
        m.entry(meta.partitions[p as usize].clone()).or_default().push(p);
    }
    m
}

pub fn run(shared: &Arc<Shared>, args: &BenchArgs, mode: Mode, meta: &TopicMeta) -> Result<(), String> {
    let np = meta.partitions.len();
    let all: Vec<i32> = (0..np as i32).collect();
    let mut consumers = Vec::new();
    if mode != Mode::Produce {
        let ts = if mode == Mode::E2e { -1 } else { -2 };
        let mut starts = BTreeMap::new();
        let mut ends = BTreeMap::new();
        for (addr, parts) in by_leader(meta, &all) {
            starts.extend(wire::list_offsets(&addr, &meta.topic, &parts, ts)?);
            ends.extend(wire::list_offsets(&addr, &meta.topic, &parts, -1)?);
        }
        for c in 0..args.consumers {
            for (addr, parts) in by_leader(meta, &partitions_of(c, args.consumers, np)) {
                let parts: Vec<(i32, i64, i64)> = parts.iter().map(|p| (*p, starts[p], ends[p])).collect();
                let (s, a, t) = (shared.clone(), args.clone(), meta.topic.clone());
                let hist = shared.histogram();
                consumers.push(spawn(format!("consumer-{c}"), shared, move || {
                    consume_conn(&s, &a, mode, &t, &addr, parts, hist)
                }));
            }
        }
    }
    if mode != Mode::Consume {
        let mut senders = Vec::new();
        for i in 0..args.producers {
            for (addr, parts) in by_leader(meta, &partitions_of(i, args.producers, np)) {
                senders.push((addr, parts));
            }
        }
        let n = senders.len();
        let mut producers = Vec::new();
        for (i, (addr, parts)) in senders.into_iter().enumerate() {
            let quota = shared.target_messages.map(|t| share(t, n, i));
            let rate = args.rate.map(|r| r / n as f64);
            let (s, a, t) = (shared.clone(), args.clone(), meta.topic.clone());
            producers.push(spawn(format!("producer-{i}"), shared, move || {
                produce_conn(&s, &a, mode, &t, &addr, &parts, quota, rate)
            }));
        }
        finish_producers(shared, producers, mode);
    }
    join_consumers(shared, consumers)
}

struct Inflight {
    corr: i32,
    send_ns: u64,
    msgs: u64,
    measured: bool,
}

pub fn sleep_until(ns: u64) {
    loop {
        let now = now_ns();
        if now >= ns {
            return;
        }
        std::thread::sleep(Duration::from_nanos(ns - now));
    }
}

/// Asks the kernel for precise sleeps (the default timer slack is 50 µs).
pub fn precise_timers() {
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

#[allow(clippy::too_many_arguments)]
fn produce_conn(
    shared: &Arc<Shared>,
    args: &BenchArgs,
    mode: Mode,
    topic: &str,
    addr: &str,
    parts: &[i32],
    quota: Option<u64>,
    rate: Option<f64>,
) -> Result<(), String> {
    precise_timers();
    let acks = args.acks_i16();
    let size = args.message_size;
    let b = args.batch_messages;
    let mut frames: Vec<ProduceFrame> =
        parts.iter().map(|&p| ProduceFrame::new(topic, p, acks, b, size, args.keyed)).collect::<Result<_, _>>()?;
    let mut partial: Vec<Option<ProduceFrame>> = parts.iter().map(|_| None).collect();
    let mut stream = wire::connect(addr)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;

    let (tx, rx) = sync_channel::<Inflight>(args.window.saturating_sub(1).max(1));
    let reader = if acks != 0 {
        let mut rs = stream.try_clone().map_err(|e| e.to_string())?;
        let shared = shared.clone();
        let hist: Option<Hist> = if mode == Mode::Produce { Some(shared.histogram()) } else { None };
        Some(
            std::thread::Builder::new()
                .name("producer-reader".into())
                .spawn(move || {
                    let mut buf = Vec::with_capacity(256);
                    while let Ok(inf) = rx.recv() {
                        let r = wire::read_frame(&mut rs, &mut buf).and_then(|got| {
                            if !got {
                                return Err("broker closed the connection with Produce requests in flight".to_string());
                            }
                            wire::produce_response_error(&buf)
                        });
                        let (corr, err) = match r {
                            Ok(v) => v,
                            Err(e) => {
                                shared.fail(e);
                                return;
                            }
                        };
                        if corr != inf.corr {
                            shared.fail(format!("Produce response with correlation id {corr}, expected {}", inf.corr));
                            return;
                        }
                        if let Some(e) = err {
                            shared.fail(e);
                            return;
                        }
                        let now = now_ns();
                        if let Some(h) = &hist {
                            if inf.measured {
                                let _ = h.lock().unwrap().record_n(now.saturating_sub(inf.send_ns).max(1), inf.msgs);
                            }
                        }
                        if mode == Mode::Produce {
                            shared.complete(inf.measured, inf.msgs, inf.msgs * size as u64, now);
                        } else if inf.measured {
                            shared.produced_measured.fetch_add(inf.msgs, Ordering::Relaxed);
                        }
                    }
                })
                .expect("spawn reader"),
        )
    } else {
        drop(rx);
        None
    };

    let t0 = shared.start_ns;
    let mut sent: u64 = 0;
    let mut measured_sent: u64 = 0;
    let mut corr: i32 = 0;
    let mut rr = 0usize;
    let result = loop {
        if shared.stopped() {
            break Ok(());
        }
        if shared.timed_out() {
            break Err("--timeout reached while producing".to_string());
        }
        let intended = rate.map(|r| t0 + (sent as f64 / r * 1e9) as u64);
        let at = intended.unwrap_or_else(now_ns);
        if let Some(end) = shared.measure_end_ns {
            if at >= end {
                break Ok(());
            }
        }
        let measured = at >= shared.measure_start_ns;
        let n = match (measured, quota) {
            (true, Some(q)) => {
                let rem = q - measured_sent;
                if rem == 0 {
                    break Ok(());
                }
                rem.min(b as u64) as usize
            }
            _ => b,
        };
        if let Some(i) = intended {
            sleep_until(i);
        }
        let send_ns = intended.unwrap_or_else(now_ns);
        let frame = if n == b {
            &mut frames[rr]
        } else {
            if partial[rr].as_ref().map(|f| f.records != n).unwrap_or(true) {
                partial[rr] = Some(ProduceFrame::new(topic, parts[rr], acks, n, size, args.keyed)?);
            }
            partial[rr].as_mut().unwrap()
        };
        corr = corr.wrapping_add(1);
        frame.set_correlation_id(corr);
        if mode == Mode::E2e {
            frame.stamp(send_ns);
        }
        if acks != 0 && tx.send(Inflight { corr, send_ns, msgs: n as u64, measured }).is_err() {
            break Ok(()); // the reader stopped: it recorded why
        }
        if let Err(e) = stream.write_all(&frame.frame) {
            break Err(format!("sending Produce: {e}"));
        }
        if acks == 0 {
            let now = now_ns();
            if mode == Mode::Produce {
                shared.complete(measured, n as u64, (n * size) as u64, now);
            } else if measured {
                shared.produced_measured.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        sent += n as u64;
        if measured {
            measured_sent += n as u64;
        }
        rr = (rr + 1) % frames.len();
    };
    drop(tx);
    if let Some(r) = reader {
        let _ = r.join();
    }
    result
}

struct Part {
    id: i32,
    start: i64,
    frontier: i64,
    spec_next: i64,
    stride: i64,
    inflight: usize,
    hwm: i64,
}

/// Claims up to `n` of the measured messages still wanted (exact totals with --messages).
pub fn claim(shared: &Shared, n: u64) -> u64 {
    match shared.target_messages {
        None => n,
        Some(t) => {
            let mut cur = shared.claimed.load(Ordering::Relaxed);
            loop {
                let take = n.min(t.saturating_sub(cur));
                match shared.claimed.compare_exchange_weak(cur, cur + take, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return take,
                    Err(c) => cur = c,
                }
            }
        }
    }
}

/// The consumers' end-of-run test (sets the stop flag when the run is complete).
pub fn consumer_should_stop(shared: &Shared, mode: Mode) -> Result<bool, String> {
    if shared.stopped() {
        return Ok(true);
    }
    let now = now_ns();
    if now > shared.deadline_ns {
        return Err(format!(
            "--timeout reached while consuming ({} of {:?} messages)",
            shared.messages.load(Ordering::Relaxed),
            shared.target_messages
        ));
    }
    if let Some(t) = shared.target_messages {
        if shared.claimed.load(Ordering::Relaxed) >= t {
            shared.stop.store(true, Ordering::SeqCst);
            return Ok(true);
        }
    }
    match mode {
        Mode::Consume if shared.measure_end_ns.is_some_and(|e| now >= e) => {
            shared.stop.store(true, Ordering::SeqCst);
            return Ok(true);
        }
        Mode::E2e if shared.producers_done.load(Ordering::SeqCst) => {
            let want = shared.produced_measured.load(Ordering::Relaxed);
            if shared.messages.load(Ordering::Relaxed) >= want {
                shared.stop.store(true, Ordering::SeqCst);
                return Ok(true);
            }
            let done_at = shared.producers_done_ns.load(Ordering::Relaxed);
            if done_at == 0 {
                let _ = shared.producers_done_ns.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            } else if now > done_at + DRAIN_TIMEOUT_NS {
                return Err(format!(
                    "e2e: only {} of {want} produced (acknowledged) measured messages were consumed within {} s after the producers finished",
                    shared.messages.load(Ordering::Relaxed),
                    DRAIN_TIMEOUT_NS / 1_000_000_000
                ));
            }
        }
        _ => {}
    }
    Ok(false)
}

fn consume_conn(
    shared: &Arc<Shared>,
    args: &BenchArgs,
    mode: Mode,
    topic: &str,
    addr: &str,
    parts: Vec<(i32, i64, i64)>,
    hist: Hist,
) -> Result<(), String> {
    let mut stream: TcpStream = wire::connect(addr)?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    let e2e = mode == Mode::E2e;
    let depth = if e2e { 1 } else { args.fetch_depth };
    let max_wait = if e2e { 500 } else { 200 };
    let size = args.message_size as u64;
    let mut ps: Vec<Part> = parts
        .iter()
        .map(|&(id, start, end)| Part {
            id,
            start,
            frontier: start,
            spec_next: start,
            stride: 0,
            inflight: 0,
            hwm: end,
        })
        .collect();
    let mut inflight: VecDeque<(usize, i64, i32)> = VecDeque::new();
    let mut corr: i32 = 0;
    let mut buf: Vec<u8> = Vec::with_capacity(args.fetch_bytes as usize + 4096);
    let mut lat: Vec<u64> = Vec::new();
    loop {
        if consumer_should_stop(shared, mode)? {
            return Ok(());
        }
        // Issue fetches: one always; more (speculatively, at the learned stride) up to the
        // depth, never past the high watermark.
        for (i, p) in ps.iter_mut().enumerate() {
            while p.inflight == 0 || (p.inflight < depth && p.stride > 0 && p.spec_next < p.hwm) {
                corr = corr.wrapping_add(1);
                let req = wire::fetch_request(topic, p.id, p.spec_next, args.fetch_bytes, max_wait, corr)?;
                stream.write_all(&req).map_err(|e| format!("sending Fetch: {e}"))?;
                inflight.push_back((i, p.spec_next, corr));
                p.inflight += 1;
                if p.stride > 0 && p.spec_next < p.hwm {
                    p.spec_next = (p.spec_next + p.stride).min(p.hwm);
                }
            }
        }
        if !wire::read_frame(&mut stream, &mut buf)? {
            return Err("broker closed the connection with Fetch requests in flight".into());
        }
        let (rcorr, top_error, resp) = wire::parse_fetch_response(&buf)?;
        let (i, requested, want_corr) = inflight.pop_front().expect("a request in flight");
        if rcorr != want_corr {
            return Err(format!("Fetch response with correlation id {rcorr}, expected {want_corr}"));
        }
        if top_error != 0 {
            return Err(format!("Fetch: error code {top_error}"));
        }
        let now = now_ns();
        let p = &mut ps[i];
        p.inflight -= 1;
        for part in resp {
            if part.partition != p.id {
                continue;
            }
            if part.error_code == 1 {
                // OFFSET_OUT_OF_RANGE: a speculative fetch overshot; resume at the frontier.
                if requested == p.frontier {
                    return Err(format!("Fetch {topic}/{} at offset {requested}: offset out of range", p.id));
                }
                p.spec_next = p.frontier;
                p.stride = 0;
                continue;
            }
            if part.error_code != 0 {
                return Err(format!("Fetch {topic}/{} at offset {requested}: error code {}", p.id, part.error_code));
            }
            p.hwm = part.high_watermark;
            let records = &buf[part.records.clone()];
            let before = p.frontier;
            let mut msgs = 0u64;
            let mut bytes = 0u64;
            let mut measured_msgs = 0u64;
            lat.clear();
            for b in wire::batches(records) {
                if b.last_offset < p.frontier {
                    continue;
                }
                if b.base_offset > p.frontier {
                    break; // gap: an earlier fetch came back short; refetched below
                }
                let n = if b.base_offset >= p.frontier { b.records as i64 } else { b.last_offset - p.frontier + 1 };
                if e2e && !b.compressed && b.base_offset >= p.frontier {
                    for (pos, vlen) in wire::record_values(&records[b.pos..b.pos + b.size]) {
                        if vlen < 8 {
                            continue;
                        }
                        let at = b.pos + pos;
                        let ts = u64::from_le_bytes(records[at..at + 8].try_into().unwrap());
                        if shared.is_measured(ts) {
                            lat.push(now.saturating_sub(ts).max(1));
                        }
                    }
                }
                msgs += n as u64;
                bytes += b.size as u64;
                p.frontier = b.last_offset + 1;
            }
            if p.frontier > before && p.frontier > requested {
                p.stride = p.frontier - requested;
            }
            let has_newer = inflight.iter().any(|(j, off, _)| *j == i && *off <= p.frontier);
            if !has_newer || p.spec_next < p.frontier {
                p.spec_next = p.frontier;
            }
            if args.rewind && mode == Mode::Consume && p.frontier >= p.hwm && p.hwm > p.start {
                p.frontier = p.start;
                p.spec_next = p.start;
            }
            if e2e {
                measured_msgs = lat.len() as u64;
                let take = claim(shared, measured_msgs) as usize;
                if take > 0 {
                    let mut h = hist.lock().unwrap();
                    for &l in &lat[..take] {
                        let _ = h.record(l);
                    }
                }
                shared.complete(false, msgs - measured_msgs.min(msgs), 0, now);
                if take > 0 {
                    shared.complete(true, take as u64, take as u64 * size, now);
                }
            } else if msgs > 0 {
                let measured = shared.is_measured(now);
                if measured {
                    let take = claim(shared, msgs);
                    // Bytes of the claimed share (whole batches unless --messages cut it).
                    let b = if take == msgs { bytes } else { bytes * take / msgs };
                    shared.complete(true, take, b, now);
                    shared.progress_messages.fetch_add(msgs - take, Ordering::Relaxed);
                } else {
                    shared.complete(false, msgs, bytes, now);
                }
            }
            let _ = measured_msgs;
        }
    }
}
