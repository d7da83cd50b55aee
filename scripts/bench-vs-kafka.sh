#!/usr/bin/env bash
# Sluice against Apache Kafka, in one run, on this machine, with the same clients:
# Kafka's own perf tools (kafka-producer-perf-test, kafka-consumer-perf-test,
# EndToEndLatency, run from the kafka-tools jars as the .sh scripts run them) and
# librdkafka's rdkafka_performance, for 100 B and 1 KiB records, acks=1 and acks=all, one
# partition and eight. Each broker runs alone (the other is stopped), on a fresh data dir
# on the same disk, warmed up first. Prints a Markdown table of Sluice/Kafka ratios and
# writes every raw figure to $OUT/results.tsv and every tool's output to $OUT/logs/.
#
#   bash scripts/bench-vs-kafka.sh            # both brokers, the whole matrix (~15 min)
#   ROUNDS=2 bash scripts/bench-vs-kafka.sh   # broker blocks alternate: S K S K
#
# Needs: target/release/sluice (cargo build --release --bins), the Kafka jars
# (tests/clients/kafka-dist/install.sh), and librdkafka's sources in the cargo registry
# (rdkafka_performance is built from them once, under $OUT).
#
# Environment: OUT (default target/bench-vs-kafka), SIZES ("100 1024"), ACKS ("1 all"),
# PARTS ("1 8"), RECORDS_100 (2000000), RECORDS_1024 (500000), E2E_MESSAGES (5000),
# SLUICE_CORES (2; Sluice also gets group.initial.rebalance.delay.ms=0, as the reference
# Kafka's server.properties has it), KAFKA_HEAP_OPTS (-Xmx1G -Xms1G, Kafka's recommended default),
# BATCH_PROPS (the producer batch settings both brokers get: "linger.ms=5 batch.size=65536").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/target/bench-vs-kafka}
LIB=$ROOT/tests/clients/kafka-dist/target/lib
SLUICE=${SLUICE_BIN:-$ROOT/target/release/sluice}
SIZES=${SIZES:-"100 1024"}
ACKS=${ACKS:-"1 all"}
PARTS=${PARTS:-"1 8"}
RECORDS_100=${RECORDS_100:-2000000}
RECORDS_1024=${RECORDS_1024:-500000}
E2E_MESSAGES=${E2E_MESSAGES:-5000}
SLUICE_CORES=${SLUICE_CORES:-2}
ROUNDS=${ROUNDS:-1}
BATCH_PROPS=${BATCH_PROPS:-"linger.ms=5 batch.size=65536"}
SLUICE_PORT=19190
KAFKA_PORT=19192
KAFKA_CPORT=19193
TOOL_JAVA=(java -Xmx512M -XX:+UseG1GC -cp "$LIB/*")

say() { echo "bench-vs-kafka: $*" >&2; }
die() { say "$*"; exit 1; }

[ -x "$SLUICE" ] || die "no $SLUICE: cargo build --release --bins"
[ -f "$LIB/.complete" ] || bash "$ROOT/tests/clients/kafka-dist/install.sh" >&2
mkdir -p "$OUT/logs"
RESULTS=$OUT/results.tsv
: >"$RESULTS"

# --- rdkafka_performance, built once from the librdkafka the rdkafka crate vendors ------
RDPERF=$OUT/rdkafka_performance
build_rdperf() {
    [ -x "$RDPERF" ] && return
    # The librdkafka that scripts/librdkafka-tests.sh built, if there is one.
    local built=$ROOT/target/librdkafka-tests/librdkafka
    if [ -f "$built/src/librdkafka.a" ]; then
        make -C "$built/examples" rdkafka_performance >/dev/null 2>&1 && cp "$built/examples/rdkafka_performance" "$RDPERF" \
            && return
    fi
    local src
    src=$(ls -d "$HOME"/.cargo/registry/src/*/rdkafka-sys-*/librdkafka 2>/dev/null | sort -V | tail -1)
    [ -n "$src" ] || die "no librdkafka source in the cargo registry (cargo build --tests first)"
    say "building rdkafka_performance from $src"
    rm -rf "$OUT/librdkafka"
    cp -a "$src" "$OUT/librdkafka"
    chmod -R u+w "$OUT/librdkafka"
    (cd "$OUT/librdkafka" && ./configure --no-download --disable-ssl --disable-gssapi --disable-sasl \
        --install-deps=no >/dev/null && make -j2 libs >/dev/null && make -C examples rdkafka_performance >/dev/null) \
        || die "building rdkafka_performance failed"
    cp "$OUT/librdkafka/examples/rdkafka_performance" "$RDPERF"
}
build_rdperf

