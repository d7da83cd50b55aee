//! `sluicectl` against a real Sluice broker: the built binary is run as a child
//! process (bounded by a deadline, killed on timeout) and its output checked.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const CMD_TIMEOUT: Duration = Duration::from_secs(60);

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Out {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
    fn show(&self) -> String {
        format!("exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.show()))
    }
}

fn spawn_ctl(bootstrap: &str, args: &[&str], stdin: bool) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sluicectl"))
        .arg("--bootstrap")
        .arg(bootstrap)
        .args(args)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluicectl")
}

/// Wait for `child` (reading its output) up to `timeout`; kill and panic on timeout.
fn finish(mut child: Child, what: &str, timeout: Duration, started: Instant) -> Out {
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let deadline = started + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait sluicectl") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Out {
        code: status.and_then(|s| s.code()),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
        elapsed: started.elapsed(),
    };
    if status.is_none() {
        panic!("`sluicectl {what}` did not finish within {timeout:?} (killed)\n{}", out.show());
    }
    out
}

fn ctl_in(bootstrap: &str, args: &[&str], input: &str) -> Out {
    let started = Instant::now();
    let mut child = spawn_ctl(bootstrap, args, true);
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = finish(child, &args.join(" "), CMD_TIMEOUT, started);
    let _ = w.join();
    out
}

fn ctl(bootstrap: &str, args: &[&str]) -> Out {
    let started = Instant::now();
    let child = spawn_ctl(bootstrap, args, false);
    finish(child, &args.join(" "), CMD_TIMEOUT, started)
}

/// Run and assert exit 0.
fn ok(bootstrap: &str, args: &[&str]) -> Out {
    let o = ctl(bootstrap, args);
    assert!(o.ok(), "`sluicectl {}` failed:\n{}", args.join(" "), o.show());
    o
}

/// Run and assert a non-zero exit with exactly one line on stderr, containing `needle`.
fn fails(bootstrap: &str, args: &[&str], needle: &str) -> Out {
    let o = ctl(bootstrap, args);
    assert_eq!(o.code, Some(1), "`sluicectl {}` should fail with exit 1:\n{}", args.join(" "), o.show());
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line:\n{}", o.show());
    assert!(lines[0].starts_with("sluicectl: "), "error line should start with 'sluicectl: ':\n{}", o.show());
    assert!(lines[0].contains(needle), "error line should mention '{needle}':\n{}", o.show());
    o
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

/// Cells of the table row whose first cells equal `prefix`.
fn row<'a>(table: &'a str, prefix: &[&str]) -> Option<Vec<&'a str>> {
    table.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|cells| cells.starts_with(prefix))
}

// ---------------------------------------------------------------------------

