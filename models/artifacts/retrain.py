"""Retrain the shipped default anomaly model reproducibly.

    python -m models.artifacts.retrain            # (re)write models/artifacts/<name>/<version>
    python -m models.artifacts.retrain --check    # retrain in a temp dir, compare SHA-256 with shipped
    python -m models.artifacts.retrain --out DIR  # write into another registry root

Same seed + same library versions => byte-identical ``model.onnx`` (same SHA-256).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from models.anomaly import IsolationForestModel, simulate_characteristics
from models.artifacts import (
    ARTIFACTS_DIR,
    DEFAULT_MODEL_NAME,
    DEFAULT_MODEL_VERSION,
    TRAINING_ROWS,
    TRAINING_SEED,
)
from models.base import ModelVersion
from models.registry import ModelRegistry

__all__ = ["main", "train_default"]

# fixed so meta.json is reproducible too
CREATED_AT = datetime(2025, 1, 1, tzinfo=UTC)


def train_default(root: Path) -> ModelVersion:
    """Train the default model on seeded simulated in-control data and save it under ``root``."""
    data = simulate_characteristics(TRAINING_ROWS, seed=TRAINING_SEED)
    model = IsolationForestModel(n_estimators=100, max_samples=256, threshold_quantile=0.005, random_state=0)
    model.fit(data)
    return ModelRegistry(root).save(
        model,
        DEFAULT_MODEL_NAME,
        DEFAULT_MODEL_VERSION,
        created_at=CREATED_AT,
        extra={
            "training_data": {
                "generator": "models.anomaly.simulate_characteristics",
                "rows": TRAINING_ROWS,
                "seed": TRAINING_SEED,
            }
        },
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="retrain in a temp dir and compare with the shipped file")
    ap.add_argument("--out", type=Path, default=None, help="registry root to write to")
    args = ap.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = train_default(Path(tmp))
        shipped = ModelRegistry(ARTIFACTS_DIR).read_meta(DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION)
        same = fresh.sha256 == shipped["sha256"]
        print(
            f"retrained sha256 {fresh.sha256}\nshipped   sha256 {shipped['sha256']}\n"
            f"{'identical' if same else 'DIFFERENT'}"
        )
        return 0 if same else 1
    root = args.out or ARTIFACTS_DIR
    target = root / DEFAULT_MODEL_NAME / DEFAULT_MODEL_VERSION
    if target.exists() and args.out is None:
        shutil.rmtree(target)  # replacing the shipped artefact is the purpose of this script
    v = train_default(root)
    print(f"saved {v.ref} to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
