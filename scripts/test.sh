#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the end-to-end tests need
# (a Python virtualenv with the OpenTelemetry SDK, in .venv; the Debian packages nats-server,
# prometheus-alertmanager and prometheus, for promtool) and then the whole Rust suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian installs nats-server in /usr/sbin.
export PATH="$PATH:/usr/sbin"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# need COMMAND PACKAGE: installs the Debian package unless the command exists.
need() {
  if ! command -v "$1" >/dev/null; then
    $SUDO apt-get install -y -q "$2" >/dev/null \
      || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "$2" >/dev/null; }
  fi
}
need nats-server nats-server
need prometheus-alertmanager prometheus-alertmanager
need promtool prometheus

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# --no-fail-fast: a red run reports every failing test binary, not only the first.
cargo test --workspace --all-targets --no-fail-fast "$@"
