#!/usr/bin/env bash
# Installs what tests/python_clients.rs (tests/clients/*.py) needs:
#   - kcat (Debian package)
#   - the pinned Python clients in tests/clients/requirements.txt
# Idempotent: does nothing when everything is already present.
set -euo pipefail

cd "$(dirname "$0")/.."
REQ=tests/clients/requirements.txt
PYTHON=${PYTHON:-python3}

if ! command -v kcat >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    echo "install-test-deps: installing kcat (apt)"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q kcat
fi

# Only the requirements whose exact pinned version is not installed yet.
missing=$("$PYTHON" - "$REQ" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        have = version(name.strip())
    except PackageNotFoundError:
        have = None
    if have != want.strip():
        print(line)
PY
)
if [ -n "$missing" ]; then
    echo "install-test-deps: pip installing:" $missing
    # shellcheck disable=SC2086
    "$PYTHON" -m pip install --disable-pip-version-check -q $missing
fi

"$PYTHON" -c "import kafka, confluent_kafka, pytest" 
command -v kcat >/dev/null
echo "install-test-deps: ok (kcat, kafka-python, confluent-kafka, pytest present)"
