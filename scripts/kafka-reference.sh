#!/usr/bin/env bash
# Apache Kafka 4.4.0 as the reference broker for the client-family tests: one node in KRaft
# mode (broker and controller in one process), from the Maven jars in
# tests/clients/kafka-dist/target/lib (fetched by tests/clients/kafka-dist/install.sh).
#
#   scripts/kafka-reference.sh start            start it (if not running), wait until it
#                                               answers, print its bootstrap address
#   scripts/kafka-reference.sh stop [--clean]   stop it (SIGTERM, then SIGKILL); --clean
#                                               also deletes its data dir
#   scripts/kafka-reference.sh status           exit 0 if it is running
#   scripts/kafka-reference.sh bootstrap        print the bootstrap address
#
# Then: SLUICE_TEST_BOOTSTRAP=$(scripts/kafka-reference.sh bootstrap) cargo test --test <family>
#
# Environment:
#   KAFKA_REF_PORT             client listener port (default 19092), on 127.0.0.1
#   KAFKA_REF_CONTROLLER_PORT  controller listener port (default 19093)
#   KAFKA_REF_DIR              data dir: config, log dirs, logs, pid file
#                              (default <repo>/target/kafka-reference)
#   KAFKA_HEAP_OPTS            default -Xmx1G -Xms1G (kafka-server-start.sh's default)
#   KAFKA_REF_START_TIMEOUT    seconds `start` waits for the broker to answer (default 90)
#   KAFKA_REF_SASL_SSL_PORT    with KAFKA_REF_KEYSTORE (a PEM file: the broker's key and
#                              certificate): also a SASL_SSL listener on this port, with
#                              SCRAM-SHA-512, StandardAuthorizer and super.users=User:ANONYMOUS
#                              (the PLAINTEXT listener's principal), as tests/security.rs
#                              runs Sluice for the Java security scenario
#   JAVA_HOME                  the JDK to use (default: `java` on PATH if it is 17+, else
#                              /usr/lib/jvm/temurin-25-jdk-amd64)
#
# The broker's settings include the ones Sluice's client-family tests run with
# (FAMILY_OVERRIDES in tests/common/external.rs): keep the two lists alike.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${KAFKA_REF_PORT:-19092}
CPORT=${KAFKA_REF_CONTROLLER_PORT:-19093}
DIR=${KAFKA_REF_DIR:-$ROOT/target/kafka-reference}
LIB=$ROOT/tests/clients/kafka-dist/target/lib
START_TIMEOUT=${KAFKA_REF_START_TIMEOUT:-90}
STOP_TIMEOUT=30
BOOTSTRAP=127.0.0.1:$PORT
SPORT=${KAFKA_REF_SASL_SSL_PORT:-}
KEYSTORE=${KAFKA_REF_KEYSTORE:-}
PIDFILE=$DIR/kafka.pid

die() { echo "kafka-reference: $*" >&2; exit 1; }
say() { echo "kafka-reference: $*" >&2; }

pick_java() {
    local j
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
        j=$JAVA_HOME/bin/java
    else
        j=$(command -v java || true)
    fi
    if [ -n "$j" ]; then
        local major
        major=$("$j" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
        if [ -n "$major" ] && [ "${major%%.*}" -ge 17 ] 2>/dev/null; then
            echo "$j"
            return
        fi
    fi
    [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ] && { echo /usr/lib/jvm/temurin-25-jdk-amd64/bin/java; return; }
    die "Kafka 4.4 needs Java 17 or newer (set JAVA_HOME)"
}

# The pid in the pid file, if that process is alive and is this data dir's Kafka.
running_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "kafka.Kafka $DIR/server.properties" || return 1
    echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

tool_java_opts=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto)

write_config() {
    mkdir -p "$DIR/data" "$DIR/logs"
    cat >"$DIR/server.properties" <<EOF
# Written by scripts/kafka-reference.sh (rewritten on every start). Only what a single
# node needs and the tests' settings: everything else keeps Kafka's default, as on Sluice
# (kafka-configs.sh --describe shows a key set here as STATIC_BROKER_CONFIG).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# The client-family tests' settings (tests/common/external.rs FAMILY_OVERRIDES).
group.initial.rebalance.delay.ms=0
num.partitions=1
auto.create.topics.enable=true
EOF
    if [ -n "$SPORT" ]; then
        [ -f "$KEYSTORE" ] || die "KAFKA_REF_SASL_SSL_PORT needs KAFKA_REF_KEYSTORE (a PEM key and certificate)"
        sed -i -e "s|^listeners=.*|&,SASL_SSL://127.0.0.1:$SPORT|" \
            -e "s|^advertised.listeners=.*|&,SASL_SSL://127.0.0.1:$SPORT|" \
            -e "s|^listener.security.protocol.map=.*|&,SASL_SSL:SASL_SSL|" "$DIR/server.properties"
        cat >>"$DIR/server.properties" <<EOF
# The SASL_SSL listener (KAFKA_REF_SASL_SSL_PORT): SCRAM users and ACLs.
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$KEYSTORE
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
EOF
    fi
    cat >"$DIR/log4j2.properties" <<EOF
# Written by scripts/kafka-reference.sh: the broker logs to $DIR/logs/server.log.
name=kafka-reference
appender.file.type=RollingFile
appender.file.name=FILE
appender.file.fileName=$DIR/logs/server.log
appender.file.filePattern=$DIR/logs/server.log.%i
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
appender.file.policies.type=Policies
appender.file.policies.size.type=SizeBasedTriggeringPolicy
appender.file.policies.size.size=50MB
appender.file.strategy.type=DefaultRolloverStrategy
appender.file.strategy.max=3
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=FILE
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.apache.name=org.apache.kafka
logger.apache.level=INFO
logger.request.name=kafka.request.logger
logger.request.level=WARN
EOF
}

