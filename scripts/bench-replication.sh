#!/bin/bash
# Replication's cost, measured in one run: acks=all produce to an RF=1 and an RF=3
# partition (min.insync.replicas=2) of the same three-node cluster on loopback
# (scripts/local-cluster.sh: every node a broker and a controller voter, one shard each),
# alternating, ROUNDS times: the ceiling (as fast as one native connection goes) and the
# latency at a fixed rate. Figures: BENCHMARKS.md. Needs a release build and a quiet
# machine:
#   cargo build --release --bins && bash scripts/bench-replication.sh [ROUNDS] [RATE]
set -eu
ROUNDS=${1:-3}
RATE=${2:-20000}
export CLUSTER_DIR=${CLUSTER_DIR:-/tmp/sluice-repl-bench}
CTL=target/release/sluicectl
BOOT=127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096
OUT=${OUT:-/tmp/repl-bench}
rm -rf "$CLUSTER_DIR" "$OUT" && mkdir -p "$OUT"
# The runs write tens of GB (about 60 GB at the ceiling's rate): the data goes at the end.
trap 'scripts/local-cluster.sh stop; sleep 1; rm -rf "$CLUSTER_DIR"' EXIT
scripts/local-cluster.sh start
for _ in $(seq 1 60); do $CTL --bootstrap $BOOT cluster info > /dev/null 2>&1 && break; sleep 1; done
$CTL --bootstrap $BOOT topic create rf1 -p 1 -r 1 > /dev/null
$CTL --bootstrap $BOOT topic create rf3 -p 1 -r 3 -c min.insync.replicas=2 > /dev/null
sleep 3
$CTL --bootstrap $BOOT topic describe rf1 | tail -2
$CTL --bootstrap $BOOT topic describe rf3 | tail -2
run() { # name topic extra-flags...
  local name=$1 topic=$2; shift 2
  $CTL --bootstrap $BOOT bench produce --topic "$topic" --acks all \
    --message-size 100 --warmup 2 --duration 10 "$@" --json "$OUT/$name.json" > /dev/null 2>&1
  python3 - "$OUT/$name.json" "$name" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); l = d["latency_ms"]
print(f'{sys.argv[2]:<16} {d["messages_per_sec"]:>12,.0f} msgs/s {d["bytes_per_sec"]/1e6:>8.1f} MB/s  '
      f'p50 {l["p50"]:.3f}  p99 {l["p99"]:.3f}  p99.9 {l["p999"]:.3f}  max {l["max"]:.3f} ms')
PY
}
for r in $(seq 1 "$ROUNDS"); do
  run "ceiling-rf1-$r" rf1 --batch-messages 1000
  run "ceiling-rf3-$r" rf3 --batch-messages 1000
  run "rate-rf1-$r" rf1 --batch-messages 100 --rate "$RATE"
  run "rate-rf3-$r" rf3 --batch-messages 100 --rate "$RATE"
done
