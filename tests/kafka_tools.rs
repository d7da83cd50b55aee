//! Kafka's own command-line tools (Apache Kafka 4.4.0's `bin/kafka-topics.sh`,
//! `kafka-console-producer.sh`, `kafka-console-consumer.sh`, `kafka-consumer-groups.sh`,
//! `kafka-configs.sh`, `kafka-get-offsets.sh`, `kafka-delete-records.sh`,
//! `kafka-log-dirs.sh`, `kafka-reassign-partitions.sh`) against the
//! broker, run as a user runs them: each is one JVM running the class its script runs
//! (`kafka-run-class.sh <class>`), with the distribution's jars on the class path and its
//! tools logging (WARN and above to stderr). Their output is checked as a person reads it:
//! the numbers in the tables, the lines the console consumer prints, the messages.
//!
//! A difference in what a tool prints is recorded and the test goes on, so that one run
//! lists every difference; the test then fails listing them all. A tool failing where it
//! must succeed stops the test at once.
//!
//! The jars come from `bash scripts/install-test-deps.sh` (tests/clients/kafka-dist/
//! install.sh, into tests/clients/kafka-dist/target/lib); missing jars or Java FAIL these
//! tests, never skip them.
//!
//! `bash scripts/kafka-reference.sh start && SLUICE_TEST_BOOTSTRAP=127.0.0.1:19092 cargo
//! test --test kafka_tools` runs the same checks against Apache Kafka 4.4: a check failing
//! there is a wrong test.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::external::*;

const INSTALL_HINT: &str = "run `bash scripts/install-test-deps.sh` (it fetches Kafka 4.4.0's jars into \
     tests/clients/kafka-dist/target/lib with tests/clients/kafka-dist/install.sh; needs Maven and a JDK 17+)";

/// Bound on one tool run (a JVM start is 1-3 s on an idle 2-core machine, 5-10 s on a
/// busy one).
const TOOL_TIMEOUT: Duration = Duration::from_secs(90);

/// Each script of Kafka 4.4.0's `bin/` used here and the class it runs.
const SCRIPTS: &[(&str, &str)] = &[
    ("kafka-topics.sh", "org.apache.kafka.tools.TopicCommand"),
    ("kafka-console-producer.sh", "org.apache.kafka.tools.ConsoleProducer"),
    ("kafka-console-consumer.sh", "org.apache.kafka.tools.consumer.ConsoleConsumer"),
    ("kafka-consumer-groups.sh", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"),
    ("kafka-configs.sh", "org.apache.kafka.tools.ConfigCommand"),
    ("kafka-get-offsets.sh", "org.apache.kafka.tools.GetOffsetShell"),
    ("kafka-delete-records.sh", "org.apache.kafka.tools.DeleteRecordsCommand"),
    ("kafka-log-dirs.sh", "org.apache.kafka.tools.LogDirsCommand"),
    ("kafka-reassign-partitions.sh", "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"),
    ("kafka-transactions.sh", "org.apache.kafka.tools.TransactionsCommand"),
];

/// JVM options for a fast start (each tool run is a fresh JVM); `-Xmx256M` is
/// kafka-run-class.sh's default heap for the tools.
const JVM_OPTS: &[&str] = &["-Xmx256M", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"];

fn dist_dir() -> PathBuf {
    repo_root().join("tests/clients/kafka-dist")
}

fn java() -> PathBuf {
    match std::env::var_os("JAVA_HOME") {
        Some(h) if PathBuf::from(&h).join("bin/java").exists() => PathBuf::from(h).join("bin/java"),
        _ => PathBuf::from("java"),
    }
}

/// The tools, pointed at one broker.
struct Tools {
    bootstrap: String,
    kind: &'static str,
}

impl Tools {
    /// Fails (never skips) when the jars or Java are missing.
    fn new(target: &Target) -> Tools {
        let lib = dist_dir().join("target/lib");
        for jar in ["kafka-tools-4.4.0.jar", "kafka-clients-4.4.0.jar", "kafka_2.13-4.4.0.jar"] {
            assert!(
                lib.join(jar).exists(),
                "Kafka's tools are missing: no {}; {INSTALL_HINT}",
                lib.join(jar).display()
            );
        }
        match Command::new(java()).arg("-version").stdin(Stdio::null()).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                panic!("`java -version` failed ({}): {}; {INSTALL_HINT}", o.status, String::from_utf8_lossy(&o.stderr))
            }
            Err(e) => panic!("cannot run java ({e}); {INSTALL_HINT}"),
        }
        Tools { bootstrap: target.bootstrap(), kind: target.kind() }
    }

    /// `<script> --bootstrap-server <broker> <args>` as the JVM command that script runs
    /// (`args` as typed: split at whitespace).
    fn command(&self, script: &str, args: &str) -> Command {
        let class =
            SCRIPTS.iter().find(|(s, _)| *s == script).unwrap_or_else(|| panic!("no class known for {script}")).1;
        let mut c = Command::new(java());
        c.args(JVM_OPTS)
            .arg(format!("-Dlog4j2.configurationFile={}", dist_dir().join("tools-log4j2.properties").display()))
            .arg("-cp")
            .arg(format!("{}/*", dist_dir().join("target/lib").display()))
            .arg(class)
            .args(["--bootstrap-server", &self.bootstrap])
            .args(args.split_whitespace());
        c
    }

    fn run_cmd(&self, script: &str, args: &str, cmd: Command, timeout: Duration) -> Tool {
        let t0 = Instant::now();
        let out = run_bounded(cmd, timeout);
        let line = format!("{script} {args}");
        eprintln!("[{}] $ {line}  ({:.1} s, {})", self.kind, t0.elapsed().as_secs_f64(), out.status);
        for w in out.stderr.lines().filter(|l| l.contains("] WARN ") || l.contains("] ERROR ")) {
            eprintln!("[{}]     log: {w}", self.kind);
        }
        Tool { line, out }
    }

    /// Runs `<script> --bootstrap-server <broker> <args>`.
    fn run(&self, script: &str, args: &str) -> Tool {
        self.run_cmd(script, args, self.command(script, args), TOOL_TIMEOUT)
    }

    /// Runs it and requires exit status 0.
    fn ok(&self, script: &str, args: &str) -> Tool {
        let t = self.run(script, args);
        assert!(t.out.success(), "{}", t.out.describe(&format!("`{}` failed against {}", t.line, self.kind)));
        t
    }

    /// The console producer, one record per line of `input` (`... < file`), requiring
    /// success.
    fn produce(&self, topic: &str, extra: &str, input: &str) -> Tool {
        let args = format!("--topic {topic} {extra}");
        let file = tempfile::NamedTempFile::new().expect("temp file for stdin");
        std::fs::write(file.path(), input).expect("write stdin file");
        let inner = self.command("kafka-console-producer.sh", &args);
        let mut sh = Command::new("sh");
        sh.arg("-c").arg("exec \"$0\" \"$@\" < \"$KAFKA_TOOL_INPUT\"").arg(inner.get_program());
        sh.args(inner.get_args()).env("KAFKA_TOOL_INPUT", file.path());
        let t = self.run_cmd("kafka-console-producer.sh", &args, sh, TOOL_TIMEOUT);
        assert!(t.out.success(), "{}", t.out.describe(&format!("`{}` failed against {}", t.line, self.kind)));
        t
    }
}

