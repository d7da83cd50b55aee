//! Security (issue 21): SSL listeners with a throwaway CA made here (confluent-kafka with a
//! client certificate, kafka-python with server authentication only; refused: another CA's
//! certificate, an expired one, none where required), SASL PLAIN and SCRAM, re-authentication,
//! ACLs, quotas, connection creation rates, replication over SASL_SSL, the Java client over
//! SASL_SSL, sluicectl's security commands, and hostile input on these paths.
mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

struct Pki {
    ca: String,
    keystore: String,
    client_cert: String,
    client_key: String,
    /// A client certificate from the same CA that expired in 2020.
    expired_cert: String,
    expired_key: String,
}

/// A CA, a broker certificate for 127.0.0.1 and a client certificate for "CN=alice".
fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "sluice test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: Vec<String>, cn: &str, expired: bool| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            p.not_before = rcgen::date_time_ymd(2019, 1, 1);
            p.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        (p.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
    };
    let (broker_cert, broker_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()], "broker", false);
    let (client_cert, client_key) = leaf(vec![], "alice", false);
    let (expired_cert, expired_key) = leaf(vec![], "old", true);
    Pki {
        ca: ca_pem,
        keystore: format!("{broker_key}{broker_cert}"),
        client_cert,
        client_key,
        expired_cert,
        expired_key,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// A single node with `overrides` listening on PLAINTEXT (the harness's port) and SSL.
fn start(ssl: u16, overrides: &[(&str, &str)]) -> Broker {
    let plain = free_port();
    let mut all = vec![("listeners".to_string(), format!("PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl}"))];
    all.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut b = Broker::unstarted(plain, &all, 1);
    b.spawn();
    b.wait_ready();
    b
}

/// Runs a Python client script with `args`; its stdout, or a panic with its output.
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["120", "python3", "-c", script])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python3 (scripts/install-test-deps.sh installs the clients)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python client failed ({}):\n{text}", out.status);
    String::from_utf8_lossy(&out.stdout).to_string()
}

const CLIENTS: &str = r#"
import sys, time
from confluent_kafka import Producer, Consumer
boot, ca, cert, key, also_anonymous = sys.argv[1:6]
base = {"bootstrap.servers": boot, "security.protocol": "SSL", "ssl.ca.location": ca,
        "ssl.certificate.location": cert, "ssl.key.location": key}
p = Producer(dict(base, acks="all"))
errors = []
for i in range(50):
    p.produce("tls", value=b"v%d" % i, on_delivery=lambda e, m: e and errors.append(e))
assert p.flush(30) == 0 and not errors, errors
c = Consumer(dict(base, **{"group.id": "tls", "auto.offset.reset": "earliest"}))
c.subscribe(["tls"])
got, t0 = [], time.time()
while len(got) < 50 and time.time() - t0 < 30:
    m = c.poll(1)
    if m is not None and not m.error():
        got.append(m.value())
c.close()
assert got == [b"v%d" % i for i in range(50)], got
if also_anonymous == "yes":
    # kafka-python without a client certificate: server authentication only.
    from kafka import KafkaProducer
    kp = KafkaProducer(bootstrap_servers=boot, security_protocol="SSL", ssl_cafile=ca)
    kp.send("tls", b"kafka-python").get(timeout=30)
print("ok")
"#;

const REFUSED: &str = r#"
import sys
from confluent_kafka import Producer
boot, ca, cert, key = sys.argv[1:5]
conf = {"bootstrap.servers": boot, "security.protocol": "SSL", "ssl.ca.location": ca,
        "message.timeout.ms": 5000}
if cert != "-":
    conf.update({"ssl.certificate.location": cert, "ssl.key.location": key})
errors = []
p = Producer(conf)
p.produce("tls", b"x", on_delivery=lambda e, m: errors.append(e))
p.flush(15)
print("refused" if errors and errors[0] is not None else "delivered")
"#;

#[test]
fn ssl_listener_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, other) = (pki(), pki());
    let ca = write(dir.path(), "ca.pem", &ours.ca);
    let keystore = write(dir.path(), "broker.pem", &ours.keystore);
    let cert = write(dir.path(), "alice.pem", &ours.client_cert);
    let key = write(dir.path(), "alice.key", &ours.client_key);
    let stranger_cert = write(dir.path(), "mallory.pem", &other.client_cert);
    let stranger_key = write(dir.path(), "mallory.key", &other.client_key);
    let expired_cert = write(dir.path(), "old.pem", &ours.expired_cert);
    let expired_key = write(dir.path(), "old.key", &ours.expired_key);
    let ssl = free_port();
    let broker = start(
        ssl,
        &[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", &keystore),
            ("ssl.truststore.location", &ca),
            ("ssl.client.auth", "required"),
        ],
    );
    create_topic(&broker.bootstrap(), "tls", 1);
    let boot = format!("127.0.0.1:{ssl}");
    assert_eq!(python(CLIENTS, &[&boot, &ca, &cert, &key, "no"]).trim(), "ok");
    assert_eq!(python(REFUSED, &[&boot, &ca, &stranger_cert, &stranger_key]).trim(), "refused", "another CA's client");
    assert_eq!(python(REFUSED, &[&boot, &ca, &expired_cert, &expired_key]).trim(), "refused", "an expired certificate");
    assert_eq!(python(REFUSED, &[&boot, &ca, "-", "-"]).trim(), "refused", "no client certificate");
    let log = broker.log_tail(200);
    assert!(log.contains("TLS handshake failed"), "refusals are logged:\n{log}");
    drop(broker);

    // ssl.client.auth=requested: a client with a certificate and one without both connect.
    let ssl = free_port();
    let broker = start(
        ssl,
        &[
            ("listener.name.ssl.ssl.keystore.location", &keystore),
            ("ssl.truststore.location", &ca),
            ("ssl.client.auth", "requested"),
        ],
    );
    create_topic(&broker.bootstrap(), "tls", 1);
    let boot = format!("127.0.0.1:{ssl}");
    assert_eq!(python(CLIENTS, &[&boot, &ca, &cert, &key, "yes"]).trim(), "ok");
}

const SASL: &str = r#"
import sys
from confluent_kafka import Producer
boot, user, password = sys.argv[1:4]
errors = []
p = Producer({"bootstrap.servers": boot, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
              "sasl.username": user, "sasl.password": password, "message.timeout.ms": 8000})
