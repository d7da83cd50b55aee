import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java client over each security protocol and SASL mechanism (tests/security.rs):
 * java SecurityMatrix SSL_ADDR SASL_PLAINTEXT_ADDR SASL_SSL_ADDR CA_PEM TOPIC. Over SSL
 * (server authentication), then SASL_PLAINTEXT and SASL_SSL each with PLAIN (carol, from
 * the listeners' JAAS config) and SCRAM-SHA-256 and SCRAM-SHA-512 (dave, made by the test):
 * one record produced with acks=all to partition 0 of TOPIC and read back at its offset.
 * Prints "PASS <protocol>[/<mechanism>]" for each; exits 1 at the first failure.
 */
public final class SecurityMatrix {
    public static void main(String[] args) {
        String ssl = args[0], saslPlaintext = args[1], saslSsl = args[2], ca = args[3], topic = args[4];
        List<String[]> combos = new ArrayList<>();
        combos.add(new String[] {"SSL", ssl, null, null, null});
        for (String[] listener : new String[][] {{"SASL_PLAINTEXT", saslPlaintext}, {"SASL_SSL", saslSsl}}) {
            combos.add(new String[] {listener[0], listener[1], "PLAIN", "carol", "carol-plain"});
            for (String mechanism : new String[] {"SCRAM-SHA-256", "SCRAM-SHA-512"}) {
                combos.add(new String[] {listener[0], listener[1], mechanism, "dave", "dave-secret"});
            }
        }
        for (String[] c : combos) {
            String name = c[0] + (c[2] == null ? "" : "/" + c[2]);
            try {
                roundTrip(props(c, ca), topic, "java " + name);
                System.out.println("PASS " + name);
            } catch (Exception e) {
                System.out.println("FAIL " + name + ": " + e);
                System.out.flush();
                System.exit(1);
            }
        }
        System.exit(0);
    }

    static Properties props(String[] c, String ca) {
        Properties p = new Properties();
        p.put("bootstrap.servers", c[1]);
        p.put("security.protocol", c[0]);
        if (c[0].endsWith("SSL")) {
            p.put("ssl.truststore.type", "PEM");
            p.put("ssl.truststore.location", ca);
        }
        if (c[2] != null) {
            String module = c[2].equals("PLAIN")
                    ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                    : "org.apache.kafka.common.security.scram.ScramLoginModule";
            p.put("sasl.mechanism", c[2]);
            p.put("sasl.jaas.config", module + " required username=\"" + c[3] + "\" password=\"" + c[4] + "\";");
        }
        return p;
    }

    static void roundTrip(Properties base, String topic, String value) throws Exception {
        Properties pp = new Properties();
        pp.putAll(base);
        pp.put("acks", "all");
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        long offset;
        try (var producer = new KafkaProducer<String, String>(pp)) {
            offset = producer.send(new ProducerRecord<>(topic, 0, null, value)).get(30, TimeUnit.SECONDS).offset();
        }
        Properties cp = new Properties();
        cp.putAll(base);
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        try (var consumer = new KafkaConsumer<String, String>(cp)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seek(tp, offset);
            long deadline = System.currentTimeMillis() + 30_000;
            while (System.currentTimeMillis() < deadline) {
                for (var r : consumer.poll(Duration.ofMillis(500))) {
                    if (r.offset() == offset) {
                        if (!value.equals(r.value())) {
                            throw new IllegalStateException("read back " + r.value() + ", wrote " + value);
                        }
                        return;
                    }
                }
            }
            throw new IllegalStateException("offset " + offset + " not read back in 30 s");
        }
    }
}
