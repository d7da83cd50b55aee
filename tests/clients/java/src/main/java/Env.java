import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** What every scenario shares: the broker, client configs, bounded waits, assertions. */
final class Env {
    final String bootstrap;
    /** True against Apache Kafka (the reference), false against Sluice. */
    final boolean kafka;

    /** A SASL_SSL listener (PLAIN and SCRAM-SHA-512) and its CA's PEM file, for the security scenarios; else null. */
    String secureBootstrap;
    String caPath;

    Env(String bootstrap, boolean kafka) {
        this.bootstrap = bootstrap;
        this.kafka = kafka;
    }

    /** An assertion that failed: its message is the scenario's FAIL reason. */
    static final class Failure extends RuntimeException {
        Failure(String msg) {
            super(msg);
        }
    }

    static void check(boolean cond, String what) {
        if (!cond) throw new Failure(what);
    }

    static void checkEq(Object expected, Object actual, String what) {
        if (!Objects.equals(expected, actual)) throw new Failure(what + ": expected " + expected + ", got " + actual);
    }

    /** A topic or group name no other run uses (the reference broker is shared). */
    static String unique(String prefix) {
        return prefix + "-" + Long.toHexString(ThreadLocalRandom.current().nextLong() & 0xffffffffffL);
    }

    static void log(String fmt, Object... args) {
        System.err.println("  " + String.format(fmt, args));
    }

    Properties common() {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("request.timeout.ms", "15000");
        p.put("default.api.timeout.ms", "20000");
        return p;
    }

    Admin admin() {
        Properties p = common();
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, unique("java-admin"));
        return Admin.create(p);
    }

    /** The Java producer with its defaults (idempotent, acks=all) plus `extra`. */
    KafkaProducer<String, String> producer(Map<String, String> extra) {
        Properties p = common();
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    KafkaProducer<String, String> producer() {
        return producer(Map.of());
    }

    /**
     * A consumer; `group` null for none. Classic protocol, earliest reset, no auto commit,
     * short heartbeats (rebalances are noticed within half a second).
     */
    Properties consumerProps(String group) {
        Properties p = common();
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, unique("java-consumer"));
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "300");
            // Also the rebalance timeout: how long a rebalance waits for members to rejoin.
            p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "20000");
        }
        return p;
    }

    KafkaConsumer<String, String> consumer(String group) {
        return new KafkaConsumer<>(consumerProps(group));
    }

    void createTopic(Admin admin, String name, int partitions, Map<String, String> configs) throws Exception {
        admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1).configs(configs))).all().get();
        // Kafka answers CreateTopics once the controller committed it; wait until the
        // metadata shows every partition with a leader, so that the first produce or
        // assign does not race the creation.
        waitFor(15_000, "topic " + name + " with " + partitions + " led partitions in the metadata", () -> {
            try {
                var d = admin.describeTopics(List.of(name)).allTopicNames().get().get(name);
                return d.partitions().size() == partitions && d.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty());
            } catch (ExecutionException e) {
                return false;
            }
        });
    }

    void createTopic(Admin admin, String name, int partitions) throws Exception {
        createTopic(admin, name, partitions, Map.of());
    }

    /** Sends and waits for every acknowledgement; the metadata in send order. */
    static List<RecordMetadata> sendAll(KafkaProducer<String, String> p, List<ProducerRecord<String, String>> records) throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (var r : records) fs.add(p.send(r));
        p.flush();
        List<RecordMetadata> out = new ArrayList<>();
        for (var f : fs) out.add(f.get());
        return out;
    }

    /** `n` records `prefix-i` to each of the topic's `partitions`, keyed `k-i`. */
    void produce(String topic, int partitions, int n) throws Exception {
        try (var p = producer()) {
            List<ProducerRecord<String, String>> rs = new ArrayList<>();
            for (int part = 0; part < partitions; part++) {
                for (int i = 0; i < n; i++) rs.add(new ProducerRecord<>(topic, part, "k-" + i, "v-" + part + "-" + i));
            }
            sendAll(p, rs);
        }
    }

    /** Polls `c` until `want` records came back (or fails after `timeoutMs`). */
    static List<ConsumerRecord<String, String>> pollN(KafkaConsumer<String, String> c, int want, long timeoutMs) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (out.size() < want) {
            if (System.currentTimeMillis() > deadline) {
                throw new Failure("consumed " + out.size() + " of " + want + " records within " + timeoutMs + " ms (assignment " + c.assignment() + ")");
            }
            for (var r : c.poll(Duration.ofMillis(100))) out.add(r);
        }
        return out;
    }

    /** Polls `c` for `ms` and returns whatever came. */
    static List<ConsumerRecord<String, String>> pollFor(KafkaConsumer<String, String> c, long ms) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        long deadline = System.currentTimeMillis() + ms;
        while (System.currentTimeMillis() < deadline) {
            for (var r : c.poll(Duration.ofMillis(50))) out.add(r);
        }
        return out;
    }

    /** Waits (polling every 100 ms) until `cond`, or fails naming `what`. */
    static void waitFor(long timeoutMs, String what, CheckedBool cond) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!cond.get()) {
            if (System.currentTimeMillis() > deadline) throw new Failure("timed out after " + timeoutMs + " ms waiting for " + what);
            Thread.sleep(100);
        }
    }

    interface CheckedBool {
        boolean get() throws Exception;
    }

    /** The cause of the ExecutionException `f.get()` throws, or a failure if it succeeded. */
    static Throwable failureOf(org.apache.kafka.common.KafkaFuture<?> f, String what) throws InterruptedException {
        try {
            Object v = f.get();
            throw new Failure(what + ": expected an error, it succeeded (" + v + ")");
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }

    static <T extends Throwable> void expectError(org.apache.kafka.common.KafkaFuture<?> f, Class<T> cls, String what) throws InterruptedException {
        Throwable t = failureOf(f, what);
        if (!cls.isInstance(t)) throw new Failure(what + ": expected " + cls.getSimpleName() + ", got " + ClientTests.oneLine(t));
        log("%s: %s (as expected)", what, t.getClass().getSimpleName());
    }

    static Set<TopicPartition> tps(String topic, int... parts) {
        Set<TopicPartition> s = new java.util.TreeSet<>(java.util.Comparator.comparing(TopicPartition::toString));
        for (int p : parts) s.add(new TopicPartition(topic, p));
        return s;
    }

    /** Polls every consumer in turn (one thread drives them all) until `cond` holds. */
    static void pollAllUntil(Collection<? extends Member> ms, long timeoutMs, String what, BooleanSupplier cond) {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!cond.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                StringBuilder b = new StringBuilder();
                for (Member m : ms) b.append(' ').append(m.name).append('=').append(m.assignment());
                throw new Failure("timed out after " + timeoutMs + " ms waiting for " + what + ";" + b);
            }
            for (Member m : ms) m.poll(50);
        }
    }
}
