"""Per-process model cache: anomaly models (ONNX) and causal models (graph + additive-noise model).

One :class:`ModelCache` per data directory, created on first use (never at import time) and shared by the
worker and the API of that process. Anomaly models live in a :class:`~models.registry.ModelRegistry` under
``<data_dir>/models`` as ``<profile>-anomaly/<n>``; when a profile has none, the shipped default model
(``models.artifacts``) is used if the batch measures all of its features. Causal graphs live in a
:class:`~models.causal.GraphStore` under ``<data_dir>/causal``; each learned version is also a
:class:`~app.db.CausalModelRecord` row saying which clean batches it was learned from, so after a
restart the additive-noise model is refitted on exactly the same rows (same hash, checked).

The graph is learned with :func:`models.causal.learn.learn_graph` under the profile's tiers, required and
forbidden edges: the learner of the offline path (``qcn analysis rank``, :mod:`app.analysis.rank`), so the
gateway and the offline ranking reason on graphs learned the same way.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.analysis.observations import clean_history_batches, history_long, sample_rows
from app.analysis.profiles import Profile
from app.db import AnalysisJob, CausalModelRecord
from app.settings import Settings
from models.anomaly import LoadedModel
from models.artifacts import load_default_model
from models.causal import AdditiveNoiseModel, CausalGraph, GraphStore
from models.causal.graph import data_sha256
from models.causal.knowledge import KnownGraph, ProcessKnowledge
from models.causal.learn import learn_graph
from models.causal.rca import BatchRootCauseModel
from models.errors import InsufficientData
from models.mspc import PcaMahalanobisModel
from models.registry import ModelRegistry

__all__ = ["CausalModel", "ModelCache", "cache_for", "fit_batch_model", "learn_profile_graph"]

log = logging.getLogger("qcn.analysis")

_CACHES: dict[Path, ModelCache] = {}
_CACHES_LOCK = threading.Lock()


@dataclass
class CausalModel:
    """A usable causal model of a profile: the stored graph version and the ANM fitted on its rows."""

    profile: str
    graph: CausalGraph
    graph_version: int
    anm: AdditiveNoiseModel
    record_id: int
    through_job_id: int
    n_rows: int
    rca: BatchRootCauseModel | None = None


def _knowledge(profile: Profile, variables: list[str]) -> ProcessKnowledge:
    """The profile's tiers (in its order), required and forbidden edges over ``variables``."""
    cons = profile.constraints
    tiers = {v: cons.tiers[v].value for v in variables if v in cons.tiers}
    keep = set(tiers)
    return ProcessKnowledge(
        tiers=tiers,
        order=tuple((t.value,) for t in cons.tier_order),
        required=frozenset((u, v) for u, v in cons.required if u in keep and v in keep),
        forbidden=frozenset((u, v) for u, v in cons.forbidden if u in keep and v in keep),
    )


def learn_profile_graph(rows: pd.DataFrame, profile: Profile) -> CausalGraph:
    """The profile's causal graph learned from its clean rows, with the learner of the offline path."""
    data = rows[profile.variables]
    learned = learn_graph(data, _knowledge(profile, profile.variables))
    return CausalGraph.build(
        learned.nodes,
        learned.edges,
        constraints_sha256=profile.constraints.sha256,
        data_sha256=data_sha256(data),
        method="tiered-spline-bic",
        params={"penalty": 1.0},
    )


def fit_batch_model(rows: pd.DataFrame, graph: CausalGraph, profile: Profile) -> BatchRootCauseModel | None:
    """The batch root-cause model on the stored graph and the profile's tiers (None below its minimum rows)."""
    knowledge = _knowledge(profile, list(graph.variables))
    known = KnownGraph(tuple(graph.variables), frozenset(graph.edges), frozenset(), dict(knowledge.tiers))
    try:
        return BatchRootCauseModel().fit(
            rows[list(graph.variables)], knowledge=knowledge, graph=known, specs=profile.constraints.specs
        )
    except InsufficientData as exc:
        log.info("no batch root-cause model for %s yet: %s", profile.name, exc.message)
        return None


def _training_hash(batch_pks: list[str]) -> str:
    return hashlib.sha256("\n".join(batch_pks).encode()).hexdigest()