p.produce("sasl", b"x", on_delivery=lambda e, m: errors.append(e))
p.flush(15)
print("refused" if errors and errors[0] is not None else "delivered")
"#;

/// SASL_PLAINTEXT with PLAIN: the users of the listener's JAAS config get in, a wrong
/// password is refused and logged without the password, and a request before
/// authentication closes the connection.
#[test]
fn sasl_plain_listener() {
    let port = free_port();
    let plain = free_port();
    let listeners = format!("PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{port}");
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";"#;
    let overrides = vec![
        ("listeners".to_string(), listeners),
        ("listener.name.sasl_plaintext.sasl.enabled.mechanisms".to_string(), "PLAIN".to_string()),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config".to_string(), jaas.to_string()),
    ];
    let mut broker = Broker::unstarted(plain, &overrides, 1);
    broker.spawn();
    broker.wait_ready();
    create_topic(&broker.bootstrap(), "sasl", 1);
    let boot = format!("127.0.0.1:{port}");
    assert_eq!(python(SASL, &[&boot, "alice", "alice-secret"]).trim(), "delivered");
    assert_eq!(python(SASL, &[&boot, "alice", "wrong-password"]).trim(), "refused");
    assert_eq!(python(SASL, &[&boot, "mallory", "alice-secret"]).trim(), "refused");
    let log = broker.log_tail(300);
    assert!(log.contains("SASL authentication failed"), "{log}");
    assert!(!log.contains("wrong-password"), "a password in the log");
    // Metadata before authenticating: the connection is closed, nothing answered.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&boot).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    // Metadata v1, correlation 1, client "t", all topics (-1).
    let body: &[u8] = &[0, 3, 0, 1, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff];
    s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "closed without an answer");
}

/// The admin side, over the PLAINTEXT listener (a super user there): SCRAM users and ACLs.
const ADMIN: &str = r#"
import sys
from confluent_kafka.admin import (AdminClient, NewTopic, AclBinding, AclBindingFilter, AclOperation,
    AclPermissionType, ResourceType, ResourcePatternType, ScramCredentialInfo, ScramMechanism,
    UserScramCredentialUpsertion, UserScramCredentialDeletion)
boot = sys.argv[1]
a = AdminClient({"bootstrap.servers": boot})
ups = [UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"alice-secret"),
       UserScramCredentialUpsertion("bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"bob-secret"),
       UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"c")]
for f in a.alter_user_scram_credentials(ups).values():
    f.result(30)
for f in a.alter_user_scram_credentials([UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)]).values():
    f.result(30)
# Too few iterations, and a credential that does not exist: refused per user.
bad = a.alter_user_scram_credentials([
    UserScramCredentialUpsertion("dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"d"),
    UserScramCredentialDeletion("erin", ScramMechanism.SCRAM_SHA_512)])
for user, f in bad.items():
    try:
        f.result(30); raise SystemExit("accepted a bad alteration for " + user)
    except Exception as e:
        print("refused", user, e.args[0].name())
described = a.describe_user_scram_credentials().result(30)
print("users", sorted((u, [(str(i.mechanism), i.iterations) for i in d.scram_credential_infos]) for u, d in described.items()))
for t in a.create_topics([NewTopic(t, 1, 1) for t in ("orders", "secret", "logs-app", "logs-secret")]).values():
    t.result(30)
T, G, LIT, PRE = ResourceType.TOPIC, ResourceType.GROUP, ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
acls = [AclBinding(T, "orders", LIT, "User:alice", "*", AclOperation.WRITE, ALLOW),
        AclBinding(T, "orders", LIT, "User:alice", "*", AclOperation.READ, ALLOW),
        AclBinding(T, "logs-", PRE, "User:alice", "*", AclOperation.READ, ALLOW),
        AclBinding(T, "logs-secret", LIT, "User:alice", "*", AclOperation.READ, DENY),
        AclBinding(G, "g-ok", LIT, "User:alice", "*", AclOperation.READ, ALLOW)]
for f in a.create_acls(acls).values():
    f.result(30)
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": boot})
for t in ("orders", "logs-app", "logs-secret"):
    p.produce(t, b"x")
assert p.flush(30) == 0
listed = a.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                          AclOperation.ANY, AclPermissionType.ANY)).result(30)
print("acls", len(listed))
print("ok")
"#;

/// A SCRAM user at work: what alice may and may not do under the ACLs above.
const ALICE: &str = r#"
import sys, time
from confluent_kafka import Producer, Consumer, KafkaError, TopicPartition
boot, mechanism, user, password = sys.argv[1:5]
auth = {"bootstrap.servers": boot, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
        "sasl.username": user, "sasl.password": password}
def nm(e):
    try:
        return "error %s" % e.code()
    except SystemError:
        # confluent-kafka 2.16 can leave a stale exception for the first call on a
        # delivery report's error; the second call answers.
        return "error %s" % e.code()
def produce(topic):
    errors = []
    p = Producer(dict(auth, **{"message.timeout.ms": 8000}))
    p.produce(topic, b"x", on_delivery=lambda e, m: errors.append(e))
    p.flush(15)
    return "delivered" if errors == [None] else (nm(errors[0]) if errors else "nothing")
if sys.argv[5] == "bad-password":
    print(produce("orders")); raise SystemExit
