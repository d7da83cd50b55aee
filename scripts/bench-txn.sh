#!/bin/bash
# What transactions cost, measured in one run: one broker (one shard); librdkafka
# (sluicectl bench --client librdkafka) produces as fast as it can with acks=all, first as
# an idempotent producer outside transactions, then in transactions committed every
# COMMIT_MS (100 ms by default); then consumes the transactional topic read_uncommitted
# and read_committed. ROUNDS rounds, alternating. Figures: BENCHMARKS.md. Needs a release
# build and a quiet machine:
#   cargo build --release --bins && bash scripts/bench-txn.sh [ROUNDS] [SECONDS] [SIZE]
set -eu
ROUNDS=${1:-2}
SECONDS_PER_RUN=${2:-10}
SIZE=${3:-100}
COMMIT_MS=${COMMIT_MS:-100}
BIN=${BIN:-target/release}
OUT=${OUT:-/tmp/txn-bench}
rm -rf "$OUT" && mkdir -p "$OUT/data"
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null; rm -rf "$OUT/data"' EXIT
"$BIN/sluice" serve --cores 1 --override "log.dirs=$OUT/data" \
  --override listeners=PLAINTEXT://127.0.0.1:39192 --override admin.listeners=127.0.0.1:39194 \
  --override transaction.state.log.num.partitions=4 > "$OUT/broker.log" 2>&1 &
BROKER=$!
for _ in $(seq 1 60); do "$BIN/sluicectl" --bootstrap 127.0.0.1:39192 cluster info > /dev/null 2>&1 && break; sleep 1; done
run() { # name mode topic extra...
  local name=$1 mode=$2 topic=$3
  shift 3
  "$BIN/sluicectl" --bootstrap 127.0.0.1:39192 bench "$mode" --client librdkafka --topic "$topic" \
    --message-size "$SIZE" --acks all --warmup 2 --duration "$SECONDS_PER_RUN" "$@" \
    --json "$OUT/$name.json" > "$OUT/$name.out" 2>&1 || { cat "$OUT/$name.out"; exit 1; }
  python3 - "$OUT/$name.json" "$name" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f'{sys.argv[2]:<34} {d["messages_per_sec"]:>12,.0f} msgs/s {d["bytes_per_sec"]/1e6:>8.1f} MB/s')
PY
}
for r in $(seq 1 "$ROUNDS"); do
  run "produce-plain-$r" produce "plain-$r"
  run "produce-txn-$r" produce "txn-$r" --transactional-id "bench-$r" --commit-interval-ms "$COMMIT_MS"
  run "consume-uncommitted-$r" consume "txn-$r" --isolation-level read_uncommitted --rewind
  run "consume-committed-$r" consume "txn-$r" --isolation-level read_committed --rewind
done
