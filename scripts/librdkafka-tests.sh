#!/usr/bin/env bash
# Run librdkafka's own regression tests (shipped in the rdkafka-sys crate
# source, librdkafka/tests) against an already running Kafka-protocol broker.
#
# Usage: scripts/librdkafka-tests.sh BOOTSTRAP [TEST_NUMBERS...]
#
#   BOOTSTRAP     host:port of the broker under test, e.g. 127.0.0.1:9092.
#                 Start it with auto topic creation and num.partitions=4
#                 (librdkafka's "default" test scenario), e.g.
#                 sluice serve --override num.partitions=4 ...
#                 The special value "mock" starts librdkafka's built-in mock
#                 broker with the APIs Sluice lacks switched off (consumer
#                 groups, offset commit/fetch, transactions, idempotence,
#                 OffsetForLeaderEpoch). It is meant for checking this script
#                 itself, not Sluice; the mock has no CreateTopics/DeleteTopics,
#                 so tests that create topics explicitly fail against it.
#   TEST_NUMBERS  test numbers such as 0001 12 0031 (comma lists work too).
#                 Default: the tests that need only ApiVersions, Metadata,
#                 Produce, Fetch, ListOffsets, CreateTopics and DeleteTopics
#                 ($DEFAULT_TESTS below).
#
# Each test runs in its own test-runner process with a per-test timeout. The
# script prints one line per test and ends with "N passed, M failed" on a line
# of its own. It exits 0 only when no test failed. Tests the suite skips
# (e.g. not applicable for the broker version) count as neither and are
# reported on a separate "skipped" line.
#
# Environment:
#   TEST_KAFKA_VERSION       broker version the suite assumes (default 3.7.0).
#                            Must be >= 0.10.2 so topics are created with the
#                            Admin API (CreateTopics) instead of kafka-topics.sh.
#   LIBRDKAFKA_TEST_TIMEOUT  per-test timeout in seconds (default 300).
#   LIBRDKAFKA_TEST_QUICK    1 (default) passes -Q (quick mode: fewer messages);
#                            0 runs full-size tests.
#   LIBRDKAFKA_TEST_ARGS     extra test-runner arguments (e.g. "-k").
#   LIBRDKAFKA_TEST_CONF     extra lines appended to the generated test.conf
#                            (e.g. "debug=protocol" or "test.timeout.multiplier=3").
#   LIBRDKAFKA_SRC           librdkafka source directory to build from
#                            (default: found in the cargo registry).
#   LIBRDKAFKA_TESTS_DIR     build/run directory
#                            (default: <repo>/target/librdkafka-tests).
#   LIBRDKAFKA_BUILD_JOBS    make -j value for the build (default 2).
#   TEST_DEBUG, TEST_LEVEL   passed through to the test-runner.
#
# Logs of each test go to $LIBRDKAFKA_TESTS_DIR/runs/<run-id>/<test>.log.

set -euo pipefail

# Group (a): tests that need only ApiVersions, Metadata, Produce, Fetch,
# ListOffsets, CreateTopics, DeleteTopics (+ auto topic creation). They use
# the legacy (simple) consumer, or a KafkaConsumer with assign() at explicit
# offsets, and never need the group coordinator (FindCoordinator, JoinGroup,
# OffsetCommit/OffsetFetch), idempotence, transactions, SASL/SSL or configs.
# Run the broker like librdkafka's "default" test scenario: auto topic creation
# on and num.partitions=4 (several tests produce to partition 1..3 of
# auto-created topics).
DEFAULT_TESTS="0001 0002 0003 0005 0007 0008 0012 0013 0015 0017 0021 \
0031 0034 0035 0036 0039 0041 0048 0054 0057 0059 0063 0065 0068 0070 0073 \
0075 0088 0114 0123 0127"

die() {
    echo "librdkafka-tests: error: $*" >&2
    exit 2
}