/// One tool run and what it printed.
struct Tool {
    line: String,
    out: RunOutput,
}

impl Tool {
    fn stdout_lines(&self) -> Vec<&str> {
        self.out.stdout.lines().filter(|l| !l.trim().is_empty()).collect()
    }

    /// Both streams: some messages go to stdout, others to stderr.
    fn all(&self) -> String {
        format!("{}\n{}", self.out.stdout, self.out.stderr)
    }

    fn fail(&self, why: &str) -> String {
        self.out.describe(&format!("`{}`: {why}", self.line))
    }

    /// A consumer-groups table (`GROUP TOPIC PARTITION CURRENT-OFFSET ...`, `GROUP
    /// COORDINATOR (ID) ...`, `GROUP CONSUMER-ID ...`), one map per row, keyed by the
    /// header's words. Panics if the output has no such table.
    fn group_table(&self) -> Vec<BTreeMap<String, String>> {
        let mut header: Option<Vec<&str>> = None;
        let mut rows = Vec::new();
        for line in self.out.stdout.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.first() == Some(&"GROUP") {
                header = Some(cols);
                continue;
            }
            if let Some(h) = &header {
                if cols.is_empty() {
                    continue;
                }
                assert_eq!(
                    cols.len(),
                    h.len(),
                    "{}",
                    self.fail(&format!("row {line:?} does not match the header {h:?}"))
                );
                rows.push(h.iter().map(|k| k.to_string()).zip(cols.iter().map(|v| v.to_string())).collect());
            }
        }
        assert!(header.is_some(), "{}", self.fail("no GROUP table in the output"));
        rows
    }
}

/// Differences found in what the tools print; the test fails at its end listing them all.
struct Checks {
    kind: &'static str,
    failures: Vec<String>,
}

impl Checks {
    fn new(k: &Tools) -> Checks {
        Checks { kind: k.kind, failures: Vec::new() }
    }

    fn check(&mut self, ok: bool, t: &Tool, what: &str) {
        if !ok {
            eprintln!("[{}] CHECK FAILED: `{}`: {what}", self.kind, t.line);
            self.failures.push(t.fail(what));
        }
    }

    fn eq<T: PartialEq + Debug>(&mut self, got: T, want: T, t: &Tool, what: &str) {
        if got != want {
            self.check(false, t, &format!("{what}:\n  got:  {got:?}\n  want: {want:?}"));
        }
    }

    fn contains(&mut self, t: &Tool, text: &str) {
        self.check(t.all().contains(text), t, &format!("the output lacks {text:?}"));
    }

    fn finish(self, target: &Target) {
        if !self.failures.is_empty() {
            panic!(
                "{} check(s) failed against {}:\n\n{}\n\n{}",
                self.failures.len(),
                self.kind,
                self.failures.join("\n\n======\n\n"),
                target.log_tail(40)
            );
        }
    }
}

