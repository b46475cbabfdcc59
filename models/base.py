"""The small interface analysis models share, and the version record every result carries.

An analysis model is fitted on plain data (pandas DataFrame / numpy array), then scores or predicts.
Using it before :meth:`AnalysisModel.fit` raises :class:`~models.errors.NotFittedError`. Subclasses
implement ``_fit`` and ``_score`` (and ``_predict`` when predictions differ from scores); the base
class does the not-fitted bookkeeping so every model behaves the same way.

Example::

    class MeanShift(AnalysisModel):
        name = "mean_shift"
        def _fit(self, data, **kw):
            self.mean_ = float(np.mean(data))
        def _score(self, data):
            return np.abs(np.asarray(data) - self.mean_)

    m = MeanShift()
    m.score([1.0])            # NotFittedError
    m.fit([1.0, 3.0]).score([4.0])  # array([2.])
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from chain.canonical import CURRENT_HASH_FORMAT, HashFormat, json_sha256
from models.errors import NotFittedError

__all__ = ["AnalysisModel", "ModelVersion", "sha256_bytes", "sha256_json"]


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any, fmt: HashFormat = CURRENT_HASH_FORMAT) -> str:
    """Hex SHA-256 of a JSON value in qcn's one versioned canonical JSON (:func:`chain.canonical.json_sha256`).

    RFC 8785 unless ``fmt`` says otherwise: ``HashFormat.LEGACY_JSON`` (sorted-keys ``json.dumps``) gives the
    hashes models made before, so those still verify. The format travels with the hash: analysis documents
    name it by their ``format`` (``app.analysis.engine.MODEL_HASH_FORMATS``). Non-finite numbers and non-JSON
    values raise ``chain.canonical.CanonicalizationError`` (a ``ValueError``) instead of being stringified.
    """
    return json_sha256(obj, fmt)


class ModelVersion(BaseModel):
    """Identity of a fitted model: what was used to produce a result (recorded/anchored with it).

    ``sha256`` is the hash of the model artefact (file bytes, or canonical JSON of the parameters for
    models that are not files); ``params`` are the fit parameters needed to reproduce it.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def ref(self) -> str:
        """Short reference ``name@version#sha256[:12]`` for logs and reasons."""
        return f"{self.name}@{self.version}#{self.sha256[:12]}"


class AnalysisModel(ABC):
    """Base of analysis models: ``fit`` then ``score`` / ``predict``; not-fitted use raises.

    Subclasses set ``name`` and implement ``_fit`` and ``_score``; override ``_predict`` if
    predictions are not simply the scores.
    """

    name: str = "model"

    def __init__(self) -> None:
        self._fitted = False

    @property
    def is_fitted(self) -> bool:
        """True once :meth:`fit` succeeded (or the model was loaded in a fitted state)."""
        return self._fitted

    def fit(self, data: Any, **kwargs: Any) -> Self:
        """Fit on in-control / training data; returns ``self`` for chaining."""
        self._fit(data, **kwargs)
        self._fitted = True
        return self

    def score(self, data: Any) -> Any:
        """Score ``data`` (meaning defined by the model); raises NotFittedError before fit."""
        self._check_fitted()
        return self._score(data)

    def predict(self, data: Any) -> Any:
        """Predict for ``data``; raises NotFittedError before fit. Defaults to :meth:`score`."""
        self._check_fitted()
        return self._predict(data)

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError(self.name)

    @abstractmethod
    def _fit(self, data: Any, **kwargs: Any) -> None: ...

    @abstractmethod
    def _score(self, data: Any) -> Any: ...

    def _predict(self, data: Any) -> Any:
        return self._score(data)
