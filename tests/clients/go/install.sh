#!/usr/bin/env bash
# The Go client tests' dependencies: the modules pinned in go.mod/go.sum (franz-go
# v1.22.3 with kadm v1.20.0, Sarama v1.61.1) into Go's module cache, and one build of
# the scenario program into bin/clients, so that tests/go_clients.rs rebuilds offline.
# Idempotent: a second run downloads nothing and the build is incremental. Needs Go 1.26+
# (go.mod's go line; an older go fetches that toolchain itself, GOTOOLCHAIN=auto).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v go >/dev/null 2>&1; then
    echo "tests/clients/go/install.sh: \`go\` is not on PATH: install Go 1.26 or newer (https://go.dev/dl/)" >&2
    exit 1
fi
go mod download
go build -o bin/clients .
test -x bin/clients
echo "tests/clients/go: ok ($(go version | cut -d' ' -f3), bin/clients)"
