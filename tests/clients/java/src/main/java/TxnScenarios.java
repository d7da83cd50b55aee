import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;

/** Transactions (exactly-once): commit and abort per isolation level, consume-transform-produce, fencing. */
final class TxnScenarios {
    static void register(Map<String, ClientTests.Scenario> m) {
        m.put("txn_commit_abort", TxnScenarios::commitAbort);
        m.put("txn_consume_transform_produce", TxnScenarios::consumeTransformProduce);
        m.put("txn_fencing", TxnScenarios::fencing);
    }

    static KafkaProducer<String, String> txnProducer(Env env, String id) {
        var p = env.producer(Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id,
                ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "20000"));
        p.initTransactions();
        return p;
    }

    static List<String> readAll(Env env, String topic, int partitions, String isolation, int expect) {
        var props = env.consumerProps(null);
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        try (var c = new KafkaConsumer<String, String>(props)) {
            var tps = new ArrayList<TopicPartition>();
            for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(topic, p));
            c.assign(tps);
            c.seekToBeginning(tps);
            List<String> got = new ArrayList<>();
            for (var r : Env.pollN(c, expect, 20_000)) got.add(r.value());
            for (var r : Env.pollFor(c, 500)) got.add(r.value());
            return got;
        }
    }

    /** Commit 5, abort 3, commit 2: read_committed sees 7, read_uncommitted all 10. */
    static void commitAbort(Env env) throws Exception {
        String topic = Env.unique("java-txn");
        try (var admin = env.admin()) {
            env.createTopic(admin, topic, 2);
        }
        try (var p = txnProducer(env, Env.unique("java-txn-id"))) {
            int[][] plan = {{5, 1}, {3, 0}, {2, 1}};
            int n = 0;
            for (int[] step : plan) {
                p.beginTransaction();
                for (int i = 0; i < step[0]; i++, n++) {
                    p.send(new ProducerRecord<>(topic, n % 2, "k" + n, (step[1] == 1 ? "c-" : "a-") + n));
                }
                if (step[1] == 1) {
                    p.commitTransaction();
                } else {
                    p.flush();
                    p.abortTransaction();
                }
            }
        }
        var committed = readAll(env, topic, 2, "read_committed", 7);
        Env.checkEq(7, committed.size(), "records read_committed " + committed);
        Env.check(committed.stream().allMatch(v -> v.startsWith("c-")), "no aborted record read_committed: " + committed);
        var all = readAll(env, topic, 2, "read_uncommitted", 10);
        Env.checkEq(10, all.size(), "records read_uncommitted " + all);
    }

    /**
     * 20 input records; a transactional copier commits the first 10 with their offsets
     * (sendOffsetsToTransaction with the group's metadata) and aborts the next 10: the
     * group's committed offset is 10 and the output holds the first 10 only.
     */
    static void consumeTransformProduce(Env env) throws Exception {
        String in = Env.unique("java-ctp-in"), out = in + "-out", group = Env.unique("java-ctp");
        try (var admin = env.admin()) {
            env.createTopic(admin, in, 1);
            env.createTopic(admin, out, 1);
        }
        try (var p = env.producer()) {
            var rs = new ArrayList<ProducerRecord<String, String>>();
            for (int i = 0; i < 20; i++) rs.add(new ProducerRecord<>(in, "k" + i, "in-" + i));
            Env.sendAll(p, rs);
        }
        var props = env.consumerProps(group);
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "10");
        try (var c = new KafkaConsumer<String, String>(props); var p = txnProducer(env, Env.unique("java-ctp-id"))) {
            c.subscribe(List.of(in));
            for (boolean commit : new boolean[] {true, false}) {
                List<ConsumerRecord<String, String>> batch = new ArrayList<>();
                long deadline = System.currentTimeMillis() + 20_000;
                while (batch.size() < 10 && System.currentTimeMillis() < deadline) {
                    for (var r : c.poll(Duration.ofMillis(200))) batch.add(r);
                }
                Env.checkEq(10, batch.size(), "records polled for one transaction");
                p.beginTransaction();
                for (var r : batch) p.send(new ProducerRecord<>(out, r.key(), "out-" + r.value().substring(3)));
                var next = new OffsetAndMetadata(batch.get(batch.size() - 1).offset() + 1);
                p.sendOffsetsToTransaction(Map.of(new TopicPartition(in, 0), next), c.groupMetadata());
                if (commit) {
                    p.commitTransaction();
                } else {
                    p.flush();
                    p.abortTransaction();
                }
            }
            var committed = c.committed(java.util.Set.of(new TopicPartition(in, 0))).get(new TopicPartition(in, 0));
            Env.check(committed != null, "an offset was committed with the transaction");
            Env.checkEq(10L, committed.offset(), "the group's offset after commit then abort");
        }
        var output = readAll(env, out, 1, "read_committed", 10);
        Env.checkEq(10, output.size(), "output records read_committed " + output);
    }

    /** A second instance with the same transactional id fences the first. */
    static void fencing(Env env) throws Exception {
        String topic = Env.unique("java-fence"), id = Env.unique("java-fence-id");
        try (var admin = env.admin()) {
            env.createTopic(admin, topic, 1);
        }
        var old = txnProducer(env, id);
        try {
            old.beginTransaction();
            old.send(new ProducerRecord<>(topic, "k", "zombie")).get();
            try (var fresh = txnProducer(env, id)) {
                fresh.beginTransaction();
                fresh.send(new ProducerRecord<>(topic, "k", "fresh"));
                fresh.commitTransaction();
            }
            try {
                old.commitTransaction();
                throw new Env.Failure("the fenced instance committed");
            } catch (ProducerFencedException expected) {
                Env.log("txn_fencing: %s", expected);
            } catch (KafkaException e) {
                Env.check(e.getCause() instanceof ProducerFencedException || e instanceof ProducerFencedException,
                        "fenced, not " + e);
            }
        } finally {
            old.close(Duration.ofSeconds(5));
        }
        var seen = readAll(env, topic, 1, "read_committed", 1);
        Env.checkEq(List.of("fresh"), seen, "read_committed after fencing");
    }
}
