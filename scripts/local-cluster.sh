#!/bin/bash
# A three-node Sluice cluster on this machine: every node a broker and a controller voter.
#   scripts/local-cluster.sh start   format (first time) and start nodes 1-3
#   scripts/local-cluster.sh stop    stop them (controlled shutdown)
# Clients: bootstrap from any of 127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096.
# Data and logs: $CLUSTER_DIR (default ./sluice-cluster). Binary: $SLUICE (default
# target/release/sluice). Each node runs with --cores ${CORES:-1}; $EXTRA (e.g.
# "--override min.insync.replicas=2") is added to every node's overrides.
set -eu
DIR=${CLUSTER_DIR:-./sluice-cluster}
SLUICE=${SLUICE:-target/release/sluice}
VOTERS="1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
props() { # node id -> its overrides
  local id=$1 port=$((9090 + 2 * $1))
  echo "--override node.id=$id --override process.roles=broker,controller"
  echo "--override controller.quorum.voters=$VOTERS"
  echo "--override listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1))"
  echo "--override log.dirs=$DIR/node$id --override admin.listeners=127.0.0.1:$((19090 + id))"
  echo "${EXTRA:-}"
}
case ${1:-} in
  start)
    mkdir -p "$DIR"
    [ -f "$DIR/cluster.id" ] || "$SLUICE" random-uuid > "$DIR/cluster.id"
    for id in 1 2 3; do
      "$SLUICE" format --cluster-id "$(cat "$DIR/cluster.id")" --ignore-formatted $(props $id) > /dev/null
      nohup "$SLUICE" serve $(props $id) --cores "${CORES:-1}" > "$DIR/node$id.log" 2>&1 &
      echo $! > "$DIR/node$id.pid"
    done
    echo "started nodes 1-3 (logs in $DIR/node*.log); bootstrap: 127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    ;;
  stop)
    for id in 1 2 3; do
      [ -f "$DIR/node$id.pid" ] && kill "$(cat "$DIR/node$id.pid")" 2> /dev/null || true
      rm -f "$DIR/node$id.pid"
    done
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