/// `Key: value` fields of one tab-separated `kafka-topics.sh --describe` line.
fn describe_fields(line: &str) -> BTreeMap<String, String> {
    line.split('\t')
        .filter_map(|f| {
            let (k, v) = f.trim().split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// One topic's `kafka-topics.sh --describe`: its summary line and its partition lines
/// (by partition number).
fn describe_topic(t: &Tool, topic: &str) -> (BTreeMap<String, String>, BTreeMap<i32, BTreeMap<String, String>>) {
    let mut summary = None;
    let mut parts = BTreeMap::new();
    for line in t.out.stdout.lines() {
        let f = describe_fields(line);
        if f.get("Topic").map(String::as_str) != Some(topic) {
            continue;
        }
        if line.starts_with('\t') || line.starts_with(' ') {
            let p: i32 =
                f["Partition"].parse().unwrap_or_else(|_| panic!("{}", t.fail("a Partition that is not a number")));
            parts.insert(p, f);
        } else {
            summary = Some(f);
        }
    }
    (summary.unwrap_or_else(|| panic!("{}", t.fail(&format!("no summary line for topic {topic}")))), parts)
}

/// `topic:partition:offset` lines of kafka-get-offsets.sh for one topic.
fn offsets(t: &Tool, topic: &str) -> BTreeMap<i32, i64> {
    let mut m = BTreeMap::new();
    for line in t.stdout_lines() {
        let parsed = line.strip_prefix(&format!("{topic}:")).and_then(|rest| {
            let (p, o) = rest.split_once(':')?;
            Some((p.parse().ok()?, o.parse().ok()?))
        });
        let (p, o) =
            parsed.unwrap_or_else(|| panic!("{}", t.fail(&format!("{line:?} is not {topic}:partition:offset"))));
        m.insert(p, o);
    }
    m
}

fn num(row: &BTreeMap<String, String>, col: &str, t: &Tool) -> i64 {
    row[col].parse().unwrap_or_else(|_| panic!("{}", t.fail(&format!("{col} of {row:?} is not a number"))))
}

/// The rows of a group table for one topic, by partition.
fn by_partition<'a>(rows: &'a [BTreeMap<String, String>], topic: &str) -> BTreeMap<i32, &'a BTreeMap<String, String>> {
    rows.iter().filter(|r| r["TOPIC"] == topic).map(|r| (r["PARTITION"].parse().unwrap(), r)).collect()
}

/// A column of a group table's only row for `group`.
fn group_row(t: &Tool, group: &str) -> BTreeMap<String, String> {
    let rows: Vec<_> = t.group_table().into_iter().filter(|r| r["GROUP"] == group).collect();
    assert_eq!(rows.len(), 1, "{}", t.fail(&format!("one row for group {group}")));
    rows.into_iter().next().unwrap()
}

/// kafka-topics.sh: create, list, describe, alter the partition count, the errors a user
/// meets, delete.
#[test]
fn topics() {
    let target = Target::start(&[]);
    let k = Tools::new(&target);
    let mut c = Checks::new(&k);
    let topic = unique("kt-topic");

    let t = k.ok(
        "kafka-topics.sh",
        &format!("--create --topic {topic} --partitions 3 --replication-factor 1 --config retention.ms=3600000"),
    );
    c.eq(t.stdout_lines(), vec![format!("Created topic {topic}.").as_str()], &t, "create's message");

    let t = k.ok("kafka-topics.sh", "--list");
    c.check(t.stdout_lines().contains(&topic.as_str()), &t, "the new topic is not listed");

    let t = k.ok("kafka-topics.sh", &format!("--describe --topic {topic}"));
    let (summary, parts) = describe_topic(&t, &topic);
    c.eq(summary["PartitionCount"].as_str(), "3", &t, "PartitionCount");
    c.eq(summary["ReplicationFactor"].as_str(), "1", &t, "ReplicationFactor");
    let topic_id = &summary["TopicId"];
    c.check(!topic_id.is_empty() && topic_id != "AAAAAAAAAAAAAAAAAAAAAA", &t, "no TopicId");
    let configs: BTreeSet<&str> = summary["Configs"].split(',').collect();
    c.check(configs.contains("retention.ms=3600000"), &t, "Configs does not show retention.ms=3600000");
    assert_eq!(parts.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2], "{}", t.fail("partition lines"));
    let leader = parts[&0]["Leader"].clone();
    c.check(leader.parse::<i32>().map(|id| id >= 0).unwrap_or(false), &t, "Leader is not a broker id");
    for (p, f) in &parts {
        c.eq(f["Leader"].as_str(), leader.as_str(), &t, &format!("partition {p}'s Leader"));
        c.eq(f["Replicas"].as_str(), leader.as_str(), &t, &format!("partition {p}'s Replicas"));
        c.eq(f["Isr"].as_str(), leader.as_str(), &t, &format!("partition {p}'s Isr"));
        // Kafka 4.x describes partitions with DescribeTopicPartitions, which reports the
        // (here empty) eligible leader replicas; "N/A" means the broker lacks that API and
        // the tool fell back to Metadata.
        c.eq(f.get("Elr").map(String::as_str), Some(""), &t, &format!("partition {p}'s Elr"));
        c.eq(f.get("LastKnownElr").map(String::as_str), Some(""), &t, &format!("partition {p}'s LastKnownElr"));
    }

    // The errors a user meets: the topic exists; more replicas than brokers; an unknown
    // topic; fewer partitions.
    let t = k.run("kafka-topics.sh", &format!("--create --topic {topic} --partitions 1"));
    c.check(!t.out.success(), &t, "creating an existing topic succeeded");
    c.contains(&t, &format!("Error while executing topic command : Topic '{topic}' already exists."));
    let t = k.run(
        "kafka-topics.sh",
        &format!("--create --topic {} --partitions 1 --replication-factor 3", unique("kt-rf3")),
    );
    c.check(!t.out.success(), &t, "replication factor 3 on one broker succeeded");
    c.contains(&t, "InvalidReplicationFactorException");
    let missing = unique("kt-missing");
    let t = k.run("kafka-topics.sh", &format!("--describe --topic {missing}"));
    c.check(!t.out.success(), &t, "describing a missing topic succeeded");
    c.contains(&t, &format!("Topic '{missing}' does not exist as expected"));

    let t = k.ok("kafka-topics.sh", &format!("--alter --topic {topic} --partitions 5"));
    c.eq(t.stdout_lines(), Vec::<&str>::new(), &t, "alter's output");
    let t = k.ok("kafka-topics.sh", &format!("--describe --topic {topic}"));
    let (summary, parts) = describe_topic(&t, &topic);
    c.eq(summary["PartitionCount"].as_str(), "5", &t, "PartitionCount after --alter --partitions 5");
    c.eq(parts.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4], &t, "partition lines after --alter");
    let t = k.run("kafka-topics.sh", &format!("--alter --topic {topic} --partitions 2"));
    c.check(!t.out.success(), &t, "decreasing the partition count succeeded");
    c.contains(&t, "InvalidPartitionsException");

    // Delete: gone from the list (at once on Sluice; Kafka's broker learns it from its
    // controller, so allow a bounded moment). Describing the missing topic above did not
    // create it (Metadata without auto-creation).
    let t = k.ok("kafka-topics.sh", &format!("--delete --topic {topic}"));
    c.eq(t.stdout_lines(), Vec::<&str>::new(), &t, "delete's output");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = k.ok("kafka-topics.sh", "--list");
        c.check(!t.stdout_lines().contains(&missing.as_str()), &t, "describing a missing topic created it");
        if !t.stdout_lines().contains(&topic.as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "{}", t.fail("the deleted topic is still listed after 20 s"));
    }
    c.finish(&target);
}

