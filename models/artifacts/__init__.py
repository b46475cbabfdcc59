"""The default anomaly model shipped with qcn, so the gateway scores batches out of the box.

``models/artifacts`` is itself a registry root (``<name>/<version>/model.onnx + meta.json``). The
model is trained on :func:`models.anomaly.simulate_characteristics` (seeded) by
``python -m models.artifacts.retrain``, which reproduces the shipped file byte for byte.

Versions (write-once; the older ones stay loadable by version):

- ``1.0.0``: IsolationForest (100 trees, 159,801 ONNX numbers). Misses correlation-breaking rows.
- ``2.0.0`` (default): :class:`models.mspc.PcaMahalanobisModel`, T² on the leading principal component
  + Mahalanobis d² (45 ONNX numbers). At the same 0.5 % false-alarm rate it detects RF power +3 sigma
  and breakdown voltage -25 V (others normal) better; figures in ``tests/models/test_mspc.py``.
"""

from __future__ import annotations

from pathlib import Path

from models.anomaly import LoadedModel
from models.registry import ModelRegistry

__all__ = [
    "ARTIFACTS_DIR",
    "DEFAULT_MODEL_NAME",
    "DEFAULT_MODEL_VERSION",
    "TRAINING_ROWS",
    "TRAINING_SEED",
    "default_registry",
    "load_default_model",
]

ARTIFACTS_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_NAME = "film-anomaly"
DEFAULT_MODEL_VERSION = "2.0.0"
TRAINING_SEED = 20240611
TRAINING_ROWS = 4000


def default_registry() -> ModelRegistry:
    """Registry over the shipped artefacts (read-only by convention)."""
    return ModelRegistry(ARTIFACTS_DIR)


def load_default_model() -> LoadedModel:
    """Load the shipped default model (SHA-256 verified)."""
    return default_registry().load(DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION)