class ModelCache:
    """Anomaly and causal models of every profile, loaded once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = ModelRegistry(settings.data_dir / "models")
        self.graphs = GraphStore(settings.data_dir / "causal")
        self._anomaly: dict[str, LoadedModel | None] = {}
        self._default: LoadedModel | None = None
        self._causal: dict[str, CausalModel] = {}
        # profile -> the last clean job of a learning attempt that had too few rows (the next attempt waits for
        # more clean batches instead of reading the whole history again after each one)
        self.causal_short_through: dict[str, int] = {}
        self.lock = threading.RLock()

    # -- anomaly models -----------------------------------------------------------------------------------
    @staticmethod
    def anomaly_name(profile: str) -> str:
        """Registry name of a profile's anomaly model."""
        return f"{profile}-anomaly"

    def anomaly_model(self, profile: str | None, characteristics: set[str]) -> LoadedModel | None:
        """The profile's latest trained model, else the shipped default if the batch has its features."""
        with self.lock:
            if profile is not None:
                if profile not in self._anomaly:
                    name = self.anomaly_name(profile)
                    self._anomaly[profile] = self.registry.load(name) if self.registry.list_versions(name) else None
                model = self._anomaly[profile]
                if model is not None:
                    return model
            if self._default is None:
                self._default = load_default_model()
            if set(self._default.features) <= characteristics:
                return self._default
            return None

    def train_anomaly_model(self, session: Session, profile: Profile) -> LoadedModel:
        """Train a new version of the profile's model on all stored in-control samples and load it."""
        pks = clean_history_batches(session, before_job_id=None, limit=10_000, profile=profile.name, by_part=False)
        rows = sample_rows(history_long(session, pks, tier="quality"), profile.characteristics)
        need = max(self.settings.analysis_model_min_rows, 50)
        if len(rows) < need:
            raise InsufficientData(need, len(rows), f"in-control samples of profile {profile.name!r}")
        model = PcaMahalanobisModel(threshold_quantile=self.settings.analysis_model_threshold_quantile)
        model.fit(rows.reset_index(drop=True))
        name = self.anomaly_name(profile.name)
        with self.lock:
            version = str(len(self.registry.list_versions(name)) + 1)
            self.registry.save(model, name, version, extra={"profile": profile.name, "training_batches": len(pks)})
            loaded = self.registry.load(name, version)
            self._anomaly[profile.name] = loaded
        log.info("trained anomaly model %s on %d samples", loaded.version.ref, len(rows))
        return loaded

    # -- causal models ------------------------------------------------------------------------------------
    def _training_rows(
        self, session: Session, profile: Profile, through_job_id: int | None
    ) -> tuple[pd.DataFrame, list[str]]:
        pks = clean_history_batches(
            session,
            before_job_id=None if through_job_id is None else through_job_id + 1,
            limit=100_000,
            profile=profile.name,
            by_part=False,
        )
        rows = sample_rows(history_long(session, pks), profile.variables)
        return rows.reset_index(drop=True), pks

    def _last_clean_job(self, session: Session, profile: str) -> int | None:
        return session.scalar(
            select(func.max(AnalysisJob.id)).where(
                AnalysisJob.profile == profile, AnalysisJob.status == "done", AnalysisJob.outcome == "clean"
            )
        )

    def causal_model(self, session: Session, profile: Profile) -> CausalModel | None:
        """The profile's current causal model: from memory, else rebuilt from its latest stored version."""
        with self.lock:
            cm = self._causal.get(profile.name)
            if cm is not None:
                return cm
            rec = session.scalars(
                select(CausalModelRecord)
                .where(CausalModelRecord.profile == profile.name)
                .order_by(CausalModelRecord.id.desc())
            ).first()
            if rec is None:
                return None
            graph = self.graphs.load(profile.name, rec.graph_version)
            rows, _ = self._training_rows(session, profile, rec.through_job_id)
            anm = AdditiveNoiseModel().fit(rows[list(graph.variables)], graph=graph, specs=profile.constraints.specs)
            if anm.version().sha256 != rec.anm_sha256:
                log.warning("causal model of %s refitted with a different hash than recorded", profile.name)
            rca = fit_batch_model(rows, graph, profile)
            cm = CausalModel(
                profile.name, graph, rec.graph_version, anm, rec.id, rec.through_job_id, len(rows), rca=rca
            )
            self._causal[profile.name] = cm
            return cm

    def learn_causal_model(self, session: Session, profile: Profile) -> CausalModel:
        """Learn the profile's causal model from all stored clean batches.

        Raises :class:`~models.errors.InsufficientData` below ``analysis_causal_min_rows`` complete rows.
        """
        with self.lock:
            through = self._last_clean_job(session, profile.name)
            rows, pks = self._training_rows(session, profile, through)
            need = self.settings.analysis_causal_min_rows
            if through is None or len(rows) < need:
                self.causal_short_through[profile.name] = through or 0
                raise InsufficientData(
                    need, len(rows), f"complete per-sample rows (quality + process) of profile {profile.name!r}"
                )
            # the whole history is re-learned each time (a second on thousands of rows): one learner, one path
            graph = learn_profile_graph(rows, profile)
            method = "fit"
            version = self.graphs.save(profile.name, graph)
            anm = AdditiveNoiseModel().fit(rows[list(graph.variables)], graph=graph, specs=profile.constraints.specs)
            rec = session.scalars(
                select(CausalModelRecord).where(
                    CausalModelRecord.profile == profile.name, CausalModelRecord.graph_version == version
                )
            ).first()
            if rec is None:
                rec = CausalModelRecord(profile=profile.name, graph_version=version)
                session.add(rec)
            rec.graph_sha256 = graph.sha256
            rec.anm_sha256 = anm.version().sha256
            rec.n_rows = len(rows)
            rec.n_batches = len(pks)
            rec.through_job_id = through
            rec.training_sha256 = _training_hash(pks)
            rec.method = method
            session.flush()
            rca = fit_batch_model(rows, graph, profile)
            cm = CausalModel(profile.name, graph, version, anm, rec.id, through, len(rows), rca)
            self._causal[profile.name] = cm
            log.info("causal model %s v%d (%s) on %d rows", profile.name, version, method, len(rows))
            return cm


def cache_for(settings: Settings) -> ModelCache:
    """The process-wide cache of ``settings.data_dir`` (created on first use)."""
    key = Path(settings.data_dir).resolve()
    with _CACHES_LOCK:
        cache = _CACHES.get(key)
        if cache is None or cache.settings is not settings:
            cache = ModelCache(settings)
            _CACHES[key] = cache
        return cache
