#!/bin/bash
# Which threads do the file-system work while a topic takes a keyed load (200k msg/s for
# 12 s, 4 MiB segments): inode evictions (the last close of a replaced or deleted file,
# which frees its blocks), block frees, fsyncs, and journal commits (jbd2), counted per
# thread from kernel tracepoints. Run it with POLICY=compact and POLICY=delete to see what
# compaction adds, and which of it lands on the shard's thread.
# Usage: compaction-fs-trace.sh <bin dir> <compact|delete>; SLUICE_BENCH_DIR: log.dirs
# (an ext4 file system); needs perf and root.
set -u
bin=$1; policy=$2; D=${SLUICE_BENCH_DIR:-/tmp/sbm}
S="$bin/sluicectl --bootstrap 127.0.0.1:19999"
rm -rf $D/*; mkdir -p $D
$bin/sluice serve --override log.dirs=$D --override listeners=PLAINTEXT://127.0.0.1:19999 \
  --override admin.listeners=127.0.0.1:19998 --cores 1 \
  --override log.retention.check.interval.ms=1000 --override log.cleaner.backoff.ms=500 > /tmp/fs-trace.log 2>&1 &
pid=$!
for i in $(seq 1 50); do $S topic list >/dev/null 2>&1 && break; sleep 0.2; done
if [ "$policy" = compact ]; then
  $S topic create t -c cleanup.policy=compact -c segment.bytes=4194304 >/dev/null
else
  $S topic create t -c segment.bytes=4194304 -c retention.ms=-1 >/dev/null
fi
perf record -q -a -o /tmp/fs-trace.perf -e ext4:ext4_evict_inode -e ext4:ext4_free_blocks \
  -e ext4:ext4_sync_file_enter -e jbd2:jbd2_start_commit -- sleep 12 >/dev/null 2>&1 &
tracer=$!
$S bench produce --topic t --partitions 1 --message-size 100 --batch-messages 1000 --acks 1 \
  --rate 200000 --keyed --duration 12 >/dev/null 2>&1
wait $tracer; kill $pid; wait $pid 2>/dev/null
# Thread names without their numbers (kworker/1:2 and kworker/1:0 count together).
perf script -i /tmp/fs-trace.perf -F comm,event 2>/dev/null | sed -E 's/[-/][0-9:]+//g' | sort | uniq -c | sort -rn