# --- brokers -----------------------------------------------------------------------------
SLUICE_PID=
start_broker() {
    case $1 in
    sluice)
        rm -rf "$OUT/sluice-data"
        "$SLUICE" serve --override "listeners=PLAINTEXT://127.0.0.1:$SLUICE_PORT" \
            --override "log.dirs=$OUT/sluice-data" --override admin.listeners= \
            --override group.initial.rebalance.delay.ms=0 \
            --cores "$SLUICE_CORES" >"$OUT/logs/sluice-broker.log" 2>&1 &
        SLUICE_PID=$!
        for _ in $(seq 100); do
            (exec 3<>"/dev/tcp/127.0.0.1/$SLUICE_PORT") 2>/dev/null && return
            sleep 0.1
        done
        die "sluice did not start (see $OUT/logs/sluice-broker.log)"
        ;;
    kafka)
        KAFKA_REF_PORT=$KAFKA_PORT KAFKA_REF_CONTROLLER_PORT=$KAFKA_CPORT KAFKA_REF_DIR=$OUT/kafka \
            bash "$ROOT/scripts/kafka-reference.sh" stop --clean >/dev/null 2>&1 || true
        KAFKA_REF_PORT=$KAFKA_PORT KAFKA_REF_CONTROLLER_PORT=$KAFKA_CPORT KAFKA_REF_DIR=$OUT/kafka \
            bash "$ROOT/scripts/kafka-reference.sh" start >/dev/null
        ;;
    esac
}
stop_broker() {
    case $1 in
    sluice)
        kill -TERM "$SLUICE_PID" 2>/dev/null || true
        wait "$SLUICE_PID" 2>/dev/null || true
        ;;
    kafka)
        KAFKA_REF_PORT=$KAFKA_PORT KAFKA_REF_CONTROLLER_PORT=$KAFKA_CPORT KAFKA_REF_DIR=$OUT/kafka \
            bash "$ROOT/scripts/kafka-reference.sh" stop --clean >/dev/null
        ;;
    esac
}
bootstrap() { [ "$1" = sluice ] && echo "127.0.0.1:$SLUICE_PORT" || echo "127.0.0.1:$KAFKA_PORT"; }
trap 'stop_broker sluice 2>/dev/null; stop_broker kafka 2>/dev/null' EXIT

# --- one broker's block --------------------------------------------------------------------
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; } # round broker tool P size acks metric value

create_topic() { # bootstrap topic partitions
    "${TOOL_JAVA[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --create --topic "$2" \
        --partitions "$3" --replication-factor 1 >/dev/null
}

producer_perf() { # round broker P size acks topic records
    local log=$OUT/logs/r$1-$2-producer-p$3-s$4-a$5.log
    # shellcheck disable=SC2086
    "${TOOL_JAVA[@]}" org.apache.kafka.tools.ProducerPerformance --topic "$6" --num-records "$7" \
        --record-size "$4" --throughput -1 --bootstrap-server "$(bootstrap "$2")" \
        --command-property "acks=$5" $BATCH_PROPS >"$log" 2>&1 || die "producer perf failed: $log"
    # "N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency, p50 ms 50th, p95 ms 95th, p99 ms 99th, p999 ms 99.9th."
    python3 - "$log" <<'PY' | while read -r m v; do record "$1" "$2" producer-perf "$3" "$4" "$5" "$m" "$v"; done
import re, sys
last = [l for l in open(sys.argv[1]) if "records sent" in l][-1]
n = re.findall(r"([\d.]+) records/sec \(([\d.]+) MB/sec\).*?([\d.]+) ms 50th, ([\d.]+) ms 95th, ([\d.]+) ms 99th, ([\d.]+) ms 99.9th", last)[0]
for k, v in zip(["msgs_per_s", "mb_per_s", "p50_ms", "p95_ms", "p99_ms", "p999_ms"], n):
    print(k, v)
PY
}

consumer_perf() { # round broker P size topic records
    local log=$OUT/logs/r$1-$2-consumer-p$3-s$4.log
    "${TOOL_JAVA[@]}" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$(bootstrap "$2")" \
        --topic "$5" --num-records "$6" --timeout 60000 >"$log" 2>&1 || die "consumer perf failed: $log"
    python3 - "$log" <<'PY' | while read -r m v; do record "$1" "$2" consumer-perf "$3" "$4" - "$m" "$v"; done
import sys
lines = [l.strip() for l in open(sys.argv[1]) if l.strip()]
hdr = [i for i, l in enumerate(lines) if l.startswith("start.time")][-1]
names = [x.strip() for x in lines[hdr].split(",")]
vals = [x.strip() for x in lines[hdr + 1].split(",")]
row = dict(zip(names, vals))
# The fetch rates leave out the group's join (rebalance.time.ms), which is not throughput.
print("mb_per_s", row["fetch.MB.sec"])
print("msgs_per_s", row["fetch.nMsg.sec"])
PY
}

