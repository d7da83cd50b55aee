#!/usr/bin/env bash
# The Kafka Connect tests' dependencies (connect-runtime, connect-json, kafka-clients 4.4.0,
# log4j2, Maven's plugins) into ~/.m2, and one build,
# so that tests/kafka_connect.rs can rebuild offline (mvn -o).
# Idempotent: a second run only checks that everything is there. Needs a JDK 17+ and Maven.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v mvn >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
    echo "tests/clients/connect/install.sh: installing a JDK and Maven (apt)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q openjdk-17-jdk-headless maven
fi
# Offline first: nothing to download when ~/.m2 already holds it all.
if ! mvn -o -q -B package >/dev/null 2>&1; then
    mvn -q -B package
fi
test -f target/classes/dev/sluice/connect/LineFileSourceConnector.class
ls target/lib/connect-runtime-4.4.0.jar target/lib/kafka-clients-4.4.0.jar >/dev/null
echo "tests/clients/connect: ok (target/classes (the file connectors), target/lib)"
