//! The final summary (text or JSON) and the latency percentile plot (hand-written SVG).
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::wire::TopicMeta;
use super::{BenchArgs, Mode, Shared};

pub struct Summary {
    pub mode: Mode,
    pub client: String,
    pub messages: u64,
    pub bytes: u64,
    pub requests: u64,
    pub duration_sec: f64,
    /// p50, p90, p99, p99.9, p99.99, max (ms); None when nothing was timed (acks=0).
    pub latency_ms: Option<[f64; 6]>,
    pub mean_ms: Option<f64>,
    pub latency_count: u64,
    pub config: Value,
    pub bytes_kind: &'static str,
}

impl Summary {
    pub fn collect(shared: &Shared, args: &BenchArgs, mode: Mode, bootstrap: &str, meta: &TopicMeta) -> Summary {
        let h = shared.merged_histogram();
        let messages = shared.messages.load(Ordering::Relaxed);
        let last = shared.last_done_ns.load(Ordering::Relaxed);
        let duration_sec =
            if last > shared.measure_start_ns { (last - shared.measure_start_ns) as f64 / 1e9 } else { 0.0 };
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
        let latency_ms = if h.is_empty() {
            None
        } else {
            Some([ms(0.5), ms(0.9), ms(0.99), ms(0.999), ms(0.9999), h.max() as f64 / 1e6])
        };
        let mut config = serde_json::to_value(args).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut config {
            m.insert("mode".into(), serde_json::to_value(mode).unwrap());
            m.insert("bootstrap".into(), json!(bootstrap));
            m.insert("topic_partitions".into(), json!(meta.partitions.len()));
            m.remove("json_file");
        }
        let bytes_kind = match (mode, args.client) {
            (Mode::Consume, super::Client::Native) => "record batch bytes fetched (payload + record/batch framing)",
            _ => "payload bytes (record values)",
        };
        Summary {
            mode,
            client: format!("{:?}", args.client).to_lowercase(),
            messages,
            bytes: shared.bytes.load(Ordering::Relaxed),
            requests: shared.requests.load(Ordering::Relaxed),
            duration_sec,
            latency_ms,
            mean_ms: if h.is_empty() { None } else { Some(h.mean() / 1e6) },
            latency_count: h.len(),
            config,
            bytes_kind,
        }
    }

    pub fn msgs_per_sec(&self) -> f64 {
        if self.duration_sec > 0.0 {
            self.messages as f64 / self.duration_sec
        } else {
            0.0
        }
    }
    pub fn bytes_per_sec(&self) -> f64 {
        if self.duration_sec > 0.0 {
            self.bytes as f64 / self.duration_sec
        } else {
            0.0
        }
    }

    pub fn title(&self) -> String {
        let c = &self.config;
        format!(
            "sluicectl bench {} ({}): {} B x {}/batch, acks={}, {}, {:.0} msgs/s",
            serde_json::to_value(self.mode).unwrap().as_str().unwrap_or(""),
            self.client,
            c["message_size"],
            c["batch_messages"],
            c["acks"].as_str().unwrap_or(""),
            match c["rate"].as_f64() {
                Some(r) => format!("rate {r:.0}/s"),
                None => "max rate".into(),
            },
            self.msgs_per_sec()
        )
    }

    pub fn to_json(&self) -> Value {
        let lat = match self.latency_ms {
            Some(l) => json!({"p50": l[0], "p90": l[1], "p99": l[2], "p999": l[3], "p9999": l[4], "max": l[5],
                              "mean": self.mean_ms, "count": self.latency_count}),
            None => Value::Null,
        };
        json!({
            "mode": self.mode,
            "client": self.client,
            "messages": self.messages,
            "bytes": self.bytes,
            "bytes_kind": self.bytes_kind,
            "requests": self.requests,
            "duration_sec": self.duration_sec,
            "messages_per_sec": self.msgs_per_sec(),
            "bytes_per_sec": self.bytes_per_sec(),
            "latency_ms": lat,
            "config": self.config,
        })
    }
}

