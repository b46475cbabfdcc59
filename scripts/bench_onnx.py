"""Benchmark the shipped ONNX anomaly model against scikit-learn, and its detection vs version 1.0.0.

    .venv/bin/python scripts/bench_onnx.py      # prints JSON and writes bench/results/onnx.json

Targets: single-row p99 <= 2 ms, batched >= 50k rows/s (1 intra-op thread).

Detection (``detection`` key): in-control rows (seed 9001) and two fault kinds, RF power +3 sigma
(seed 9002) and breakdown voltage -25 V with everything else normal (seed 9003), 20,000 rows each;
for the default model and for 1.0.0 (IsolationForest), at the shipped thresholds and at a matched
0.5 % false-alarm rate (threshold = 0.5 % quantile of 40,000 independent in-control rows, seed 9004).
These seeds were not used to choose the model's quantiles (seeds 776-782 were).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.anomaly import LoadedModel, simulate_characteristics  # noqa: E402
from models.artifacts import (  # noqa: E402
    DEFAULT_MODEL_NAME,
    TRAINING_ROWS,
    TRAINING_SEED,
    default_registry,
    load_default_model,
)
from models.artifacts.retrain import build_model  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "onnx.json"


def measure_onnx(
    *, single_iters: int = 3000, warmup: int = 300, batch_rows: int = 10_000, batch_reps: int = 10
) -> dict[str, float | int | str]:
    """Latency/throughput of the default model: ONNX (onnxruntime, 1 thread) vs scikit-learn."""
    model = load_default_model()
    x_single = simulate_characteristics(1, seed=1).to_numpy(dtype=np.float32)
    x_batch = simulate_characteristics(batch_rows, seed=2).to_numpy(dtype=np.float32)
    scorer = model.scorer

    for _ in range(warmup):
        scorer.score_samples(x_single)
    lat = np.empty(single_iters)
    for i in range(single_iters):
        t0 = time.perf_counter()
        scorer.score_samples(x_single)
        lat[i] = time.perf_counter() - t0
    # end-to-end path the gateway uses (feature checks on a DataFrame + ModelScore)
    df_single = simulate_characteristics(1, seed=1)
    lat_api = np.empty(single_iters // 3)
    for i in range(lat_api.size):
        t0 = time.perf_counter()
        model.score(df_single)
        lat_api[i] = time.perf_counter() - t0

    scorer.score_samples(x_batch)
    t0 = time.perf_counter()
    for _ in range(batch_reps):
        scorer.score_samples(x_batch)
    onnx_rps = batch_rows * batch_reps / (time.perf_counter() - t0)

    # baseline in the same run: the same model re-trained (deterministic) in scikit-learn
    sk = build_model(model.version.version)
    sk.fit(simulate_characteristics(TRAINING_ROWS, seed=TRAINING_SEED))
    sk.score(x_batch)
    t0 = time.perf_counter()
    for _ in range(batch_reps):
        sk.score(x_batch)
    sk_rps = batch_rows * batch_reps / (time.perf_counter() - t0)
    sk_lat = np.empty(300)
    for i in range(sk_lat.size):
        t0 = time.perf_counter()
        sk.score(x_single)
        sk_lat[i] = time.perf_counter() - t0
    max_diff = float(np.max(np.abs(scorer.score_samples(x_batch) - sk.score(x_batch))))

    return {
        "model": model.version.ref,
        "kind": str(model.meta.get("kind")),
        "onnx_p50_ms": float(np.percentile(lat, 50) * 1e3),
        "onnx_p99_ms": float(np.percentile(lat, 99) * 1e3),
        "onnx_api_p50_ms": float(np.percentile(lat_api, 50) * 1e3),
        "onnx_api_p99_ms": float(np.percentile(lat_api, 99) * 1e3),
        "onnx_rows_per_s": float(onnx_rps),
        "onnx_params": int(model.meta["onnx_params"]),
        "sklearn_rows_per_s": float(sk_rps),
        "sklearn_single_p50_ms": float(np.percentile(sk_lat, 50) * 1e3),
        "max_abs_score_diff": max_diff,
        "batch_rows": batch_rows,
        "single_iters": single_iters,
        "threads": 1,
        "python": platform.python_version(),
    }


def detection_rates(model: LoadedModel, *, n: int = 20_000) -> dict[str, float]:
    """False-alarm and per-fault detection rates, at the shipped threshold and at a matched 0.5 % FA."""
    sets = {
        "in_control": simulate_characteristics(n, seed=9001),
        "rf_power_+3sd": simulate_characteristics(n, seed=9002, shift={"rf_power": 3.0}),
        "breakdown_-25V": simulate_characteristics(n, seed=9003, shift={"breakdown_voltage_v": -25.0}),
    }
    calib = model.score_samples(simulate_characteristics(2 * n, seed=9004))
    matched = float(np.quantile(calib, 0.005))
    out: dict[str, float] = {}
    for key, df in sets.items():
        s = model.score_samples(df)
        out[f"{key}_flagged"] = float(np.mean(s < model.threshold))
        out[f"{key}_flagged_at_fa_0.5pct"] = float(np.mean(s < matched))
    return out


def measure_detection() -> dict[str, dict[str, float]]:
    """Detection figures of every shipped version of the default model."""
    reg = default_registry()
    return {v: detection_rates(reg.load(DEFAULT_MODEL_NAME, v)) for v in reg.list_versions(DEFAULT_MODEL_NAME)}


if __name__ == "__main__":
    res: dict[str, object] = dict(measure_onnx())
    res["detection"] = measure_detection()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(res, indent=2))
    ok = res["onnx_p99_ms"] <= 2.0 and res["onnx_rows_per_s"] >= 50_000  # type: ignore[operator]
    print("targets met" if ok else "TARGETS MISSED: p99 <= 2 ms and >= 50k rows/s", file=sys.stderr)
