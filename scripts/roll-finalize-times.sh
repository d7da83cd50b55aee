#!/bin/bash
# How long each segment roll's finalization (trim, fdatasync, producer snapshot, indexes)
# takes during 15 s of a keyed load (50k msgs/s, 4 MiB segments) into a delete topic (keep)
# or a compacted one (compact: its passes commit the journal too). Before d2adc75 the
# partition's appends waited that long at every roll. From the broker's debug log.
# Usage: roll-finalize-times.sh <bin dir> <keep|compact>; SLUICE_BENCH_DIR: log.dirs.
set -u
bin=$1; c=$2; D=${SLUICE_BENCH_DIR:-/tmp/sbm}; S="$bin/sluicectl --bootstrap 127.0.0.1:19999"
rm -rf $D/*; mkdir -p $D; sync; sleep 1
RUST_LOG=info,sluice::storage=debug $bin/sluice serve --override log.dirs=$D --override listeners=PLAINTEXT://127.0.0.1:19999 --cores 1 \
  --override log.retention.check.interval.ms=1000 --override log.cleaner.backoff.ms=500 > /tmp/rft.fin.log 2>&1 &
pid=$!
for i in $(seq 1 50); do $S topic list >/dev/null 2>&1 && break; sleep 0.2; done
if [ $c = compact ]; then $S topic create t -c cleanup.policy=compact -c segment.bytes=4194304 >/dev/null; else $S topic create t -c segment.bytes=4194304 -c retention.ms=-1 >/dev/null; fi
grep '^cpu ' /proc/stat > /tmp/rft.fc0
taskset -c 1 $S bench produce --topic t --partitions 1 --message-size 100 --batch-messages 1000 --acks 1 --rate 50000 --keyed --duration 15 >/dev/null 2>&1
grep '^cpu ' /proc/stat > /tmp/rft.fc1
kill $pid; wait $pid 2>/dev/null
steal=$(paste /tmp/rft.fc0 /tmp/rft.fc1 | awk '{t = 0; for (i = 2; i <= 11; i++) t += $(i + 11) - $i; printf "%.1f", 100 * ($20 - $9) / t}')
grep "segment finalized" /tmp/rft.fin.log | grep -v "t-0.*closing" | sed -n 's/.*partition=t-0.*elapsed_us=\([0-9]*\).*/\1/p' | sort -n |
  awk -v c=$c -v b=$bin -v s=$steal '{v[NR]=$1; sum+=$1} END {printf "%s %-8s rolls %d  finalize ms: p50 %.2f  p90 %.2f  max %.2f  mean %.2f  (steal %s%%)\n", b, c, NR, v[int(NR/2)+1]/1000, v[int(NR*0.9)+1]/1000, v[NR]/1000, sum/NR/1000, s}'
