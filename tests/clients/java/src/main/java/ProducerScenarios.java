import static java.nio.charset.StandardCharsets.UTF_8;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.utils.Utils;

/** The producer with its defaults, and every compression codec through a consumer. */
final class ProducerScenarios {
    static void register(Map<String, ClientTests.Scenario> m) {
        m.put("producer_defaults", ProducerScenarios::producerDefaults);
        for (String codec : List.of("gzip", "snappy", "lz4", "zstd")) {
            m.put("compression_" + codec, env -> compression(env, codec));
        }
    }

    /**
     * The default producer (idempotent, acks=all, max.in.flight 5): keyed records land on
     * the partition of the Java client's murmur2 partitioner, offsets contiguous from 0 in
     * send order per partition; a consumer reads each exactly once.
     */
    static void producerDefaults(Env env) throws Exception {
        final int partitions = 3, n = 300;
        String topic = Env.unique("java-prod");
        try (var admin = env.admin()) {
            env.createTopic(admin, topic, partitions);
        }
        List<ProducerRecord<String, String>> rs = new ArrayList<>();
        for (int i = 0; i < n; i++) rs.add(new ProducerRecord<>(topic, "key-" + i, "value-" + i));
        List<RecordMetadata> mds;
        try (var p = env.producer()) {
            mds = Env.sendAll(p, rs);
            // No record failed: an idempotent producer refused InitProducerId fails them all.
            Metric m = metric(p.metrics(), "producer-metrics", "record-error-total");
            Env.checkEq(0.0, m == null ? null : m.metricValue(), "producer record-error-total");
        }
        Map<Integer, Long> next = new HashMap<>();
        for (int i = 0; i < n; i++) {
            RecordMetadata md = mds.get(i);
            byte[] key = ("key-" + i).getBytes(UTF_8);
            int want = Utils.toPositive(Utils.murmur2(key)) % partitions;
            Env.checkEq(want, md.partition(), "partition of key-" + i + " (murmur2)");
            long expect = next.getOrDefault(md.partition(), 0L);
            Env.checkEq(expect, md.offset(), "offset of record " + i + " in partition " + md.partition() + " (contiguous, in send order)");
            next.put(md.partition(), expect + 1);
        }
        Env.check(next.size() == partitions, "every partition got records: " + next);
        // Read back: every record once, where the producer was told it went.
        try (var c = env.consumer(null)) {
            List<TopicPartition> all = new ArrayList<>(Env.tps(topic, 0, 1, 2));
            c.assign(all);
            c.seekToBeginning(all);
            var got = Env.pollN(c, n, 20_000);
            Env.checkEq(n, got.size(), "records read back");
            Map<String, ConsumerRecord<String, String>> byKey = new HashMap<>();
            for (var r : got) Env.check(byKey.put(r.key(), r) == null, "key " + r.key() + " read twice");
            for (int i = 0; i < n; i++) {
                var r = byKey.get("key-" + i);
                Env.check(r != null, "key-" + i + " read back");
                Env.checkEq(mds.get(i).partition(), r.partition(), "partition of key-" + i + " when read");
                Env.checkEq(mds.get(i).offset(), r.offset(), "offset of key-" + i + " when read");
                Env.checkEq("value-" + i, r.value(), "value of key-" + i);
            }
            Env.check(Env.pollFor(c, 300).isEmpty(), "no records past the " + n + " produced");
        }
        Env.log("producer_defaults: %d records, offsets per partition %s", n, next);
    }

    static Metric metric(Map<MetricName, ? extends Metric> ms, String group, String name) {
        for (var e : ms.entrySet()) {
            if (e.getKey().group().equals(group) && e.getKey().name().equals(name)) return e.getValue();
        }
        return null;
    }

    /**
     * Records compressed with `codec` (batched: linger) come back through a consumer with
     * keys, values, null key/value, headers (null header value too) and CreateTime
     * timestamps intact.
     */
    static void compression(Env env, String codec) throws Exception {
        final int n = 200;
        String topic = Env.unique("java-" + codec);
        try (var admin = env.admin()) {
            env.createTopic(admin, topic, 1);
        }
        long base = System.currentTimeMillis() - 3_600_000L;
        String pad = "abcdefghij".repeat(20);
        List<ProducerRecord<String, String>> rs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String key = i == 7 ? null : "k" + i;
            String value = i == 13 ? null : "value-" + i + "-" + pad;
            RecordHeaders hs = new RecordHeaders();
            hs.add("idx", Integer.toString(i).getBytes(UTF_8));
            hs.add("codec", codec.getBytes(UTF_8));
            hs.add("idx", ("again-" + i).getBytes(UTF_8)); // a repeated key keeps its order
            if (i % 10 == 0) hs.add("nul", null);
            rs.add(new ProducerRecord<>(topic, 0, base + i, key, value, hs));
        }
        try (var p = env.producer(Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec, ProducerConfig.LINGER_MS_CONFIG, "50"))) {
            var mds = Env.sendAll(p, rs);
            for (int i = 0; i < n; i++) Env.checkEq((long) i, mds.get(i).offset(), "offset of record " + i);
            Metric rate = metric(p.metrics(), "producer-metrics", "compression-rate-avg");
            Env.check(rate != null && ((Double) rate.metricValue()) < 0.9, codec + " actually compressed (compression-rate-avg " + (rate == null ? null : rate.metricValue()) + ")");
        }
        try (var c = env.consumer(null)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            var got = Env.pollN(c, n, 20_000);
            for (int i = 0; i < n; i++) {
                var r = got.get(i);
                var want = rs.get(i);
                String at = codec + " record " + i;
                Env.checkEq((long) i, r.offset(), at + " offset");
                Env.checkEq(want.key(), r.key(), at + " key");
                Env.checkEq(want.value(), r.value(), at + " value");
                Env.checkEq(want.timestamp(), r.timestamp(), at + " timestamp");
                Env.checkEq(TimestampType.CREATE_TIME, r.timestampType(), at + " timestamp type");
                Header[] wh = want.headers().toArray(), gh = r.headers().toArray();
                Env.checkEq(wh.length, gh.length, at + " header count");
                for (int h = 0; h < wh.length; h++) {
                    Env.checkEq(wh[h].key(), gh[h].key(), at + " header " + h + " key");
                    Env.check(Arrays.equals(wh[h].value(), gh[h].value()), at + " header " + h + " value: expected "
                            + str(wh[h].value()) + ", got " + str(gh[h].value()));
                }
            }
            Env.check(Env.pollFor(c, 200).isEmpty(), "no records past the " + n + " produced");
        }
    }

    private static String str(byte[] b) {
        return b == null ? "null" : "\"" + new String(b, UTF_8) + "\"";
    }
}
