import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A consume-transform-produce app for the kill -9 loop of tests/transactions.rs (the Java
 * twin of transactions.py ctp-loop): java CtpLoop BOOTSTRAP TOPIC PARTITIONS copies each
 * record of TOPIC to TOPIC-out as out-VALUE, at most 20 per transaction, the consumed
 * offsets committed in it (sendOffsetsToTransaction). Exits 0 once the committed offsets
 * reach the input's end, 3 on any error: a new instance fences this one and resumes.
 */
public final class CtpLoop {
    public static void main(String[] args) {
        String boot = args[0];
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]);
        String out = topic + "-out";
        var cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, "ctp-loop-java");
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "20");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        var pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, boot);
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "ctp-loop-java-app");
        pp.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "10000");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        // Not closed on the way out: closing waits for a broker that may be dead.
        try {
            // The producer first: its initTransactions fences a previous instance (and
            // aborts its open transaction) before this one reads the committed offsets.
            var p = new KafkaProducer<String, String>(pp);
            p.initTransactions();
            var c = new KafkaConsumer<String, String>(cp);
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) tps.add(new TopicPartition(topic, i));
            c.assign(tps);
            Map<TopicPartition, Long> ends = c.endOffsets(tps);
            System.out.println("started");
            while (true) {
                var records = c.poll(Duration.ofMillis(500));
                if (records.isEmpty()) {
                    var committed = c.committed(new HashSet<>(tps));
                    boolean done = tps.stream()
                            .allMatch(tp -> ends.get(tp) == 0
                                    || (committed.get(tp) != null && committed.get(tp).offset() >= ends.get(tp)));
                    if (done) {
                        System.out.println("done");
                        System.out.flush();
                        System.exit(0);
                    }
                    continue;
                }
                p.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (var r : records) {
                    p.send(new ProducerRecord<>(out, r.partition(), r.key(), "out-" + r.value()));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                p.sendOffsetsToTransaction(offsets, c.groupMetadata());
                p.commitTransaction();
            }
        } catch (Throwable e) {
            System.out.println("failed " + e);
            System.out.flush();
            System.exit(3);
        }
    }
}
