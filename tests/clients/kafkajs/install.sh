#!/usr/bin/env bash
# The KafkaJS tests' dependencies: kafkajs 2.2.4 exactly (package-lock.json) into
# node_modules/, for tests/kafkajs_clients.rs. Idempotent: skips `npm ci` when the pinned
# version is already installed. Needs Node 14+ and npm (installed with apt when missing).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "tests/clients/kafkajs/install.sh: installing Node.js and npm (apt)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nodejs npm
fi
want=$(node -p "require('./package-lock.json').packages['node_modules/kafkajs'].version")
have=$(node -p "try { require('./node_modules/kafkajs/package.json').version } catch (e) { '' }")
if [ "$have" != "$want" ]; then
    npm ci --no-audit --no-fund
fi
node -e "require('kafkajs')"
echo "tests/clients/kafkajs: ok (node $(node --version), kafkajs $want)"
