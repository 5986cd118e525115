#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the end-to-end tests need
# (a Python virtualenv with the OpenTelemetry SDK, in .venv; the Debian package nats-server)
# and then the whole Rust suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian installs nats-server in /usr/sbin.
export PATH="$PATH:/usr/sbin"
if ! command -v nats-server >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get install -y -q nats-server >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q nats-server >/dev/null; }
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

cargo test --workspace --all-targets "$@"