#[test]
fn topic_commands() {
    let b = Broker::start();
    let bs = b.bootstrap();

    let o = ok(&bs, &["topic", "create", "orders", "--partitions", "3", "--replication-factor", "1"]);
    assert!(o.stdout.contains("created topic 'orders'"), "{}", o.show());
    ok(&bs, &["topic", "create", "events", "-p", "2", "--config", "retention.ms=3600000"]);
    let md = wait_for_topic(&bs, "events", 2);
    assert_eq!(md.partitions.len(), 2);
    fails(&bs, &["topic", "create", "orders", "--partitions", "1"], "already exists");

    // list (table and JSON)
    let o = ok(&bs, &["topic", "list"]);
    assert_eq!(row(&o.stdout, &["NAME"]).unwrap(), vec!["NAME", "PARTITIONS", "REPLICAS"], "{}", o.show());
    assert_eq!(row(&o.stdout, &["orders"]).unwrap(), vec!["orders", "3", "1"], "{}", o.show());
    assert_eq!(row(&o.stdout, &["events"]).unwrap(), vec!["events", "2", "1"], "{}", o.show());
    let j = ok(&bs, &["topic", "list", "--json"]).json();
    let names: Vec<&str> = j.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"orders") && names.contains(&"events"), "{j}");
    let orders = j.as_array().unwrap().iter().find(|t| t["name"] == "orders").unwrap();
    assert_eq!(orders["partitions"], 3);

    // describe: partitions with leader/replicas/ISR, then the configs set on the topic
    let o = ok(&bs, &["topic", "describe", "orders"]);
    for p in 0..3 {
        let r = row(&o.stdout, &[&p.to_string()]).unwrap_or_else(|| panic!("no row for partition {p}:\n{}", o.show()));
        assert_eq!(r.len(), 5, "{}", o.show());
        assert!(r[1].parse::<i32>().unwrap() >= 0, "leader: {}", o.show());
        assert!(r[2].starts_with('[') && r[3].starts_with('['), "{}", o.show());
    }
    assert!(o.stdout.contains("configs: none set on the topic"), "{}", o.show());
    let o = ok(&bs, &["topic", "describe", "events"]);
    assert_eq!(row(&o.stdout, &["retention.ms"]).unwrap(), vec!["retention.ms", "3600000", "topic"], "{}", o.show());
    let o = ok(&bs, &["topic", "describe", "events", "--all-configs"]);
    assert_eq!(
        row(&o.stdout, &["segment.bytes"]).unwrap(),
        vec!["segment.bytes", "1073741824", "default"],
        "{}",
        o.show()
    );
    let j = ok(&bs, &["topic", "describe", "orders", "--json"]).json();
    assert_eq!(j["name"], "orders");
    assert_eq!(j["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(j["partitions"][1]["partition"], 1);
    assert!(j["partitions"][0]["leader"].as_i64().unwrap() >= 0);
    assert_eq!(j["partitions"][0]["replicas"].as_array().unwrap().len(), 1);
    assert_eq!(j["partitions"][0]["isr"].as_array().unwrap().len(), 1);
    assert_eq!(j["configs_available"], true);
    fails(&bs, &["topic", "describe", "nope"], "unknown topic 'nope'");

    // alter: partitions grow, configs merge with those already set
    let o = ok(&bs, &["topic", "alter", "orders", "--partitions", "6"]);
    assert!(o.stdout.contains("partitions 3 -> 6"), "{}", o.show());
    wait_for_topic(&bs, "orders", 6);
    ok(&bs, &["topic", "alter", "events", "--config", "max.message.bytes=65536"]);
    let o = ok(&bs, &["topic", "describe", "events"]);
    assert_eq!(row(&o.stdout, &["retention.ms"]).unwrap(), vec!["retention.ms", "3600000", "topic"], "{}", o.show());
    assert_eq!(
        row(&o.stdout, &["max.message.bytes"]).unwrap(),
        vec!["max.message.bytes", "65536", "topic"],
        "{}",
        o.show()
    );
    fails(&bs, &["topic", "alter", "orders", "--partitions", "2"], "--partitions must be larger");
    fails(&bs, &["topic", "alter", "orders", "--config", "segment.bytes=1"], "alter config of 'orders'");
    fails(&bs, &["topic", "alter", "nope", "--partitions", "6"], "unknown topic 'nope'");
    assert_eq!(metadata(&bs, Some("orders")).topic("orders").unwrap().partitions.len(), 6);

    // delete
    let o = ok(&bs, &["topic", "delete", "events"]);
    assert!(o.stdout.contains("deleted topic 'events'"), "{}", o.show());
    wait_until(Duration::from_secs(20), "events gone from metadata", || {
        (!topic_names(&bs).contains(&"events".to_string())).then_some(())
    });
    let j = ok(&bs, &["topic", "list", "--json"]).json();
    assert!(j.as_array().unwrap().iter().all(|t| t["name"] != "events"), "{j}");
    fails(&bs, &["topic", "delete", "events"], "unknown topic 'events'");
    let j = ok(&bs, &["topic", "delete", "orders", "--json"]).json();
    assert_eq!(j["deleted"], true);
}

#[test]
fn produce_and_consume() {
    let b = Broker::start();
    let bs = b.bootstrap();
    ok(&bs, &["topic", "create", "t", "--partitions", "3"]);

    // keys (split at the first separator), headers, one partition
    let input = "k1:v1\nk2:v2:with:colons\nnokey\n";
    let o = ctl_in(
        &bs,
        &["produce", "t", "--key-separator", ":", "--header", "h1=a", "--header", "h2=b=c", "--partition", "1"],
        input,
    );
    assert!(o.ok(), "{}", o.show());
    assert!(o.stdout.contains("produced 3 records"), "{}", o.show());

    let o = ok(&bs, &["consume", "t", "--from-beginning", "-n", "3", "--format", "%p|%o|%k|%v|%h"]);
    assert_eq!(
        lines(&o.stdout),
        vec!["1|0|k1|v1|h1=a,h2=b=c", "1|1|k2|v2:with:colons|h1=a,h2=b=c", "1|2|null|nokey|h1=a,h2=b=c"],
        "{}",
        o.show()
    );
    // default format is the value; -e exits at the end of all partitions
    let o = ok(&bs, &["consume", "t", "-b", "-e"]);
    assert_eq!(lines(&o.stdout), vec!["v1", "v2:with:colons", "nokey"], "{}", o.show());
    // %t is the record timestamp in ms
    let o = ok(&bs, &["consume", "t", "-b", "-n", "1", "-f", "%t"]);
    let ts: i64 = o.stdout.trim().parse().unwrap_or_else(|_| panic!("{}", o.show()));
    assert!((ts - now_millis()).abs() < 600_000, "timestamp {ts} not recent");

    // more records with acks=1 and compression; -n stops early
    let many: String = (0..20).map(|i| format!("m{i}\n")).collect();
    let o = ctl_in(&bs, &["produce", "t", "--partition", "2", "--acks", "1", "--compression", "gzip"], &many);
    assert!(o.ok(), "{}", o.show());
    let o = ctl_in(&bs, &["produce", "t", "--partition", "0", "--acks", "0", "--compression", "zstd"], "z0\nz1\n");
    assert!(o.ok(), "{}", o.show());
    let o = ok(&bs, &["consume", "t", "--partition", "2", "--from-beginning", "-n", "5"]);
    assert_eq!(lines(&o.stdout), vec!["m0", "m1", "m2", "m3", "m4"], "{}", o.show());

    // --partition with --offset
    let o = ok(&bs, &["consume", "t", "--partition", "2", "--offset", "17", "-n", "3", "-f", "%o:%v"]);
    assert_eq!(lines(&o.stdout), vec!["17:m17", "18:m18", "19:m19"], "{}", o.show());
    let o = ok(&bs, &["consume", "t", "--partition", "2", "--offset", "18", "-e", "-f", "%o"]);
    assert_eq!(lines(&o.stdout), vec!["18", "19"], "{}", o.show());
    let o = ok(&bs, &["consume", "t", "--partition", "0", "--offset", "0", "-e"]);
    assert_eq!(lines(&o.stdout), vec!["z0", "z1"], "{}", o.show());
    // without --from-beginning, -e on a fully-read topic prints nothing
    let o = ok(&bs, &["consume", "t", "-e"]);
    assert_eq!(o.stdout, "", "{}", o.show());
    let o = ok(&bs, &["consume", "t", "-b", "-e"]);
    assert_eq!(o.stdout.lines().count(), 25, "{}", o.show());

    // JSON output: one object per record
    let o = ok(&bs, &["consume", "t", "--partition", "1", "-b", "-n", "2", "--json"]);
    let recs: Vec<serde_json::Value> = o.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(recs.len(), 2, "{}", o.show());
    assert_eq!(recs[0]["key"], "k1");
    assert_eq!(recs[0]["value"], "v1");
    assert_eq!(recs[0]["partition"], 1);
    assert_eq!(recs[1]["offset"], 1);
    assert_eq!(recs[0]["headers"][1]["key"], "h2");
    assert_eq!(recs[0]["headers"][1]["value"], "b=c");
    let o = ctl_in(&bs, &["produce", "t", "--json", "--partition", "1"], "x\ny\n");
    assert!(o.ok(), "{}", o.show());
    let j = o.json();
    assert_eq!(j["records"], 2);
    assert_eq!(j["partitions"][0]["partition"], 1);
    assert_eq!(j["partitions"][0]["first_offset"], 3);

    // offsets
    let o = ok(&bs, &["offsets", "t"]);
    assert_eq!(row(&o.stdout, &["TOPIC"]).unwrap(), vec!["TOPIC", "PARTITION", "EARLIEST", "LATEST"]);
    assert_eq!(row(&o.stdout, &["t", "0"]).unwrap(), vec!["t", "0", "0", "2"], "{}", o.show());
    assert_eq!(row(&o.stdout, &["t", "1"]).unwrap(), vec!["t", "1", "0", "5"], "{}", o.show());
    assert_eq!(row(&o.stdout, &["t", "2"]).unwrap(), vec!["t", "2", "0", "20"], "{}", o.show());
    let j = ok(&bs, &["offsets", "t", "--json"]).json();
    assert_eq!(j.as_array().unwrap().len(), 3);
    assert_eq!(j[2]["latest"], 20);
    assert_eq!(j[2]["earliest"], 0);

    // errors
    fails(&bs, &["consume", "nope", "-n", "1"], "unknown topic 'nope'");
    fails(&bs, &["consume", "t", "--partition", "9", "-n", "1"], "unknown partition 9");
    fails(&bs, &["offsets", "nope"], "unknown topic 'nope'");
    let o = ctl_in(&bs, &["produce", "nope"], "a\n");
    assert_eq!(o.code, Some(1), "{}", o.show());
    assert_eq!(o.stderr.trim(), "sluicectl: unknown topic 'nope'", "{}", o.show());
}

fn describe_rows(bs: &str, group: &str) -> serde_json::Value {
    ok(bs, &["group", "describe", group, "--json"]).json()
}

#[test]
fn group_commands() {
    let b = Broker::start();
    let bs = b.bootstrap();
    ok(&bs, &["topic", "create", "g", "--partitions", "2"]);
    let input: String = (0..10).map(|i| format!("k{}:v{i}\n", i % 3)).collect();
    let o = ctl_in(&bs, &["produce", "g", "-k", ":"], &input);
    assert!(o.ok(), "{}", o.show());

    // consume everything with a group: commits offsets
    let o = ok(&bs, &["consume", "g", "--group", "app", "--from-beginning", "-n", "10"]);
    let mut vals = lines(&o.stdout);
    vals.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(vals, want, "{}", o.show());

    let o = ok(&bs, &["group", "list"]);
    let r = row(&o.stdout, &["app"]).unwrap_or_else(|| panic!("group app not listed:\n{}", o.show()));
    assert_eq!(r[2], "0", "no members after the consumer left:\n{}", o.show());
    let j = ok(&bs, &["group", "list", "--json"]).json();
    assert!(j.as_array().unwrap().iter().any(|g| g["group"] == "app"), "{j}");

    // describe: committed offsets equal the log end, LAG 0
    let (w0, w1) = (watermarks(&bs, "g", 0).1, watermarks(&bs, "g", 1).1);
    assert_eq!(w0 + w1, 10);
    let o = ok(&bs, &["group", "describe", "app"]);
    assert!(
        row(&o.stdout, &["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"]).is_some(),
        "{}",
        o.show()
    );
    for (p, w) in [(0, w0), (1, w1)] {
        if w == 0 {
            continue; // nothing consumed there, nothing committed
        }
        let r = row(&o.stdout, &["g", &p.to_string()]).unwrap_or_else(|| panic!("no row for g/{p}:\n{}", o.show()));
        assert_eq!(&r[2..5], &[w.to_string().as_str(), w.to_string().as_str(), "0"], "{}", o.show());
    }
    let j = describe_rows(&bs, "app");
    assert_eq!(j["total_lag"], 0, "{j}");
    assert_eq!(j["state"], "Empty", "{j}");

    // reset to earliest, then the group re-reads everything
    let o = ok(&bs, &["group", "reset-offsets", "app", "--topic", "g", "--to-earliest"]);
    assert_eq!(row(&o.stdout, &["g", "0"]).unwrap()[3], "0", "{}", o.show());
    let j = describe_rows(&bs, "app");
    assert_eq!(j["total_lag"], 10, "{j}");
    let o = ok(&bs, &["consume", "g", "--group", "app", "-e"]);
    let mut vals = lines(&o.stdout);
    vals.sort();
    assert_eq!(vals, want, "re-read after reset:\n{}", o.show());
    assert_eq!(describe_rows(&bs, "app")["total_lag"], 0);

    // reset to an explicit offset (dry run leaves it alone) and to latest
    let o = ok(
        &bs,
        &["group", "reset-offsets", "app", "--topic", "g", "--partition", "1", "--to-offset", "1", "--dry-run"],
    );
    assert!(o.stdout.contains("dry run"), "{}", o.show());
    assert_eq!(describe_rows(&bs, "app")["total_lag"], 0);
    let j = ok(&bs, &["group", "reset-offsets", "app", "--topic", "g", "--to-offset", "1", "--json"]).json();
    assert_eq!(j["offsets"].as_array().unwrap().len(), 2, "{j}");
    let expect_lag = (w0 - w0.min(1)) + (w1 - w1.min(1));
    assert_eq!(describe_rows(&bs, "app")["total_lag"], expect_lag);
    ok(&bs, &["group", "reset-offsets", "app", "--topic", "g", "--to-latest"]);
    assert_eq!(describe_rows(&bs, "app")["total_lag"], 0);
    fails(&bs, &["group", "reset-offsets", "app", "--topic", "nope", "--to-latest"], "unknown topic 'nope'");

    // an active member: describe shows it; reset and delete are refused
    let started = Instant::now();
    let member = spawn_ctl(&bs, &["consume", "g", "--group", "live", "--from-beginning"], false);
    let j = wait_until(Duration::from_secs(30), "group 'live' has a member with an assignment", || {
        let o = ctl(&bs, &["group", "describe", "live", "--json"]);
        if !o.ok() {
            return None;
        }
        let j = o.json();
        let assigned = j["partitions"].as_array().map(|a| a.iter().filter(|p| !p["member_id"].is_null()).count());
        (j["members"].as_array().map(|m| m.len()) == Some(1) && assigned == Some(2)).then_some(j)
    });
    assert_eq!(j["members"][0]["client_id"], "sluicectl", "{j}");
    fails(&bs, &["group", "reset-offsets", "live", "--topic", "g", "--to-earliest"], "active member");
    fails(&bs, &["group", "delete", "live"], "delete group 'live'");
    // the member commits what it read: LAG reaches 0 while it runs
    wait_until(Duration::from_secs(30), "member 'live' committed everything", || {
        (describe_rows(&bs, "live")["total_lag"] == 0
            && describe_rows(&bs, "live")["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| !p["current_offset"].is_null() || p["log_end_offset"] == 0))
        .then_some(())
    });
    // Ctrl-C: it leaves the group and exits 0
    let _ = Command::new("kill").arg("-INT").arg(member.id().to_string()).status();
    let o = finish(member, "consume --group live", Duration::from_secs(90), started);
    assert!(o.ok(), "{}", o.show());
    assert_eq!(o.stdout.lines().count(), 10, "{}", o.show());
    wait_until(Duration::from_secs(30), "group 'live' empty", || {
        (describe_rows(&bs, "live")["members"].as_array().unwrap().is_empty()).then_some(())
    });

    // delete
    let o = ok(&bs, &["group", "delete", "app"]);
    assert!(o.stdout.contains("deleted group 'app'"), "{}", o.show());
    let o = ok(&bs, &["group", "list"]);
    assert!(row(&o.stdout, &["app"]).is_none(), "{}", o.show());
    fails(&bs, &["group", "describe", "app"], "unknown group 'app'");
    fails(&bs, &["group", "delete", "app"], "unknown group 'app'");
}

#[test]
fn cluster_info() {
    let b = Broker::start();
    let bs = b.bootstrap();
    ok(&bs, &["topic", "create", "a", "-p", "1"]);
    let o = ok(&bs, &["cluster", "info"]);
    let r = row(&o.stdout, &["TOPICS"]).unwrap_or_else(|| panic!("{}", o.show()));
    assert!(r[1].parse::<usize>().unwrap() >= 1, "{}", o.show());
    let port = b.port().to_string();
    assert!(o.stdout.lines().any(|l| l.contains("127.0.0.1") && l.contains(&port)), "{}", o.show());
    let j = ok(&bs, &["cluster", "info", "--json"]).json();
    let brokers = j["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1, "{j}");
    assert_eq!(brokers[0]["host"], "127.0.0.1");
    assert_eq!(brokers[0]["port"], b.port() as i64);
    let md = metadata(&bs, None);
    assert_eq!(brokers[0]["id"], md.brokers[0].0 as i64);
    assert!(j["cluster_id"].as_str().is_some_and(|s| !s.is_empty()), "cluster id: {j}");
    assert_eq!(j["controller"], md.brokers[0].0 as i64, "{j}");
}

#[test]
fn unreachable_bootstrap_fails_fast() {
    // A port nobody listens on (and no client can connect to itself on).
    let port = common::free_port();
    let bs = format!("127.0.0.1:{port}");
    for args in [
        vec!["topic", "list"],
        vec!["topic", "describe", "x"],
        vec!["consume", "x", "-n", "1"],
        vec!["group", "list"],
        vec!["offsets", "x"],
        vec!["cluster", "info"],
    ] {
        let o = fails(&bs, &args, &format!("cannot connect to {bs}"));
        assert!(o.elapsed < Duration::from_secs(15), "`{}` took {:?}", args.join(" "), o.elapsed);
    }
    let o = ctl_in(&bs, &["produce", "x"], "a\n");
    assert_eq!(o.code, Some(1), "{}", o.show());
    assert!(o.stderr.contains("cannot connect to"), "{}", o.show());
    // An unresolvable host.
    fails("nosuchhost.invalid:9092", &["topic", "list"], "cannot connect to nosuchhost.invalid:9092");
}
