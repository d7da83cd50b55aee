#!/bin/bash
# Produce->fetch e2e latency (client side) and the broker's own Produce latency histogram (from
# /metrics, before/after) with a keyed background load into a delete topic, then into a
# compacted one. Expects release binaries in /tmp/benchnew and an ext4 mount at /tmp/sbmloop.
B=/tmp/benchnew; S="$B/sluicectl --bootstrap 127.0.0.1:19999"; D=/tmp/sbmloop
rm -rf $D/*; sync; sleep 5
$B/sluice serve --override log.dirs=$D --override listeners=PLAINTEXT://127.0.0.1:19999 --override admin.listeners=127.0.0.1:19644 --cores 1 \
  --override log.retention.check.interval.ms=1000 --override log.cleaner.backoff.ms=500 > /tmp/srv.log 2>&1 &
BPID=$!; for i in $(seq 1 50); do $S topic list >/dev/null 2>&1 && break; sleep 0.2; done
$S topic create plain -c segment.bytes=4194304 -c retention.ms=-1 >/dev/null
$S topic create cmp -c cleanup.policy=compact -c segment.bytes=4194304 >/dev/null
$S topic create lat1 >/dev/null; $S topic create lat2 >/dev/null
E2E="--partitions 1 --message-size 100 --batch-messages 1000 --acks 1 --rate 1000000 --warmup 2 --duration 12"
BG="--partitions 1 --message-size 100 --batch-messages 1000 --acks 1 --rate 200000 --keyed --duration 17"
for c in "plain lat1" "cmp lat2"; do set -- $c
  curl -s 127.0.0.1:19644/metrics | grep 'sluice_request_latency_seconds_bucket.*Produce\|sluice_request_latency_seconds_count.*Produce' > /tmp/m.before.$1
  $S bench produce --topic $1 $BG >/dev/null 2>&1 & BGP=$!
  echo "== bg $1:"; $S bench e2e --topic $2 $E2E 2>&1 | tail -1; wait $BGP
  curl -s 127.0.0.1:19644/metrics | grep 'sluice_request_latency_seconds_bucket.*Produce\|sluice_request_latency_seconds_count.*Produce' > /tmp/m.after.$1
  paste /tmp/m.before.$1 /tmp/m.after.$1 | awk '{split($1,a,"le=\""); split(a[2],b,"\""); d=$4-$2; print "  le " b[1] " delta " d}'
  sync; sleep 8
done
kill $BPID; wait $BPID 2>/dev/null