print("produce orders", produce("orders"))
print("produce secret", produce("secret"))
p = Producer(auth)
print("sees", sorted(t for t in p.list_topics(timeout=15).topics if not t.startswith("__")))
def consume(group, topic):
    c = Consumer(dict(auth, **{"group.id": group, "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    t0, out = time.time(), "nothing"
    while time.time() - t0 < 20:
        m = c.poll(1)
        if m is None:
            continue
        out = nm(m.error()) if m.error() else "read " + m.value().decode()
        break
    c.close()
    return out
print("consume g-denied", consume("g-denied", "orders"))
print("consume g-ok", consume("g-ok", "orders"))
print("consume logs-app", consume("g-ok", "logs-app"))
print("consume logs-secret", consume("g-ok", "logs-secret"))
"#;

/// SCRAM-SHA-256/512 users made with AlterUserScramCredentials, and ACLs: literal,
/// prefixed, deny-wins, group READ, Metadata hiding what a user may not describe.
#[test]
fn scram_users_and_acls() {
    let port = free_port();
    let plain = free_port();
    let overrides = vec![
        ("listeners".to_string(), format!("PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{port}")),
        ("sasl.enabled.mechanisms".to_string(), "SCRAM-SHA-256,SCRAM-SHA-512".to_string()),
        ("authorizer.class.name".to_string(), "org.apache.kafka.metadata.authorizer.StandardAuthorizer".to_string()),
        // The PLAINTEXT listener is the operators' (and the harness's): a super user.
        ("super.users".to_string(), "User:ANONYMOUS".to_string()),
    ];
    let mut broker = Broker::unstarted(plain, &overrides, 1);
    broker.spawn();
    broker.wait_ready();
    let admin = python(ADMIN, &[&broker.bootstrap()]);
    assert!(admin.contains("refused dave UNACCEPTABLE_CREDENTIAL"), "{admin}");
    assert!(admin.contains("refused erin RESOURCE_NOT_FOUND"), "{admin}");
    assert!(
        admin.contains("users [('alice', [('SCRAM_SHA_256', 4096)]), ('bob', [('SCRAM_SHA_512', 8192)])]")
            || admin.contains("users [('alice', [('ScramMechanism.SCRAM_SHA_256', 4096)]), ('bob', [('ScramMechanism.SCRAM_SHA_512', 8192)])]"),
        "{admin}"
    );
    assert!(admin.contains("acls 5"), "{admin}");
    let boot = format!("127.0.0.1:{port}");
    let alice = python(ALICE, &[&boot, "SCRAM-SHA-256", "alice", "alice-secret", "-"]);
    for expected in [
        "produce orders delivered",
        "produce secret error 29", // TOPIC_AUTHORIZATION_FAILED
        "sees ['logs-app', 'logs-secret', 'orders']",
        "consume g-denied error 30", // GROUP_AUTHORIZATION_FAILED
        "consume g-ok read x",
        "consume logs-app read x",      // a prefixed ACL
        "consume logs-secret error 29", // the literal DENY wins over it
    ] {
        assert!(alice.contains(expected), "expected {expected:?} in:\n{alice}");
    }
    let wrong = python(ALICE, &[&boot, "SCRAM-SHA-256", "alice", "wrong", "bad-password"]);
    // librdkafka retries a refused authentication until the message times out.
    assert!(wrong.trim().starts_with("error"), "a wrong SCRAM password: {wrong}");
    let bob = python(ALICE, &[&boot, "SCRAM-SHA-512", "bob", "bob-secret", "-"]);
    assert!(bob.contains("produce orders error 29") && bob.contains("sees []"), "{bob}");
    let log = broker.log_tail(400);
    assert!(log.contains("SASL authentication failed") && !log.contains("alice-secret"), "{log}");
}

const PRODUCE_FOR: &str = r#"
import sys, time
from confluent_kafka import Producer
boot, client_id, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
throttles, delivered = [], []
# Small requests (20 messages): deliveries come a request at a time, so a coarser batch
# would quantize the rate counted in the window (500-message requests gave steps of 25 %).
p = Producer({"bootstrap.servers": boot, "client.id": client_id, "linger.ms": 5, "batch.num.messages": 20,
              "queue.buffering.max.messages": 500, "throttle_cb": lambda e: throttles.append(e.throttle_time)})
payload = b"x" * 1000
def done(err, msg):
    if err is None:
        delivered.append(time.time())
t0 = time.time()
while time.time() - t0 < seconds:
    try:
        p.produce("quota", payload, on_delivery=done)
        p.poll(0)
    except BufferError:
        p.poll(0.05)
p.flush(30)
# The rate after the first (burst) seconds, in bytes per second.
steady = [t for t in delivered if t0 + 4 <= t < t0 + seconds]
print("rate %d" % (len(steady) * 1000 / (seconds - 4)))
print("throttled %s" % (max(throttles) > 0 if throttles else False))
"#;

/// A client id over its producer_byte_rate quota is held to it (within 10 %) and told
/// `throttle_time_ms`; another client id on the same broker is not slowed.
#[test]
fn a_producer_over_its_quota_is_held_to_it() {
    let broker = Broker::start();
    create_topic(&broker.bootstrap(), "quota", 1);
    let quota = 200_000;
    sluicectl(&broker.bootstrap(), &["quota", "set", "--client-id", "slow", &format!("producer_byte_rate={quota}")]);
    let described = sluicectl(&broker.bootstrap(), &["quota", "describe", "--client-id", "slow"]);
    assert!(described.contains("client-id=slow") && described.contains("producer_byte_rate"), "{described}");
    let slow = python(PRODUCE_FOR, &[&broker.bootstrap(), "slow", "14"]);
    let rate: f64 = slow.lines().find_map(|l| l.strip_prefix("rate ")).unwrap().parse().unwrap();
    assert!((0.9 * quota as f64..=1.1 * quota as f64).contains(&rate), "held to {rate} B/s of {quota}:\n{slow}");
    assert!(slow.contains("throttled True"), "the client saw throttle_time_ms:\n{slow}");
    let fast = python(PRODUCE_FOR, &[&broker.bootstrap(), "fast", "6"]);
    let rate: f64 = fast.lines().find_map(|l| l.strip_prefix("rate ")).unwrap().parse().unwrap();
    assert!(rate > 3.0 * quota as f64, "another client is not slowed: {rate} B/s\n{fast}");
    assert!(fast.contains("throttled False"), "{fast}");
    eprintln!("quota {quota} B/s: slow client {slow:?}, fast client {fast:?}");
}

/// `request_percentage`: a client whose handlers use more than its share of a thread is
/// slowed (its connection is not read from until it is back within the quota); the same
/// loop without the quota is not.
#[test]
fn a_client_over_its_request_time_quota_is_slowed() {
    use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
    let broker = Broker::start();
    // A quota for someone else: the broker measures handler time from here on for everyone.
    sluicectl(&broker.bootstrap(), &["quota", "set", "--client-id", "other", "request_percentage=50"]);
    let requests_in = |span: std::time::Duration| {
        let mut s = std::net::TcpStream::connect(broker.bootstrap()).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let (t0, mut n, mut slowest) = (std::time::Instant::now(), 0u32, std::time::Duration::ZERO);
        while t0.elapsed() < span {
            let t = std::time::Instant::now();
            let _: MetadataResponse = call_on(&mut s, ApiKey::Metadata, 1, &MetadataRequest::default()).unwrap();
            slowest = slowest.max(t.elapsed());
            n += 1;
        }
        (n, slowest)
    };
    let (free, _) = requests_in(std::time::Duration::from_secs(2));
    // The test client's id (call_on sends "sluice-test"): 1 % of a thread, 10 ms a second.
    sluicectl(&broker.bootstrap(), &["quota", "set", "--client-id", "sluice-test", "request_percentage=1"]);
    let (held, slowest) = requests_in(std::time::Duration::from_secs(3));
    let held_per_2s = held as f64 * 2.0 / 3.0;
    eprintln!("Metadata requests per 2 s: {free} without a quota, {held_per_2s:.0} at 1 % (slowest {slowest:?})");
    assert!(held_per_2s * 3.0 < free as f64, "1 % of a thread held {held_per_2s:.0} requests per 2 s against {free}");
    assert!(slowest >= std::time::Duration::from_millis(5), "the connection was muted: slowest {slowest:?}");
}

/// Runs sluicectl with a `--command-config` file: (success, stdout + stderr).
fn sluicectl_as(bootstrap: &str, config: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluicectl"))
        .args(["--bootstrap", bootstrap, "--command-config", config])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sluicectl");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// sluicectl's security commands over SASL, as kafka-acls.sh and kafka-configs.sh are
/// used: an admin (PLAIN, a super user) makes a SCRAM user and grants it a topic; the user
/// (SCRAM-SHA-512, from a Java-style client.properties) sees that topic and nothing else,
/// and may not touch ACLs; taking the grant away hides the topic again.
#[test]
fn sluicectl_manages_users_and_acls_over_sasl() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let ca = write(dir.path(), "ca.pem", &pki.ca);
    let keystore = write(dir.path(), "broker.pem", &pki.keystore);
    let (plain, sasl, sasl_ssl) = (free_port(), free_port(), free_port());
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";"#;
    let overrides = vec![
        (
            "listeners".to_string(),
            format!("PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl},SASL_SSL://127.0.0.1:{sasl_ssl}"),
        ),
        ("sasl.enabled.mechanisms".to_string(), "PLAIN,SCRAM-SHA-512".to_string()),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config".to_string(), jaas.to_string()),
        ("listener.name.sasl_ssl.plain.sasl.jaas.config".to_string(), jaas.to_string()),
        ("ssl.keystore.location".to_string(), keystore),
        ("authorizer.class.name".to_string(), "org.apache.kafka.metadata.authorizer.StandardAuthorizer".to_string()),
        ("super.users".to_string(), "User:admin".to_string()),
    ];
    let mut broker = Broker::unstarted(plain, &overrides, 1);
    broker.spawn();
    broker.wait_ready();
    let boot = format!("127.0.0.1:{sasl}");
    let admin = write(
        dir.path(),
        "admin.properties",
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=admin\nsasl.password=admin-secret\n",
    );
    let alice = write(
        dir.path(),
        "alice.properties",
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
         sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"alice-pw\";\n",
    );
    let run = |config: &str, args: &[&str]| {
        let (ok, out) = sluicectl_as(&boot, config, args);
        assert!(ok, "sluicectl {args:?} failed:\n{out}");
        out
    };
    run(&admin, &["user", "scram", "set", "--user", "alice", "--password", "alice-pw"]);
    let users = run(&admin, &["user", "scram", "describe"]);
    assert!(users.contains("alice") && users.contains("SCRAM-SHA-512") && users.contains("4096"), "{users}");
    run(&admin, &["topic", "create", "orders"]);
    run(&admin, &["topic", "create", "payroll"]);
    run(&admin, &["acl", "add", "--principal", "User:alice", "--operation", "write,read", "--topic", "orders"]);
    let acls = run(&admin, &["acl", "list", "--topic", "orders"]);
    assert!(acls.contains("User:alice") && acls.contains("write") && acls.contains("read"), "{acls}");
    let seen = run(&alice, &["topic", "list"]);
    assert!(seen.contains("orders") && !seen.contains("payroll"), "alice sees only her topic:\n{seen}");
    let (ok, out) = sluicectl_as(&boot, &alice, &["acl", "list"]);
    assert!(!ok && out.contains("ClusterAuthorizationFailed"), "alice may not list ACLs:\n{out}");
    // The PLAINTEXT listener's anonymous user has no grant: nothing to see.
    let anonymous = sluicectl(&broker.bootstrap(), &["topic", "list"]);
    assert!(!anonymous.contains("orders"), "{anonymous}");
    let removed = run(&admin, &["acl", "remove", "--topic", "orders", "--principal", "User:alice"]);
    assert!(removed.contains("Removed 2"), "{removed}");
    let seen = run(&alice, &["topic", "list"]);
    assert!(!seen.contains("orders"), "the grant is gone:\n{seen}");
    let wrong = write(
        dir.path(),
        "wrong.properties",
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=alice\nsasl.password=nope\n",
    );
    let (ok, out) = sluicectl_as(&boot, &wrong, &["acl", "list"]);
    assert!(!ok && out.contains("SaslAuthenticationFailed"), "a wrong password:\n{out}");

    // The same commands over SASL_SSL, the broker checked against the truststore.
    let tls_boot = format!("127.0.0.1:{sasl_ssl}");
    let tls_admin = write(
        dir.path(),
        "tls-admin.properties",
        &format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=admin\nsasl.password=admin-secret\nssl.truststore.location={ca}\n"
        ),
    );
    let (ok, out) = sluicectl_as(&tls_boot, &tls_admin, &["user", "scram", "describe"]);
    assert!(ok && out.contains("alice"), "user scram describe over SASL_SSL:\n{out}");
    let (ok, out) = sluicectl_as(
        &tls_boot,
        &tls_admin,
        &["acl", "add", "--principal", "User:alice", "--operation", "read", "--topic", "orders"],
    );
    assert!(ok, "acl add over SASL_SSL:\n{out}");
    let (ok, out) = sluicectl_as(&tls_boot, &tls_admin, &["acl", "list", "--topic", "orders"]);
    assert!(ok && out.contains("User:alice"), "acl list over SASL_SSL:\n{out}");
    // Another CA's view of the broker: the TLS handshake fails, and says so.
    let other = write(dir.path(), "other-ca.pem", &self::pki().ca);
    let untrusted = write(
        dir.path(),
        "untrusted.properties",
        &format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=admin\nsasl.password=admin-secret\nssl.truststore.location={other}\n"
        ),
    );
    let (ok, out) = sluicectl_as(&tls_boot, &untrusted, &["acl", "list"]);
    assert!(!ok && out.to_lowercase().contains("certificate"), "an untrusted broker:\n{out}");
}

const STEADY_PRODUCER: &str = r#"
import sys, time
from confluent_kafka import Producer
boot, seconds = sys.argv[1], float(sys.argv[2])
errors, sent = [], 0
p = Producer({"bootstrap.servers": boot, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
              "sasl.username": "alice", "sasl.password": "alice-secret", "message.timeout.ms": 10000})
t0 = time.time()
while time.time() - t0 < seconds:
    p.produce("sasl", b"x", on_delivery=lambda e, m: errors.append(e) if e else None)
    sent += 1
    p.poll(0.2)
assert p.flush(15) == 0 and not errors, errors
print("sent %d" % sent)
"#;

/// KIP-368: with `connections.max.reauth.ms` a SASL session ends; librdkafka
/// re-authenticates on the same connection and keeps producing, and a client that does
/// not is disconnected at its next request.
#[test]
fn sasl_sessions_end_and_clients_reauthenticate() {
    use kafka_protocol::messages::{
        ApiKey, MetadataRequest, MetadataResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
        SaslHandshakeRequest, SaslHandshakeResponse,
    };
    use kafka_protocol::protocol::StrBytes;
    let (plain, sasl) = (free_port(), free_port());
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";"#;
    let overrides = vec![
        ("listeners".to_string(), format!("PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}")),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config".to_string(), jaas.to_string()),
        ("listener.name.sasl_plaintext.connections.max.reauth.ms".to_string(), "1500".to_string()),
    ];
    let mut broker = Broker::unstarted(plain, &overrides, 1);
    broker.spawn();
    broker.wait_ready();
    create_topic(&broker.bootstrap(), "sasl", 1);
    let boot = format!("127.0.0.1:{sasl}");
    let out = python(STEADY_PRODUCER, &[&boot, "5"]);
    assert!(out.contains("sent"), "{out}");
    let log = broker.log_tail(300);
    assert!(log.contains("SASL re-authentication succeeded"), "librdkafka re-authenticated:\n{log}");

    // A client that ignores session_lifetime_ms.
    let mut s = std::net::TcpStream::connect(&boot).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("PLAIN");
    let r: SaslHandshakeResponse = call_on(&mut s, ApiKey::SaslHandshake, 1, &hs).unwrap();
    assert_eq!(r.error_code, 0);
    let mut auth = SaslAuthenticateRequest::default();
    auth.auth_bytes = bytes::Bytes::from_static(b"\0alice\0alice-secret");
    let r: SaslAuthenticateResponse = call_on(&mut s, ApiKey::SaslAuthenticate, 2, &auth).unwrap();
    assert_eq!((r.error_code, r.session_lifetime_ms), (0, 1500));
    let _: MetadataResponse = call_on(&mut s, ApiKey::Metadata, 4, &MetadataRequest::default()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1700));
    let late: Result<MetadataResponse, String> = call_on(&mut s, ApiKey::Metadata, 4, &MetadataRequest::default());
    assert!(late.is_err(), "a request after the session ended is not answered");
}

