#!/bin/bash
# Does retention or compaction show in produce->fetch latency? Many short rounds, the three
# cases alternating within each round so that the host's slow drifts (steal, its disk) fall
# on all of them alike:
#   keep     a keyed background load into a delete topic that never deletes (the baseline)
#   retain   the same load into a delete topic with retention.bytes=16 MiB (segments deleted
#            about once a second)
#   compact  the same load into a compacted topic (a pass about once a second)
# and, alongside, a light latency probe (`bench e2e`, 20k msgs/s in batches of 10) on its
# own topic. One broker `--cores 1` per case, started fresh: its shard is pinned to the first
# CPU, its background thread to the others, and both clients run on the others too
# (`taskset`), as a broker's cores are its own in production. Prints a line per case and
# round, then per case the median and range over rounds of each percentile, and the broker's
# own Produce handling time (its /metrics histogram: decoded request to response built).
# Usage: maintenance-latency-rounds.sh <bin dir>[,<bin dir>...] [rounds]; SLUICE_BENCH_DIR:
# log.dirs; CASES: which cases (default "keep retain compact"). With several builds, every
# case runs for each of them in turn, named case/1, case/2... in the order given.
set -u
BINS=(${1//,/ }); ROUNDS=${2:-8}; D=${SLUICE_BENCH_DIR:-/tmp/sbm}
BGRATE=${BGRATE:-50000}; DUR=${DUR:-15}
OUT=$(mktemp -d /tmp/mlr.XXXX)
CLIENT_CPUS=$(awk -v n="$(nproc)" 'BEGIN {for (i = 1; i < n; i++) printf "%s%d", (i > 1 ? "," : ""), i}')
produce_hist() { # the broker's cumulative Produce buckets: "le count" lines, then "sum S"
  curl -s --max-time 5 http://127.0.0.1:19998/metrics | grep 'api="Produce"' |
    sed -n -e 's/^sluice_request_latency_seconds_bucket{.*le="\([^"]*\)"} \(.*\)$/\1 \2/p' \
           -e 's/^sluice_request_latency_seconds_sum{.*} \(.*\)$/sum \1/p'
}
one() { # case, round, build number
  local c=$1 r=$2 n=$3 bin=${BINS[$(($3 - 1))]}
  local S="$bin/sluicectl --bootstrap 127.0.0.1:19999" label=$1
  [ ${#BINS[@]} -gt 1 ] && label=$c/$n
  rm -rf "$D"/*; mkdir -p "$D"; sync; sleep 2
  $bin/sluice serve --override log.dirs=$D --override listeners=PLAINTEXT://127.0.0.1:19999 \
    --override admin.listeners=127.0.0.1:19998 --cores 1 \
    --override log.retention.check.interval.ms=1000 --override log.cleaner.backoff.ms=500 > $OUT/broker.log 2>&1 &
  local pid=$!
  for i in $(seq 1 50); do $S topic list >/dev/null 2>&1 && break; sleep 0.2; done
  case $c in
    keep) $S topic create t -c segment.bytes=4194304 -c retention.ms=-1 >/dev/null ;;
    retain) $S topic create t -c segment.bytes=4194304 -c retention.bytes=16777216 >/dev/null ;;
    compact) $S topic create t -c cleanup.policy=compact -c segment.bytes=4194304 >/dev/null ;;
  esac
  $S topic create lat >/dev/null
  taskset -c $CLIENT_CPUS $S bench produce --topic t --partitions 1 --message-size 100 --batch-messages 1000 \
    --acks 1 --rate $BGRATE --keyed --duration $((DUR + 6)) >/dev/null 2>&1 &
  local bgp=$!
  sleep 4  # the first segments seal, so maintenance is under way when the probe starts
  produce_hist > $OUT/h0; grep '^cpu ' /proc/stat > $OUT/c0
  local lat
  lat=$(taskset -c $CLIENT_CPUS $S bench e2e --topic lat --partitions 1 --message-size 100 --batch-messages 10 \
    --acks 1 --rate 20000 --duration $DUR 2>&1 | tail -1 | sed 's/latency ms *//')
  produce_hist > $OUT/h1; grep '^cpu ' /proc/stat > $OUT/c1
  wait $bgp
  local steal hist work
  steal=$(paste $OUT/c0 $OUT/c1 | awk '{t = 0; for (i = 2; i <= 11; i++) t += $(i + 11) - $i; printf "%.1f", 100 * ($20 - $9) / t}')
  hist=$(paste $OUT/h0 $OUT/h1 | awk '$1 == "sum" {next} {d[$1] = $4 - $2} END {printf "%d %d %d", d["+Inf"], d["+Inf"] - d["0.001"], d["+Inf"] - d["0.0025"]}')
  case $c in
    keep) work=0 ;;
    retain) work=$(grep -c 'old segments deleted' $OUT/broker.log) ;;
    compact) work=$(grep -c 'compacted' $OUT/broker.log) ;;
  esac
  kill $pid; wait $pid 2>/dev/null
  echo "$label $r $lat steal $steal produce $hist work $work" | tee -a $OUT/rounds
}
base=(${CASES:-keep retain compact}); runs=(); cases=()
for c in "${base[@]}"; do
  for n in $(seq 1 ${#BINS[@]}); do
    runs+=("$c $n"); if [ ${#BINS[@]} -gt 1 ]; then cases+=("$c/$n"); else cases+=("$c"); fi
  done
done
for r in $(seq 1 $ROUNDS); do  # each round starts one further along the list
  for k in $(seq 0 $((${#runs[@]} - 1))); do one ${runs[$(( (r + k) % ${#runs[@]} ))]% *} $r ${runs[$(( (r + k) % ${#runs[@]} ))]#* }; done
done
# The host's steal shows in every case alike and swamps what the broker does, so the
# summary is given twice: over all rounds, and over the quiet ones (steal under 1 %).
summary() { # title, steal limit
  echo "== $1: median [min..max] over rounds (ms); broker Produce requests over 1 / 2.5 ms, pooled"
  for c in "${cases[@]}"; do
    awk -v c=$c -v lim=$2 '$1 == c {for (i = 1; i <= NF; i++) if ($i == "steal" && $(i + 1) < lim) print}' $OUT/rounds > $OUT/sel
    printf "%-8s %2d rounds" $c $(wc -l < $OUT/sel)
    [ -s $OUT/sel ] || { echo; continue; }
    for p in p50 p90 p99 p99.9 max; do
      awk -v p=$p '{for (i = 1; i <= NF; i++) if ($i == p) print $(i + 1)}' $OUT/sel | sort -g |
        awk -v p=$p '{v[NR] = $1} END {printf " %s %.2f [%.2f..%.2f]", p, (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR]}'
    done
    awk '{for (i = 1; i <= NF; i++) if ($i == "produce") {n += $(i + 1); a += $(i + 2); b += $(i + 3)}; for (i = 1; i <= NF; i++) if ($i == "work") w += $(i + 1)}
      END {printf " | produce over 1 ms %.2f %%, over 2.5 ms %.3f %% | maintenance runs %d\n", 100 * a / n, 100 * b / n, w}' $OUT/sel
  done
}
summary "all $ROUNDS rounds" 101
summary "quiet rounds (steal under 1 %)" 1
echo "(rounds in $OUT/rounds)"
