import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/** One consumer: positions (seek, offsetsForTimes, pause/resume) and committed offsets. */
final class ConsumerScenarios {
    static void register(Map<String, ClientTests.Scenario> m) {
        m.put("seek", ConsumerScenarios::seek);
        m.put("offsets_for_times", ConsumerScenarios::offsetsForTimes);
        m.put("pause_resume", ConsumerScenarios::pauseResume);
        m.put("commit_sync_async", ConsumerScenarios::commitSyncAsync);
        m.put("auto_commit", ConsumerScenarios::autoCommit);
    }

    /** seek, seekToBeginning, seekToEnd, a seek past the end (reset to earliest), beginning/endOffsets. */
    static void seek(Env env) throws Exception {
        String topic = Env.unique("java-seek");
        try (var admin = env.admin()) {
            env.createTopic(admin, topic, 1);
        }
        env.produce(topic, 1, 20);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (var c = env.consumer(null)) {
            c.assign(List.of(tp));
            Env.checkEq(Map.of(tp, 0L), c.beginningOffsets(List.of(tp)), "beginningOffsets");
            Env.checkEq(Map.of(tp, 20L), c.endOffsets(List.of(tp)), "endOffsets");

            c.seek(tp, 5);
            var got = Env.pollN(c, 15, 15_000);
            Env.checkEq(5L, got.get(0).offset(), "first offset after seek(5)");
            Env.checkEq("v-0-5", got.get(0).value(), "value at offset 5");
            Env.checkEq(19L, got.get(14).offset(), "last offset");
            Env.checkEq(20L, c.position(tp), "position after reading to the end");

            c.seekToBeginning(List.of(tp));
            Env.checkEq(0L, c.position(tp), "position after seekToBeginning");
            got = Env.pollN(c, 1, 15_000);
            Env.checkEq(0L, got.get(0).offset(), "first offset after seekToBeginning");

            c.seekToEnd(List.of(tp));
            Env.checkEq(20L, c.position(tp), "position after seekToEnd");
            Env.check(Env.pollFor(c, 300).isEmpty(), "nothing to read at the end");
            try (var p = env.producer()) {
                Env.sendAll(p, List.of(new ProducerRecord<>(topic, 0, "k-new", "new")));
            }
            got = Env.pollN(c, 1, 15_000);
            Env.checkEq(20L, got.get(0).offset(), "the record produced after seekToEnd");
            Env.checkEq("new", got.get(0).value(), "its value");

            // Past the log end: OFFSET_OUT_OF_RANGE, and auto.offset.reset=earliest starts over.
            c.seek(tp, 1000);
            got = Env.pollN(c, 1, 15_000);
            Env.checkEq(0L, got.get(0).offset(), "first offset after seek(1000) and the reset to earliest");
        }
        Properties none = env.consumerProps(null);
        none.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        try (var c = new org.apache.kafka.clients.consumer.KafkaConsumer<String, String>(none)) {
            c.assign(List.of(tp));
            c.seek(tp, 1000);
            try {
                Env.pollFor(c, 5_000);
                throw new Env.Failure("auto.offset.reset=none and a seek past the end: expected OffsetOutOfRangeException, polled without error");
            } catch (org.apache.kafka.clients.consumer.OffsetOutOfRangeException e) {
                Env.checkEq(Map.of(tp, 1000L), e.offsetOutOfRangePartitions(), "the out-of-range partitions");
            }
        }
    }

