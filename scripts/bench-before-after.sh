#!/bin/bash
# The produce ceiling and e2e at half of it (BENCHMARKS.md's standing commands, --cores 1)
# for two builds, alternating run by run so that the host's drifts fall on both alike.
# Usage: bench-before-after.sh <before bin dir> <after bin dir> [rounds]
# Each bin dir holds `sluice` and `sluicectl` (cargo build --release). SLUICE_BENCH_DIR:
# log.dirs (default /tmp/sbc; a 10 s ceiling run writes ~10 GB).
set -u
BEFORE=$1; AFTER=$2; ROUNDS=${3:-3}; D=${SLUICE_BENCH_DIR:-/tmp/sbc}
for r in $(seq 1 "$ROUNDS"); do
  for bin in "$BEFORE" "$AFTER"; do
    rm -rf "$D"; mkdir -p "$D"; sync; sleep 1
    "$bin/sluice" serve --override log.dirs="$D" --override listeners=PLAINTEXT://127.0.0.1:19999 \
      --override admin.listeners=127.0.0.1:19998 --cores 1 > /tmp/bench-before-after-broker.log 2>&1 &
    pid=$!
    S="$bin/sluicectl --bootstrap 127.0.0.1:19999"
    for _ in $(seq 1 50); do $S topic list >/dev/null 2>&1 && break; sleep 0.2; done
    c=$($S bench produce --topic ceiling$r --partitions 1 --producers 1 --message-size 100 \
      --batch-messages 1000 --acks 1 --warmup 2 --duration 10 2>&1 | tail -3 | tr '\n' ' ')
    e=$($S bench e2e --topic e2e$r --partitions 1 --message-size 100 --batch-messages 1000 \
      --acks 1 --rate 3300000 --warmup 2 --duration 10 2>&1 | tail -3 | tr '\n' ' ')
    kill $pid; wait $pid
    echo "round $r $bin CEILING: $c"
    echo "round $r $bin E2E: $e"
  done
done
