"""Retrain the shipped default anomaly model reproducibly.

    python -m models.artifacts.retrain                    # (re)write models/artifacts/<name>/<default version>
    python -m models.artifacts.retrain --version 1.0.0    # another shipped version (1.0.0 = IsolationForest)
    python -m models.artifacts.retrain --check            # retrain in a temp dir, compare SHA-256 with shipped
    python -m models.artifacts.retrain --out DIR          # write into another registry root

Same seed + same library versions => byte-identical ``model.onnx`` (same SHA-256).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.anomaly import IsolationForestModel, simulate_characteristics
from models.artifacts import (
    ARTIFACTS_DIR,
    DEFAULT_MODEL_NAME,
    DEFAULT_MODEL_VERSION,
    TRAINING_ROWS,
    TRAINING_SEED,
)
from models.base import ModelVersion
from models.errors import InvalidInput
from models.mspc import PcaMahalanobisModel
from models.registry import ModelRegistry

__all__ = ["SHIPPED_VERSIONS", "build_model", "main", "train_default", "train_version"]

# fixed so meta.json is reproducible too
CREATED_AT = datetime(2025, 1, 1, tzinfo=UTC)

#: every shipped version of the default model and how it is built (all on the same seeded data)
SHIPPED_VERSIONS: dict[str, dict[str, Any]] = {
    "1.0.0": {
        "kind": "isolation_forest",
        "params": {"n_estimators": 100, "max_samples": 256, "threshold_quantile": 0.005, "random_state": 0},
    },
    "2.0.0": {
        "kind": "pca_mahalanobis",
        "params": {"n_leading": 1, "lead_quantile": 0.99, "full_quantile": 0.999, "threshold_quantile": 0.005},
    },
}


def build_model(version: str) -> IsolationForestModel | PcaMahalanobisModel:
    """Unfitted model of a shipped ``version`` with its recorded hyper-parameters."""
    try:
        spec = SHIPPED_VERSIONS[version]
    except KeyError:
        raise InvalidInput(
            f"unknown shipped version {version!r} (known: {', '.join(SHIPPED_VERSIONS)})", field="version"
        ) from None
    if spec["kind"] == "isolation_forest":
        return IsolationForestModel(**spec["params"])
    return PcaMahalanobisModel(**spec["params"])


def train_version(root: Path, version: str) -> ModelVersion:
    """Train shipped ``version`` on seeded simulated in-control data and save it under ``root``."""
    model = build_model(version)
    model.fit(simulate_characteristics(TRAINING_ROWS, seed=TRAINING_SEED))
    return ModelRegistry(root).save(
        model,
        DEFAULT_MODEL_NAME,
        version,
        created_at=CREATED_AT,
        extra={
            "training_data": {
                "generator": "models.anomaly.simulate_characteristics",
                "rows": TRAINING_ROWS,
                "seed": TRAINING_SEED,
            }
        },
    )


def train_default(root: Path) -> ModelVersion:
    """Train the default model version and save it under ``root``."""
    return train_version(root, DEFAULT_MODEL_VERSION)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="retrain in a temp dir and compare with the shipped file")
    ap.add_argument("--out", type=Path, default=None, help="registry root to write to")
    ap.add_argument(
        "--version",
        default=DEFAULT_MODEL_VERSION,
        choices=sorted(SHIPPED_VERSIONS),
        help=f"version to build (default {DEFAULT_MODEL_VERSION})",
    )
    args = ap.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = train_version(Path(tmp), args.version)
        shipped = ModelRegistry(ARTIFACTS_DIR).read_meta(DEFAULT_MODEL_NAME, args.version)
        same = fresh.sha256 == shipped["sha256"]
        print(
            f"retrained sha256 {fresh.sha256}\nshipped   sha256 {shipped['sha256']}\n"
            f"{'identical' if same else 'DIFFERENT'}"
        )
        return 0 if same else 1
    root = args.out or ARTIFACTS_DIR
    target = root / DEFAULT_MODEL_NAME / args.version
    if target.exists() and args.out is None:
        shutil.rmtree(target)  # replacing the shipped artefact is the purpose of this script
    v = train_version(root, args.version)
    print(f"saved {v.ref} to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
