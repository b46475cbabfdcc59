"""Versioned model files with SHA-256 integrity.

Layout under a configurable root directory::

    <root>/<name>/<version>/model.onnx
    <root>/<name>/<version>/meta.json   {"format": "qcn-model/1", "name", "version", "sha256",
                                         "created_at", "features", "threshold", "training_data_sha256",
                                         "n_training_rows", "params", "onnx_params", "libraries", ...}

Versions are write-once: saving an existing version raises :class:`ModelVersionExists`. ``load``
re-hashes ``model.onnx`` and raises :class:`~models.errors.ModelIntegrityError` when it differs from
``meta.json``. The returned :class:`~models.anomaly.LoadedModel` carries its
:class:`~models.base.ModelVersion`, which every score repeats so the gateway can record/anchor it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from models.anomaly import LoadedModel, onnx_param_count
from models.base import ModelVersion, sha256_bytes
from models.errors import InvalidInput, ModelError, ModelIntegrityError

__all__ = [
    "META_FORMAT",
    "ExportableModel",
    "ModelNotFound",
    "ModelRegistry",
    "ModelVersionExists",
    "library_versions",
]

META_FORMAT = "qcn-model/1"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LIBS = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pandas")


_SCORE_DOC = {
    "isolation_forest": "IsolationForest.score_samples; lower is more anomalous; flag if score < threshold",
    "pca_mahalanobis": "-max(T2_leading / c_lead, Mahalanobis d2 / c_full); lower is more anomalous; "
    "flag if score < threshold",
}


class ExportableModel(Protocol):
    """What :meth:`ModelRegistry.save` needs from a fitted anomaly model (IsolationForest, PCA-Mahalanobis)."""

    name: str
    features: list[str]
    threshold: float
    training_data_sha256: str | None
    n_training_rows: int

    @property
    def params(self) -> dict[str, Any]: ...

    def _check_fitted(self) -> None: ...

    def to_onnx(self) -> bytes: ...


class ModelNotFound(ModelError):
    """No stored model ``name`` (or no such ``version`` of it)."""

    code = "model_not_found"

    def __init__(self, name: str, version: str | None = None) -> None:
        what = f"model {name!r}" + (f" version {version!r}" if version else "")
        super().__init__(f"{what} not found in the registry", name=name, version=version)
        self.name = name
        self.version = version


class ModelVersionExists(ModelError):
    """A version is write-once; saving it again is refused."""

    code = "model_version_exists"

    def __init__(self, name: str, version: str) -> None:
        super().__init__(
            f"model {name!r} version {version!r} already exists: versions are write-once",
            name=name,
            version=version,
        )
        self.name = name
        self.version = version


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that train/export/run the model."""
    out: dict[str, str] = {}
    for lib in _LIBS:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "absent"
    return out


def _check_name(value: str, field: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value) or value in {".", ".."}:
        raise InvalidInput(f"{field} {value!r} must match {_NAME_RE.pattern}", field=field)
    return value


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    # natural order: 1.10.0 after 1.9.0; numbers before text within a component
    parts = re.split(r"[._-]", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


class ModelRegistry:
    """Model files under ``root`` (created on first save)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _dir(self, name: str, version: str) -> Path:
        return self.root / _check_name(name, "name") / _check_name(version, "version")

    def list_models(self) -> list[str]:
        """Names with at least one stored version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and _NAME_RE.match(p.name) and self.list_versions(p.name)
        )

    def list_versions(self, name: str) -> list[str]:
        """Stored versions of ``name``, oldest first (natural version order)."""
        d = self.root / _check_name(name, "name")
        if not d.is_dir():
            return []
        found = [
            p.name for p in d.iterdir() if p.is_dir() and (p / "meta.json").is_file() and (p / "model.onnx").is_file()
        ]
        return sorted(found, key=_version_key)

    def latest_version(self, name: str) -> str:
        """Highest stored version of ``name``; ModelNotFound if none."""
        versions = self.list_versions(name)
        if not versions:
            raise ModelNotFound(name)
        return versions[-1]

    def save(
        self,
        model: ExportableModel,
        name: str,
        version: str,
        *,
        created_at: datetime | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Export ``model`` to ONNX and store it as ``name``/``version`` (write-once, atomic).

        ``created_at`` defaults to now (UTC); pass a fixed value for reproducible metadata.
        """
        model._check_fitted()
        target = self._dir(name, version)
        if target.exists():
            raise ModelVersionExists(name, version)
        onnx_bytes = model.to_onnx()
        digest = sha256_bytes(onnx_bytes)
        created = (created_at or datetime.now(UTC)).astimezone(UTC)
        meta: dict[str, Any] = {
            "format": META_FORMAT,
            "name": name,
            "version": version,
            "kind": model.name,
            "sha256": digest,
            "created_at": created.isoformat(),
            "features": list(model.features),
            "threshold": model.threshold,
            "score": _SCORE_DOC.get(model.name, "lower is more anomalous; flag if score < threshold"),
            "output": "score_samples",
            "training_data_sha256": model.training_data_sha256,
            "n_training_rows": model.n_training_rows,
            "params": model.params,
            "onnx_params": onnx_param_count(onnx_bytes),
            "libraries": library_versions(),
            **(extra or {}),
        }
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=target.parent))
        try:
            (tmp / "model.onnx").write_bytes(onnx_bytes)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            tmp.chmod(0o755)  # mkdtemp creates 0700; the gateway may run as another user
            os.rename(tmp, target)  # atomic on one filesystem; fails if a concurrent save won
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if target.exists():
                raise ModelVersionExists(name, version) from exc
            raise ModelError(f"cannot store model {name!r} version {version!r}: {exc}") from exc
        return self._version(meta)

    def read_meta(self, name: str, version: str | None = None) -> dict[str, Any]:
        """The stored ``meta.json`` of a version (latest if None)."""
        version = version or self.latest_version(name)
        path = self._dir(name, version) / "meta.json"
        if not path.is_file():
            raise ModelNotFound(name, version)
        try:
            meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read {path}: {exc}") from exc
        for key in ("sha256", "features", "threshold", "name", "version"):
            if key not in meta:
                raise ModelError(f"{path} lacks {key!r}")
        return meta

    def load(self, name: str, version: str | None = None) -> LoadedModel:
        """Load ``name`` at ``version`` (latest if None), verifying the file's SHA-256 first."""
        version = version or self.latest_version(name)
        meta = self.read_meta(name, version)
        path = self._dir(name, version) / "model.onnx"
        if not path.is_file():
            raise ModelNotFound(name, version)
        data = path.read_bytes()
        actual = sha256_bytes(data)
        if actual != meta["sha256"]:
            raise ModelIntegrityError(str(path), meta["sha256"], actual)
        return LoadedModel.from_bytes(
            data,
            version=self._version(meta),
            features=meta["features"],
            threshold=meta["threshold"],
            meta=meta,
        )

    @staticmethod
    def _version(meta: dict[str, Any]) -> ModelVersion:
        return ModelVersion(
            name=meta["name"],
            version=meta["version"],
            sha256=meta["sha256"],
            created_at=datetime.fromisoformat(meta["created_at"]),
            params={**meta.get("params", {}), "training_data_sha256": meta.get("training_data_sha256")},
        )