cmd_start() {
    local pid
    if pid=$(running_pid); then
        say "already running (pid $pid)"
        echo "$BOOTSTRAP"
        return 0
    fi
    if [ ! -f "$LIB/.complete" ]; then
        say "fetching the Kafka jars (tests/clients/kafka-dist/install.sh)"
        bash "$ROOT/tests/clients/kafka-dist/install.sh" >&2
    fi
    port_open "$PORT" && die "port $PORT is in use by another process (set KAFKA_REF_PORT)"
    port_open "$CPORT" && die "port $CPORT is in use by another process (set KAFKA_REF_CONTROLLER_PORT)"
    local java
    java=$(pick_java)
    write_config
    if [ ! -f "$DIR/data/meta.properties" ]; then
        local cluster_id
        cluster_id=$("$java" "${tool_java_opts[@]}" -cp "$LIB/*" kafka.tools.StorageTool random-uuid)
        say "formatting $DIR/data (cluster id $cluster_id)"
        "$java" "${tool_java_opts[@]}" -Dlog4j2.configurationFile="$DIR/log4j2.properties" -cp "$LIB/*" \
            kafka.tools.StorageTool format --config "$DIR/server.properties" --cluster-id "$cluster_id" >&2 \
            || die "formatting the storage failed"
    fi
    # As kafka-server-start.sh / kafka-run-class.sh run it.
    local heap=${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}
    # shellcheck disable=SC2086
    setsid "$java" $heap -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$DIR/log4j2.properties" -Dkafka.logs.dir="$DIR/logs" \
        -cp "$LIB/*" kafka.Kafka "$DIR/server.properties" \
        </dev/null >"$DIR/logs/kafka.out" 2>&1 &
    pid=$!
    echo "$pid" >"$PIDFILE"
    say "started pid $pid; waiting up to ${START_TIMEOUT}s for $BOOTSTRAP (log: $DIR/logs/server.log)"
    local deadline=$((SECONDS + START_TIMEOUT))
    while ! port_open "$PORT"; do
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$DIR/logs/kafka.out" "$DIR/logs/server.log" >&2 2>/dev/null || true; die "Kafka exited during startup"; }
        [ $SECONDS -lt $deadline ] || { cmd_stop >/dev/null 2>&1 || true; die "Kafka did not listen on $PORT within ${START_TIMEOUT}s"; }
        sleep 0.5
    done
    # Listening is not serving: wait until a metadata round trip (kafka-topics --list) works.
    while true; do
        local left=$((deadline - SECONDS))
        [ $left -gt 0 ] || { cmd_stop >/dev/null 2>&1 || true; die "Kafka did not answer kafka-topics --list within ${START_TIMEOUT}s"; }
        [ $left -le 30 ] || left=30
        if timeout "$left" "$java" "${tool_java_opts[@]}" -cp "$LIB/*" org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>"$DIR/logs/ready-check.err"; then
            break
        fi
        kill -0 "$pid" 2>/dev/null || die "Kafka exited during startup (see $DIR/logs/server.log)"
        sleep 1
    done
    say "ready (pid $pid)"
    echo "$BOOTSTRAP"
}

cmd_stop() {
    local pid
    if pid=$(running_pid); then
        say "stopping pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + STOP_TIMEOUT))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            say "still running after ${STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
        fi
        say "stopped"
    else
        say "not running"
    fi
    rm -f "$PIDFILE"
    if [ "${1:-}" = "--clean" ]; then
        say "removing $DIR"
        rm -rf "$DIR"
    fi
}

cmd_status() {
    local pid
    if pid=$(running_pid); then
        echo "running (pid $pid) at $BOOTSTRAP"
    else
        echo "not running"
        return 1
    fi
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop "${2:-}" ;;
    status) cmd_status ;;
    bootstrap) echo "$BOOTSTRAP" ;;
    *) echo "usage: $0 start|stop [--clean]|status|bootstrap" >&2; exit 2 ;;
esac