pub fn print(s: &Summary, as_json: bool) {
    if as_json {
        println!("{}", serde_json::to_string_pretty(&s.to_json()).unwrap());
        return;
    }
    println!("{}", s.title());
    println!("  messages      {}", s.messages);
    println!("  duration      {:.3} s", s.duration_sec);
    println!("  throughput    {:.0} msgs/s, {:.1} MB/s ({})", s.msgs_per_sec(), s.bytes_per_sec() / 1e6, s.bytes_kind);
    match s.latency_ms {
        Some(l) => println!(
            "  latency ms    p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  p99.99 {:.3}  max {:.3}",
            l[0], l[1], l[2], l[3], l[4], l[5]
        ),
        None => println!("  latency       not measured (acks=0 / consume)"),
    }
}

/// A latency-by-percentile curve in the HdrHistogram plotter's style: x is the percentile
/// on a log scale of 1/(1-p) (0, 90, 99, 99.9, ...), y is latency in ms.
pub fn svg(h: &Histogram<u64>, title: &str) -> String {
    let (w, ht) = (900.0f64, 520.0f64);
    let (left, right, top, bottom) = (80.0, 30.0, 50.0, 60.0);
    let pw = w - left - right;
    let ph = ht - top - bottom;
    // Points: (x = log10(1/(1-q)), y = ms)
    let mut pts: Vec<(f64, f64)> = Vec::new();
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            let q = v.quantile_iterated_to();
            if q >= 1.0 {
                break;
            }
            pts.push(((1.0 / (1.0 - q)).log10(), h.highest_equivalent(v.value_iterated_to()) as f64 / 1e6));
        }
        let n = (h.len() as f64).log10().max(1.0);
        pts.push((n.ceil().min(7.0).max(pts.last().map(|p| p.0).unwrap_or(0.0)), h.max() as f64 / 1e6));
    }
    let xmax = pts.iter().map(|p| p.0).fold(2.0f64, f64::max).ceil();
    let ymax_raw = pts.iter().map(|p| p.1).fold(0.001f64, f64::max);
    let ymax = nice_ceil(ymax_raw * 1.05);
    let sx = |x: f64| left + x / xmax * pw;
    let sy = |y: f64| top + ph - y / ymax * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{ht}" viewBox="0 0 {w} {ht}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ =
        writeln!(s, r#"<text x="{}" y="25" text-anchor="middle" font-size="14">{}</text>"#, w / 2.0, xml_escape(title));
    // Grid and axes.
    for i in 0..=(xmax as i32) {
        let x = sx(i as f64);
        let label = match i {
            0 => "0%".to_string(),
            _ => format!("{}%", 100.0 - 100.0 / 10f64.powi(i)),
        };
        let _ = writeln!(s, r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/>"##, top + ph);
        let _ = writeln!(s, r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#, top + ph + 18.0);
    }
    for i in 0..=5 {
        let yv = ymax * i as f64 / 5.0;
        let y = sy(yv);
        let _ = writeln!(s, r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##, left + pw);
        let _ =
            writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#, left - 6.0, y + 4.0, fmt_ms(yv));
    }
    let _ = writeln!(s, r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##);
    let _ =
        writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#, left + pw / 2.0, ht - 15.0);
    let _ = writeln!(
        s,
        r#"<text x="20" y="{:.1}" text-anchor="middle" transform="rotate(-90 20 {:.1})">latency (ms)</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    if pts.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no latency samples</text>"#,
            w / 2.0,
            ht / 2.0
        );
    } else {
        let mut poly = String::new();
        for (x, y) in &pts {
            let _ = write!(poly, "{:.1},{:.1} ", sx(*x), sy(*y));
        }
        let _ =
            writeln!(s, r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##, poly.trim_end());
        // Marked percentiles.
        for (q, name) in [(0.5f64, "p50"), (0.99, "p99"), (0.999, "p99.9"), (0.9999, "p99.99")] {
            let x = (1.0 / (1.0 - q)).log10();
            if x > xmax {
                continue;
            }
            let y = h.value_at_quantile(q) as f64 / 1e6;
            let _ = writeln!(s, r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#d62728"/>"##, sx(x), sy(y));
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="11">{name} {}</text>"#,
                sx(x) + 5.0,
                sy(y) - 6.0,
                fmt_ms(y)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn nice_ceil(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_ms(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
