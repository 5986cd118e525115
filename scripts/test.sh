#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the end-to-end tests need
# (a Python virtualenv with the OpenTelemetry SDK, in .venv) and then the whole Rust suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

cargo test --workspace --all-targets "$@"