/// Hostile input on the security paths, each on its own connection while a well-behaved
/// client keeps working: garbage SASL tokens, a SCRAM exchange abandoned halfway, and a
/// TLS handshake that never finishes. Each is answered as Kafka answers it (an
/// authentication failure, or a closed connection) and nothing else is affected.
#[test]
fn hostile_input_on_the_security_paths() {
    use kafka_protocol::messages::{
        ApiKey, MetadataRequest, MetadataResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
        SaslHandshakeRequest, SaslHandshakeResponse,
    };
    use kafka_protocol::protocol::StrBytes;
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let keystore = write(dir.path(), "broker.pem", &pki.keystore);
    let (plain, sasl, ssl) = (free_port(), free_port(), free_port());
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";"#;
    let overrides = vec![
        (
            "listeners".to_string(),
            format!("PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl},SSL://127.0.0.1:{ssl}"),
        ),
        ("sasl.enabled.mechanisms".to_string(), "PLAIN,SCRAM-SHA-256".to_string()),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config".to_string(), jaas.to_string()),
        ("ssl.keystore.location".to_string(), keystore),
    ];
    let mut broker = Broker::unstarted(plain, &overrides, 1);
    broker.spawn();
    broker.wait_ready();
    create_topic(&broker.bootstrap(), "sasl", 1);
    let boot = format!("127.0.0.1:{sasl}");
    let connect = |addr: &str| {
        let s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        s
    };
    let handshake = |s: &mut std::net::TcpStream, mechanism: &'static str| {
        let mut hs = SaslHandshakeRequest::default();
        hs.mechanism = StrBytes::from_static_str(mechanism);
        let r: SaslHandshakeResponse = call_on(s, ApiKey::SaslHandshake, 1, &hs).unwrap();
        assert_eq!(r.error_code, 0, "{mechanism} is enabled");
    };
    let authenticate = |s: &mut std::net::TcpStream, token: &'static [u8]| {
        let mut a = SaslAuthenticateRequest::default();
        a.auth_bytes = bytes::Bytes::from_static(token);
        call_on::<_, SaslAuthenticateResponse>(s, ApiKey::SaslAuthenticate, 2, &a)
    };
    let closed = |s: &mut std::net::TcpStream| {
        let mut b = [0u8; 1];
        matches!(s.read(&mut b), Ok(0) | Err(_))
    };

    // A TLS handshake that never ends: five bytes of a record header, then silence.
    let mut stalled_tls = connect(&format!("127.0.0.1:{ssl}"));
    stalled_tls.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
    let stalled_at = std::time::Instant::now();

    // Garbage where PLAIN and SCRAM tokens belong: SASL_AUTHENTICATION_FAILED, then closed.
    for (mechanism, token) in [
        ("PLAIN", &b"\xff\xfe garbage without separators"[..]),
        ("PLAIN", &b""[..]),
        ("SCRAM-SHA-256", &b"p=tls-unique,,n=alice,r=abc"[..]),
        ("SCRAM-SHA-256", &b"\x00\x01\x02"[..]),
    ] {
        let mut s = connect(&boot);
        handshake(&mut s, mechanism);
        let mut a = SaslAuthenticateRequest::default();
        a.auth_bytes = bytes::Bytes::copy_from_slice(token);
        let r: SaslAuthenticateResponse = call_on(&mut s, ApiKey::SaslAuthenticate, 2, &a).unwrap();
        assert_eq!(r.error_code, 58, "{mechanism} {token:?}: SASL_AUTHENTICATION_FAILED");
        assert!(closed(&mut s), "{mechanism} {token:?}: the connection is closed");
    }
    // SaslAuthenticate without a handshake: ILLEGAL_SASL_STATE, closed.
    let mut s = connect(&boot);
    let r = authenticate(&mut s, b"\0alice\0alice-secret").unwrap();
    assert_eq!(r.error_code, 34, "ILLEGAL_SASL_STATE");
    assert!(closed(&mut s));
    // A SCRAM exchange abandoned after the client-first message: a request then is refused
    // by closing the connection; one that just goes away leaves nothing behind.
    let mut s = connect(&boot);
    handshake(&mut s, "SCRAM-SHA-256");
    let r = authenticate(&mut s, b"n,,n=alice,r=0123456789").unwrap();
    assert_eq!(r.error_code, 0, "a server-first message");
    assert!(String::from_utf8_lossy(&r.auth_bytes).starts_with("r=0123456789"));
    let after: Result<MetadataResponse, String> = call_on(&mut s, ApiKey::Metadata, 4, &MetadataRequest::default());
    assert!(after.is_err(), "no Metadata in the middle of an exchange");
    let mut gone = connect(&boot);
    handshake(&mut gone, "SCRAM-SHA-256");
    authenticate(&mut gone, b"n,,n=alice,r=abc").unwrap();
    drop(gone);

    // Meanwhile a well-behaved client works.
    assert_eq!(python(SASL, &[&boot, "alice", "alice-secret"]).trim(), "delivered");
    // The stalled TLS handshake is cut off (limits::TLS_HANDSHAKE_TIMEOUT, 10 s).
    assert!(closed(&mut stalled_tls), "a TLS handshake that never ends is closed");
    let waited = stalled_at.elapsed();
    assert!(waited < std::time::Duration::from_secs(19), "closed after {waited:?}");
    let log = broker.log_tail(300);
    assert!(log.contains("TLS handshake") && log.contains("SASL authentication failed"), "{log}");
}

