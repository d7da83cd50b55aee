"""Cross-client compatibility tests for the Sluice broker.

Each module run starts its own broker from ``$SLUICE_BIN`` on a free loopback
port with a fresh data directory, then drives it with three independent
client stacks:

* kafka-python (pure Python protocol implementation),
* confluent-kafka (librdkafka, bundled in the wheel),
* kcat (Debian's librdkafka-based CLI).

Most consumers do not use consumer groups: they either have no group
(kafka-python ``group_id=None``) or never subscribe/commit (confluent-kafka
with ``enable.auto.commit=False`` and explicit ``assign``).  The
``*_group_*`` tests subscribe with a group and commit, and check that a later
member of the same group resumes after the committed offsets.

Run with ``SLUICE_BIN=target/debug/sluice python3 -m pytest -q tests/clients``
(``cargo test --test python_clients`` does exactly that).  Dependencies:
``bash scripts/install-test-deps.sh``.
"""

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict

import pytest

# Every test is bounded by this many seconds (SIGALRM, see `_per_test_timeout`).
TEST_TIMEOUT_S = int(os.environ.get("SLUICE_CLIENT_TEST_TIMEOUT", "60"))
# How long the broker gets to accept its first TCP connection.
BROKER_START_TIMEOUT_S = 30
# How long the broker gets to exit after SIGTERM before it is SIGKILLed.
BROKER_STOP_TIMEOUT_S = 20
# Upper bound for any single client operation / wait loop inside a test.
OP_TIMEOUT_S = 20

LOG_TAIL_LINES = 60

# kafka-python 3.0 loads its protocol schemas through deprecated importlib.resources calls.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:.*is deprecated\. Use files\(\) instead:DeprecationWarning"
)


# --------------------------------------------------------------------------
# Broker fixture
# --------------------------------------------------------------------------


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """preexec_fn: have the kernel SIGKILL the broker if pytest itself dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


class Broker:
    def __init__(self, binary, port, data_dir, log_path):
        self.binary = binary
        self.port = port
        self.host = "127.0.0.1"
        self.bootstrap = "%s:%d" % (self.host, port)
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self._log_file = None

    def start(self):
        cmd = [
            self.binary,
            "serve",
            "--override",
            "listeners=PLAINTEXT://%s" % self.bootstrap,
            "--override",
            "log.dirs=%s" % self.data_dir,
            # Kafka's default is 3000 ms; these tests want their groups formed at once.
            "--override",
            "group.initial.rebalance.delay.ms=0",
            "--cores",
            "2",
        ]
        self._log_file = open(self.log_path, "wb")
        self._log_file.write(("$ %s\n" % " ".join(cmd)).encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(
            cmd,
            env=dict(os.environ, NO_COLOR="1"),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + BROKER_START_TIMEOUT_S
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(
                    "broker exited with code %s before accepting connections\n%s"
                    % (rc, self.log_tail())
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    "broker did not accept TCP connections on %s within %d s\n%s"
                    % (self.bootstrap, BROKER_START_TIMEOUT_S, self.log_tail())
                )
            time.sleep(0.1)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, wait up to BROKER_STOP_TIMEOUT_S, then SIGKILL.

        Returns a description of how the broker ended (None if it exited 0
        on SIGTERM in time)."""
        problem = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    rc = self.proc.wait(timeout=BROKER_STOP_TIMEOUT_S)
                    if rc != 0:
                        problem = "broker exited with code %s after SIGTERM" % rc
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
                    problem = "broker ignored SIGTERM for %d s and was SIGKILLed" % (
                        BROKER_STOP_TIMEOUT_S
                    )
            else:
                problem = "broker had already exited with code %s" % self.proc.returncode
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return problem

    def log_tail(self, n=LOG_TAIL_LINES):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError as e:
            return "(no broker log: %s)" % e
        return "---- last %d lines of the broker log ----\n%s\n---- end of broker log ----" % (
            min(n, len(lines)),
            "\n".join(lines[-n:]),
        )


