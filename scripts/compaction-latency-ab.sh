#!/bin/bash
# A/B of produce->fetch e2e latency under a keyed background load, into a delete topic (B1)
# and into a compacted one (B2, compaction running), for two builds, alternating, ROUNDS
# times. Also prints, per build, the CPU time each broker thread took during B1 and during
# B2, how long it waited runnable for a CPU (schedstat: what other threads on its CPU cost
# it; the host's steal is not in it), the CPUs it may run on and the one it last ran on
# (--cores 1: one shard, pinned), and the broker's own Produce handling time over each case
# (its histogram on /metrics: decoded request to response built, the segment write
# included; the clients' scheduling is not in it).
# Usage: compaction-latency-ab.sh <bin dir A> <bin dir B> [rounds]; SLUICE_BENCH_DIR: log.dirs.
set -u
A=$1; B=$2; ROUNDS=${3:-3}; D=${SLUICE_BENCH_DIR:-/tmp/sbm}
E2E="--partitions 1 --message-size 100 --batch-messages 1000 --acks 1 --rate 1000000 --warmup 2 --duration 12"
BG="--partitions 1 --message-size 100 --batch-messages 1000 --acks 1 --rate 200000 --keyed --duration 17"
threads() { # each broker thread: tid name cpu-ns runqueue-wait-ns allowed-cpus last-cpu
  for t in /proc/$1/task/*; do
    echo "${t##*/} $(cat $t/comm | tr ' ' _) $(awk '{print $1, $2}' $t/schedstat) $(awk '/Cpus_allowed_list/ {print $2}' $t/status) $(awk '{print $39}' $t/stat)"
  done
}
delta() { # before after: CPU seconds and runnable-waiting milliseconds of each thread in between
  join -a 2 -e 0 -o 2.1,2.2,1.3,2.3,1.4,2.4,2.5,2.6 <(sort $1) <(sort $2) |
    awk '{printf "    %-7s %-17s cpu %6.2f s  waited %7.1f ms  allowed %-4s last on cpu%s\n", $1, $2, ($4-$3)/1e9, ($6-$5)/1e6, $7, $8}'
}
produce_hist() { # the broker's cumulative Produce latency buckets: "le count" lines, then "sum S"
  curl -s --max-time 5 http://127.0.0.1:19998/metrics | grep 'api="Produce"' |
    sed -n -e 's/^sluice_request_latency_seconds_bucket{.*le="\([^"]*\)"} \(.*\)$/\1 \2/p' \
           -e 's/^sluice_request_latency_seconds_sum{.*} \(.*\)$/sum \1/p'
}
hist_delta() { # before after: how many Produce requests, their mean, and the share over 1, 2.5 and 10 ms
  paste $1 $2 | awk '$1 == "sum" {sum = $4 - $2; next}
    {d[$1] = $4 - $2} END {n = d["+Inf"]; if (n == 0) {print "    produce: no requests"; exit}
      printf "    broker produce: %d requests, mean %.3f ms, over 1 ms %.2f %%, over 2.5 ms %.2f %%, over 10 ms %.3f %%\n",
        n, 1000 * sum / n, 100 * (n - d["0.001"]) / n, 100 * (n - d["0.0025"]) / n, 100 * (n - d["0.01"]) / n}'
}
one() { # bin dir, label
  local bin=$1 tag=$2; local S="$bin/sluicectl --bootstrap 127.0.0.1:19999"
  rm -rf $D/*; mkdir -p $D; sync; sleep 5
  $bin/sluice serve --override log.dirs=$D --override listeners=PLAINTEXT://127.0.0.1:19999 --override admin.listeners=127.0.0.1:19998 --cores 1 \
    --override log.retention.check.interval.ms=1000 --override log.cleaner.backoff.ms=500 > /tmp/ab.$tag.log 2>&1 &
  local pid=$!
  for i in $(seq 1 50); do $S topic list >/dev/null 2>&1 && break; sleep 0.2; done
  $S topic create plain -c segment.bytes=4194304 -c retention.ms=-1 >/dev/null
  $S topic create cmp -c cleanup.policy=compact -c segment.bytes=4194304 >/dev/null
  $S topic create lat1 >/dev/null; $S topic create lat2 >/dev/null
  threads $pid > /tmp/ab.t0; produce_hist > /tmp/ab.h0
  $S bench produce --topic plain $BG >/dev/null 2>&1 & local bgp=$!
  echo "$tag B1 $($S bench e2e --topic lat1 $E2E 2>&1 | tail -1)"; wait $bgp
  threads $pid > /tmp/ab.t1; produce_hist > /tmp/ab.h1; delta /tmp/ab.t0 /tmp/ab.t1; hist_delta /tmp/ab.h0 /tmp/ab.h1
  sync; sleep 8
  threads $pid > /tmp/ab.t2; produce_hist > /tmp/ab.h2
  $S bench produce --topic cmp $BG >/dev/null 2>&1 & bgp=$!
  echo "$tag B2 $($S bench e2e --topic lat2 $E2E 2>&1 | tail -1)"; wait $bgp
  threads $pid > /tmp/ab.t3; produce_hist > /tmp/ab.h3; delta /tmp/ab.t2 /tmp/ab.t3; hist_delta /tmp/ab.h2 /tmp/ab.h3
  echo "  compaction passes that rewrote segments: $(grep -c 'compacted' /tmp/ab.$tag.log)"
  kill $pid; wait $pid 2>/dev/null
}
for r in $(seq 1 $ROUNDS); do
  if [ $((r % 2)) = 1 ]; then one $A A$r; one $B B$r; else one $B B$r; one $A A$r; fi
done