/// KIP-612: `max.connection.creation.rate` holds back new connections broker-wide, and an
/// ip over its `connection_creation_rate` quota has its new connections closed.
#[test]
fn connection_creation_rates() {
    use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
    let port = free_port();
    let mut broker = Broker::unstarted(port, &[("max.connection.creation.rate".to_string(), "5".to_string())], 1);
    broker.spawn();
    broker.wait_ready();
    let boot = broker.bootstrap();
    let connect_and_ask = |timeout_ms: u64| {
        let timeout = std::time::Duration::from_millis(timeout_ms);
        try_kafka_call::<_, ApiVersionsResponse>(&boot, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default(), timeout)
            .is_ok()
    };
    // 15 connections at 5 a second (a second's worth at once): at least 2 s.
    let started = std::time::Instant::now();
    assert!((0..15).all(|_| connect_and_ask(10_000)), "every connection is served, later");
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(1800), "15 connections at 5/s took only {took:?}");

    sluicectl(&boot, &["quota", "set", "--ip", "127.0.0.1", "connection_creation_rate=1"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let served = (0..8).filter(|_| connect_and_ask(1_500)).count();
    assert!((1..=4).contains(&served), "{served} of 8 quick connections served at 1/s from one ip");
}

/// `ssl.principal.mapping.rules`: the client certificate `CN=alice` becomes `User:alice`,
/// whom an ACL lets produce and consume; a certificate no rule maps is refused.
#[test]
fn certificate_principals_are_mapped_and_authorized() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let ca = write(dir.path(), "ca.pem", &pki.ca);
    let keystore = write(dir.path(), "broker.pem", &pki.keystore);
    let cert = write(dir.path(), "alice.pem", &pki.client_cert);
    let key = write(dir.path(), "alice.key", &pki.client_key);
    let common = [
        ("ssl.keystore.location", keystore.as_str()),
        ("ssl.truststore.location", ca.as_str()),
        ("ssl.client.auth", "required"),
        ("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
        ("super.users", "User:ANONYMOUS"),
    ];
    let ssl = free_port();
    let mut overrides = common.to_vec();
    overrides.push(("ssl.principal.mapping.rules", "RULE:^CN=([a-z]+)$/$1/L,RULE:^O=x$/x/"));
    let broker = start(ssl, &overrides);
    let admin = broker.bootstrap();
    create_topic(&admin, "tls", 1);
    sluicectl(&admin, &["acl", "add", "--principal", "User:alice", "--operation", "write,read", "--topic", "tls"]);
    sluicectl(&admin, &["acl", "add", "--principal", "User:alice", "--operation", "read", "--group", "tls"]);
    let boot = format!("127.0.0.1:{ssl}");
    assert_eq!(python(CLIENTS, &[&boot, &ca, &cert, &key, "no"]).trim(), "ok", "User:alice may");
    drop(broker);

    let ssl = free_port();
    let mut overrides = common.to_vec();
    overrides.push(("ssl.principal.mapping.rules", "RULE:^CN=bob$/bob/"));
    let broker = start(ssl, &overrides);
    create_topic(&broker.bootstrap(), "tls", 1);
    let boot = format!("127.0.0.1:{ssl}");
    assert_eq!(python(REFUSED, &[&boot, &ca, &cert, &key]).trim(), "refused", "no rule maps CN=alice");
    assert!(broker.log_tail(200).contains("no ssl.principal.mapping.rules rule applies"));
}

/// Replication over SASL_SSL: three nodes whose inter-broker listener is SASL_SSL with
/// PLAIN, ACLs on and only the brokers' own user (and the test's PLAINTEXT operator) super.
/// Followers connect with TLS, authenticate and fetch: every replica joins the ISR.
#[test]
fn replication_over_sasl_ssl() {
    use std::io::Write;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let ca = write(dir.path(), "ca.pem", &pki.ca);
    let keystore = write(dir.path(), "broker.pem", &pki.keystore);
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-secret" user_broker="broker-secret";"#;
    let controller_jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="c-secret" user_controller="c-secret";"#;
    let extra = [
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL,INTERNAL:SASL_SSL"),
        ("listener.name.internal.ssl.keystore.location", keystore.as_str()),
        ("listener.name.internal.ssl.truststore.location", ca.as_str()),
        ("listener.name.internal.sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.internal.plain.sasl.jaas.config", jaas),
        ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
        ("listener.name.controller.ssl.keystore.location", keystore.as_str()),
        ("listener.name.controller.ssl.truststore.location", ca.as_str()),
        ("listener.name.controller.plain.sasl.jaas.config", controller_jaas),
        ("sasl.mechanism.controller.protocol", "PLAIN"),
        ("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
        ("super.users", "User:broker;User:controller;User:ANONYMOUS"),
    ];
    let (cluster_id, nodes) = {
        let (id, _, nodes) = start_cluster_prepared(3, false, &extra, &mut |_, node| {
            let listeners = node.set_override("listeners", "").expect("listeners set");
            node.set_override("listeners", &format!("{listeners},INTERNAL://127.0.0.1:{}", free_port()));
            // Set after `sluice format` (which checks the listeners it was given).
            node.set_override("inter.broker.listener.name", "INTERNAL");
        });
        (id, nodes)
    };
    let boot = nodes[0].bootstrap();
    sluicectl(&boot, &["topic", "create", "replicated", "--partitions", "3", "--replication-factor", "3"]);
    let isr_full = || {
        let md = metadata(&boot, Some("replicated"));
        let t = md.topic("replicated")?;
        (t.partitions.len() == 3 && t.partitions.iter().all(|p| p.3.len() == 3)).then_some(())
    };
    wait_until(std::time::Duration::from_secs(60), "every replica in sync over SASL_SSL", isr_full);
    for n in &nodes {
        let log = n.log_tail(400);
        assert!(log.contains("replica fetcher connected") && log.contains("listener=INTERNAL"), "{log}");
    }

    // The controller listener (SASL_SSL) as another node would use it: the right login is
    // served, a wrong password and a plaintext peer are refused, and the quorum goes on.
    let voters = nodes[0].override_value("controller.quorum.voters").unwrap().to_string();
    let voter = voters.split(',').next().unwrap().split_once('@').unwrap().1.to_string();
    let ask = |password: &str| {
        let login = format!(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="{password}";"#
        );
        let keys: Vec<(String, String)> = [
            ("process.roles", "broker"),
            ("node.id", "7"),
            ("controller.quorum.voters", voters.as_str()),
            ("listeners", "PLAINTEXT://127.0.0.1:1"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL"),
            ("listener.name.controller.ssl.truststore.location", ca.as_str()),
            ("listener.name.controller.plain.sasl.jaas.config", login.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (config, _) = sluice::config::BrokerConfig::from_sources("", &keys).expect("config");
        let security = sluice::rpc::secure::Security::from_config(&config).expect("security");
        let peers = tempfile::tempdir().unwrap();
        let sender = sluice::rpc::client::Sender {
            cluster_id: cluster_id.clone(),
            node_id: 7,
            directory_id: uuid::Uuid::new_v4(),
            admission: std::sync::Arc::new(sluice::rpc::Admission::open(&cluster_id, peers.path()).unwrap()),
            security,
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut peer = sluice::rpc::client::Peer::new(1, voter.clone(), sender);
            peer.call(sluice::rpc::Request::FetchImage { have_index: u64::MAX - 1 }, Duration::from_secs(10)).await
        })
    };
    match ask("c-secret") {
        Ok(sluice::rpc::Response::Image { .. }) => {}
        other => panic!("the controller login was not served: {other:?}"),
    }
    let refused = ask("w-r0ng-pw").expect_err("a wrong password is refused");
    assert!(refused.to_string().contains("login refused"), "{refused}");
    // A peer that skips TLS gets no answer: its connection is closed.
    let mut raw = std::net::TcpStream::connect(&voter).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let frame = br#"{"cluster_id":"x","from":9,"directory_id":"00000000-0000-0000-0000-000000000000","body":{"FetchImage":{"have_index":0}}}"#;
    let _ = raw.write_all(&[&(frame.len() as u32).to_be_bytes()[..], frame].concat());
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut raw, &mut answer);
    assert!(!answer.windows(5).any(|w| w == b"Image"), "a plaintext peer was answered");
    wait_until(Duration::from_secs(10), "the login failure in a voter's log", || {
        nodes.iter().any(|n| n.log_tail(400).contains("controller login failed")).then_some(())
    });
    for n in &nodes {
        assert!(!n.log_tail(400).contains("w-r0ng-pw"), "a password reached the log");
    }
    sluicectl(&boot, &["topic", "create", "after-refusals", "--partitions", "1", "--replication-factor", "3"]);
}

/// The Java client (kafka-clients 4.4): SCRAM users and ACLs made with the Admin API, then
/// used over SASL_SSL (tests/clients/java, SecurityScenarios).
/// The same scenario passes against Apache Kafka 4.4: start it with
/// `KAFKA_REF_SASL_SSL_PORT=19094 KAFKA_REF_KEYSTORE=broker.pem scripts/kafka-reference.sh start`
/// and run this Java command line with `--bootstrap 127.0.0.1:19092 --secure-bootstrap
/// 127.0.0.1:19094 --ca ca.pem --broker kafka`.
#[test]
fn java_client_over_sasl_ssl() {
    use common::external::{java_client, run_bounded};
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let ca = write(dir.path(), "ca.pem", &pki.ca);
    let keystore = write(dir.path(), "broker.pem", &pki.keystore);
    let (plain, secure) = (free_port(), free_port());
    let overrides: Vec<(String, String)> = [
        ("listeners", format!("PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{secure}")),
        ("ssl.keystore.location", keystore),
        ("sasl.enabled.mechanisms", "SCRAM-SHA-512".to_string()),
        ("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer".to_string()),
        ("super.users", "User:ANONYMOUS".to_string()),
        ("group.initial.rebalance.delay.ms", "0".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut broker = Broker::unstarted(plain, &overrides, 1);
    broker.spawn();
    broker.wait_ready();
    let mut java = java_client("ClientTests", "512m");
    java.args([
        "--bootstrap",
        &broker.bootstrap(),
        "--secure-bootstrap",
        &format!("127.0.0.1:{secure}"),
        "--ca",
        &ca,
        "--broker",
        "sluice",
        "--scenarios",
        "security_scram_acls",
    ]);
    let out = run_bounded(java, std::time::Duration::from_secs(150));
    println!("---- stdout ----\n{}\n---- stderr ----\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("PASS security_scram_acls"), "the Java scenario failed (see above)");
    // kafka-python as the user the Java program made, over SASL_SSL with SCRAM-SHA-512: it
    // sees the topic it was granted and only that.
    let script = r#"
import sys
from kafka import KafkaConsumer
c = KafkaConsumer(bootstrap_servers=sys.argv[1], security_protocol="SASL_SSL", ssl_cafile=sys.argv[2],
                  sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="jane", sasl_plain_password="jane-secret")
print(sorted(t for t in c.topics() if not t.startswith("__")))
c.close()
"#;
    let seen = python(script, &[&format!("127.0.0.1:{secure}"), &ca]);
    assert!(seen.trim().starts_with("['secure-") && !seen.contains("other-"), "kafka-python as jane sees: {seen}");
}

const MATRIX: &str = r#"
import sys, time
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTopicPartition
ssl, sasl_plaintext, sasl_ssl, ca, topic = sys.argv[1:6]
combos = [("SSL", ssl, None, None, None)]
for proto, addr in (("SASL_PLAINTEXT", sasl_plaintext), ("SASL_SSL", sasl_ssl)):
    combos.append((proto, addr, "PLAIN", "carol", "carol-plain"))
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        combos.append((proto, addr, mech, "dave", "dave-secret"))
for proto, addr, mech, user, password in combos:
    name = proto + ("/" + mech if mech else "")
    # confluent-kafka: one record with acks=all, read back at its offset.
    conf = {"bootstrap.servers": addr, "security.protocol": proto}
    if proto.endswith("SSL"):
        conf["ssl.ca.location"] = ca
    if mech:
        conf.update({"sasl.mechanism": mech, "sasl.username": user, "sasl.password": password})
    value = ("confluent-kafka " + name).encode()
    done = []
    p = Producer(dict(conf, acks="all"))
    p.produce(topic, value=value, partition=0, on_delivery=lambda e, m: done.append((e, m.offset())))
    p.flush(30)
    assert done and done[0][0] is None, (name, done)
    c = Consumer(dict(conf, **{"group.id": "matrix", "enable.auto.commit": False}))
    c.assign([TopicPartition(topic, 0, done[0][1])])
    got, t0 = None, time.time()
    while got is None and time.time() - t0 < 30:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got = m.value()
    c.close()
    assert got == value, (name, got)
    # kafka-python, the same.
    kconf = {"bootstrap_servers": addr, "security_protocol": proto}
    if proto.endswith("SSL"):
        kconf["ssl_cafile"] = ca
    if mech:
        kconf.update(sasl_mechanism=mech, sasl_plain_username=user, sasl_plain_password=password)
    value = ("kafka-python " + name).encode()
    kp = KafkaProducer(acks="all", **kconf)
    offset = kp.send(topic, value, partition=0).get(timeout=30).offset
    kp.close()
    kc = KafkaConsumer(enable_auto_commit=False, **kconf)
    tp = KTopicPartition(topic, 0)
    kc.assign([tp])
    kc.seek(tp, offset)
    got, t0 = None, time.time()
    while got is None and time.time() - t0 < 30:
        for records in kc.poll(timeout_ms=500).values():
            got = next((r.value for r in records if r.offset == offset), got)
    kc.close()
    assert got == value, (name, got)
    print("PASS", name, flush=True)
"#;

/// Every client family over each security protocol and SASL mechanism, against one broker
/// with an SSL, a SASL_PLAINTEXT and a SASL_SSL listener: confluent-kafka, kafka-python
/// and the Java client each produce a record and read it back over SSL, and over both SASL
/// listeners with PLAIN (a user of the listeners' JAAS config), SCRAM-SHA-256 and
/// SCRAM-SHA-512 (a user made with AlterUserScramCredentials).
#[test]
fn every_client_over_each_protocol_and_mechanism() {
    use common::external::{java_client, run_bounded};
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let ca = write(dir.path(), "ca.pem", &pki.ca);
    let keystore = write(dir.path(), "broker.pem", &pki.keystore);
    let (plain, ssl, sasl_plaintext, sasl_ssl) = (free_port(), free_port(), free_port(), free_port());
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_carol="carol-plain";"#;
    let overrides: Vec<(String, String)> = [
        (
            "listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl},SASL_PLAINTEXT://127.0.0.1:{sasl_plaintext},\
                 SASL_SSL://127.0.0.1:{sasl_ssl}"
            ),
        ),
        ("ssl.keystore.location", keystore),
        ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512".to_string()),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", jaas.to_string()),
        ("listener.name.sasl_ssl.plain.sasl.jaas.config", jaas.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut broker = Broker::unstarted(plain, &overrides, 1);
    broker.spawn();
    broker.wait_ready();
    create_topic(&broker.bootstrap(), "matrix", 1);
    // dave's SCRAM credentials, both mechanisms, made over the PLAINTEXT listener.
    let none = write(dir.path(), "plaintext.properties", "security.protocol=PLAINTEXT\n");
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let (ok, out) = sluicectl_as(
            &broker.bootstrap(),
            &none,
            &["user", "scram", "set", "--user", "dave", "--mechanism", mechanism, "--password", "dave-secret"],
        );
        assert!(ok, "user scram set {mechanism}:\n{out}");
    }
    let addr = |port: u16| format!("127.0.0.1:{port}");
    let (ssl, sasl_plaintext, sasl_ssl) = (addr(ssl), addr(sasl_plaintext), addr(sasl_ssl));
    let passes = |out: &str| out.lines().filter(|l| l.starts_with("PASS ")).count();
    let out = python(MATRIX, &[&ssl, &sasl_plaintext, &sasl_ssl, &ca, "matrix"]);
    assert_eq!(passes(&out), 7, "confluent-kafka and kafka-python:\n{out}");

    let mut java = java_client("SecurityMatrix", "256m");
    java.args([&ssl, &sasl_plaintext, &sasl_ssl, &ca, "matrix"]);
    let out = run_bounded(java, std::time::Duration::from_secs(150));
    assert_eq!(passes(&out.stdout), 7, "the Java client:\n{}\n{}", out.stdout, out.stderr);
}