usage() {
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    usage
    [[ $# -lt 1 ]] && exit 2
    exit 0
fi

BOOTSTRAP=$1
shift

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK_DIR=${LIBRDKAFKA_TESTS_DIR:-$REPO_ROOT/target/librdkafka-tests}
KAFKA_VERSION=${TEST_KAFKA_VERSION:-3.7.0}
TEST_TIMEOUT=${LIBRDKAFKA_TEST_TIMEOUT:-300}
QUICK=${LIBRDKAFKA_TEST_QUICK:-1}
JOBS=${LIBRDKAFKA_BUILD_JOBS:-2}

[[ $TEST_TIMEOUT =~ ^[0-9]+$ && $TEST_TIMEOUT -gt 0 ]] ||
    die "LIBRDKAFKA_TEST_TIMEOUT must be a positive integer, got '$TEST_TIMEOUT'"
[[ $JOBS =~ ^[0-9]+$ && $JOBS -gt 0 ]] ||
    die "LIBRDKAFKA_BUILD_JOBS must be a positive integer, got '$JOBS'"
command -v timeout >/dev/null || die "'timeout' (coreutils) not found"

# --- locate the librdkafka source ------------------------------------------

find_source() {
    if [[ -n ${LIBRDKAFKA_SRC:-} ]]; then
        [[ -f $LIBRDKAFKA_SRC/configure && -d $LIBRDKAFKA_SRC/tests ]] ||
            die "LIBRDKAFKA_SRC=$LIBRDKAFKA_SRC is not a librdkafka source tree"
        echo "$LIBRDKAFKA_SRC"
        return
    fi
    local registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
    local version="" candidates=()
    # Prefer the rdkafka-sys version pinned in Cargo.lock.
    if [[ -f $REPO_ROOT/Cargo.lock ]]; then
        version=$(awk '/^name = "rdkafka-sys"$/ { getline; gsub(/version = |"/, ""); print; exit }' \
            "$REPO_ROOT/Cargo.lock")
    fi
    if [[ -n $version ]]; then
        candidates=("$registry"/*/"rdkafka-sys-$version"/librdkafka)
    fi
    if [[ ${#candidates[@]} -eq 0 || ! -d ${candidates[0]} ]]; then
        # Fall back to the newest rdkafka-sys in the registry.
        candidates=()
        local d
        while IFS= read -r d; do candidates+=("$d"); done < <(
            ls -d "$registry"/*/rdkafka-sys-*/librdkafka 2>/dev/null | sort -V -r)
    fi
    [[ ${#candidates[@]} -gt 0 && -d ${candidates[0]}/tests ]] ||
        die "no rdkafka-sys source in $registry (run 'cargo build --tests' first, or set LIBRDKAFKA_SRC)"
    echo "${candidates[0]}"
}

# --- build (cached) ----------------------------------------------------------

BUILD_DIR=$WORK_DIR/librdkafka
TESTS_DIR=$BUILD_DIR/tests
RUNNER=$TESTS_DIR/test-runner
STAMP=$WORK_DIR/.built-from

build_runner() {
    local src
    src=$(find_source)
    if [[ -x $RUNNER && -f $STAMP && $(cat "$STAMP") == "$src" ]]; then
        return
    fi
    mkdir -p "$WORK_DIR"
    local log=$WORK_DIR/build.log
    echo "librdkafka-tests: building test-runner from $src (log: $log; takes ~10-15 min on 2 cores)" >&2
    rm -rf "$BUILD_DIR" "$STAMP"
    cp -a "$src" "$BUILD_DIR"
    chmod -R u+w "$BUILD_DIR"
    local start=$SECONDS
    if ! (
        cd "$BUILD_DIR" &&
            # Bundled/disabled optional deps: no SSL/SASL/curl/zstd needed;
            # lz4 is built in, zlib is used if zlib1g-dev is installed.
            ./configure --no-download --disable-ssl --disable-gssapi \
                --disable-curl --disable-zstd --disable-lz4-ext \
                --disable-debug-symbols &&
            make -j"$JOBS" libs &&
            make -j"$JOBS" -C tests build
    ) >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "build failed, see $log"
    fi
    [[ -x $RUNNER ]] || die "build finished but $RUNNER is missing, see $log"
    echo "$src" >"$STAMP"
    echo "librdkafka-tests: build done in $((SECONDS - start))s" >&2
}

# --- optional mock broker (self-test of this script) ------------------------

MOCK_PID=""
cleanup() {
    if [[ -n $MOCK_PID ]]; then
        kill "$MOCK_PID" 2>/dev/null || true
        wait "$MOCK_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

start_mock_broker() {
    local bin=$WORK_DIR/sluice-like-mock
    local csrc=$WORK_DIR/sluice-like-mock.c
    cat >"$csrc.new" <<'EOF'
/* librdkafka mock cluster with the APIs Sluice does not implement disabled. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include "rdkafka.h"
#include "rdkafka_mock.h"
static volatile sig_atomic_t run = 1;
static void stop(int sig) { (void)sig; run = 0; }
int main(void) {
        char errstr[256];
        /* OffsetCommit, OffsetFetch, FindCoordinator, JoinGroup, Heartbeat,
         * LeaveGroup, SyncGroup, InitProducerId, OffsetForLeaderEpoch,
         * AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit,
         * ConsumerGroupHeartbeat, GetTelemetrySubscriptions, PushTelemetry */
        static const int16_t off[] = {8, 9, 10, 11, 12, 13, 14, 22, 23,
                                      24, 25, 26, 28, 68, 71, 72};
        size_t i;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                      sizeof(errstr));
        rd_kafka_mock_cluster_t *mc;
        if (!rk) {
                fprintf(stderr, "rd_kafka_new: %s\n", errstr);
                return 1;
        }
        mc = rd_kafka_mock_cluster_new(rk, 1);
        if (!mc) {
                fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
                return 1;
        }
        for (i = 0; i < sizeof(off) / sizeof(*off); i++)
                rd_kafka_mock_set_apiversion(mc, off[i], -1, -1);
        signal(SIGTERM, stop);
        signal(SIGINT, stop);
        printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);
        while (run)
                usleep(100 * 1000);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 0;
}
EOF
    if [[ ! -x $bin ]] || ! cmp -s "$csrc.new" "$csrc"; then
        mv "$csrc.new" "$csrc"
        gcc -O1 -o "$bin" "$csrc" -I"$BUILD_DIR/src" "$BUILD_DIR/src/librdkafka.a" \
            -lm -lz -ldl -lpthread -lrt ||
            die "failed to compile mock broker $csrc"
    else
        rm -f "$csrc.new"
    fi
    local out=$WORK_DIR/mock-broker.out
    rm -f "$out"
    "$bin" >"$out" 2>"$WORK_DIR/mock-broker.err" &
    MOCK_PID=$!
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s $out && $(tail -c1 "$out") == "" ]] && break
        sleep 0.1
    done
    [[ -s $out ]] || die "mock broker did not start (see $WORK_DIR/mock-broker.err)"
    BOOTSTRAP=$(head -n1 "$out")
}

# --- argument handling -------------------------------------------------------

TESTS_LIST=()
add_tests() { # add_tests ARG... (numbers, possibly comma-separated)
    local arg t
    for arg in "$@"; do
        for t in ${arg//,/ }; do
            [[ $t =~ ^[0-9]{1,4}$ ]] || die "invalid test number '$t' (expected e.g. 0001 or 12)"
            TESTS_LIST+=("$(printf '%04d' $((10#$t)))")
        done
    done
}

if [[ $# -gt 0 ]]; then
    add_tests "$@"
else
    # shellcheck disable=SC2086
    add_tests $DEFAULT_TESTS
fi
[[ ${#TESTS_LIST[@]} -gt 0 ]] || die "no tests given"

build_runner

for t in "${TESTS_LIST[@]}"; do
    compgen -G "$TESTS_DIR/$t-*.c*" >/dev/null ||
        die "no such librdkafka test: $t (see $TESTS_DIR)"
done

if [[ $BOOTSTRAP == mock ]]; then
    start_mock_broker
    echo "librdkafka-tests: started mock broker at $BOOTSTRAP (pid $MOCK_PID)" >&2
fi

# Fail fast and clearly when nothing listens at BOOTSTRAP (first entry).
first=${BOOTSTRAP%%,*}
host=${first%:*}
port=${first##*:}
[[ -n $host && $port =~ ^[0-9]+$ && $first == *:* ]] ||
    die "BOOTSTRAP must be host:port, got '$BOOTSTRAP'"
host=${host#[}
host=${host%]}
if ! timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null; then
    die "cannot connect to broker at $host:$port"
fi

# --- run -----------------------------------------------------------------------

RUN_ID=$(date +%Y%m%d-%H%M%S)-$$
RUN_DIR=$WORK_DIR/runs/$RUN_ID
mkdir -p "$RUN_DIR"
CONF=$RUN_DIR/test.conf
{
    echo "bootstrap.servers=$BOOTSTRAP"
    # Unique topic prefix per run so re-runs against a long-lived broker do
    # not see messages left by earlier runs.
    echo "test.topic.prefix=rdkafkatest_${RUN_ID//-/_}"
    if [[ -n ${LIBRDKAFKA_TEST_CONF:-} ]]; then
        printf '%s\n' "$LIBRDKAFKA_TEST_CONF"
    fi
} >"$CONF"

RUNNER_ARGS=(-L -p1 -S)
[[ $QUICK == 1 ]] && RUNNER_ARGS+=(-Q)
if [[ -n ${LIBRDKAFKA_TEST_ARGS:-} ]]; then
    read -r -a extra <<<"$LIBRDKAFKA_TEST_ARGS"
    RUNNER_ARGS+=("${extra[@]}")
fi

echo "librdkafka-tests: broker $BOOTSTRAP, TEST_KAFKA_VERSION=$KAFKA_VERSION," \
    "timeout ${TEST_TIMEOUT}s/test, logs in $RUN_DIR" >&2

# First line of the current test's log matching ERE $1 (colour codes and the
# "[test / time]" prefix stripped), skipping lines matching ERE $2 if given.
first_line() {
    sed -E 's/\x1b\[[0-9;]*m//g; s/^\[[^]]*\] *//' "$log" |
        grep -vE "${2:-^\$^}" | grep -m1 -E "$1" | cut -c1-200 || true
}

passed=0
failed=0
skipped=0
failed_list=()
for t in "${TESTS_LIST[@]}"; do
    log=$RUN_DIR/$t.log
    start=$SECONDS
    set +e
    # The { } 2>/dev/null swallows bash's "Killed"/"Aborted" job notices.
    { (
        cd "$TESTS_DIR" &&
            exec env TESTS="$t" TEST_KAFKA_VERSION="$KAFKA_VERSION" \
                RDKAFKA_TEST_CONF="$CONF" TEST_MODE=bare \
                RDKAFKA_GITVER="rdkafka-sys" \
                LD_LIBRARY_PATH="../src:../src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
                timeout -k 10 "$TEST_TIMEOUT" ./test-runner "${RUNNER_ARGS[@]}"
    ) >"$log" 2>&1 </dev/null; } 2>/dev/null
    rc=$?
    set -e
    secs=$((SECONDS - start))
    # Per-(sub)test results as reported by the runner, e.g.
    # "================= Test 0031_get_offsets PASSED =================".
    results=$(sed -E 's/\x1b\[[0-9;]*m//g' "$log" |
        grep -oE "=+ Test ${t}_[A-Za-z0-9_]+ (PASSED|FAILED|SKIPPED)" || true)
    n_pass=$(grep -c ' PASSED$' <<<"$results" || true)
    n_fail=$(grep -c ' FAILED$' <<<"$results" || true)
    n_skip=$(grep -c ' SKIPPED$' <<<"$results" || true)
    if [[ $rc -eq 124 || ($rc -eq 137 && $secs -ge $TEST_TIMEOUT) ]]; then
        status="FAIL"
        reason="timed out after ${TEST_TIMEOUT}s"
    elif [[ $rc -ne 0 || $n_fail -gt 0 ]]; then
        status="FAIL"
        # The runner prints '### Test "NAME (func:line)" failed at ...' followed
        # by the failure message; show "NAME (func:line): message".
        reason=$(sed -E 's/\x1b\[[0-9;]*m//g' "$log" | awk '
            /^### Test ".*" failed at/ {
                name = $0; sub(/^### Test "/, "", name); sub(/" failed at.*/, "", name)
                if ((getline msg) > 0) { print name ": " msg; exit }
            }' | cut -c1-220 || true)
        [[ -n $reason ]] || reason=$(first_line "FAIL|[Aa]ssert|[Ee]rror")
        [[ -n $reason ]] || reason="test-runner exited with $rc"
    elif [[ $n_pass -gt 0 ]]; then
        status="PASS"
        reason=""
        [[ $n_skip -gt 0 ]] && reason="$n_pass sub-test(s) passed, $n_skip skipped"
    else
        status="SKIP"
        reason=$(first_line "SKIPPING TEST" "negative test flags" | sed -E 's/^WARN: SKIPPING TEST: //')
        [[ -n $reason ]] ||
            reason="no sub-test ran (local-only, known-issue or non-default scenario)"
    fi
    case $status in
    PASS) passed=$((passed + 1)) ;;
    SKIP) skipped=$((skipped + 1)) ;;
    FAIL)
        failed=$((failed + 1))
        failed_list+=("$t")
        ;;
    esac
    printf '%-4s %s  (%ss)%s\n' "$status" "$t" "$secs" "${reason:+  $reason}"
    if [[ $status == FAIL ]]; then
        echo "     log: $log"
    fi
done

if [[ $skipped -gt 0 ]]; then
    echo "($skipped skipped)"
fi
if [[ $failed -gt 0 ]]; then
    echo "failed: ${failed_list[*]}"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
