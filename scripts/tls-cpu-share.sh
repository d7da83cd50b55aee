#!/bin/bash
# CPU shares of broker and client during a 1 KiB produce over PLAINTEXT and over SSL
# (after scripts/bench-tls.sh made its certificates in /tmp/tls-bench). BENCHMARKS.md.
OUT=${OUT:-/tmp/tls-bench}; BIN=${BIN:-target/release}
rm -rf $OUT/data; mkdir -p $OUT/data
$BIN/sluice serve --cores 1 --override "log.dirs=$OUT/data" --override listeners=PLAINTEXT://127.0.0.1:39092,SSL://127.0.0.1:39093 --override "ssl.keystore.location=$OUT/broker.pem" --override admin.listeners=127.0.0.1:39094 > $OUT/broker.log 2>&1 &
B=$!
sleep 2
for l in 39092 39093; do
  sec=""; [ $l = 39093 ] && sec="--command-config $OUT/ssl.properties"
  $BIN/sluicectl --bootstrap 127.0.0.1:$l $sec bench produce --client librdkafka --topic x$l --prepare-bootstrap 127.0.0.1:39092 --message-size 1024 --acks 1 --duration 6 > /tmp/out$l 2>&1 &
  C=$!
  sleep 2; t0=$(awk '{print $14+$15}' /proc/$B/stat); c0=$(awk '{print $14+$15}' /proc/$C/stat 2>/dev/null); sleep 3; t1=$(awk '{print $14+$15}' /proc/$B/stat); c1=$(awk '{print $14+$15}' /proc/$C/stat 2>/dev/null)
  echo "listener $l: broker cpu $(( (t1-t0)/3 ))%  client cpu $(( (c1-c0)/3 ))%"
  wait $C; grep -E "msgs/s" /tmp/out$l | tail -1
done
kill $B; wait $B
