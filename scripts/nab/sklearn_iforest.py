"""Streams every NAB file through scikit-learn's IsolationForest with the protocol of
`vigil nab --detector iforest`: shingles of the last 8 values (earlier values repeat the
first), no score before 200 points, refit every 100 points on the last 2,000 shingles,
100 trees of 256 samples. Each point is scored by a forest fitted on earlier points only.
Writes NAB's results layout and prints the wall time."""

import argparse
import json
import os
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from sklearn.ensemble import IsolationForest

SHINGLE = 8
WARM_UP = 200
REFIT_EVERY = 100
HISTORY = 2000
NAME = "sklearn_iforest"


def shingles(values: np.ndarray) -> np.ndarray:
    rows = np.arange(len(values))[:, None] - (SHINGLE - 1 - np.arange(SHINGLE))[None, :]
    return values[np.clip(rows, 0, None)]


def score(values: np.ndarray, seed: int) -> np.ndarray:
    x = shingles(values)
    out = np.zeros(len(values))
    for start in range(WARM_UP, len(values), REFIT_EVERY):
        forest = IsolationForest(
            n_estimators=100, max_samples=min(256, start - max(0, start - HISTORY)), random_state=seed)
        forest.fit(x[max(0, start - HISTORY):start])
        end = min(start + REFIT_EVERY, len(values))
        # score_samples is the opposite of the paper's score s(x) = 2^(-E[h]/c(n)).
        out[start:end] = -forest.score_samples(x[start:end])
    return out


def run(job):
    data, out, name, windows = job
    lines = (data / name).read_text().splitlines()[1:]
    stamps = [line.split(",")[0] for line in lines]
    values = np.array([float(line.split(",")[1]) for line in lines])
    started = time.perf_counter()
    scores = score(values, seed=42)
    elapsed = time.perf_counter() - started
    category, file = name.split("/")
    folder = out / category
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{NAME}_{file}", "w") as f:
        f.write("timestamp,value,anomaly_score,label\n")
        for i, (t, v, s) in enumerate(zip(stamps, values, scores)):
            label = int(any(left <= i <= right for left, right in windows))
            f.write(f"{t},{lines[i].split(',')[1]},{s},{label}\n")
    return elapsed


def window_rows(data: Path, name: str, windows):
    """Window bounds as row indices (the labels give timestamps)."""
    stamps = [line.split(",")[0] for line in (data / name).read_text().splitlines()[1:]]
    rows = []
    for left, right in windows:
        left, right = left.split(".")[0], right.split(".")[0]
        rows.append((
            next(i for i, t in enumerate(stamps) if t >= left),
            max(i for i, t in enumerate(stamps) if t <= right),
        ))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="NAB folder with data/ and labels/")
    p.add_argument("--out", type=Path, required=True, help="results root; writes OUT/sklearn_iforest")
    args = p.parse_args()
    labels = json.loads((args.data / "labels" / "combined_windows.json").read_text())
    data = args.data / "data"
    out = args.out / NAME
    jobs = [(data, out, name, window_rows(data, name, w)) for name, w in sorted(labels.items())]
    workers = os.cpu_count() or 1
    started = time.perf_counter()
    with Pool(workers) as pool:
        cpu = sum(pool.map(run, jobs))
    wall = time.perf_counter() - started
    print(f"{NAME}: {len(jobs)} files in {wall:.1f} s wall on {workers} workers "
          f"({cpu:.1f} s scoring)")


if __name__ == "__main__":
    main()
