#!/usr/bin/env bash
# Scores scikit-learn's IsolationForest and Vigil's detectors on NAB with the same streaming
# protocol and the same scorer (`vigil nab`), printing each one's scores and wall time.
# Usage: scripts/nab-side-by-side.sh [NAB_DIR] [RESULTS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data/nab}"
OUT="${2:-target/nab-results}"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r scripts/nab/requirements.txt
cargo build --quiet --bin vigil
VIGIL=target/debug/vigil

echo "== scikit-learn IsolationForest (streaming, shingles of 8, refit every 100 on the last 2,000)"
.venv/bin/python scripts/nab/sklearn_iforest.py --data "$DATA" --out "$OUT"
"$VIGIL" nab --data "$DATA" --score-results "$OUT/sklearn_iforest"
echo
echo "== Vigil's isolation forest, same protocol"
"$VIGIL" nab --data "$DATA" --detector iforest --write-results "$OUT"
echo
echo "== Vigil's detector"
"$VIGIL" nab --data "$DATA" --detector vigil --write-results "$OUT"
