import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.RangeAssignor;

/** Consumer groups: the classic protocol with two assignors, and KIP-848's protocol. */
final class GroupScenarios {
    static void register(Map<String, ClientTests.Scenario> m) {
        m.put("group_range", env -> twoMembers(env, RangeAssignor.class.getName(), false));
        m.put("group_cooperative_sticky", env -> twoMembers(env, CooperativeStickyAssignor.class.getName(), true));
        m.put("consumer_protocol", GroupScenarios::consumerProtocol);
    }

    static final int PARTITIONS = 4, PER_PARTITION = 10;

    /**
     * Two members of one group split 4 partitions 2/2; every record is consumed; when one
     * leaves (LeaveGroup on close), the other gets all 4 well before the session timeout.
     * Cooperative: the first member keeps its 4 until the second joins, then gives up only
     * the 2 that move (never all), and on the second's leave gains 2 without revoking any.
     */
    static void twoMembers(Env env, String assignor, boolean cooperative) throws Exception {
        String topic = Env.unique("java-grp"), group = Env.unique("java-grp-g");
        try (var admin = env.admin()) {
            env.createTopic(admin, topic, PARTITIONS);
        }
        env.produce(topic, PARTITIONS, PER_PARTITION);
        Set<Integer> all = Set.of(0, 1, 2, 3);
        try (Member a = member(env, "A", group, topic, assignor)) {
            List<Member> ms = new ArrayList<>(List.of(a));
            if (cooperative) {
                // A alone first: all 4.
                Env.pollAllUntil(ms, 20_000, "A alone assigned all partitions", () -> a.assignment().equals(all));
                a.clearEvents();
            }
            try (Member b = member(env, "B", group, topic, assignor)) {
                ms.add(b);
                Env.pollAllUntil(ms, 30_000, "A and B with 2 partitions each",
                        () -> a.assignment().size() == 2 && b.assignment().size() == 2);
                Set<Integer> union = new TreeSet<>(a.assignment());
                union.addAll(b.assignment());
                Env.checkEq(all, union, "A's and B's partitions together");
                if (!cooperative) {
                    // Range: each member gets a contiguous range of the sorted partitions.
                    for (Member m : ms) {
                        Set<Integer> s = m.assignment();
                        Env.check(s.equals(Set.of(0, 1)) || s.equals(Set.of(2, 3)), "range assignment of " + m.name + ": " + s);
                    }
                } else {
                    Env.checkEq(b.assignment(), Member.union(a.revoked), "A's revoked partitions (only those that moved to B)");
                    for (Set<Integer> r : a.revoked) Env.check(r.size() < 4, "A revoked all its partitions at once: " + a.revoked);
                    Env.checkEq(List.of(), a.lost, "A's lost partitions");
                }
                // Every record consumed by one member or the other.
                Env.pollAllUntil(ms, 20_000, "all " + PARTITIONS * PER_PARTITION + " records consumed", () -> {
                    Set<String> s = new HashSet<>(a.seen);
                    s.addAll(b.seen);
                    return s.size() == PARTITIONS * PER_PARTITION;
                });
                Set<Integer> bHad = b.assignment();
                a.clearEvents();
                long t0 = System.currentTimeMillis();
                b.close();
                ms.remove(b);
                Env.pollAllUntil(ms, 20_000, "A assigned all partitions after B left", () -> a.assignment().equals(all));
                long took = System.currentTimeMillis() - t0;
                Env.log("%s: A had all partitions %d ms after B's close", assignor, took);
                // Session timeout 10 s: faster means B's LeaveGroup rebalanced the group.
                Env.check(took < 8_000, "A got B's partitions only after " + took + " ms: B's LeaveGroup did not trigger a rebalance");
                if (cooperative) {
                    Env.checkEq(List.of(), a.revoked, "A's revocations when B left (cooperative: none)");
                    Env.checkEq(bHad, Member.union(a.assigned), "partitions newly assigned to A when B left");
                }
            }
        }
    }

    static Member member(Env env, String name, String group, String topic, String assignor) {
        Properties p = env.consumerProps(group);
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor);
        return new Member(name, new KafkaConsumer<>(p), topic);
    }

    /**
     * group.protocol=consumer (KIP-848, ConsumerGroupHeartbeat). Kafka 4.4 serves it: the
     * consumer reads the records. A broker without it must make the consumer fail with an
     * error that names the protocol (not hang, not a bare timeout).
     */
    static void consumerProtocol(Env env) throws Exception {
        String topic = Env.unique("java-848"), group = Env.unique("java-848-g");
        try (var admin = env.admin()) {
            env.createTopic(admin, topic, 2);
        }
        env.produce(topic, 2, 5);
        Properties p = env.consumerProps(null);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
        Throwable error = null;
        int got = 0;
        try (var c = new KafkaConsumer<String, String>(p)) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 30_000;
            try {
                while (got < 10 && System.currentTimeMillis() < deadline) got += c.poll(Duration.ofMillis(100)).count();
                if (got == 10) {
                    c.commitSync();
                    Env.checkEq(2, c.assignment().size(), "partitions assigned with group.protocol=consumer");
                }
            } catch (org.apache.kafka.common.KafkaException e) {
                error = e;
            }
        } catch (org.apache.kafka.common.KafkaException e) {
            // close() may report the same error again.
            if (error == null) error = e;
        }
        if (error == null) {
            Env.checkEq(10, got, "records consumed with group.protocol=consumer within 30 s (neither worked nor failed)");
            System.err.println("[consumer_protocol] group.protocol=consumer works: 10 records consumed");
            return;
        }
        String text = ClientTests.oneLine(error);
        System.err.println("[consumer_protocol] group.protocol=consumer failed with: " + text);
        Env.check(!env.kafka, "Kafka 4.4 serves group.protocol=consumer, yet: " + text);
        String lower = text.toLowerCase();
        Env.check(lower.contains("group protocol") || lower.contains("group.protocol"),
                "the error does not name the unsupported group protocol: " + text);
    }

    private GroupScenarios() {}
}
