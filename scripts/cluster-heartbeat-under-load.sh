#!/bin/bash
# Does produce load starve the controller quorum? Starts the three-node local cluster
# (scripts/local-cluster.sh), saturates it with `sluicectl bench produce` against an RF=3
# topic (acks=1, the leaders spread over the nodes) for $DUR seconds, and counts what
# would show starvation: brokers fenced (missed sessions) and Raft terms passed (elections).
# Usage: cluster-heartbeat-under-load.sh [bin dir]  (default target/release)
set -u
BIN=${1:-target/release}; DUR=${DUR:-30}
export CLUSTER_DIR=$(mktemp -d /tmp/hb.XXXX) SLUICE=$BIN/sluice CORES=${CORES:-1}
S="$BIN/sluicectl --bootstrap 127.0.0.1:9092"
bash scripts/local-cluster.sh start > /dev/null
for port in 9092 9094 9096; do
  for i in $(seq 1 100); do $BIN/sluicectl --bootstrap 127.0.0.1:$port topic list > /dev/null 2>&1 && break; sleep 0.2; done
done
$S topic create load --partitions 6 --replication-factor 3 > /dev/null
sleep 2
terms() { for n in 1 2 3; do grep -o '"term":[0-9]*' $CLUSTER_DIR/node$n/__cluster_metadata/raft/vote | cut -d: -f2; done | sort -n | tail -1; }
t0=$(terms)
$S bench produce --topic load --partitions 6 --producers 2 --message-size 100 --batch-messages 1000 --acks 1 --warmup 2 --duration $DUR 2>&1 | tail -3
t1=$(terms)
fenced=$(cat $CLUSTER_DIR/node*.log | grep -c "sessions expired")
hb_fail=$(cat $CLUSTER_DIR/node*.log | grep -c "broker heartbeat failed")
echo "raft term before $t0 after $t1 (elections: $((t1 - t0))); brokers fenced: $fenced; failed heartbeats: $hb_fail"
bash scripts/local-cluster.sh stop
sleep 2; rm -rf "$CLUSTER_DIR"
