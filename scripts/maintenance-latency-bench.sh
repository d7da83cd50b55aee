#!/bin/bash
# Latency of produce->fetch (e2e) with and without retention / compaction running on the same shard.
# SLUICE_BIN: the binaries (default target/release); SLUICE_BENCH_DIR: log.dirs (default /tmp/sbm).
set -u
B=${SLUICE_BIN:-target/release}
S="$B/sluicectl --bootstrap 127.0.0.1:19999"
run_broker() {
  D=${SLUICE_BENCH_DIR:-/tmp/sbm}; rm -rf $D/*; mkdir -p $D; sync; sleep 10
  $B/sluice serve --override log.dirs=$D --override listeners=PLAINTEXT://127.0.0.1:19999 --cores 1 \
    --override log.retention.check.interval.ms=1000 --override log.cleaner.backoff.ms=500 > /tmp/sbm.log 2>&1 &
  BPID=$!
  for i in $(seq 1 50); do $S topic list >/dev/null 2>&1 && break; sleep 0.2; done
}
stop_broker() { kill $BPID; wait $BPID 2>/dev/null; }
E2E="--partitions 1 --message-size 100 --batch-messages 1000 --acks 1 --rate 1000000 --warmup 2 --duration 12"
round=$1
# A: retention
run_broker
$S topic create keep$round -c retention.ms=-1 -c segment.bytes=16777216 >/dev/null
$S topic create ret$round -c retention.bytes=33554432 -c segment.bytes=8388608 >/dev/null
echo "== A1 no retention"; $S bench e2e --topic keep$round $E2E 2>&1 | tail -1
sync; sleep 10; echo "== A2 retention.bytes=32MiB, 8MiB segments"; $S bench e2e --topic ret$round $E2E 2>&1 | tail -1
echo "segments deleted: $(grep -c 'old segments deleted' /tmp/sbm.log)"; ls $D/ret$round-0 | grep -c '\.log$'
stop_broker
# B: compaction, background keyed load of 200k msgs/s
run_broker
$S topic create plain$round -c segment.bytes=4194304 -c retention.ms=-1 >/dev/null
$S topic create cmp$round -c cleanup.policy=compact -c segment.bytes=4194304 >/dev/null
# Compacted but never sealed (1 GiB segments): the keyed produce load without compaction.
$S topic create cmpnoseal$round -c cleanup.policy=compact -c segment.bytes=1073741824 >/dev/null
$S topic create lat1$round >/dev/null; $S topic create lat2$round >/dev/null; $S topic create lat3$round >/dev/null
BG="--partitions 1 --message-size 100 --batch-messages 1000 --acks 1 --rate 200000 --keyed --duration 17"
echo "== B1 background keyed load, no compaction"
$S bench produce --topic plain$round $BG >/dev/null 2>&1 & BGP=$!
$S bench e2e --topic lat1$round $E2E 2>&1 | tail -1; wait $BGP
sync; sleep 10; echo "== B1c background keyed load on a compacted topic that never seals a segment (no compaction)"
$S bench produce --topic cmpnoseal$round $BG >/dev/null 2>&1 & BGP=$!
$S bench e2e --topic lat3$round $E2E 2>&1 | tail -1; wait $BGP
sync; sleep 10; echo "== B2 background keyed load on a compacted topic"
$S bench produce --topic cmp$round $BG >/dev/null 2>&1 & BGP=$!
$S bench e2e --topic lat2$round $E2E 2>&1 | tail -1; wait $BGP
echo "compaction log lines: $(grep -ci 'compact' /tmp/sbm.log)"; du -sh $D/plain$round-0 $D/cmp$round-0
stop_broker
