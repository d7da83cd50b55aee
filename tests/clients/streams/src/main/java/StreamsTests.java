import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * Kafka Streams 4.4.0 against a Kafka-protocol broker (Sluice, or Apache Kafka as the
 * reference), driven by tests/kafka_streams.rs.
 *
 * <p>Usage: {@code StreamsTests <bootstrap> <kind> <work dir> <name prefix> <scenario>...}
 * where kind is "sluice" or "kafka" (the scenarios do not differ between the two), the
 * work dir holds the state dirs, and every topic and application id starts with the
 * prefix. Prints one {@code PASS <scenario>} or {@code FAIL <scenario>: why} line per
 * scenario on stdout, progress as {@code STEP} lines; logs (WARN) go to stderr.
 *
 * <p>Scenarios:
 * <ul>
 * <li>{@code wordcount-restart}: a word count over a 2-partition input (groupBy the word:
 *     a repartition topic; count: a state store with a compacted changelog) reaches the
 *     exact counts on its output topic; the internal topics exist with Streams' configs;
 *     the committed repartition records are purged (DeleteRecords). Then the app is closed
 *     and started again on the same state dir, and then on a fresh state dir (the store
 *     is restored from its changelog); after each start more input is counted on top of
 *     the earlier counts, never recounted.</li>
 * <li>{@code two-instances}: two instances of one application over a 4-partition input
 *     share the tasks (a rebalance with Streams' assignor); one leaves, the other takes
 *     over its tasks (restoring their stores from the changelog) and the counts stay
 *     exact.</li>
 * </ul>
 */
public final class StreamsTests {
    static final Duration WAIT = Duration.ofSeconds(90);
    static final String STORE = "word-counts";
    static final String GROUPED = "words-by-word";
    static final Map<String, String> CHANGELOG_CONFIG = Map.of("segment.ms", "1000", "min.cleanable.dirty.ratio", "0.01");
    static final String[] VOCAB = {
        "apple", "banana", "cherry", "date", "elder", "fig", "grape", "hazel",
        "iris", "juniper", "kiwi", "lemon", "mango",
    };

    static String bootstrap;
    static String kind;
    static Path work;
    static String prefix;
    static final long T0 = System.nanoTime();

    public static void main(String[] args) throws Exception {
        if (args.length < 5) {
            System.err.println("usage: StreamsTests <bootstrap> <kind> <work dir> <prefix> <scenario>...");
            System.exit(2);
        }
        bootstrap = args[0];
        kind = args[1];
        work = Path.of(args[2]);
        prefix = args[3];
        for (String scenario : Arrays.asList(args).subList(4, args.length)) {
            long t = System.nanoTime();
            try {
                switch (scenario) {
                    case "wordcount-restart" -> wordCountRestart(prefix + "-wc");
                    case "two-instances" -> twoInstances(prefix + "-two");
                    case "wordcount-eos-crash" -> wordCountEosCrash(prefix + "-eos");
                    default -> throw new IllegalArgumentException("unknown scenario " + scenario);
                }
                System.out.printf("PASS %s (%.1f s)%n", scenario, (System.nanoTime() - t) / 1e9);
            } catch (Throwable e) {
                System.out.println("FAIL " + scenario + ": " + e.toString().replace('\n', ' '));
                e.printStackTrace(System.err);
            }
            System.out.flush();
        }
        // Streams' and the clients' threads are all closed, but exit regardless.
        System.exit(0);
    }

    // ------------------------------------------------------------------------------------
    // Scenarios
    // ------------------------------------------------------------------------------------

    static void wordCountRestart(String p) throws Exception {
        String in = p + "-lines";
        String out = p + "-counts";
        String app = p + "-app";
        String repartition = app + "-" + GROUPED + "-repartition";
        String changelog = app + "-" + STORE + "-changelog";
        try (Admin admin = admin(); Output output = new Output(out); KafkaProducer<String, String> producer = producer()) {
            createTopics(admin, Map.of(in, 2, out, 2));
            Map<String, Long> expected = new TreeMap<>();

            // 1. First run, on state dir A.
            step("run 1: produce 120 lines, count them");
            produceLines(producer, in, 0, 120, expected);
            Restores restores1 = new Restores();
            KafkaStreams s1 = start(app, work.resolve(p + "-state-a"), restores1, 1);
            try {
                awaitRunning(s1, "run 1");
                output.awaitExactly(expected, Map.of(), "run 1");
                checkInternalTopics(admin, app, repartition, changelog, 2);
                checkChangelog(changelog, expected, "run 1");
                checkPurged(admin, repartition, "run 1");
            } finally {
                close(s1, "run 1");
            }
            checkCommitted(admin, app, in, 120, "run 1");

            // 2. Restart on the same state dir: the store is reopened from local state.
            step("run 2 (same state dir): produce 60 more lines");
            Map<String, Long> before = new TreeMap<>(expected);
            produceLines(producer, in, 120, 60, expected);
            Restores restores2 = new Restores();
            KafkaStreams s2 = start(app, work.resolve(p + "-state-a"), restores2, 1);
            try {
                awaitRunning(s2, "run 2");
                output.awaitExactly(expected, before, "run 2");
                checkChangelog(changelog, expected, "run 2");
            } finally {
                close(s2, "run 2");
            }
            step("run 2 restored " + restores2.total.get() + " changelog records");
            checkCommitted(admin, app, in, 180, "run 2");

            // The broker compacts the changelog's sealed segments (runs 1 and 2 rolled them).
            long compacted = awaitCompacted(changelog, "after run 2");

            // 3. Restart on a fresh state dir: the store is restored from the changelog.
            step("run 3 (fresh state dir): produce 60 more lines");
            before = new TreeMap<>(expected);
            produceLines(producer, in, 180, 60, expected);
            Restores restores3 = new Restores();
            KafkaStreams s3 = start(app, work.resolve(p + "-state-b"), restores3, 1);
            try {
                awaitRunning(s3, "run 3");
                output.awaitExactly(expected, before, "run 3");
                check(restores3.total.get() > 0,
                    "run 3 on an empty state dir restored no changelog record (" + restores3 + ")");
                check(restores3.total.get() <= compacted, "run 3 restored " + restores3.total.get()
                    + " changelog records, more than the " + compacted + " left by compaction");
                check(restores3.stores.equals(Set.of(STORE)), "run 3 restored the stores " + restores3.stores);
                step("run 3 restored " + restores3.total.get() + " changelog records");
                checkChangelog(changelog, expected, "run 3");
            } finally {
                close(s3, "run 3");
            }
            checkCommitted(admin, app, in, 240, "run 3");
            output.awaitQuiet(expected, Duration.ofSeconds(2), "after run 3");
        }
    }

    /**
     * processing.guarantee=exactly_once_v2: the application dies in the middle of a
     * transaction (a planned exception on the line "crash now", after it has written counts
     * and changelog records for earlier lines of the same transaction); a new run on the
     * same state dir resumes from the last committed transaction. A read_committed reader of
     * the output never sees a count above the true one: nothing is counted twice.
     */
    static void wordCountEosCrash(String p) throws Exception {
        String in = p + "-lines";
        String out = p + "-counts";
        String app = p + "-app";
        try (Admin admin = admin(); Output output = new Output(out, true); KafkaProducer<String, String> producer = producer()) {
            createTopics(admin, Map.of(in, 2, out, 2));
            Map<String, Long> expected = new TreeMap<>();
            step("run 1 (exactly_once_v2): 120 lines, then one that crashes the application, then 60 more");
            produceLines(producer, in, 0, 120, expected);
            producer.send(new ProducerRecord<>(in, "line-crash", "crash now")).get(30, TimeUnit.SECONDS);
            expected.merge("crash", 1L, Long::sum);
            expected.merge("now", 1L, Long::sum);
            produceLines(producer, in, 120, 60, expected);
            CRASH_ARMED.set(true);
            KafkaStreams s1 = start(app, work.resolve(p + "-state"), new Restores(), 1, true);
            try {
                awaitTrue(() -> s1.state() == KafkaStreams.State.ERROR || s1.state() == KafkaStreams.State.NOT_RUNNING
                        || s1.state() == KafkaStreams.State.PENDING_ERROR,
                    () -> "run 1 did not crash: " + s1.state());
                check(!CRASH_ARMED.get(), "the crash was not the planned one");
            } finally {
                // It died in ERROR: closing it only stops what is left.
                s1.close(Duration.ofSeconds(30));
            }
            step("run 2: resumes after the crash");
            KafkaStreams s2 = start(app, work.resolve(p + "-state"), new Restores(), 1, true);
            try {
                awaitRunning(s2, "run 2");
                output.awaitExactly(expected, Map.of(), "run 2");
            } finally {
                close(s2, "run 2");
            }
            output.awaitQuiet(expected, Duration.ofSeconds(2), "after run 2");
        }
    }

    /** Armed: the next "crash" line throws in the topology, once. */
    static final AtomicBoolean CRASH_ARMED = new AtomicBoolean(false);

    static void twoInstances(String p) throws Exception {
        String in = p + "-lines";
        String out = p + "-counts";
        String app = p + "-app";
        String repartition = app + "-" + GROUPED + "-repartition";
        String changelog = app + "-" + STORE + "-changelog";
        try (Admin admin = admin(); Output output = new Output(out); KafkaProducer<String, String> producer = producer()) {
            createTopics(admin, Map.of(in, 4, out, 2));
            Map<String, Long> expected = new TreeMap<>();
            step("two instances: start both, produce 200 lines");
            KafkaStreams a = start(app, work.resolve(p + "-state-a"), new Restores(), 1);
            KafkaStreams b = null;
            try {
                b = start(app, work.resolve(p + "-state-b"), new Restores(), 1);
                awaitRunning(a, "instance a");
                awaitRunning(b, "instance b");
                KafkaStreams fa = a;
                KafkaStreams fb = b;
                // 4 input partitions, 4 repartition partitions: 8 active tasks to share.
                awaitTrue(() -> activeTasks(fa) + activeTasks(fb) == 8 && activeTasks(fa) > 0 && activeTasks(fb) > 0
                        && fa.state() == KafkaStreams.State.RUNNING && fb.state() == KafkaStreams.State.RUNNING,
                    () -> "the two instances did not share the 8 tasks: a " + tasks(fa) + " (" + fa.state()
                        + "), b " + tasks(fb) + " (" + fb.state() + ")");
                step("tasks: a " + tasks(a) + ", b " + tasks(b));
                produceLines(producer, in, 0, 200, expected);
                output.awaitExactly(expected, Map.of(), "both instances");
                checkInternalTopics(admin, app, repartition, changelog, 4);

                step("instance b leaves");
                close(b, "instance b");
                b = null;
                awaitTrue(() -> activeTasks(fa) == 8 && fa.state() == KafkaStreams.State.RUNNING,
                    () -> "instance a did not take over all 8 tasks: " + tasks(fa) + " (" + fa.state() + ")");
                Map<String, Long> before = new TreeMap<>(expected);
                produceLines(producer, in, 200, 100, expected);
                output.awaitExactly(expected, before, "instance a alone");
                checkChangelog(changelog, expected, "instance a alone");
            } finally {
                if (b != null) {
                    close(b, "instance b");
                }
                close(a, "instance a");
            }
            output.awaitQuiet(expected, Duration.ofSeconds(2), "after both closed");
        }
    }

    // ------------------------------------------------------------------------------------
    // The application
    // ------------------------------------------------------------------------------------

    static Topology topology(String in, String out) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(in, Consumed.with(Serdes.String(), Serdes.String()))
            .flatMapValues(line -> {
                if (line.startsWith("crash") && CRASH_ARMED.compareAndSet(true, false)) {
                    throw new IllegalStateException("planned crash in the middle of a transaction");
                }
                return Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\s+"));
            })
            .filter((k, word) -> !word.isEmpty())
            .groupBy((k, word) -> word, Grouped.with(GROUPED, Serdes.String(), Serdes.String()))
            .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as(STORE)
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.Long())
                // The changelog rolls a segment a second and is compacted as soon as the
                // cleaner comes by: a restore reads a compacted log (offsets with gaps).
                .withLoggingEnabled(CHANGELOG_CONFIG))
            .toStream()
            .to(out, Produced.with(Serdes.String(), Serdes.Long()));
        return builder.build();
    }

    static KafkaStreams start(String app, Path stateDir, Restores restores, int threads) throws Exception {
        return start(app, stateDir, restores, threads, false);
    }

    static KafkaStreams start(String app, Path stateDir, Restores restores, int threads, boolean eos) throws Exception {
        Files.createDirectories(stateDir);
        String p = app.substring(0, app.length() - "-app".length());
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, eos ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
        // Every update of the store goes to the output and the changelog.
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        // Purge the committed repartition records at every commit (DeleteRecords).
        props.put(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, 0);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 10_000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1_000);
        KafkaStreams streams = new KafkaStreams(topology(p + "-lines", p + "-counts"), props);
        streams.setGlobalStateRestoreListener(restores);
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("uncaught exception in a stream thread of " + app + ": " + e);
            e.printStackTrace(System.err);
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        return streams;
    }

    static void awaitRunning(KafkaStreams s, String what) throws Exception {
        awaitTrue(() -> s.state() == KafkaStreams.State.RUNNING
                || s.state() == KafkaStreams.State.ERROR || s.state() == KafkaStreams.State.NOT_RUNNING,
            () -> what + ": Streams is not RUNNING: " + s.state());
        check(s.state() == KafkaStreams.State.RUNNING, what + ": Streams went to " + s.state());
    }

    static void close(KafkaStreams s, String what) {
        long t = System.nanoTime();
        boolean closed = s.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
            .withTimeout(Duration.ofSeconds(30)));
        step(String.format("%s closed in %.1f s", what, (System.nanoTime() - t) / 1e9));
        check(closed, what + ": Streams did not close within 30 s (state " + s.state() + ")");
        check(s.state() == KafkaStreams.State.NOT_RUNNING, what + ": Streams closed in state " + s.state());
    }

    static int activeTasks(KafkaStreams s) {
        return s.metadataForLocalThreads().stream().mapToInt(t -> t.activeTasks().size()).sum();
    }

    static String tasks(KafkaStreams s) {
        return s.metadataForLocalThreads().stream()
            .flatMap(t -> t.activeTasks().stream())
            .map(t -> t.taskId().toString())
            .sorted()
            .collect(Collectors.toList())
            .toString();
    }

    static final class Restores implements StateRestoreListener {
        final AtomicLong total = new AtomicLong();
        final Set<String> stores = ConcurrentHashMap.newKeySet();

        @Override
        public void onRestoreStart(TopicPartition tp, String store, long start, long end) {
            step("restore of " + store + " from " + tp + ": offsets " + start + ".." + end);
        }

        @Override
        public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {
            stores.add(store);
            total.addAndGet(n);
        }

        @Override
        public void onRestoreEnd(TopicPartition tp, String store, long n) {
        }

        @Override
        public String toString() {
            return "restored " + total.get() + " records of " + stores;
        }
    }

    // ------------------------------------------------------------------------------------
    // Input, output, checks
    // ------------------------------------------------------------------------------------

    /** Line i: 1 to 5 words of VOCAB, some repeated, keyed "line-i" (spread over partitions). */
    static String line(int i) {
        int n = i % 5 + 1;
        List<String> words = new ArrayList<>();
        for (int j = 0; j < n; j++) {
            String w = VOCAB[(i * 7 + j * j * 3 + j) % VOCAB.length];
            words.add(j % 2 == 0 ? w : w.toUpperCase(Locale.ROOT));
        }
        return String.join(j(i), words);
    }

    static String j(int i) {
        return i % 3 == 0 ? "  " : " ";
    }

    static void produceLines(KafkaProducer<String, String> producer, String topic, int from, int n,
                             Map<String, Long> expected) throws Exception {
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (int i = from; i < from + n; i++) {
            String l = line(i);
            sent.add(producer.send(new ProducerRecord<>(topic, "line-" + i, l)));
            for (String w : l.toLowerCase(Locale.ROOT).split("\\s+")) {
                if (!w.isEmpty()) {
                    expected.merge(w, 1L, Long::sum);
                }
            }
        }
        producer.flush();
        for (Future<RecordMetadata> f : sent) {
            f.get(30, TimeUnit.SECONDS);
        }
    }

    /** The output topic, read from the beginning by one consumer for the whole scenario. */
    static final class Output implements AutoCloseable {
        final KafkaConsumer<String, Long> consumer;
        final Map<String, Long> latest = new TreeMap<>();
        final String topic;
        boolean assigned;

        Output(String topic) {
            this(topic, false);
        }

        Output(String topic, boolean readCommitted) {
            this.topic = topic;
            Properties props = clientProps();
            props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, readCommitted ? "read_committed" : "read_uncommitted");
            props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, LongDeserializer.class.getName());
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            consumer = new KafkaConsumer<>(props);
        }

        /**
         * Reads until the last count of every word is the expected one. Every count read on
         * the way must be above the count the word had before this run ({@code before}): a
         * lower one is a recount (the store lost its state, or input was processed again).
         */
        void awaitExactly(Map<String, Long> expected, Map<String, Long> before, String what) throws Exception {
            assign();
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (!latest.equals(expected)) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError(what + ": the output topic " + topic + " did not reach the expected counts within "
                        + WAIT.toSeconds() + " s: " + diff(expected, latest));
                }
                for (ConsumerRecord<String, Long> r : consumer.poll(Duration.ofMillis(200))) {
                    Long prev = before.get(r.key());
                    if (prev != null && r.value() <= prev) {
                        throw new AssertionError(what + ": counted again from scratch: " + r.key() + " = " + r.value()
                            + " at " + r.partition() + "/" + r.offset() + ", but it was " + prev + " before this run");
                    }
                    Long want = expected.get(r.key());
                    if (want == null || r.value() > want) {
                        throw new AssertionError(what + ": " + r.key() + " = " + r.value() + " at " + r.partition() + "/"
                            + r.offset() + ", more than the " + want + " it can be (input counted twice)");
                    }
                    latest.put(r.key(), r.value());
                }
            }
            step(what + ": output has the exact counts of " + expected.size() + " words ("
                + expected.values().stream().mapToLong(Long::longValue).sum() + " words in all)");
        }

        /** Nothing more arrives for {@code quiet}: no count above the final one. */
        void awaitQuiet(Map<String, Long> expected, Duration quiet, String what) {
            long end = System.nanoTime() + quiet.toNanos();
            while (System.nanoTime() < end) {
                for (ConsumerRecord<String, Long> r : consumer.poll(Duration.ofMillis(200))) {
                    throw new AssertionError(what + ": an extra output record " + r.key() + " = " + r.value() + " at "
                        + r.partition() + "/" + r.offset() + " (expected no more; final count " + expected.get(r.key()) + ")");
                }
            }
        }

        void assign() {
            if (assigned) {
                return;
            }
            List<TopicPartition> tps = consumer.partitionsFor(topic, Duration.ofSeconds(30)).stream()
                .map(pi -> new TopicPartition(topic, pi.partition()))
                .collect(Collectors.toList());
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            assigned = true;
        }

        @Override
        public void close() {
            consumer.close(Duration.ofSeconds(5));
        }
    }

    /** The repartition and changelog topics exist, with the configs Streams creates them with. */
    static void checkInternalTopics(Admin admin, String app, String repartition, String changelog, int partitions)
            throws Exception {
        Set<String> names = admin.listTopics().names().get(30, TimeUnit.SECONDS);
        Set<String> internal = names.stream().filter(n -> n.startsWith(app + "-")).collect(Collectors.toCollection(HashSet::new));
        check(internal.equals(Set.of(repartition, changelog)),
            "the internal topics of " + app + " are " + internal + ", expected " + repartition + " and " + changelog);
        Map<String, TopicDescription> desc = admin.describeTopics(List.of(repartition, changelog)).allTopicNames()
            .get(30, TimeUnit.SECONDS);
        for (String t : List.of(repartition, changelog)) {
            check(desc.get(t).partitions().size() == partitions,
                t + " has " + desc.get(t).partitions().size() + " partitions, expected " + partitions);
        }
        Map<ConfigResource, Config> configs = admin.describeConfigs(List.of(
            new ConfigResource(ConfigResource.Type.TOPIC, repartition),
            new ConfigResource(ConfigResource.Type.TOPIC, changelog))).all().get(30, TimeUnit.SECONDS);
        Config rc = configs.get(new ConfigResource(ConfigResource.Type.TOPIC, repartition));
        Config cc = configs.get(new ConfigResource(ConfigResource.Type.TOPIC, changelog));
        checkConfig(changelog, cc, "cleanup.policy", "compact");
        for (Map.Entry<String, String> e : CHANGELOG_CONFIG.entrySet()) {
            checkConfig(changelog, cc, e.getKey(), e.getValue());
        }
        checkConfig(repartition, rc, "cleanup.policy", "delete");
        // Streams creates repartition topics with infinite retention (they are purged instead).
        checkConfig(repartition, rc, "retention.ms", "-1");
        step("internal topics: " + repartition + " (cleanup.policy=delete, retention.ms=-1), " + changelog
            + " (cleanup.policy=compact), " + partitions + " partitions each");
    }

    static void checkConfig(String topic, Config c, String key, String want) {
        String have = c.get(key) == null ? null : c.get(key).value();
        check(want.equals(have), topic + ": " + key + " is " + have + ", expected " + want);
    }

    /** The changelog topic's last value per key is the store's count (what a restore reads). */
    static void checkChangelog(String changelog, Map<String, Long> expected, String what) throws Exception {
        Properties props = clientProps();
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, LongDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        Map<String, Long> latest = new TreeMap<>();
        try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(props)) {
            List<TopicPartition> tps = c.partitionsFor(changelog, Duration.ofSeconds(30)).stream()
                .map(pi -> new TopicPartition(changelog, pi.partition())).collect(Collectors.toList());
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (tps.stream().anyMatch(tp -> c.position(tp, Duration.ofSeconds(30)) < end.get(tp))) {
                check(System.nanoTime() < deadline, what + ": could not read " + changelog + " to its end " + end);
                for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(200))) {
                    latest.put(r.key(), r.value());
                }
            }
        }
        check(latest.equals(expected), what + ": the changelog " + changelog + " does not hold the counts: "
            + diff(expected, latest));
    }

    /**
     * Waits until the changelog holds fewer records than its offsets span (compaction
     * removed superseded counts); returns how many records it holds.
     */
    static long awaitCompacted(String changelog, String what) throws Exception {
        Properties props = clientProps();
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, LongDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        long deadline = System.nanoTime() + WAIT.toNanos();
        String last = "";
        try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(props)) {
            List<TopicPartition> tps = c.partitionsFor(changelog, Duration.ofSeconds(30)).stream()
                .map(pi -> new TopicPartition(changelog, pi.partition())).collect(Collectors.toList());
            c.assign(tps);
            while (System.nanoTime() < deadline) {
                c.seekToBeginning(tps);
                Map<TopicPartition, Long> begin = c.beginningOffsets(tps, Duration.ofSeconds(30));
                Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
                long records = 0;
                long span = tps.stream().mapToLong(tp -> end.get(tp) - begin.get(tp)).sum();
                long readDeadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                while (tps.stream().anyMatch(tp -> c.position(tp, Duration.ofSeconds(30)) < end.get(tp))) {
                    check(System.nanoTime() < readDeadline, what + ": could not read " + changelog + " to its end " + end);
                    records += c.poll(Duration.ofMillis(200)).count();
                }
                last = records + " records in " + span + " offsets " + begin + ".." + end;
                if (records < span) {
                    step(what + ": " + changelog + " compacted: " + last);
                    return records;
                }
                Thread.sleep(1000);
            }
        }
        throw new AssertionError(what + ": the broker did not compact " + changelog + " (cleanup.policy=compact, "
            + CHANGELOG_CONFIG + ") within " + WAIT.toSeconds() + " s: " + last);
    }

    /** Streams deletes the committed records of its repartition topic (DeleteRecords). */
    static void checkPurged(Admin admin, String repartition, String what) throws Exception {
        awaitTrue(() -> {
            try {
                Map<TopicPartition, OffsetSpec> req = new HashMap<>();
                for (int i = 0; i < 2; i++) {
                    req.put(new TopicPartition(repartition, i), OffsetSpec.earliest());
                }
                Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> earliest =
                    admin.listOffsets(req).all().get(30, TimeUnit.SECONDS);
                Map<TopicPartition, OffsetSpec> req2 = new HashMap<>();
                req.keySet().forEach(tp -> req2.put(tp, OffsetSpec.latest()));
                Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> latest =
                    admin.listOffsets(req2).all().get(30, TimeUnit.SECONDS);
                // Every partition that holds records has them deleted up to its end.
                return req.keySet().stream().allMatch(tp -> earliest.get(tp).offset() == latest.get(tp).offset());
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }, () -> what + ": Streams did not purge " + repartition + " (its log start offsets do not reach its ends)");
        step(what + ": " + repartition + " purged to its end");
    }

    /** The application's committed offsets on its input topic are the input's end. */
    static void checkCommitted(Admin admin, String app, String in, long lines, String what) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> offs =
            admin.listConsumerGroupOffsets(app).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
        long sum = offs.entrySet().stream()
            .filter(e -> e.getKey().topic().equals(in) && e.getValue() != null)
            .mapToLong(e -> e.getValue().offset()).sum();
        check(sum == lines, what + ": the group " + app + " committed " + sum + " input offsets in all, expected "
            + lines + ": " + offs);
    }

    static void createTopics(Admin admin, Map<String, Integer> topics) throws Exception {
        List<NewTopic> nt = new ArrayList<>();
        topics.forEach((t, n) -> nt.add(new NewTopic(t, n, (short) 1)));
        admin.createTopics(nt).all().get(30, TimeUnit.SECONDS);
    }

    // ------------------------------------------------------------------------------------
    // Plumbing
    // ------------------------------------------------------------------------------------

    static Properties clientProps() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return p;
    }

    static Admin admin() {
        return Admin.create(clientProps());
    }

    static KafkaProducer<String, String> producer() {
        Properties p = clientProps();
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        return new KafkaProducer<>(p);
    }

    static String diff(Map<String, Long> want, Map<String, Long> have) {
        Set<String> keys = new java.util.TreeSet<>(want.keySet());
        keys.addAll(have.keySet());
        List<String> d = new ArrayList<>();
        for (String k : keys) {
            if (!java.util.Objects.equals(want.get(k), have.get(k))) {
                d.add(k + ": expected " + want.get(k) + ", have " + have.get(k));
            }
        }
        return d.isEmpty() ? "(equal)" : String.join("; ", d);
    }

    static void awaitTrue(BooleanSupplier cond, java.util.function.Supplier<String> why) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(why.get() + " (after " + WAIT.toSeconds() + " s)");
            }
            Thread.sleep(100);
        }
    }

    static void check(boolean ok, String why) {
        if (!ok) {
            throw new AssertionError(why);
        }
    }

    static void step(String s) {
        System.out.printf("STEP [%6.1f s] %s%n", (System.nanoTime() - T0) / 1e9, s);
        System.out.flush();
    }
}
