import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;

/** One group member: its consumer, what the rebalance listener saw, what it consumed. */
final class Member implements ConsumerRebalanceListener, AutoCloseable {
    final String name;
    final KafkaConsumer<String, String> consumer;
    /** Non-empty revocations, assignments (possibly empty, as the listener is told) and losses, in order. */
    final List<Set<Integer>> revoked = new ArrayList<>();
    final List<Set<Integer>> assigned = new ArrayList<>();
    final List<Set<Integer>> lost = new ArrayList<>();
    /** "partition/offset" of every record polled. */
    final Set<String> seen = new HashSet<>();
    private boolean closed;

    Member(String name, KafkaConsumer<String, String> consumer, String topic) {
        this.name = name;
        this.consumer = consumer;
        consumer.subscribe(List.of(topic), this);
    }

    void poll(long ms) {
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(ms))) seen.add(r.partition() + "/" + r.offset());
    }

    /** The partition numbers currently assigned. */
    Set<Integer> assignment() {
        if (closed) return Set.of();
        return consumer.assignment().stream().map(TopicPartition::partition).collect(Collectors.toCollection(TreeSet::new));
    }

    void clearEvents() {
        revoked.clear();
        assigned.clear();
        lost.clear();
    }

    static Set<Integer> union(List<Set<Integer>> events) {
        Set<Integer> s = new TreeSet<>();
        events.forEach(s::addAll);
        return s;
    }

    private static Set<Integer> parts(Collection<TopicPartition> ps) {
        return ps.stream().map(TopicPartition::partition).collect(Collectors.toCollection(TreeSet::new));
    }

    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> ps) {
        if (!ps.isEmpty()) revoked.add(parts(ps));
        Env.log("%s revoked %s", name, parts(ps));
    }

    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> ps) {
        assigned.add(parts(ps));
        Env.log("%s assigned %s (now %s)", name, parts(ps), parts(consumer.assignment()));
    }

    @Override
    public void onPartitionsLost(Collection<TopicPartition> ps) {
        lost.add(parts(ps));
        Env.log("%s LOST %s", name, parts(ps));
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            consumer.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(Duration.ofSeconds(10)));
        }
    }
}