e2e_latency() { # round broker P size acks topic
    local log=$OUT/logs/r$1-$2-e2e-p$3-s$4-a$5.log
    "${TOOL_JAVA[@]}" org.apache.kafka.tools.EndToEndLatency --bootstrap-server "$(bootstrap "$2")" \
        --topic "$6" --num-records "$E2E_MESSAGES" --producer-acks "$5" --record-size "$4" >"$log" 2>&1 \
        || die "EndToEndLatency failed: $log"
    # "Avg latency: A ms" and "Percentiles: 50th = x, 99th = y, 99.9th = z"
    python3 - "$log" <<'PY' | while read -r m v; do record "$1" "$2" e2e "$3" "$4" "$5" "$m" "$v"; done
import re, sys
text = open(sys.argv[1]).read()
print("avg_ms", re.findall(r"Avg latency: ([\d.]+) ms", text)[-1])
p = re.findall(r"50th = ([\d.]+), 99th = ([\d.]+), 99.9th = ([\d.]+)", text)[-1]
for k, v in zip(["p50_ms", "p99_ms", "p999_ms"], p):
    print(k, v)
PY
}

rdkafka_produce() { # round broker P size acks topic records
    local log=$OUT/logs/r$1-$2-rdkafka-p$3-s$4-a$5.log
    local acks=$5
    [ "$acks" = all ] && acks=-1
    "$RDPERF" -P -t "$6" -b "$(bootstrap "$2")" -s "$4" -c "$7" -a "$acks" -X linger.ms=5 -X batch.size=65536 \
        >"$log" 2>&1 || die "rdkafka_performance failed: $log"
    # "% N messages produced (B bytes), D delivered (offset O, F failed) in T ms: R msgs/s and M MB/s, ..."
    python3 - "$log" <<'PY' | while read -r m v; do record "$1" "$2" rdkafka-produce "$3" "$4" "$5" "$m" "$v"; done
import re, sys
text = open(sys.argv[1]).read()
m = re.findall(r"(\d+) delivered \(offset -?\d+, (\d+) failed\) in \d+ms: (\d+) msgs/s and ([\d.]+) MB/s", text)[-1]
assert m[1] == "0", "rdkafka_performance: failed deliveries"
print("msgs_per_s", m[2])
print("mb_per_s", m[3])
PY
}

block() { # round broker
    local round=$1 broker=$2 bs
    bs=$(bootstrap "$broker")
    say "round $round: $broker"
    start_broker "$broker"
    # Warm-up (JIT, page cache, the broker's first segments): one untimed producer run.
    create_topic "$bs" warmup 1
    producer_perf warmup "$broker" 1 100 1 warmup 500000
    for p in $PARTS; do
        for size in $SIZES; do
            local n=$RECORDS_100
            [ "$size" -ge 1024 ] && n=$RECORDS_1024
            for acks in $ACKS; do
                local t=perf-p$p-s$size-a$acks
                create_topic "$bs" "$t" "$p"
                producer_perf "$round" "$broker" "$p" "$size" "$acks" "$t" "$n"
                create_topic "$bs" "rd-$t" "$p"
                rdkafka_produce "$round" "$broker" "$p" "$size" "$acks" "rd-$t" "$n"
                create_topic "$bs" "e2e-$t" "$p"
                e2e_latency "$round" "$broker" "$p" "$size" "$acks" "e2e-$t"
            done
            consumer_perf "$round" "$broker" "$p" "$size" "perf-p$p-s$size-a1" "$n"
        done
    done
    stop_broker "$broker"
}

say "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
    block "$r" sluice
    block "$r" kafka
done
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- the table: medians over rounds, ratio Sluice/Kafka -----------------------------------
python3 - "$RESULTS" <<'PY'
import collections, statistics, sys
vals = collections.defaultdict(list)
for line in open(sys.argv[1]):
    rnd, broker, tool, p, size, acks, metric, v = line.rstrip("\n").split("\t")
    if rnd == "warmup":
        continue
    vals[(tool, p, size, acks, metric, broker)].append(float(v))
keys = sorted({k[:5] for k in vals}, key=lambda k: (k[0], int(k[1]), int(k[2]), k[3], k[4]))
print("| tool | partitions | record | acks | metric | Sluice | Kafka | Sluice/Kafka |")
print("|---|---|---|---|---|---|---|---|")
for k in keys:
    s = vals.get(k + ("sluice",))
    kf = vals.get(k + ("kafka",))
    if not s or not kf:
        continue
    sm, km = statistics.median(s), statistics.median(kf)
    ratio = sm / km if km else float("inf")
    print(f"| {k[0]} | {k[1]} | {k[2]} B | {k[3]} | {k[4]} | {sm:g} | {km:g} | {ratio:.2f} |")
PY