@pytest.fixture(scope="module")
def broker(request):
    binary = os.environ.get("SLUICE_BIN")
    if not binary:
        pytest.fail(
            "SLUICE_BIN is not set: point it at the broker binary "
            "(e.g. SLUICE_BIN=target/debug/sluice), or run `cargo test --test python_clients`"
        )
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail("SLUICE_BIN=%r is not an executable file" % binary)

    tmp = tempfile.mkdtemp(prefix="sluice-clients-")
    data_dir = os.path.join(tmp, "data")
    os.makedirs(data_dir)
    b = Broker(os.path.abspath(binary), _free_port(), data_dir, os.path.join(tmp, "broker.log"))
    failed_before = request.session.testsfailed
    try:
        b.start()
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(str(e), pytrace=False)

    yield b

    problem = b.stop()
    failed = request.session.testsfailed > failed_before
    if failed or problem:
        # Keep the log around and show it outside pytest's output capture.
        kept = os.path.join(tempfile.gettempdir(), "sluice-clients-broker-%d.log" % b.port)
        try:
            shutil.copyfile(b.log_path, kept)
        except OSError:
            kept = None
        msg = "\n[sluice broker on %s] %s; log kept at %s\n%s\n" % (
            b.bootstrap,
            problem or "tests failed",
            kept,
            b.log_tail(),
        )
        capman = request.config.pluginmanager.getplugin("capturemanager")
        if capman is not None:
            with capman.global_and_fixture_disabled():
                print(msg)
        else:
            print(msg)
    shutil.rmtree(tmp, ignore_errors=True)
    if problem:
        pytest.fail("broker shutdown: %s" % problem, pytrace=False)


class _TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _per_test_timeout(request):
    """Bound every test by TEST_TIMEOUT_S via SIGALRM (tests run in the main thread)."""

    def on_alarm(signum, frame):
        raise _TestTimeout("test exceeded %d s" % TEST_TIMEOUT_S)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(autouse=True)
def _broker_still_alive(request):
    yield
    if "broker" in request.fixturenames:
        b = request.getfixturevalue("broker")
        if not b.alive():
            pytest.fail(
                "broker process died during %s (exit code %s)\n%s"
                % (request.node.name, b.proc.returncode, b.log_tail()),
                pytrace=False,
            )


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def unique_topic(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def wait_until(pred, timeout_s=OP_TIMEOUT_S, interval_s=0.2, what="condition"):
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %s s waiting for %s" % (timeout_s, what))
        time.sleep(interval_s)


def make_messages(n, prefix):
    """Keyed messages with several headers (incl. a repeated header key and an empty value)."""
    msgs = []
    for i in range(n):
        key = ("%s-key-%d" % (prefix, i % 7)).encode()  # keys repeat: same key => same partition
        value = ("%s-value-%d-" % (prefix, i)).encode() + bytes(range(256)) * (i % 3)
        headers = [
            ("idx", str(i).encode()),
            ("origin", prefix.encode()),
            ("dup", b"first"),
            ("dup", b"second"),
            ("empty", b""),
        ]
        msgs.append((key, value, headers))
    return msgs


def kp_admin(broker):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=broker.bootstrap,
        client_id="sluice-kp-admin",
        request_timeout_ms=OP_TIMEOUT_S * 1000,
    )


def kp_create_topic(broker, topic, partitions):
    admin = kp_admin(broker)
    try:
        admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}})
        admin.wait_for_topics([topic], timeout_ms=OP_TIMEOUT_S * 1000)
    finally:
        admin.close()


def kp_producer(broker, **extra):
    """KafkaProducer with acks=all.

    kafka-python >= 3.0 enables idempotence by default (KIP-679), which needs
    InitProducerId.  The round-trip tests opt out explicitly so they exercise
    Produce/Fetch on their own; `test_kafka_python_default_producer_idempotent`
    covers the default configuration."""
    from kafka import KafkaProducer

    cfg = dict(
        bootstrap_servers=broker.bootstrap,
        client_id="sluice-kp-producer",
        acks="all",
        enable_idempotence=False,
        request_timeout_ms=OP_TIMEOUT_S * 1000,
        max_block_ms=OP_TIMEOUT_S * 1000,
    )
    cfg.update(extra)
    return KafkaProducer(**cfg)