/// kafka-configs.sh: a topic's configs and the broker's (describe, --add-config,
/// --delete-config, bad values), and where the broker's static configs come from.
#[test]
fn configs() {
    let target = Target::start(&[]);
    let k = Tools::new(&target);
    let mut c = Checks::new(&k);
    let topic = unique("kt-config");
    k.ok("kafka-topics.sh", &format!("--create --topic {topic} --partitions 1 --config retention.ms=3600000"));

    let cfg = format!("--entity-type topics --entity-name {topic}");
    let header = format!("Dynamic configs for topic {topic} are:");
    let t = k.ok("kafka-configs.sh", &format!("{cfg} --describe"));
    // Kafka's default retention is log.retention.hours=168: log.retention.ms has no
    // default, so no DEFAULT_CONFIG synonym follows the topic's value.
    c.eq(
        t.stdout_lines(),
        vec![&header, "  retention.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=3600000}"],
        &t,
        "the topic's dynamic configs",
    );
    let t = k.ok(
        "kafka-configs.sh",
        &format!("{cfg} --alter --add-config retention.ms=7200000,cleanup.policy=compact,segment.bytes=1048576"),
    );
    c.eq(
        t.stdout_lines(),
        vec![format!("Completed updating config for topic {topic}.").as_str()],
        &t,
        "alter's message",
    );
    let t = k.ok("kafka-configs.sh", &format!("{cfg} --describe"));
    c.eq(
        t.stdout_lines(),
        vec![
            &header,
            "  cleanup.policy=compact sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact, DEFAULT_CONFIG:log.cleanup.policy=delete}",
            "  retention.ms=7200000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=7200000}",
            "  segment.bytes=1048576 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:segment.bytes=1048576, DEFAULT_CONFIG:log.segment.bytes=1073741824}",
        ],
        &t,
        "the topic's dynamic configs after --add-config",
    );
    let t = k.ok("kafka-configs.sh", &format!("{cfg} --alter --delete-config cleanup.policy,segment.bytes"));
    c.contains(&t, &format!("Completed updating config for topic {topic}."));
    let t = k.ok("kafka-configs.sh", &format!("{cfg} --describe"));
    c.eq(
        t.stdout_lines(),
        vec![&header, "  retention.ms=7200000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=7200000}"],
        &t,
        "the topic's dynamic configs after --delete-config",
    );
    // Bad values: refused, naming the config and the value (the wording is the broker's).
    let t = k.run("kafka-configs.sh", &format!("{cfg} --alter --add-config retention.ms=abc"));
    c.check(!t.out.success(), &t, "retention.ms=abc was accepted");
    c.contains(&t, "InvalidConfigurationException");
    c.check(
        t.all().contains("retention.ms") && t.all().contains("abc"),
        &t,
        "the error names neither retention.ms nor abc",
    );
    let t = k.run("kafka-configs.sh", &format!("{cfg} --alter --add-config no.such.config=1"));
    c.check(!t.out.success(), &t, "an unknown topic config was accepted");
    c.contains(&t, "InvalidConfigurationException");
    c.contains(&t, "no.such.config");

    // The broker: its dynamic configs, and the static ones (the test's settings, given to
    // Sluice as --override and to Kafka in server.properties: both STATIC_BROKER_CONFIG).
    let bcfg = "--entity-type brokers --entity-name 1";
    let t = k.ok("kafka-configs.sh", &format!("{bcfg} --alter --add-config log.retention.ms=604800001"));
    c.eq(t.stdout_lines(), vec!["Completed updating config for broker 1."], &t, "alter's message");
    let t = k.ok("kafka-configs.sh", &format!("{bcfg} --describe"));
    // log.retention.ms's synonyms after the dynamic value: Kafka's log.retention.ms has no
    // default, log.retention.hours has (168).
    c.eq(
        t.stdout_lines(),
        vec![
            "Dynamic configs for broker 1 are:",
            "  log.retention.ms=604800001 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.retention.ms=604800001, DEFAULT_CONFIG:log.retention.hours=168}",
        ],
        &t,
        "the broker's dynamic configs",
    );
    let t = k.ok("kafka-configs.sh", &format!("{bcfg} --describe --all"));
    let lines = t.stdout_lines();
    c.eq(lines.first().copied(), Some("All configs for broker 1 are:"), &t, "--all's header");
    for want in [
        "  num.partitions=1 sensitive=false synonyms={STATIC_BROKER_CONFIG:num.partitions=1, DEFAULT_CONFIG:num.partitions=1}",
        "  group.initial.rebalance.delay.ms=0 sensitive=false synonyms={STATIC_BROKER_CONFIG:group.initial.rebalance.delay.ms=0, DEFAULT_CONFIG:group.initial.rebalance.delay.ms=3000}",
        "  auto.create.topics.enable=true sensitive=false synonyms={STATIC_BROKER_CONFIG:auto.create.topics.enable=true, DEFAULT_CONFIG:auto.create.topics.enable=true}",
        "  offsets.topic.num.partitions=50 sensitive=false synonyms={DEFAULT_CONFIG:offsets.topic.num.partitions=50}",
        "  log.cleanup.policy=delete sensitive=false synonyms={DEFAULT_CONFIG:log.cleanup.policy=delete}",
        "  log.segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:log.segment.bytes=1073741824}",
        "  message.max.bytes=1048588 sensitive=false synonyms={DEFAULT_CONFIG:message.max.bytes=1048588}",
        "  log.retention.ms=604800001 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.retention.ms=604800001, DEFAULT_CONFIG:log.retention.hours=168}",
    ] {
        c.check(lines.contains(&want), &t, &format!("--describe --all lacks the line {want:?}"));
    }
    let t = k.ok("kafka-configs.sh", &format!("{bcfg} --alter --delete-config log.retention.ms"));
    c.contains(&t, "Completed updating config for broker 1.");
    let t = k.ok("kafka-configs.sh", &format!("{bcfg} --describe"));
    c.eq(
        t.stdout_lines(),
        vec!["Dynamic configs for broker 1 are:"],
        &t,
        "the broker's dynamic configs after --delete-config",
    );
    let t = k.run("kafka-configs.sh", &format!("{bcfg} --alter --add-config log.retention.ms=abc"));
    c.check(!t.out.success(), &t, "log.retention.ms=abc was accepted");
    c.check(
        t.all().contains("log.retention.ms") && t.all().contains("abc"),
        &t,
        "the error names neither log.retention.ms nor abc",
    );
    c.finish(&target);
}

