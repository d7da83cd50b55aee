#!/bin/bash
# What TLS costs, measured in one run: one broker (one shard) with a PLAINTEXT and an SSL
# listener; librdkafka (sluicectl bench --client librdkafka, OpenSSL) produces as fast as it
# can (acks=1) and then consumes, over each listener in turn, ROUNDS times, at 100 B and
# 1 KiB. A throwaway CA and broker certificate are made with openssl. Figures:
# BENCHMARKS.md. Needs a release build and a quiet machine:
#   cargo build --release --bins && bash scripts/bench-tls.sh [ROUNDS] [SECONDS]
set -eu
ROUNDS=${1:-2}
SECONDS_PER_RUN=${2:-10}
BIN=${BIN:-target/release}
OUT=${OUT:-/tmp/tls-bench}
rm -rf "$OUT" && mkdir -p "$OUT/data"
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null; rm -rf "$OUT/data"' EXIT
cd "$OUT"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj /CN=127.0.0.1 2>/dev/null
echo "subjectAltName=IP:127.0.0.1" > san.ext
openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.crt -days 2 -extfile san.ext 2>/dev/null
cat broker.key broker.crt > broker.pem
printf 'security.protocol=SSL\nssl.ca.location=%s/ca.pem\n' "$OUT" > ssl.properties
cd - > /dev/null
"$BIN/sluice" serve --cores 1 --override "log.dirs=$OUT/data" \
  --override listeners=PLAINTEXT://127.0.0.1:39092,SSL://127.0.0.1:39093 \
  --override "ssl.keystore.location=$OUT/broker.pem" --override admin.listeners=127.0.0.1:39094 \
  > "$OUT/broker.log" 2>&1 &
BROKER=$!
for _ in $(seq 1 60); do "$BIN/sluicectl" --bootstrap 127.0.0.1:39092 cluster info > /dev/null 2>&1 && break; sleep 1; done
run() { # name mode listener size
  local name=$1 mode=$2 listener=$3 size=$4 boot=127.0.0.1:39092 sec=()
  if [ "$listener" = ssl ]; then boot=127.0.0.1:39093; sec=(--command-config "$OUT/ssl.properties"); fi
  "$BIN/sluicectl" --bootstrap $boot "${sec[@]}" bench "$mode" --client librdkafka --topic "t-$listener-$size" \
    --prepare-bootstrap 127.0.0.1:39092 --message-size "$size" --acks 1 --warmup 2 --duration "$SECONDS_PER_RUN" \
    $( [ "$mode" = consume ] && echo --rewind ) --json "$OUT/$name.json" > /dev/null 2>&1
  python3 - "$OUT/$name.json" "$name" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f'{sys.argv[2]:<28} {d["messages_per_sec"]:>12,.0f} msgs/s {d["bytes_per_sec"]/1e6:>8.1f} MB/s')
PY
}
for r in $(seq 1 "$ROUNDS"); do
  for size in 100 1024; do
    for l in plaintext ssl; do run "produce-$l-$size-$r" produce $l $size; done
    for l in plaintext ssl; do run "consume-$l-$size-$r" consume $l $size; done
  done
done