def kp_consumer(broker, **extra):
    from kafka import KafkaConsumer

    cfg = dict(
        bootstrap_servers=broker.bootstrap,
        client_id="sluice-kp-consumer",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=OP_TIMEOUT_S * 1000 + 5000,
        fetch_max_wait_ms=200,
    )
    cfg.update(extra)
    return KafkaConsumer(**cfg)


def kp_read_all(consumer, expected_count, timeout_s=OP_TIMEOUT_S):
    records = []
    deadline = time.monotonic() + timeout_s
    while len(records) < expected_count and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500)
        for recs in batch.values():
            records.extend(recs)
    return records


def ck_create_topic(broker, topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=OP_TIMEOUT_S,
        request_timeout=OP_TIMEOUT_S,
    )
    fs[topic].result(timeout=OP_TIMEOUT_S + 5)
    wait_until(
        lambda: _ck_topic_ready(admin, topic, partitions),
        what="topic %s with %d partitions with leaders in metadata" % (topic, partitions),
    )


def _ck_topic_ready(admin, topic, partitions):
    md = admin.list_topics(timeout=OP_TIMEOUT_S)
    t = md.topics.get(topic)
    return (
        t is not None
        and t.error is None
        and len(t.partitions) == partitions
        and all(p.leader >= 0 and p.error is None for p in t.partitions.values())
    )


def run_cmd(args, input_bytes=None, timeout_s=OP_TIMEOUT_S):
    try:
        p = subprocess.run(
            args,
            input=input_bytes,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            "%r timed out after %s s\nstdout: %r\nstderr: %s"
            % (args, timeout_s, e.stdout, (e.stderr or b"").decode("utf-8", "replace"))
        )
    return p


# --------------------------------------------------------------------------
# kafka-python
# --------------------------------------------------------------------------


def test_kafka_python_admin_create_list_delete(broker):
    from kafka.errors import TopicAlreadyExistsError

    topic = unique_topic("kp-admin")
    admin = kp_admin(broker)
    try:
        result = admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}})
        errors = [(t.get("name"), t.get("error_code")) for t in result.get("topics", [])]
        assert errors == [(topic, 0)], result

        wait_until(lambda: topic in admin.list_topics(), what="%s in list_topics()" % topic)

        desc = admin.describe_topics([topic])
        assert len(desc) == 1 and desc[0]["name"] == topic, desc
        assert desc[0]["error_code"] == 0, desc
        parts = sorted(desc[0]["partitions"], key=lambda p: p["partition_index"])
        assert [p["partition_index"] for p in parts] == [0, 1, 2], desc
        for p in parts:
            assert p["error_code"] == 0, p
            assert p["leader_id"] >= 0, p

        # Creating it again must be rejected with TOPIC_ALREADY_EXISTS (36).
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}})

        result = admin.delete_topics([topic])
        assert [(t.get("name"), t.get("error_code")) for t in result["topics"]] == [(topic, 0)], result
        wait_until(
            lambda: topic not in admin.list_topics(),
            what="%s to disappear from list_topics()" % topic,
        )
    finally:
        admin.close()


def test_kafka_python_produce_consume_keys_headers(broker):
    from kafka import TopicPartition

    topic = unique_topic("kp-rt")
    kp_create_topic(broker, topic, 3)

    msgs = make_messages(60, "kp")
    base_ts = int(time.time() * 1000) - 60_000
    producer = kp_producer(broker, linger_ms=5)
    produced = {}  # (partition, offset) -> (key, value, headers, ts)
    try:
        futures = []
        for i, (k, v, h) in enumerate(msgs):
            ts = base_ts + i
            futures.append((producer.send(topic, key=k, value=v, headers=h, timestamp_ms=ts), (k, v, h, ts)))
        producer.flush(timeout=OP_TIMEOUT_S)
        for fut, m in futures:
            md = fut.get(timeout=OP_TIMEOUT_S)
            assert md.topic == topic
            assert (md.partition, md.offset) not in produced, "duplicate offset %r" % (md,)
            produced[(md.partition, md.offset)] = m
    finally:
        producer.close(timeout=10)

    # Offsets per partition are dense and start at 0 on a fresh topic.
    by_part = defaultdict(list)
    for (p, o) in produced:
        by_part[p].append(o)
    for p, offs in by_part.items():
        assert sorted(offs) == list(range(len(offs))), (p, sorted(offs))
    # Same key => same partition (murmur2 default partitioner).
    key_parts = defaultdict(set)
    for (p, _), (k, _, _, _) in produced.items():
        key_parts[k].add(p)
    assert all(len(ps) == 1 for ps in key_parts.values()), key_parts

    consumer = kp_consumer(broker)
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        records = kp_read_all(consumer, len(msgs))
    finally:
        consumer.close()

    assert len(records) == len(msgs), "consumed %d of %d records" % (len(records), len(msgs))
    consumed = {}
    last_offset = {}
    for r in records:
        assert r.topic == topic
        # Per-partition delivery order is offset order.
        assert r.offset > last_offset.get(r.partition, -1), r
        last_offset[r.partition] = r.offset
        consumed[(r.partition, r.offset)] = (r.key, r.value, list(r.headers), r.timestamp)
        assert r.timestamp_type == 0, "expected CreateTime timestamps, got %r" % (r,)
    assert set(consumed) == set(produced)
    for po, (k, v, h, ts) in produced.items():
        ck, cv, ch, cts = consumed[po]
        assert ck == k, po
        assert cv == v, po
        assert ch == h, (po, ch, h)
        assert cts == ts, (po, cts, ts)


