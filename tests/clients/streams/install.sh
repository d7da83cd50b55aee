#!/usr/bin/env bash
# The Kafka Streams tests' dependencies (kafka-streams 4.4.0, kafka-clients, slf4j-simple,
# Maven's plugins) into ~/.m2, and one build,
# so that tests/kafka_streams.rs can rebuild offline (mvn -o).
# Idempotent: a second run only checks that everything is there. Needs a JDK 17+ and Maven.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v mvn >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
    echo "tests/clients/streams/install.sh: installing a JDK and Maven (apt)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q openjdk-17-jdk-headless maven
fi
# Offline first: nothing to download when ~/.m2 already holds it all.
if ! mvn -o -q -B package >/dev/null 2>&1; then
    mvn -q -B package
fi
test -f target/classes/StreamsTests.class
ls target/lib/kafka-streams-4.4.0.jar target/lib/kafka-clients-4.4.0.jar >/dev/null
echo "tests/clients/streams: ok (target/classes/StreamsTests.class, target/lib)"
