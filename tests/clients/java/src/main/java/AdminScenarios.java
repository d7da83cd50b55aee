import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.GroupSubscribedToTopicException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownMemberIdException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/** AdminClient: topics, configs, the cluster, consumer groups, records and offsets. */
final class AdminScenarios {
    static void register(Map<String, ClientTests.Scenario> m) {
        m.put("admin_topics", AdminScenarios::topics);
        m.put("admin_configs", AdminScenarios::configs);
        m.put("admin_cluster", AdminScenarios::cluster);
        m.put("admin_groups", AdminScenarios::groups);
        m.put("admin_delete_records", AdminScenarios::deleteRecords);
        m.put("admin_list_offsets", AdminScenarios::listOffsets);
        m.put("admin_list_offsets_max_timestamp", AdminScenarios::listOffsetsMaxTimestamp);
    }

    /** createTopics (configs, duplicate, validateOnly, bad config), describeTopics, createPartitions, deleteTopics. */
    static void topics(Env env) throws Exception {
        String topic = Env.unique("java-adm-topic");
        try (Admin admin = env.admin()) {
            Map<String, String> cfg = Map.of("retention.ms", "3600000", "cleanup.policy", "compact", "max.message.bytes", "200000");
            env.createTopic(admin, topic, 2, cfg);
            Env.check(admin.listTopics().names().get().contains(topic), "listTopics shows the new topic");
            Env.expectError(admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all(), TopicExistsException.class, "creating it again");

            String dry = Env.unique("java-adm-dry");
            admin.createTopics(List.of(new NewTopic(dry, 3, (short) 1)), new CreateTopicsOptions().validateOnly(true)).all().get();
            Env.check(!admin.listTopics().names().get().contains(dry), "validateOnly created no topic");
            Env.expectError(admin.createTopics(List.of(new NewTopic(Env.unique("java-adm-bad"), 1, (short) 1).configs(Map.of("retention.ms", "soon")))).all(),
                    InvalidConfigurationException.class, "retention.ms=soon");

            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            Env.checkEq(topic, d.name(), "described name");
            Env.check(!d.isInternal(), "not internal");
            Env.checkEq(2, d.partitions().size(), "partitions");
            for (var p : d.partitions()) {
                Env.check(p.leader() != null, "partition " + p.partition() + " has a leader");
                Env.checkEq(1, p.replicas().size(), "replicas of partition " + p.partition());
                Env.checkEq(1, p.isr().size(), "ISR of partition " + p.partition());
            }
            Env.check(d.topicId() != null && !d.topicId().toString().isEmpty(), "topic id");

            Config c = topicConfig(admin, topic);
            for (var e : cfg.entrySet()) {
                ConfigEntry ce = c.get(e.getKey());
                Env.check(ce != null, "describeConfigs has " + e.getKey());
                Env.checkEq(e.getValue(), ce.value(), e.getKey());
                Env.checkEq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, ce.source(), e.getKey() + " source");
            }
            ConfigEntry seg = c.get("segment.bytes");
            Env.check(seg != null && seg.value() != null, "describeConfigs has segment.bytes: " + seg);
            Env.check(seg.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "segment.bytes is not a topic override: " + seg);

            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get();
            Env.waitFor(10_000, "4 partitions described", () -> admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size() == 4);
            Env.expectError(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all(), InvalidPartitionsException.class, "decreasing partitions to 3");
            // The new partitions take records.
            try (var p = env.producer()) {
                Env.sendAll(p, List.of(new ProducerRecord<>(topic, 3, "k", "v")));
            }

            admin.deleteTopics(List.of(topic)).all().get();
            Env.waitFor(15_000, "the deleted topic gone from listTopics", () -> !admin.listTopics().names().get().contains(topic));
            Env.waitFor(15_000, "describeTopics of the deleted topic: UnknownTopicOrPartitionException", () -> {
                try {
                    admin.describeTopics(List.of(topic)).allTopicNames().get();
                    return false;
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof UnknownTopicOrPartitionException) return true;
                    throw e;
                }
            });
            Env.expectError(admin.deleteTopics(List.of(topic)).all(), UnknownTopicOrPartitionException.class, "deleting it again");
        }
    }

    static Config topicConfig(Admin admin, String topic) throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        return admin.describeConfigs(List.of(r)).all().get().get(r);
    }

    /** incrementalAlterConfigs SET/DELETE/APPEND on a topic, SET/DELETE on the broker; describeConfigs shows each. */
    static void configs(Env env) throws Exception {
        String topic = Env.unique("java-adm-cfg");
        try (Admin admin = env.admin()) {
            env.createTopic(admin, topic, 1, Map.of("max.message.bytes", "300000"));
            ConfigResource tr = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            admin.incrementalAlterConfigs(Map.of(tr, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("max.message.bytes", null), AlterConfigOp.OpType.DELETE),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND)))).all().get();
            Env.waitFor(10_000, "the topic's altered configs described", () -> {
                Config c = topicConfig(admin, topic);
                return "7200000".equals(c.get("retention.ms").value())
                        && c.get("retention.ms").source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG
                        && c.get("max.message.bytes").source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG
                        && c.get("cleanup.policy").source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG;
            });
            Config c = topicConfig(admin, topic);
            Set<String> policy = Set.of(c.get("cleanup.policy").value().split(","));
            Env.checkEq(Set.of("delete", "compact"), policy, "cleanup.policy after APPEND compact");
            Env.check(!"300000".equals(c.get("max.message.bytes").value()), "max.message.bytes back to its default: " + c.get("max.message.bytes"));
            Env.expectError(admin.incrementalAlterConfigs(Map.of(tr, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "later"), AlterConfigOp.OpType.SET)))).all(),
                    InvalidConfigurationException.class, "SET retention.ms=later");

            // The broker: its configs, and a dynamic one set and removed again (the
            // reference broker is shared: the key chosen changes nothing another test sees).
            String id = admin.describeCluster().nodes().get().iterator().next().idString();
            ConfigResource br = new ConfigResource(ConfigResource.Type.BROKER, id);
            Config bc = admin.describeConfigs(List.of(br)).all().get().get(br);
            Env.check(bc.get("log.segment.bytes") != null && bc.get("log.segment.bytes").value() != null, "broker config log.segment.bytes described");
            Env.check(bc.get("num.partitions") != null, "broker config num.partitions described");
            final String key = "log.cleaner.delete.retention.ms", value = "86400123";
            admin.incrementalAlterConfigs(Map.of(br, List.of(new AlterConfigOp(new ConfigEntry(key, value), AlterConfigOp.OpType.SET)))).all().get();
            try {
                Env.waitFor(10_000, "broker " + key + "=" + value + " (DYNAMIC_BROKER_CONFIG) described", () -> {
                    ConfigEntry e = admin.describeConfigs(List.of(br)).all().get().get(br).get(key);
                    return e != null && value.equals(e.value()) && e.source() == ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG;
                });
            } finally {
                admin.incrementalAlterConfigs(Map.of(br, List.of(new AlterConfigOp(new ConfigEntry(key, null), AlterConfigOp.OpType.DELETE)))).all().get();
            }
            Env.waitFor(10_000, "broker " + key + " back to its default", () -> {
                ConfigEntry e = admin.describeConfigs(List.of(br)).all().get().get(br).get(key);
                return e != null && !value.equals(e.value()) && e.source() != ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG;
            });
        }
    }

    /** describeCluster (cluster id, nodes, controller, authorized operations) and a topic's authorized operations. */
    static void cluster(Env env) throws Exception {
        String topic = Env.unique("java-adm-cluster");
        try (Admin admin = env.admin()) {
            DescribeClusterResult r = admin.describeCluster(new DescribeClusterOptions().includeAuthorizedOperations(true));
            String id = r.clusterId().get();
            Env.check(id != null && !id.isEmpty(), "cluster id: " + id);
            var nodes = r.nodes().get();
            Env.check(!nodes.isEmpty(), "nodes");
            var node = nodes.iterator().next();
            Env.check(node.id() >= 0 && node.port() > 0 && !node.host().isEmpty(), "node " + node);
            Env.check(r.controller().get() != null, "controller");
            Set<AclOperation> ops = r.authorizedOperations().get();
            Env.check(ops != null && ops.contains(AclOperation.DESCRIBE) && ops.contains(AclOperation.ALTER),
                    "cluster authorized operations (no authorizer: every cluster operation) include DESCRIBE and ALTER: " + ops);
            Env.log("cluster %s, nodes %s, controller %s, operations %s", id, nodes, r.controller().get(), ops);

            env.createTopic(admin, topic, 1);
            TopicDescription d = admin.describeTopics(List.of(topic), new DescribeTopicsOptions().includeAuthorizedOperations(true))
                    .allTopicNames().get().get(topic);
            Set<AclOperation> tops = d.authorizedOperations();
            Env.check(tops != null && tops.contains(AclOperation.READ) && tops.contains(AclOperation.WRITE) && tops.contains(AclOperation.DESCRIBE),
                    "topic authorized operations include READ, WRITE and DESCRIBE: " + tops);
        }
    }

    /**
     * A classic group: listConsumerGroups/listGroups, describeConsumerGroups,
     * listConsumerGroupOffsets; while it has a member: alter offsets (UNKNOWN_MEMBER_ID),
     * delete the group (NON_EMPTY_GROUP), delete offsets of its subscribed topic
     * (GROUP_SUBSCRIBED_TO_TOPIC); once empty: alter, delete offsets, delete the group.
     */
    @SuppressWarnings("deprecation")
    static void groups(Env env) throws Exception {
        String topic = Env.unique("java-adm-grp"), group = Env.unique("java-adm-grp-g");
        TopicPartition p0 = new TopicPartition(topic, 0), p1 = new TopicPartition(topic, 1);
        try (Admin admin = env.admin()) {
            env.createTopic(admin, topic, 2);
            env.produce(topic, 2, 10);
            try (var c = env.consumer(group)) {
                c.subscribe(List.of(topic));
                Env.pollN(c, 20, 20_000);
                c.commitSync();

                Env.waitFor(10_000, "listConsumerGroups shows " + group,
                        () -> admin.listConsumerGroups().all().get().stream().anyMatch(g -> g.groupId().equals(group)));
                Collection<GroupListing> gl = admin.listGroups(ListGroupsOptions.forConsumerGroups()).all().get();
                GroupListing mine = gl.stream().filter(g -> g.groupId().equals(group)).findFirst().orElse(null);
                Env.check(mine != null, "listGroups(forConsumerGroups) shows " + group);
                Env.checkEq("consumer", mine.protocol(), "listed protocol type");
                Env.checkEq(java.util.Optional.of(GroupState.STABLE), mine.groupState(), "listed state");
                Env.checkEq(java.util.Optional.of(GroupType.CLASSIC), mine.type(), "listed type");
                Env.check(admin.listGroups(ListGroupsOptions.forConsumerGroups().inGroupStates(Set.of(GroupState.EMPTY))).all().get().stream()
                        .noneMatch(g -> g.groupId().equals(group)), "listGroups(EMPTY) leaves out the stable group");

                ConsumerGroupDescription gd = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                Env.checkEq(GroupState.STABLE, gd.groupState(), "described state");
                Env.checkEq(GroupType.CLASSIC, gd.type(), "described type");
                Env.checkEq("range", gd.partitionAssignor(), "described assignor");
                Env.check(!gd.isSimpleConsumerGroup(), "not a simple group");
                Env.checkEq(1, gd.members().size(), "described members");
                var md = gd.members().iterator().next();
                Env.checkEq(Set.of(p0, p1), md.assignment().topicPartitions(), "described member assignment");
                Env.checkEq(c.groupMetadata().memberId(), md.consumerId(), "described member id");

                Env.checkEq(Map.of(p0, "10:", p1, "10:"), offsets(admin, group), "listConsumerGroupOffsets");

                Env.expectError(admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(1))).all(),
                        UnknownMemberIdException.class, "alterConsumerGroupOffsets on a group with a member");
                Env.expectError(admin.deleteConsumerGroups(List.of(group)).all(), GroupNotEmptyException.class, "deleteConsumerGroups on a group with a member");
                Env.expectError(admin.deleteConsumerGroupOffsets(group, Set.of(p0)).all(), GroupSubscribedToTopicException.class,
                        "deleteConsumerGroupOffsets of the topic the member subscribes to");
                Env.checkEq(Map.of(p0, "10:", p1, "10:"), offsets(admin, group), "offsets after the refused changes");
            }
            // The member left: the group is empty.
            Env.waitFor(10_000, "the group EMPTY after its member left",
                    () -> admin.describeConsumerGroups(List.of(group)).all().get().get(group).groupState() == GroupState.EMPTY);
            Env.checkEq(0, admin.describeConsumerGroups(List.of(group)).all().get().get(group).members().size(), "members of the empty group");

            admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(3), p1, new OffsetAndMetadata(5, "five"))).all().get();
            Env.checkEq(Map.of(p0, "3:", p1, "5:five"), offsets(admin, group), "offsets after alterConsumerGroupOffsets");
            admin.deleteConsumerGroupOffsets(group, Set.of(p0)).all().get();
            Env.checkEq(Map.of(p1, "5:five"), offsets(admin, group), "offsets after deleteConsumerGroupOffsets(p0)");
            // A member resumes where the admin put it (p0: no offset, so earliest).
            try (var c = env.consumer(group)) {
                c.subscribe(List.of(topic));
                var got = Env.pollN(c, 15, 20_000);
                Map<Integer, Long> first = new HashMap<>();
                for (var r : got) first.putIfAbsent(r.partition(), r.offset());
                Env.checkEq(Map.of(0, 0L, 1, 5L), first, "first offsets of a member after the admin's changes");
            }

            admin.deleteConsumerGroups(List.of(group)).all().get();
            Env.waitFor(10_000, "listConsumerGroups without the deleted group",
                    () -> admin.listConsumerGroups().all().get().stream().noneMatch(g -> g.groupId().equals(group)));
            try {
                ConsumerGroupDescription dead = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                Env.checkEq(GroupState.DEAD, dead.groupState(), "state of the deleted group");
            } catch (ExecutionException e) {
                Env.check(e.getCause() instanceof GroupIdNotFoundException, "describing the deleted group: " + ClientTests.oneLine(e.getCause()));
            }
            Env.checkEq(Map.of(), offsets(admin, group), "offsets of the deleted group");
            Env.expectError(admin.deleteConsumerGroups(List.of(group)).all(), GroupIdNotFoundException.class, "deleting the group again");
        }
    }

    /** The group's committed offsets as "offset:metadata", partitions without one left out. */
    static Map<TopicPartition, String> offsets(Admin admin, String group) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> m = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        return m.entrySet().stream().filter(e -> e.getValue() != null)
                .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().offset() + ":" + e.getValue().metadata()));
    }

    /** deleteRecords moves the log start: listOffsets earliest and a consumer from the beginning follow. */
    static void deleteRecords(Env env) throws Exception {
        String topic = Env.unique("java-adm-delrec");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin admin = env.admin()) {
            env.createTopic(admin, topic, 1);
            env.produce(topic, 1, 10);
            var low = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp).get();
            Env.checkEq(4L, low.lowWatermark(), "low watermark after deleteRecords(before 4)");
            Env.checkEq(4L, listOffset(admin, tp, OffsetSpec.earliest()).offset(), "listOffsets earliest after deleteRecords");
            Env.checkEq(10L, listOffset(admin, tp, OffsetSpec.latest()).offset(), "listOffsets latest after deleteRecords");
            try (var c = env.consumer(null)) {
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                var got = Env.pollN(c, 6, 15_000);
                Env.checkEq(4L, got.get(0).offset(), "first offset read from the beginning after deleteRecords");
                Env.checkEq("v-0-4", got.get(0).value(), "its value");
                // Below the log start: OFFSET_OUT_OF_RANGE, reset to the earliest (4).
                c.seek(tp, 1);
                got = Env.pollN(c, 1, 15_000);
                Env.checkEq(4L, got.get(0).offset(), "first offset after seek(1) below the log start");
            }
            Env.expectError(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(100))).lowWatermarks().get(tp),
                    OffsetOutOfRangeException.class, "deleteRecords past the high watermark");
            low = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(-1))).lowWatermarks().get(tp).get();
            Env.checkEq(10L, low.lowWatermark(), "low watermark after deleteRecords(-1: the high watermark)");
            Env.checkEq(10L, listOffset(admin, tp, OffsetSpec.earliest()).offset(), "listOffsets earliest after deleting everything");
        }
    }

    static ListOffsetsResultInfo listOffset(Admin admin, TopicPartition tp, OffsetSpec spec) throws Exception {
        return admin.listOffsets(Map.of(tp, spec)).partitionResult(tp).get();
    }

    /** 10 records, timestamps base + i s except record 6 (the newest, base + 100 s). */
    static TopicPartition timestampedTopic(Env env, Admin admin, String prefix, long base) throws Exception {
        String topic = Env.unique(prefix);
        env.createTopic(admin, topic, 1);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (var p = env.producer()) {
            List<ProducerRecord<String, String>> rs = new java.util.ArrayList<>();
            for (int i = 0; i < 10; i++) rs.add(new ProducerRecord<>(topic, 0, base + (i == 6 ? 100_000L : i * 1000L), "k" + i, "v" + i));
            Env.sendAll(p, rs);
        }
        return tp;
    }

    /** listOffsets earliest, latest, forTimestamp (between, exact, before, after all). */
    static void listOffsets(Env env) throws Exception {
        long base = System.currentTimeMillis() - 3_600_000L;
        try (Admin admin = env.admin()) {
            TopicPartition tp = timestampedTopic(env, admin, "java-adm-lo", base);
            Env.checkEq(0L, listOffset(admin, tp, OffsetSpec.earliest()).offset(), "earliest");
            Env.checkEq(10L, listOffset(admin, tp, OffsetSpec.latest()).offset(), "latest");
            var r = listOffset(admin, tp, OffsetSpec.forTimestamp(base + 2_500L));
            Env.checkEq(3L, r.offset(), "forTimestamp(base + 2.5 s) offset");
            Env.checkEq(base + 3_000L, r.timestamp(), "forTimestamp(base + 2.5 s) timestamp");
            r = listOffset(admin, tp, OffsetSpec.forTimestamp(base + 5_000L));
            Env.checkEq(5L, r.offset(), "forTimestamp(base + 5 s) offset (exact)");
            // The first record at or after base + 6 s is record 6 (base + 100 s).
            r = listOffset(admin, tp, OffsetSpec.forTimestamp(base + 5_500L));
            Env.checkEq(6L, r.offset(), "forTimestamp(base + 5.5 s) offset");
            Env.checkEq(base + 100_000L, r.timestamp(), "forTimestamp(base + 5.5 s) timestamp");
            Env.checkEq(0L, listOffset(admin, tp, OffsetSpec.forTimestamp(base - 1_000L)).offset(), "forTimestamp(before all)");
            r = listOffset(admin, tp, OffsetSpec.forTimestamp(base + 200_000L));
            Env.checkEq(-1L, r.offset(), "forTimestamp(after all) offset");
        }
    }

    /** listOffsets OffsetSpec.maxTimestamp() (ListOffsets timestamp -3, v7+): the newest record's offset and timestamp. */
    static void listOffsetsMaxTimestamp(Env env) throws Exception {
        long base = System.currentTimeMillis() - 3_600_000L;
        try (Admin admin = env.admin()) {
            TopicPartition tp = timestampedTopic(env, admin, "java-adm-lomax", base);
            var r = listOffset(admin, tp, OffsetSpec.maxTimestamp());
            Env.checkEq(6L, r.offset(), "maxTimestamp offset");
            Env.checkEq(base + 100_000L, r.timestamp(), "maxTimestamp timestamp");
        }
    }

    private AdminScenarios() {}
}
