#!/usr/bin/env bash
# Installs what the tests need:
#   - kcat (Debian package) for tests/python_clients.rs (tests/clients/*.py)
#   - mkfs.ext4 and mount (e2fsprogs, mount) for tests/disk_full.rs (a loop-mounted ext4)
#   - the pinned Python clients in tests/clients/requirements.txt
#   - libssl-dev and pkg-config: sluicectl links librdkafka with OpenSSL
# Idempotent: does nothing when everything is already present.
set -euo pipefail

cd "$(dirname "$0")/.."
REQ=tests/clients/requirements.txt
PYTHON=${PYTHON:-python3}

apt_missing=""
command -v kcat >/dev/null 2>&1 || apt_missing="$apt_missing kcat"
command -v mkfs.ext4 >/dev/null 2>&1 || apt_missing="$apt_missing e2fsprogs"
command -v mount >/dev/null 2>&1 || apt_missing="$apt_missing mount"
command -v nft >/dev/null 2>&1 || apt_missing="$apt_missing nftables"
# sluicectl links librdkafka with OpenSSL (SSL listeners, SCRAM).
pkg-config --exists openssl 2>/dev/null || apt_missing="$apt_missing libssl-dev pkg-config"
if [ -n "$apt_missing" ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    echo "install-test-deps: installing (apt):$apt_missing"
    $SUDO apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $apt_missing
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

# Each client family under tests/clients/<family>/ installs (and builds once) what it
# needs with its own install.sh: Maven artifacts, Go modules, npm packages.
for fam in tests/clients/*/install.sh; do
    [ -f "$fam" ] || continue
    echo "install-test-deps: $fam"
    bash "$fam"
done

"$PYTHON" -c "import kafka, confluent_kafka, pytest" 
command -v kcat >/dev/null
command -v mkfs.ext4 >/dev/null
echo "install-test-deps: ok (kcat, mkfs.ext4, kafka-python, confluent-kafka, pytest present)"