def test_kafka_python_default_producer_idempotent(broker):
    """A KafkaProducer with default settings (idempotent since kafka-python 3.0)."""
    from kafka import KafkaProducer, TopicPartition

    topic = unique_topic("kp-idem")
    kp_create_topic(broker, topic, 1)
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        acks="all",
        request_timeout_ms=OP_TIMEOUT_S * 1000,
        max_block_ms=OP_TIMEOUT_S * 1000,
    )
    try:
        futs = [producer.send(topic, key=b"k%d" % i, value=b"v%d" % i) for i in range(20)]
        producer.flush(timeout=OP_TIMEOUT_S)
        offsets = [f.get(timeout=OP_TIMEOUT_S).offset for f in futs]
    finally:
        producer.close(timeout=10)
    assert offsets == list(range(20)), offsets

    consumer = kp_consumer(broker)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        records = kp_read_all(consumer, 20)
    finally:
        consumer.close()
    assert [(r.offset, r.key, r.value) for r in records] == [
        (i, b"k%d" % i, b"v%d" % i) for i in range(20)
    ]


def test_kafka_python_gzip_roundtrip(broker):
    from kafka import TopicPartition

    topic = unique_topic("kp-gzip")
    kp_create_topic(broker, topic, 1)

    msgs = [
        (b"gz-%d" % i, (b"compressible payload %d " % i) * 200, [("codec", b"gzip")])
        for i in range(100)
    ]
    producer = kp_producer(broker, compression_type="gzip", linger_ms=50, batch_size=1 << 20)
    try:
        futs = [producer.send(topic, key=k, value=v, headers=h) for k, v, h in msgs]
        producer.flush(timeout=OP_TIMEOUT_S)
        offsets = [f.get(timeout=OP_TIMEOUT_S).offset for f in futs]
    finally:
        producer.close(timeout=10)
    assert offsets == list(range(len(msgs))), offsets

    consumer = kp_consumer(broker)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        records = kp_read_all(consumer, len(msgs))
    finally:
        consumer.close()
    got = [(r.key, r.value, list(r.headers)) for r in records]
    assert len(got) == len(msgs), "consumed %d of %d records" % (len(got), len(msgs))
    assert [r.offset for r in records] == list(range(len(msgs)))
    assert got == msgs