    /** offsetsForTimes: the first offset with a timestamp at or after the one asked; null past the last. */
    static void offsetsForTimes(Env env) throws Exception {
        String topic = Env.unique("java-times");
        try (var admin = env.admin()) {
            env.createTopic(admin, topic, 1);
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        long base = System.currentTimeMillis() - 3_600_000L;
        try (var p = env.producer()) {
            List<ProducerRecord<String, String>> rs = new ArrayList<>();
            for (int i = 0; i < 10; i++) rs.add(new ProducerRecord<>(topic, 0, base + i * 1000L, "k" + i, "v" + i));
            Env.sendAll(p, rs);
        }
        try (var c = env.consumer(null)) {
            Map<TopicPartition, OffsetAndTimestamp> r = c.offsetsForTimes(Map.of(tp, base + 5_500L));
            checkTime(6, base + 6_000L, r.get(tp), "offsetsForTimes(base + 5.5 s)");
            r = c.offsetsForTimes(Map.of(tp, base));
            checkTime(0, base, r.get(tp), "offsetsForTimes(base)");
            r = c.offsetsForTimes(Map.of(tp, base - 100_000L));
            checkTime(0, base, r.get(tp), "offsetsForTimes(before the first)");
            r = c.offsetsForTimes(Map.of(tp, base + 9_000L));
            checkTime(9, base + 9_000L, r.get(tp), "offsetsForTimes(the last)");
            r = c.offsetsForTimes(Map.of(tp, base + 9_001L));
            Env.check(r.containsKey(tp) && r.get(tp) == null, "offsetsForTimes(past the last) is null: " + r);
            // And the consumer can start there.
            c.assign(List.of(tp));
            c.seek(tp, c.offsetsForTimes(Map.of(tp, base + 7_000L)).get(tp).offset());
            var got = Env.pollN(c, 3, 15_000);
            Env.checkEq(7L, got.get(0).offset(), "first offset read from offsetsForTimes(base + 7 s)");
            Env.checkEq(base + 7_000L, got.get(0).timestamp(), "its timestamp");
        }
    }

    static void checkTime(long offset, long timestamp, OffsetAndTimestamp got, String what) {
        Env.check(got != null, what + ": null");
        Env.checkEq(offset, got.offset(), what + " offset");
        Env.checkEq(timestamp, got.timestamp(), what + " timestamp");
    }

    /** A paused partition returns nothing while the other flows; resumed, it delivers. */
    static void pauseResume(Env env) throws Exception {
        String topic = Env.unique("java-pause");
        try (var admin = env.admin()) {
            env.createTopic(admin, topic, 2);
        }
        env.produce(topic, 2, 10);
        TopicPartition p0 = new TopicPartition(topic, 0), p1 = new TopicPartition(topic, 1);
        try (var c = env.consumer(null)) {
            c.assign(List.of(p0, p1));
            c.seekToBeginning(List.of(p0, p1));
            c.pause(List.of(p0));
            Env.checkEq(Set.of(p0), c.paused(), "paused()");
            var got = Env.pollN(c, 10, 15_000);
            got.addAll(Env.pollFor(c, 500));
            for (var r : got) Env.checkEq(1, r.partition(), "partition of a record polled while partition 0 is paused");
            Env.checkEq(10, got.size(), "records of partition 1");
            Env.checkEq(0L, c.position(p0), "position of the paused partition");
            c.resume(List.of(p0));
            Env.checkEq(Set.of(), c.paused(), "paused() after resume");
            got = Env.pollN(c, 10, 15_000);
            for (var r : got) Env.checkEq(0, r.partition(), "partition of a record polled after resume");
            Env.checkEq(0L, got.get(0).offset(), "first offset of partition 0 after resume");
        }
    }

    /** commitSync with metadata, commitAsync with a callback, committed(); a new member resumes there. */
    static void commitSyncAsync(Env env) throws Exception {
        String topic = Env.unique("java-commit"), group = Env.unique("java-commit-g");
        try (var admin = env.admin()) {
            env.createTopic(admin, topic, 1);
        }
        env.produce(topic, 1, 30);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (var c = env.consumer(group)) {
            c.subscribe(List.of(topic));
            var got = Env.pollN(c, 30, 20_000);
            Env.checkEq(0L, got.get(0).offset(), "first offset of a new group (earliest)");
            Env.checkEq(Set.of(tp), c.assignment(), "assignment");
            Env.checkEq(null, c.committed(Set.of(tp)).get(tp), "committed offset before any commit");

            c.commitSync(Map.of(tp, new OffsetAndMetadata(10, "meta-10")));
            OffsetAndMetadata om = c.committed(Set.of(tp)).get(tp);
            Env.check(om != null, "committed offset after commitSync");
            Env.checkEq(10L, om.offset(), "committed offset after commitSync(10)");
            Env.checkEq("meta-10", om.metadata(), "committed metadata");

            AtomicReference<Object> done = new AtomicReference<>();
            c.commitAsync(Map.of(tp, new OffsetAndMetadata(20)), (offsets, e) -> done.set(e != null ? e : offsets));
            long deadline = System.currentTimeMillis() + 15_000;
            while (done.get() == null) {
                Env.check(System.currentTimeMillis() < deadline, "commitAsync's callback within 15 s");
                c.poll(Duration.ofMillis(50));
            }
            Env.check(!(done.get() instanceof Exception), "commitAsync failed: " + done.get());
            Env.checkEq(Map.of(tp, new OffsetAndMetadata(20)), done.get(), "offsets given to commitAsync's callback");
            Env.checkEq(20L, c.committed(Set.of(tp)).get(tp).offset(), "committed offset after commitAsync(20)");
        }
        // A new member of the group starts at the committed 20; commitSync() commits its position.
        try (var c = env.consumer(group)) {
            c.subscribe(List.of(topic));
            var got = Env.pollN(c, 10, 20_000);
            Env.checkEq(20L, got.get(0).offset(), "first offset of the new member (the committed offset)");
            Env.check(Env.pollFor(c, 300).isEmpty(), "nothing past offset 29");
            c.commitSync();
            Env.checkEq(30L, c.committed(Set.of(tp)).get(tp).offset(), "committed offset after commitSync() at the end");
        }
    }

    /** enable.auto.commit: the consumed position is committed while polling; a new member resumes there. */
    static void autoCommit(Env env) throws Exception {
        String topic = Env.unique("java-auto"), group = Env.unique("java-auto-g");
        try (var admin = env.admin()) {
            env.createTopic(admin, topic, 1);
        }
        env.produce(topic, 1, 20);
        TopicPartition tp = new TopicPartition(topic, 0);
        Properties props = env.consumerProps(group);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "true");
        props.put(ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, "200");
        try (var c = new org.apache.kafka.clients.consumer.KafkaConsumer<String, String>(props)) {
            c.subscribe(List.of(topic));
            Env.pollN(c, 20, 20_000);
            // Committed by the auto-commit timer while polling (not by close()).
            long deadline = System.currentTimeMillis() + 15_000;
            while (true) {
                OffsetAndMetadata om = c.committed(Set.of(tp)).get(tp);
                if (om != null && om.offset() == 20) break;
                Env.check(System.currentTimeMillis() < deadline, "auto commit of offset 20 within 15 s (committed: " + om + ")");
                Env.pollFor(c, 200);
            }
        }
        env.produce(topic, 1, 5); // offsets 20..24
        try (var c = env.consumer(group)) {
            c.subscribe(List.of(topic));
            var got = Env.pollN(c, 5, 20_000);
            Env.checkEq(20L, got.get(0).offset(), "first offset of the new member (the auto-committed offset)");
            Env.checkEq(24L, got.get(4).offset(), "last offset");
            Env.check(Env.pollFor(c, 300).isEmpty(), "nothing past offset 24");
        }
    }

    private ConsumerScenarios() {}
}
