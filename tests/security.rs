//! Security on the wire (issue 21, in progress): SSL listeners with a throwaway CA made
//! here, used by confluent-kafka (librdkafka, with a client certificate) and kafka-python
//! (server authentication only), and refusals: a client certificate from another CA, and
//! no certificate where `ssl.client.auth=required`.
mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

struct Pki {
    ca: String,
    keystore: String,
    client_cert: String,
    client_key: String,
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
    let leaf = |names: Vec<String>, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        (p.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
    };
    let (broker_cert, broker_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()], "broker");
    let (client_cert, client_key) = leaf(vec![], "alice");
    Pki { ca: ca_pem, keystore: format!("{broker_key}{broker_cert}"), client_cert, client_key }
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