def test_kafka_python_offsets(broker):
    from kafka import TopicPartition

    topic = unique_topic("kp-offsets")
    kp_create_topic(broker, topic, 3)
    counts = {0: 5, 1: 3, 2: 0}  # partition 2 stays empty
    base_ts = int(time.time() * 1000) - 600_000

    producer = kp_producer(broker)
    try:
        for p, n in counts.items():
            for i in range(n):
                md = producer.send(
                    topic,
                    key=b"k%d" % i,
                    value=b"p%d-m%d" % (p, i),
                    partition=p,
                    timestamp_ms=base_ts + i * 1000,
                ).get(timeout=OP_TIMEOUT_S)
                assert (md.partition, md.offset) == (p, i)
        producer.flush(timeout=OP_TIMEOUT_S)
    finally:
        producer.close(timeout=10)

    tps = {p: TopicPartition(topic, p) for p in counts}
    consumer = kp_consumer(broker)
    try:
        assert consumer.partitions_for_topic(topic) == {0, 1, 2}
        begin = consumer.beginning_offsets(list(tps.values()), timeout_ms=OP_TIMEOUT_S * 1000)
        end = consumer.end_offsets(list(tps.values()), timeout_ms=OP_TIMEOUT_S * 1000)
        assert begin == {tps[p]: 0 for p in counts}, begin
        assert end == {tps[p]: n for p, n in counts.items()}, end

        # Earliest offset whose timestamp >= the query.
        q = {
            tps[0]: base_ts + 2500,  # -> offset 3 (ts base+3000)
            tps[1]: base_ts - 1_000_000,  # before everything -> offset 0
            tps[2]: base_ts,  # empty partition -> None
        }
        res = consumer.offsets_for_times(q, timeout_ms=OP_TIMEOUT_S * 1000)
        assert res[tps[0]] is not None and res[tps[0]].offset == 3, res
        assert res[tps[0]].timestamp == base_ts + 3000, res
        assert res[tps[1]] is not None and res[tps[1]].offset == 0, res
        assert res[tps[1]].timestamp == base_ts, res
        assert res[tps[2]] is None, res

        # Exact match on a timestamp, and a timestamp after the last record.
        res = consumer.offsets_for_times(
            {tps[0]: base_ts + 4000, tps[1]: base_ts + 2001}, timeout_ms=OP_TIMEOUT_S * 1000
        )
        assert res[tps[0]] is not None and res[tps[0]].offset == 4, res
        assert res[tps[1]] is None, res
    finally:
        consumer.close()


# --------------------------------------------------------------------------
# confluent-kafka (librdkafka)
# --------------------------------------------------------------------------


def test_confluent_admin_create_list_delete(broker):
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = unique_topic("ck-admin")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = admin.create_topics(
        [NewTopic(topic, num_partitions=3, replication_factor=1)],
        operation_timeout=OP_TIMEOUT_S,
        request_timeout=OP_TIMEOUT_S,
    )
    assert fs[topic].result(timeout=OP_TIMEOUT_S + 5) is None

    wait_until(lambda: _ck_topic_ready(admin, topic, 3), what="%s in metadata" % topic)
    md = admin.list_topics(timeout=OP_TIMEOUT_S)
    assert len(md.brokers) == 1, md.brokers
    (b,) = md.brokers.values()
    assert (b.host, b.port) == (broker.host, broker.port), b
    t = md.topics[topic]
    assert sorted(t.partitions) == [0, 1, 2]
    for p in t.partitions.values():
        assert p.leader == b.id, p
        assert list(p.replicas) == [b.id], p
        assert list(p.isrs) == [b.id], p

    # Topic-scoped metadata request.
    md1 = admin.list_topics(topic=topic, timeout=OP_TIMEOUT_S)
    assert md1.topics[topic].error is None
    assert len(md1.topics[topic].partitions) == 3

    fs = admin.delete_topics([topic], operation_timeout=OP_TIMEOUT_S, request_timeout=OP_TIMEOUT_S)
    assert fs[topic].result(timeout=OP_TIMEOUT_S + 5) is None
    wait_until(
        lambda: topic not in admin.list_topics(timeout=OP_TIMEOUT_S).topics,
        what="%s to disappear from metadata" % topic,
    )


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_confluent_produce_consume(broker, codec):
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

    topic = unique_topic("ck-%s" % codec)
    ck_create_topic(broker, topic, 3)

    msgs = make_messages(80, "ck-" + codec)
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "acks": "all",
            "compression.type": codec,
            "linger.ms": 20,
            "message.timeout.ms": OP_TIMEOUT_S * 1000,
        }
    )
    produced = {}
    errors = []

    def on_delivery_for(original):
        # Delivery reports do not carry headers back, so remember what was sent.
        def on_delivery(err, msg):
            if err is not None:
                errors.append((err, msg.key()))
            else:
                assert (msg.key(), msg.value()) == original[:2]
                produced[(msg.partition(), msg.offset())] = original

        return on_delivery

    for k, v, h in msgs:
        producer.produce(topic, key=k, value=v, headers=h, on_delivery=on_delivery_for((k, v, h)))
        producer.poll(0)
    remaining = producer.flush(OP_TIMEOUT_S)
    assert remaining == 0, "%d messages not delivered" % remaining
    assert not errors, errors[:5]
    assert len(produced) == len(msgs)
    counts = defaultdict(int)
    for p, _ in produced:
        counts[p] += 1
    for p, n in counts.items():
        assert sorted(o for (pp, o) in produced if pp == p) == list(range(n)), p

    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "sluice-ck-unused-group",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 200,
        }
    )
    consumed = {}
    eof = set()
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        deadline = time.monotonic() + OP_TIMEOUT_S
        while time.monotonic() < deadline and (len(consumed) < len(msgs) or len(eof) < 3):
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                pytest.fail("consumer error: %s" % m.error())
            eof.discard(m.partition())
            assert m.topic() == topic
            assert (m.partition(), m.offset()) not in consumed, "duplicate %r" % ((m.partition(), m.offset()),)
            consumed[(m.partition(), m.offset())] = (m.key(), m.value(), m.headers())
    finally:
        consumer.close()

    assert len(consumed) == len(msgs), "consumed %d of %d" % (len(consumed), len(msgs))
    assert eof == {0, 1, 2}, "no EOF for partitions %s" % ({0, 1, 2} - eof)
    assert consumed == produced
    # What the producer was given, as a multiset, is what came back.
    assert sorted((k, v, tuple(h)) for k, v, h in consumed.values()) == sorted(
        (k, v, tuple(h)) for k, v, h in msgs
    )


