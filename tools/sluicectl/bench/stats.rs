//! Shared run state: the clock, the measurement window, counters, latency histograms,
//! the first error, and the once-a-second progress line.
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{BenchArgs, Mode};

/// Highest latency the histograms hold (larger values are clamped): 10 minutes.
const HIST_MAX_NS: u64 = 600_000_000_000;

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Monotonic nanoseconds since a process-wide base; the clock every thread (and every
/// timestamp embedded in e2e payloads) uses.
pub fn now_ns() -> u64 {
    base().elapsed().as_nanos() as u64
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("histogram bounds")
}

pub type Hist = Arc<Mutex<Histogram<u64>>>;

pub struct Shared {
    /// When the load started (ns on the `now_ns` clock).
    pub start_ns: u64,
    /// Start of the measured window: start + warmup.
    pub measure_start_ns: u64,
    /// End of the measured window when running by time (no new measured sends after it).
    pub measure_end_ns: Option<u64>,
    /// Messages to measure when running by count.
    pub target_messages: Option<u64>,
    /// Set to stop every thread (end of run or error).
    pub stop: AtomicBool,
    /// Measured counters.
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    pub requests: AtomicU64,
    /// Completion time (ns) of the last measured message.
    pub last_done_ns: AtomicU64,
    /// All messages completed, warmup included (progress line).
    pub progress_messages: AtomicU64,
    pub progress_bytes: AtomicU64,
    /// e2e: measured messages the producers had acknowledged / sent.
    pub produced_measured: AtomicU64,
    /// Set when producers are done (e2e consumers drain until they have them all).
    pub producers_done: AtomicBool,
    /// When a consumer first saw the producers done (drain timeout).
    pub producers_done_ns: AtomicU64,
    /// Measured messages claimed by consumers (exact totals with --messages).
    pub claimed: AtomicU64,
    /// One histogram per recording thread (merged for reports).
    hists: Mutex<Vec<Hist>>,
    error: Mutex<Option<String>>,
    pub deadline_ns: u64,
    done: AtomicBool,
}

impl Shared {
    pub fn new(args: &BenchArgs, _mode: Mode) -> Arc<Shared> {
        let start_ns = now_ns();
        let measure_start_ns = start_ns + (args.warmup.max(0.0) * 1e9) as u64;
        let measure_end_ns = args.duration_limit().map(|d| measure_start_ns + d.as_nanos() as u64);
        Arc::new(Shared {
            start_ns,
            measure_start_ns,
            measure_end_ns,
            target_messages: if measure_end_ns.is_none() { args.messages } else { None },
            stop: AtomicBool::new(false),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            last_done_ns: AtomicU64::new(0),
            progress_messages: AtomicU64::new(0),
            progress_bytes: AtomicU64::new(0),
            produced_measured: AtomicU64::new(0),
            producers_done: AtomicBool::new(false),
            producers_done_ns: AtomicU64::new(0),
            claimed: AtomicU64::new(0),
            hists: Mutex::new(Vec::new()),
            error: Mutex::new(None),
            deadline_ns: start_ns + (args.timeout.max(1.0) * 1e9) as u64,
            done: AtomicBool::new(false),
        })
    }

    /// A histogram for one recording thread.
    pub fn histogram(&self) -> Hist {
        let h = Arc::new(Mutex::new(new_histogram()));
        self.hists.lock().unwrap().push(h.clone());
        h
    }

    pub fn merged_histogram(&self) -> Histogram<u64> {
        let mut out = new_histogram();
        for h in self.hists.lock().unwrap().iter() {
            let _ = out.add(&*h.lock().unwrap());
        }
        out
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Records the first error and stops the run.
    pub fn fail(&self, e: impl Into<String>) {
        let mut g = self.error.lock().unwrap();
        if g.is_none() {
            *g = Some(e.into());
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap().clone()
    }

    pub fn is_measured(&self, ns: u64) -> bool {
        ns >= self.measure_start_ns && self.measure_end_ns.map(|e| ns < e).unwrap_or(true)
    }

    /// Counts completed messages (warmup too, for the progress line); measured ones also in
    /// the result. Returns the measured total so far.
    pub fn complete(&self, measured: bool, msgs: u64, bytes: u64, now: u64) -> u64 {
        self.progress_messages.fetch_add(msgs, Ordering::Relaxed);
        self.progress_bytes.fetch_add(bytes, Ordering::Relaxed);
        if !measured {
            return self.messages.load(Ordering::Relaxed);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.last_done_ns.fetch_max(now, Ordering::Relaxed);
        self.messages.fetch_add(msgs, Ordering::Relaxed) + msgs
    }

    /// Past the overall --timeout.
    pub fn timed_out(&self) -> bool {
        now_ns() > self.deadline_ns
    }

    pub fn finish(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.done.store(true, Ordering::SeqCst);
    }

    pub fn done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

/// Prints one line per second to stderr: rate over the last second, MB/s, p99 so far.
pub fn spawn_progress(shared: Arc<Shared>, mode: Mode) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("bench-progress".into())
        .spawn(move || {
            let mut last_msgs = 0u64;
            let mut last_bytes = 0u64;
            let mut last_t = now_ns();
            let mut next = last_t + 1_000_000_000;
            loop {
                while now_ns() < next {
                    if shared.done() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                next += 1_000_000_000;
                let t = now_ns();
                let m = shared.progress_messages.load(Ordering::Relaxed);
                let b = shared.progress_bytes.load(Ordering::Relaxed);
                let dt = (t - last_t) as f64 / 1e9;
                let h = shared.merged_histogram();
                let p99 = if h.is_empty() {
                    "-".to_string()
                } else {
                    format!("{:.3} ms", h.value_at_quantile(0.99) as f64 / 1e6)
                };
                let phase = if t < shared.measure_start_ns { " (warmup)" } else { "" };
                let what = match mode {
                    Mode::Produce => "produced",
                    Mode::Consume => "consumed",
                    Mode::E2e => "delivered",
                };
                let _ = writeln!(
                    std::io::stderr(),
                    "[{:>5.1}s] {what} {:>11.0} msgs/s {:>9.1} MB/s  p99 {p99}  total {}{phase}",
                    (t - shared.start_ns) as f64 / 1e9,
                    (m - last_msgs) as f64 / dt,
                    (b - last_bytes) as f64 / dt / 1e6,
                    m,
                );
                last_msgs = m;
                last_bytes = b;
                last_t = t;
            }
        })
        .expect("spawn progress thread")
}
