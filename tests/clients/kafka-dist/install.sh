#!/usr/bin/env bash
# Fetches Apache Kafka 4.4.0's jars (broker + command-line tools) from Maven Central into
# tests/clients/kafka-dist/target/lib, for scripts/kafka-reference.sh and
# tests/kafka_tools.rs. Idempotent: quick when target/lib is complete for this pom.xml.
set -euo pipefail
cd "$(dirname "$0")"

stamp=target/lib/.complete
if [ -f "$stamp" ] && [ "$stamp" -nt pom.xml ] \
    && ls target/lib/kafka_2.13-*.jar target/lib/kafka-tools-*.jar >/dev/null 2>&1; then
    echo "kafka-dist: jars present ($(ls target/lib/*.jar | wc -l) in target/lib)"
    exit 0
fi
command -v mvn >/dev/null || { echo "kafka-dist: mvn (Maven) is needed" >&2; exit 1; }
command -v java >/dev/null || { echo "kafka-dist: java (JDK 17+) is needed" >&2; exit 1; }
rm -rf target/lib
mvn -q -B -Dstyle.color=never package
touch "$stamp"
echo "kafka-dist: $(ls target/lib/*.jar | wc -l) jars in $(pwd)/target/lib"