def test_confluent_watermark_offsets(broker):
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = unique_topic("ck-wm")
    ck_create_topic(broker, topic, 3)
    counts = {0: 4, 1: 0, 2: 7}
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    errors = []
    for p, n in counts.items():
        for i in range(n):
            producer.produce(
                topic,
                key=b"k%d" % i,
                value=b"v%d" % i,
                partition=p,
                on_delivery=lambda err, msg: err and errors.append(err),
            )
    assert producer.flush(OP_TIMEOUT_S) == 0
    assert not errors, errors

    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "sluice-ck-unused-group",
            "enable.auto.commit": False,
        }
    )
    try:
        for p, n in counts.items():
            lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=OP_TIMEOUT_S)
            assert (lo, hi) == (0, n), (p, lo, hi)
        # The cached variant is filled in by fetch responses once assigned.
        consumer.assign([TopicPartition(topic, 2, 0)])
        got = 0
        deadline = time.monotonic() + OP_TIMEOUT_S
        while got < counts[2] and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                got += 1
        assert got == counts[2]
        lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, 2), cached=True)
        assert hi == counts[2], (lo, hi)
    finally:
        consumer.close()


def test_confluent_sees_leader_epochs(broker):
    """librdkafka sees leader epochs (KIP-320): each message carries the epoch it was
    written under, a restart bumps it, and OffsetForLeaderEpoch's answer lets the client
    tell a valid position from one past the end of its epoch (log truncation)."""
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

    topic = unique_topic("ck-epoch")
    ck_create_topic(broker, topic, 1)

    def produce(tag, n):
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
        errors = []
        for i in range(n):
            producer.produce(topic, value=b"%s%d" % (tag, i), partition=0,
                             on_delivery=lambda err, msg: err and errors.append(err))
            assert producer.flush(OP_TIMEOUT_S) == 0
        assert not errors, errors

    produce(b"a", 5)
    problem = broker.stop()
    assert not problem, problem
    broker.start()
    produce(b"b", 3)

    def consumer(**extra):
        conf = {"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("ck-epoch-g"),
                "enable.auto.commit": False, "auto.offset.reset": "earliest"}
        conf.update(extra)
        return Consumer(conf)

    c = consumer()
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + OP_TIMEOUT_S
        while len(got) < 8 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append((m.offset(), m.leader_epoch(), m.value()))
        # A restart fences and re-elects the broker: epoch 0 -> 2, as in Kafka.
        assert [e for _, e, _ in got] == [0] * 5 + [2] * 3, got
    finally:
        c.close()

    # A position in epoch 2 at offset 6 is valid: reading resumes there.
    c = consumer()
    try:
        c.assign([TopicPartition(topic, 0, 6, leader_epoch=2)])
        first = None
        deadline = time.monotonic() + OP_TIMEOUT_S
        while first is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                first = (m.offset(), m.value())
        assert first == (6, b"b1"), first
    finally:
        c.close()

    # Offset 7 "in epoch 0" is past where epoch 0 ended (5): librdkafka asks
    # OffsetForLeaderEpoch, learns that, and reports the log as truncated.
    c = consumer(**{"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, 7, leader_epoch=0)])
        seen = []
        deadline = time.monotonic() + OP_TIMEOUT_S
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error():
                seen.append(m.error())
                if any("truncat" in e.str().lower() for e in seen):
                    break
        assert any("truncat" in e.str().lower() for e in seen), [e.str() for e in seen]
    finally:
        c.close()


# --------------------------------------------------------------------------
# kcat
# --------------------------------------------------------------------------


def test_kcat_metadata(broker):
    topic = unique_topic("kcat-md")
    ck_create_topic(broker, topic, 3)

    p = run_cmd(["kcat", "-b", broker.bootstrap, "-L"])
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, (p.returncode, out, p.stderr)
    assert "1 brokers:" in out, out
    assert "at %s" % broker.bootstrap in out, out
    assert 'topic "%s" with 3 partitions:' % topic in out, out

    p = run_cmd(["kcat", "-b", broker.bootstrap, "-L", "-J", "-t", topic])
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    md = json.loads(p.stdout)
    brokers = md["brokers"]
    assert [b["name"] for b in brokers] == [broker.bootstrap], brokers
    (t,) = [t for t in md["topics"] if t["topic"] == topic]
    assert "error" not in t, t
    parts = sorted(t["partitions"], key=lambda x: x["partition"])
    assert [x["partition"] for x in parts] == [0, 1, 2], t
    for x in parts:
        assert x["leader"] == brokers[0]["id"], x
        assert "error" not in x, x


def test_kcat_produce_consume(broker):
    topic = unique_topic("kcat-rt")
    ck_create_topic(broker, topic, 3)

    lines = ["key%d:value %d" % (i, i) for i in range(50)]
    # The same key lands on one partition, so these must come back in this order.
    ordered = ["samekey:step %d" % i for i in range(10)]
    all_lines = lines[:25] + ordered + lines[25:]
    p = run_cmd(
        ["kcat", "-b", broker.bootstrap, "-P", "-t", topic, "-K:", "-X", "acks=all"],
        input_bytes=("\n".join(all_lines) + "\n").encode(),
    )
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)

    p = run_cmd(
        ["kcat", "-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%k:%s\n"]
    )
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    got = p.stdout.decode().splitlines()
    assert sorted(got) == sorted(all_lines), (got, p.stderr)
    assert [line for line in got if line.startswith("samekey:")] == ordered

    # Partition/offset view: offsets are dense per partition, starting at 0.
    p = run_cmd(
        ["kcat", "-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%p %o %k\n"]
    )
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    offs = defaultdict(list)
    for line in p.stdout.decode().splitlines():
        part, off, _ = line.split(" ", 2)
        offs[int(part)].append(int(off))
    assert sum(len(v) for v in offs.values()) == len(all_lines)
    for part, v in offs.items():
        assert v == list(range(len(v))), (part, v)


# --------------------------------------------------------------------------
# Consumer groups
# --------------------------------------------------------------------------


def test_kafka_python_group_commit_and_resume(broker):
    from kafka import TopicPartition

    topic = unique_topic("kp-group")
    group = "kp-group-" + uuid.uuid4().hex[:8]
    kp_create_topic(broker, topic, 2)
    producer = kp_producer(broker)
    produced = {}
    try:
        futs = [(producer.send(topic, key=b"k%d" % i, value=b"v%d" % i), i) for i in range(60)]
        producer.flush(timeout=OP_TIMEOUT_S)
        for f, i in futs:
            md = f.get(timeout=OP_TIMEOUT_S)
            produced[(md.partition, md.offset)] = (b"k%d" % i, b"v%d" % i)
    finally:
        producer.close(timeout=10)
    assert {p for p, _ in produced} == {0, 1}, produced

    # First member: read part of the topic (max_poll_records bounds what poll hands out,
    # and commit() commits exactly the positions of what it handed out), commit, leave.
    c1 = kp_consumer(broker, group_id=group, max_poll_records=5, session_timeout_ms=10000)
    first = {}
    try:
        c1.subscribe([topic])
        deadline = time.monotonic() + OP_TIMEOUT_S
        while len(first) < 25 and time.monotonic() < deadline:
            for recs in c1.poll(timeout_ms=500).values():
                for r in recs:
                    key = (r.partition, r.offset)
                    assert key not in first, "duplicate %r" % (key,)
                    first[key] = (r.key, r.value)
        assert 25 <= len(first) < len(produced), "first member read %d records" % len(first)
        c1.commit()
        positions = {}
        for p in (0, 1):
            offs = [o for (pp, o) in first if pp == p]
            positions[p] = max(offs) + 1 if offs else None
        for p, pos in positions.items():
            if pos is not None:
                assert c1.committed(TopicPartition(topic, p)) == pos, (p, pos)
    finally:
        c1.close()
    for (p, o), kv in first.items():
        assert produced[(p, o)] == kv

    # Second member of the same group resumes after the committed offsets: it reads exactly
    # the rest, nothing twice.
    rest = {k: v for k, v in produced.items() if k not in first}
    c2 = kp_consumer(broker, group_id=group, session_timeout_ms=10000)
    second = {}
    try:
        c2.subscribe([topic])
        for p, pos in positions.items():
            if pos is not None:
                assert c2.committed(TopicPartition(topic, p)) == pos, (p, pos)
        deadline = time.monotonic() + OP_TIMEOUT_S
        while len(second) < len(rest) and time.monotonic() < deadline:
            for recs in c2.poll(timeout_ms=500).values():
                for r in recs:
                    key = (r.partition, r.offset)
                    assert key not in second, "duplicate %r" % (key,)
                    second[key] = (r.key, r.value)
        # Anything more would be a re-delivery.
        for recs in c2.poll(timeout_ms=1000).values():
            for r in recs:
                second[(r.partition, r.offset)] = (r.key, r.value)
        assert c2.assignment() == {TopicPartition(topic, 0), TopicPartition(topic, 1)}, c2.assignment()
    finally:
        c2.close()
    assert set(second) == set(rest), (
        "second member read %d records, expected the %d after the commit; extra %r, missing %r"
        % (len(second), len(rest), sorted(set(second) - set(rest))[:10], sorted(set(rest) - set(second))[:10])
    )
    assert second == rest


def _kcat_group_consume(broker, group, topic):
    p = run_cmd(
        [
            "kcat", "-b", broker.bootstrap, "-G", group, "-e", "-q", "-f", "%p %o %k:%s\n",
            "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100",
            "-X", "auto.offset.reset=earliest", "-X", "broker.address.family=v4",
            topic,
        ],
        timeout_s=45,
    )
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p.stdout.decode().splitlines(), p.stderr.decode("utf-8", "replace")


def test_kcat_group_commit_and_resume(broker):
    topic = unique_topic("kcat-group")
    group = "kcat-group-" + uuid.uuid4().hex[:8]
    ck_create_topic(broker, topic, 3)

    def produce(lines):
        p = run_cmd(
            ["kcat", "-b", broker.bootstrap, "-P", "-t", topic, "-K:", "-X", "acks=all"],
            input_bytes=("\n".join(lines) + "\n").encode(),
        )
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)

    old = ["old%d:value %d" % (i, i) for i in range(30)]
    produce(old)
    got, err = _kcat_group_consume(broker, group, topic)
    assert sorted(line.split(" ", 2)[2] for line in got) == sorted(old), (got, err)

    # Same group again: the commits of the first run (auto-commit, and the final commit on
    # close) mean nothing old is printed.
    got, err = _kcat_group_consume(broker, group, topic)
    assert got == [], (got, err)

    # ... while new messages are (so the group does consume).
    new = ["new%d:value %d" % (i, i) for i in range(5)]
    produce(new)
    got, err = _kcat_group_consume(broker, group, topic)
    assert sorted(line.split(" ", 2)[2] for line in got) == sorted(new), (got, err)