/// kafka-console-producer.sh and kafka-console-consumer.sh with a group, then
/// kafka-consumer-groups.sh: describe (offsets, log end, lag, members, state), list,
/// reset-offsets (--execute and --dry-run), what a live group refuses, delete.
#[test]
fn console_clients_and_consumer_groups() {
    let target = Target::start(&[]);
    let k = Tools::new(&target);
    let mut c = Checks::new(&k);
    let topic = unique("kt-groups");
    let group = unique("kt-group");
    k.ok("kafka-topics.sh", &format!("--create --topic {topic} --partitions 2"));

    let keyed = "--reader-property parse.key=true --reader-property key.separator=:";
    let records: Vec<(String, String)> = (0..6).map(|i| (format!("key{i}"), format!("value-{i}"))).collect();
    let input: String = records.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    k.produce(&topic, keyed, &input);

    let print = "--formatter-property print.key=true --formatter-property print.partition=true --formatter-property print.offset=true";
    let t = k.ok(
        "kafka-console-consumer.sh",
        &format!("--topic {topic} --group {group} --from-beginning --max-messages 6 --timeout-ms 60000 {print}"),
    );
    c.contains(&t, "Processed a total of 6 messages");
    // `Partition:P\tOffset:O\tkey\tvalue`: every record once, each partition's from
    // offset 0 up, in produce order.
    let mut seen: BTreeMap<i32, Vec<(i64, String, String)>> = BTreeMap::new();
    for line in t.stdout_lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let parsed = (f.len() == 4)
            .then(|| {
                Some((f[0].strip_prefix("Partition:")?.parse().ok()?, f[1].strip_prefix("Offset:")?.parse().ok()?))
            })
            .flatten();
        let (p, o) = parsed
            .unwrap_or_else(|| panic!("{}", t.fail(&format!("{line:?} is not Partition:P\\tOffset:O\\tkey\\tvalue"))));
        seen.entry(p).or_default().push((o, f[2].to_string(), f[3].to_string()));
    }
    let mut got: Vec<(String, String)> = seen.values().flatten().map(|(_, k, v)| (k.clone(), v.clone())).collect();
    got.sort();
    assert_eq!(got, records, "{}", t.fail("the consumer did not print exactly the produced records"));
    let mut count: BTreeMap<i32, i64> = (0..2).map(|p| (p, 0)).collect();
    for (p, recs) in &seen {
        let offs: Vec<i64> = recs.iter().map(|r| r.0).collect();
        c.eq(offs, (0..recs.len() as i64).collect(), &t, &format!("partition {p}'s offsets"));
        let keys: Vec<&String> = recs.iter().map(|r| &r.1).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        c.eq(&keys, &sorted, &t, &format!("partition {p}'s records in produce order"));
        count.insert(*p, recs.len() as i64);
    }

    let t = k.ok("kafka-get-offsets.sh", &format!("--topic {topic}"));
    c.eq(offsets(&t, &topic), count.clone(), &t, "log end offsets (what the consumer read)");

    // The group committed what it read: no lag, no members.
    let describe = || k.ok("kafka-consumer-groups.sh", &format!("--describe --group {group}"));
    let t = describe();
    c.contains(&t, &format!("Consumer group '{group}' has no active members."));
    let rows = t.group_table();
    let parts = by_partition(&rows, &topic);
    c.eq(parts.keys().copied().collect::<Vec<_>>(), vec![0, 1], &t, "one row per partition");
    for (p, r) in &parts {
        c.eq(r["GROUP"].as_str(), group.as_str(), &t, "GROUP");
        c.eq(num(r, "CURRENT-OFFSET", &t), count[p], &t, &format!("partition {p}'s CURRENT-OFFSET"));
        c.eq(num(r, "LOG-END-OFFSET", &t), count[p], &t, &format!("partition {p}'s LOG-END-OFFSET"));
        c.eq(num(r, "LAG", &t), 0, &t, &format!("partition {p}'s LAG"));
        let member = (r["CONSUMER-ID"].as_str(), r["HOST"].as_str(), r["CLIENT-ID"].as_str());
        c.eq(member, ("-", "-", "-"), &t, "member columns");
    }
    let t = k.ok("kafka-consumer-groups.sh", &format!("--describe --group {group} --state"));
    let r = group_row(&t, &group);
    c.eq(
        (r["STATE"].as_str(), r["#MEMBERS"].as_str()),
        ("Empty", "0"),
        &t,
        "STATE and #MEMBERS of a group without members",
    );
    c.eq(r["COORDINATOR"].as_str(), k.bootstrap.as_str(), &t, "COORDINATOR");

    // Reset to the earliest offsets, then one partition (the fuller one, so that offset 1
    // exists) to offset 1: lag = log end - the new offset.
    let t = k.ok(
        "kafka-consumer-groups.sh",
        &format!("--reset-offsets --group {group} --topic {topic} --to-earliest --execute"),
    );
    let rows = t.group_table();
    let reset = by_partition(&rows, &topic);
    c.eq(reset.keys().copied().collect::<Vec<_>>(), vec![0, 1], &t, "NEW-OFFSET rows");
    for (p, r) in reset {
        c.eq(num(r, "NEW-OFFSET", &t), 0, &t, &format!("partition {p}'s NEW-OFFSET"));
    }
    let fuller = *count.iter().max_by_key(|(_, n)| **n).unwrap().0;
    let t = k.ok(
        "kafka-consumer-groups.sh",
        &format!("--reset-offsets --group {group} --topic {topic}:{fuller} --to-offset 1 --execute"),
    );
    let rows = t.group_table();
    let reset = by_partition(&rows, &topic);
    c.eq(reset.keys().copied().collect::<Vec<_>>(), vec![fuller], &t, "only the named partition is reset");
    if let Some(r) = reset.get(&fuller) {
        c.eq(num(r, "NEW-OFFSET", &t), 1, &t, "NEW-OFFSET");
    }
    let committed: BTreeMap<i32, i64> = (0..2).map(|p| (p, i64::from(p == fuller))).collect();
    let t = describe();
    for (p, r) in by_partition(&t.group_table(), &topic) {
        c.eq(
            num(r, "CURRENT-OFFSET", &t),
            committed[&p],
            &t,
            &format!("partition {p}'s CURRENT-OFFSET after the resets"),
        );
        c.eq(num(r, "LOG-END-OFFSET", &t), count[&p], &t, &format!("partition {p}'s LOG-END-OFFSET"));
        c.eq(num(r, "LAG", &t), count[&p] - committed[&p], &t, &format!("partition {p}'s LAG after the resets"));
    }
    // A dry run shows the plan and changes nothing (the live consumer below starts from
    // the offsets above).
    let t = k.ok(
        "kafka-consumer-groups.sh",
        &format!("--reset-offsets --group {group} --topic {topic} --to-latest --dry-run"),
    );
    for (p, r) in by_partition(&t.group_table(), &topic) {
        c.eq(num(r, "NEW-OFFSET", &t), count[&p], &t, &format!("partition {p}'s planned NEW-OFFSET"));
    }

    // A live member: the console consumer resumes from the reset offsets, reads what is
    // left and then 3 records produced while it runs, and exits.
    let left: i64 = (0..2).map(|p| count[&p] - committed[&p]).sum();
    let want = left + 3;
    let consumer = k.command(
        "kafka-console-consumer.sh",
        &format!("--topic {topic} --group {group} --max-messages {want} --timeout-ms 150000 --formatter-property print.key=true"),
    );
    let kind = k.kind;
    let live = std::thread::spawn(move || {
        let t0 = Instant::now();
        let out = run_bounded(consumer, Duration::from_secs(180));
        eprintln!(
            "[{kind}] $ kafka-console-consumer.sh (the live member) ({:.1} s, {})",
            t0.elapsed().as_secs_f64(),
            out.status
        );
        out
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let t = loop {
        let t = describe();
        let rows = t.group_table();
        let parts = by_partition(&rows, &topic);
        if parts.len() == 2 && parts.values().all(|r| r["CONSUMER-ID"] != "-") {
            break t;
        }
        let why = "the live console consumer never showed as the partitions' member";
        assert!(Instant::now() < deadline && !live.is_finished(), "{}", t.fail(why));
        std::thread::sleep(Duration::from_millis(300));
    };
    for (p, r) in by_partition(&t.group_table(), &topic) {
        c.check(r["CONSUMER-ID"].starts_with("console-consumer-"), &t, &format!("partition {p}'s CONSUMER-ID"));
        c.eq(r["HOST"].as_str(), "/127.0.0.1", &t, &format!("partition {p}'s HOST"));
        c.eq(r["CLIENT-ID"].as_str(), "console-consumer", &t, &format!("partition {p}'s CLIENT-ID"));
    }
    let t = k.ok("kafka-consumer-groups.sh", &format!("--describe --group {group} --state"));
    let r = group_row(&t, &group);
    let state = (r["ASSIGNMENT-STRATEGY"].as_str(), r["STATE"].as_str(), r["#MEMBERS"].as_str());
    c.eq(state, ("range", "Stable", "1"), &t, "ASSIGNMENT-STRATEGY, STATE and #MEMBERS of the live group");
    let t = k.ok("kafka-consumer-groups.sh", &format!("--describe --group {group} --members"));
    let r = group_row(&t, &group);
    let member = (r["CLIENT-ID"].as_str(), r["#PARTITIONS"].as_str());
    c.eq(member, ("console-consumer", "2"), &t, "the member's CLIENT-ID and #PARTITIONS");
    let t = k.ok("kafka-consumer-groups.sh", "--list");
    c.check(t.stdout_lines().contains(&group.as_str()), &t, "the group is not listed");
    // What a live group refuses.
    let t = k.run("kafka-consumer-groups.sh", &format!("--delete --group {group}"));
    c.contains(
        &t,
        &format!(
            "* Group '{group}' could not be deleted due to: org.apache.kafka.common.errors.GroupNotEmptyException"
        ),
    );
    let t = k.run(
        "kafka-consumer-groups.sh",
        &format!("--reset-offsets --group {group} --topic {topic} --to-latest --execute"),
    );
    c.contains(
        &t,
        &format!("Assignments can only be reset if the group '{group}' is inactive, but the current state is Stable."),
    );

    let more: Vec<(String, String)> = (6..9).map(|i| (format!("key{i}"), format!("value-{i}"))).collect();
    let input: String = more.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    k.produce(&topic, keyed, &input);
    let out = live.join().expect("the live consumer's thread");
    assert!(out.success(), "{}", out.describe("the live console consumer"));
    let live_tool = Tool { line: "kafka-console-consumer.sh (the live member)".into(), out };
    c.contains(&live_tool, &format!("Processed a total of {want} messages"));
    let mut expect: Vec<String> = Vec::new();
    for (p, recs) in &seen {
        expect.extend(recs.iter().filter(|r| r.0 >= committed[p]).map(|(_, key, value)| format!("{key}\t{value}")));
    }
    expect.extend(more.iter().map(|(k, v)| format!("{k}\t{v}")));
    expect.sort();
    let mut printed: Vec<String> = live_tool.stdout_lines().into_iter().map(String::from).collect();
    printed.sort();
    c.eq(printed, expect, &live_tool, "what the live consumer printed (from the reset offsets on)");

    // It committed everything on its way out.
    let t = describe();
    let rows = t.group_table();
    let parts = by_partition(&rows, &topic);
    c.eq(parts.values().map(|r| num(r, "LOG-END-OFFSET", &t)).sum::<i64>(), 9, &t, "9 records in all");
    for (p, r) in parts {
        c.eq(
            num(r, "CURRENT-OFFSET", &t),
            num(r, "LOG-END-OFFSET", &t),
            &t,
            &format!("partition {p}'s CURRENT-OFFSET"),
        );
        c.eq(num(r, "LAG", &t), 0, &t, &format!("partition {p}'s LAG"));
    }

    let t = k.ok("kafka-consumer-groups.sh", &format!("--delete --group {group}"));
    c.contains(&t, &format!("Deletion of requested consumer groups ('{group}') was successful."));
    // Kafka 4.4 answers DescribeGroups v6 for an unknown group with GROUP_ID_NOT_FOUND
    // (versions up to 5: state Dead, which the tool prints as "does not exist").
    let t = k.run("kafka-consumer-groups.sh", &format!("--describe --group {group}"));
    c.contains(&t, &format!("GroupIdNotFoundException: Group {group} not found."));
    c.finish(&target);
}

/// Headers and keys through the console tools, kafka-get-offsets.sh (latest, earliest, by
/// timestamp) and kafka-delete-records.sh (an offset, past the end, -1 for the end).
#[test]
fn offsets_headers_and_delete_records() {
    let target = Target::start(&[]);
    let k = Tools::new(&target);
    let mut c = Checks::new(&k);
    let topic = unique("kt-records");
    k.ok("kafka-topics.sh", &format!("--create --topic {topic} --partitions 1"));

    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 1000;
    let input: String = (0..10).map(|i| format!("src:cli,n:{i}\tk{i}\tv{i}\n")).collect();
    k.produce(&topic, "--reader-property parse.key=true --reader-property parse.headers=true", &input);

    let print = "--formatter-property print.key=true --formatter-property print.headers=true --formatter-property print.offset=true";
    let t = k.ok(
        "kafka-console-consumer.sh",
        &format!("--topic {topic} --partition 0 --offset earliest --max-messages 10 --timeout-ms 60000 {print}"),
    );
    let want: Vec<String> = (0..10).map(|i| format!("Offset:{i}\tsrc:cli,n:{i}\tk{i}\tv{i}")).collect();
    c.eq(
        t.stdout_lines(),
        want.iter().map(String::as_str).collect(),
        &t,
        "offsets, headers, keys and values as produced",
    );
    c.contains(&t, "Processed a total of 10 messages");

    let at = |o: i64| BTreeMap::from([(0, o)]);
    let t = k.ok("kafka-get-offsets.sh", &format!("--topic {topic}"));
    c.eq(offsets(&t, &topic), at(10), &t, "the latest offset");
    let t = k.ok("kafka-get-offsets.sh", &format!("--topic {topic} --time {before}"));
    c.eq(offsets(&t, &topic), at(0), &t, "the first offset at or after a timestamp before the records");
    let t = k.ok("kafka-get-offsets.sh", &format!("--topic {topic} --time {}", before + 3_600_000));
    c.eq(t.stdout_lines(), Vec::<&str>::new(), &t, "a timestamp after every record matches no offset");
    let t = k.run("kafka-get-offsets.sh", &format!("--topic {}", unique("kt-none")));
    c.check(!t.out.success(), &t, "a missing topic succeeded");
    c.contains(&t, "Could not match any topic-partitions with the specified filters");

    let dir = tempfile::tempdir().unwrap();
    let delete = |offset: i64| {
        let path = dir.path().join(format!("delete-{offset}.json"));
        let json = format!(r#"{{"partitions":[{{"topic":"{topic}","partition":0,"offset":{offset}}}],"version":1}}"#);
        std::fs::write(&path, json).unwrap();
        k.ok("kafka-delete-records.sh", &format!("--offset-json-file {}", path.display()))
    };
    let t = delete(4);
    let report = format!("partition: {topic}-0\tlow_watermark: 4");
    let want = vec!["Executing records delete operation", "Records delete operation completed:", &report];
    c.eq(t.stdout_lines(), want, &t, "delete-records' report");
    let t = k.ok("kafka-get-offsets.sh", &format!("--topic {topic} --time -2"));
    c.eq(offsets(&t, &topic), at(4), &t, "the earliest offset (-2) after deleting up to 4");
    let t = k.ok("kafka-console-consumer.sh", &format!("--topic {topic} --partition 0 --offset earliest --max-messages 6 --timeout-ms 60000 --formatter-property print.offset=true"));
    let want: Vec<String> = (4..10).map(|i| format!("Offset:{i}\tv{i}")).collect();
    c.eq(t.stdout_lines(), want.iter().map(String::as_str).collect(), &t, "the records left after delete-records");

    let t = delete(11);
    c.contains(&t, &format!("partition: {topic}-0\terror: org.apache.kafka.common.errors.OffsetOutOfRangeException"));
    let t = delete(-1);
    c.contains(&t, &format!("partition: {topic}-0\tlow_watermark: 10"));
    let t = k.ok("kafka-get-offsets.sh", &format!("--topic {topic} --time earliest"));
    c.eq(offsets(&t, &topic), at(10), &t, "the earliest offset after deleting everything");
    let t = k.ok("kafka-get-offsets.sh", &format!("--topic {topic} --time latest"));
    c.eq(offsets(&t, &topic), at(10), &t, "the latest offset after deleting everything");
    c.finish(&target);
}

/// kafka-log-dirs.sh --describe (DescribeLogDirs) and kafka-reassign-partitions.sh
/// (AlterPartitionReassignments, ListPartitionReassignments) on one node: the replicas and
/// their sizes, and a move onto the node the partition is on (there is no other), which
/// completes at once.
#[test]
fn log_dirs_and_reassignment() {
    let target = Target::start(&[]);
    let k = Tools::new(&target);
    let mut c = Checks::new(&k);
    let topic = unique("kt-dirs");
    k.ok("kafka-topics.sh", &format!("--create --topic {topic} --partitions 2"));
    k.produce(&topic, "", "a\nb\nc\n");

    let t = k.ok("kafka-log-dirs.sh", &format!("--describe --topic-list {topic}"));
    let json: serde_json::Value = t
        .stdout_lines()
        .iter()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{}", t.fail("no JSON line")));
    let brokers = json["brokers"].as_array().cloned().unwrap_or_default();
    c.eq(brokers.len(), 1, &t, "one broker");
    let broker = brokers[0]["broker"].as_i64().unwrap_or(-1);
    let dirs = brokers[0]["logDirs"].as_array().cloned().unwrap_or_default();
    c.eq(dirs.len(), 1, &t, "one log dir");
    c.eq(dirs[0]["error"].clone(), serde_json::Value::Null, &t, "no log dir error");
    let mut parts: Vec<(String, bool)> = dirs[0]["partitions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| (p["partition"].as_str().unwrap_or("").to_string(), p["size"].as_i64().unwrap_or(0) > 0))
        .collect();
    parts.sort();
    c.check(
        parts.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>() == vec![format!("{topic}-0"), format!("{topic}-1")],
        &t,
        "the topic's two replicas listed",
    );
    c.check(parts.iter().any(|(_, nonempty)| *nonempty), &t, "a replica with the records has a size");

    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("move.json");
    let json = format!(r#"{{"version":1,"partitions":[{{"topic":"{topic}","partition":0,"replicas":[{broker}]}}]}}"#);
    std::fs::write(&plan, json).unwrap();
    let file = format!("--reassignment-json-file {}", plan.display());
    let t = k.ok("kafka-reassign-partitions.sh", &format!("{file} --execute"));
    c.contains(&t, &format!("Successfully started partition reassignment for {topic}-0"));
    let t = k.ok("kafka-reassign-partitions.sh", &format!("{file} --verify"));
    c.contains(&t, &format!("Reassignment of partition {topic}-0 is completed."));
    let t = k.ok("kafka-reassign-partitions.sh", "--list");
    c.contains(&t, "No partition reassignments found.");
    let t = k.ok("kafka-reassign-partitions.sh", &format!("{file} --cancel"));
    c.contains(&t, "None of the specified partition reassignments are active.");
    c.finish(&target);
}

/// `kafka-transactions.sh list` and `describe` (ListTransactions, DescribeTransactions) show
/// a transaction a producer left open: its id, producer id, state and partition.
#[test]
fn transactions_tool_lists_and_describes_an_open_transaction() {
    let target = Target::start(&[]);
    let k = Tools::new(&target);
    let topic = unique("kt-txn");
    // confluent-kafka opens a transaction (timeout 5 minutes) and exits without ending it.
    let script = repo_root().join("tests/clients/transactions.py");
    let mut py = Command::new("timeout");
    py.args(["120", "python3"]).arg(script).args(["abandon", &target.bootstrap(), &topic, "300000"]);
    let out = run_bounded(py, Duration::from_secs(130));
    assert!(out.success() && out.stdout.contains("abandoned"), "{}", out.describe("transactions.py abandon"));
    let t = k.ok("kafka-transactions.sh", "list");
    let row = t.stdout_lines().into_iter().find(|l| l.starts_with("abandoned ")).map(str::to_string);
    let row = row.unwrap_or_else(|| panic!("no row for the id in:\n{}", t.all()));
    assert!(row.contains("Ongoing"), "{row}");
    let t = k.ok("kafka-transactions.sh", "describe --transactional-id abandoned");
    let all = t.all();
    assert!(all.contains("Ongoing") && all.contains(&format!("{topic}-0")), "{all}");
}
