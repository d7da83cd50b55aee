import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

/**
 * Security with the Java client: an operator (the PLAINTEXT listener, a super user) makes a
 * SCRAM-SHA-512 user and grants it one topic and one group with the Admin API; the user,
 * over SASL_SSL, produces and consumes there and is refused elsewhere with Kafka's
 * exceptions; a wrong password is refused.
 */
final class SecurityScenarios {
    static void register(Map<String, ClientTests.Scenario> s) {
        s.put("security_scram_acls", SecurityScenarios::scramAndAcls);
    }

    static Properties secure(Env env, String user, String password) {
        Properties p = env.common();
        p.put("bootstrap.servers", env.secureBootstrap);
        p.put("security.protocol", "SASL_SSL");
        p.put("sasl.mechanism", "SCRAM-SHA-512");
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
                + user + "\" password=\"" + password + "\";");
        p.put("ssl.truststore.type", "PEM");
        p.put("ssl.truststore.location", env.caPath);
        return p;
    }

    static void expectCause(Exception e, Class<?> cause, String what) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (cause.isInstance(t)) return;
        }
        throw new Env.Failure(what + ": expected " + cause.getSimpleName() + ", got " + e);
    }

    static void scramAndAcls(Env env) throws Exception {
        Env.check(env.secureBootstrap != null && env.caPath != null, "needs --secure-bootstrap and --ca");
        String topic = Env.unique("secure");
        String other = Env.unique("other");
        String group = Env.unique("secure-group");
        try (Admin admin = env.admin()) {
            admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion("jane",
                    new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), "jane-secret"))).all().get();
            Map<String, UserScramCredentialsDescription> users = admin.describeUserScramCredentials().all().get();
            Env.check(users.containsKey("jane"), "jane has a credential: " + users);
            var info = users.get("jane").credentialInfos().get(0);
            Env.checkEq(ScramMechanism.SCRAM_SHA_512, info.mechanism(), "mechanism");
            Env.checkEq(8192, info.iterations(), "iterations");
            env.createTopic(admin, topic, 1);
            env.createTopic(admin, other, 1);
            AccessControlEntry write = new AccessControlEntry("User:jane", "*", AclOperation.WRITE, AclPermissionType.ALLOW);
            AccessControlEntry read = new AccessControlEntry("User:jane", "*", AclOperation.READ, AclPermissionType.ALLOW);
            admin.createAcls(List.of(
                    new AclBinding(new ResourcePattern(ResourceType.TOPIC, topic, PatternType.LITERAL), write),
                    new AclBinding(new ResourcePattern(ResourceType.TOPIC, topic, PatternType.LITERAL), read),
                    new AclBinding(new ResourcePattern(ResourceType.GROUP, group, PatternType.LITERAL), read))).all().get();
            var acls = admin.describeAcls(AclBindingFilter.ANY).values().get();
            Env.check(acls.stream().filter(a -> a.entry().principal().equals("User:jane")).count() >= 3, "ACLs listed: " + acls);
        }
        Properties jane = secure(env, "jane", "jane-secret");
        Properties producerProps = (Properties) jane.clone();
        producerProps.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        producerProps.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
        producerProps.put("max.block.ms", "15000");
        producerProps.put("delivery.timeout.ms", "20000");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps)) {
            p.send(new ProducerRecord<>(topic, "k", "hello")).get();
            try {
                p.send(new ProducerRecord<>(other, "k", "nope")).get();
                throw new Env.Failure("produced to a topic jane may not write");
            } catch (ExecutionException e) {
                expectCause(e, TopicAuthorizationException.class, "produce to " + other);
            }
        }
        Properties consumerProps = (Properties) jane.clone();
        consumerProps.putAll(env.consumerProps(group));
        consumerProps.put("bootstrap.servers", env.secureBootstrap);
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps)) {
            c.subscribe(List.of(topic));
            String got = null;
            long deadline = System.currentTimeMillis() + 20_000;
            while (got == null && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(500));
                for (var r : rs) got = r.value();
            }
            Env.checkEq("hello", got, "jane reads her topic in her group");
        }
        Properties strangerGroup = (Properties) jane.clone();
        strangerGroup.putAll(env.consumerProps(Env.unique("not-hers")));
        strangerGroup.put("bootstrap.servers", env.secureBootstrap);
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(strangerGroup)) {
            c.subscribe(List.of(topic));
            try {
                long deadline = System.currentTimeMillis() + 15_000;
                while (System.currentTimeMillis() < deadline) c.poll(Duration.ofMillis(500));
                throw new Env.Failure("consumed in a group jane may not read");
            } catch (GroupAuthorizationException e) {
                // as Kafka answers
            }
        }
        Properties wrong = secure(env, "jane", "wrong");
        try (Admin a = Admin.create(wrong)) {
            try {
                a.listTopics().names().get();
                throw new Env.Failure("a wrong password was accepted");
            } catch (ExecutionException e) {
                expectCause(e, SaslAuthenticationException.class, "wrong password");
            }
        }
    }
}
