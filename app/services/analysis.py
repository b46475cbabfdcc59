"""Batch analysis: observations, anomaly verdicts, root-cause analysis, model management.

Flow:

1. :func:`on_batch_stored` (inside the upload transaction) stores every measurement and process value as
   an :class:`~app.db.ObservationPack` and one :class:`~app.db.AnalysisJob` (status ``pending``).
2. :func:`run_job` (the ``analysis`` queue of :mod:`app.jobs`, oldest first, with its backoff) links the
   batch to its process profile, scores it (spec + SPC over earlier clean batches of the same supplier and part + the
   ONNX model), explains it when anomalous (root-cause ranking + counterfactual checks on the profile's
   causal model) and stores the result as an :class:`~app.db.AnalysisResult` in the same transaction that
   marks the job done: a job is analysed exactly once, and a crash before the commit just runs it again.
3. Clean batches feed the models: the profile's causal model is learned once
   ``analysis_causal_min_rows`` complete rows exist and refreshed every ``analysis_causal_refresh_every``
   clean batches; an anomaly model is trained once ``analysis_model_min_rows`` clean samples exist.

The query functions below (re-score, counterfactual, safe domain, charts, graph, model refresh and list)
serve ``app/routers/analysis.py``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app import heap, wakeups
from app.analysis.errors import AnalysisNotReady, translate_model_error
from app.analysis.observations import (
    batch_long,
    clean_history_batches,
    history_series,
    persist_observations,
    sample_rows,
)
from app.analysis.profiles import Profile, list_profiles, load_profile, resolve_profile
from app.db import AnalysisJob, AnalysisResult, Batch, CaseRecord, CausalModelRecord, ModelRefreshJob, utcnow
from app.errors import AppError, InvalidRequest, NotFound
from app.settings import Settings
from models.errors import InsufficientData, ModelError
from parsers.model import InspectionBatch

# The analysis stack (pandas, scikit-learn, ONNX Runtime, pgmpy, matplotlib) takes seconds to import: the
# functions that use it import it, so the gateway and the upload path start without it.
if TYPE_CHECKING:
    import pandas as pd

    from app.analysis.engine import AnalysisOutcome
    from app.analysis.models import CausalModel, ModelCache
    from models.causal import Spec

__all__ = [
    "counterfactual_query",
    "get_analysis",
    "graph_image",
    "launch_refresh",
    "list_models",
    "on_batch_stored",
    "refresh_status",
    "rescore",
    "run_job",
    "run_refresh",
    "safe_domain_query",
    "spc_chart",
    "start_refresh",
]

log = logging.getLogger("qcn.analysis")


# --- hooks -------------------------------------------------------------------------------------------------
def on_batch_stored(*, session: Session, batch: Batch, inspection: InspectionBatch) -> None:
    """Called inside the upload transaction once the batch row exists: store the observations and queue
    the batch's analysis job (both commit or roll back with the upload)."""
    persist_observations(session=session, batch=batch, inspection=inspection)
    session.add(AnalysisJob(batch_pk=batch.id, supplier_id=batch.supplier_id, part_number=batch.part_number))


def run_job(*, sessions: sessionmaker[Session], settings: Settings, job_id: int) -> bool:
    """Analyse one claimed job (the ``analysis`` queue of :mod:`app.jobs` claims it and retries failures).

    The result and the job's status commit together; the models then learn from a clean batch in a second,
    separate transaction, so the database write lock (SQLite) is never held while a model is being learned.
    A failure to update the models is logged and retried on a later clean batch, not held against this job.
    """
    with sessions() as s, s.begin():
        profile = _run_job(s, settings, job_id)
    heap.settle_once("analysis")  # the analysis stack (pandas, scipy, onnxruntime) is loaded by now
    if profile is None:
        return False
    try:
        with sessions() as s, s.begin():
            _feed_models(s, settings, profile)
    except Exception:  # the verdict is stored; model training catches up on a later clean batch
        log.exception("updating the models of %s after job %s failed", profile.name, job_id)
    return True


def _profile_of(
    session: Session, settings: Settings, job: AnalysisJob, batch: Batch, long: pd.DataFrame | None = None
) -> Profile | None:
    """The job's profile, resolved from the batch's characteristics on its first run (``long``: the batch's
    observations when the caller holds them already)."""
    if job.profile is None:
        from app.analysis.engine import quality_mask

        quality = batch_long(session, batch.id) if long is None else long
        chars = list(dict.fromkeys(quality["variable"].to_numpy(dtype=object)[quality_mask(quality)].tolist()))
        job.profile = resolve_profile(settings, part_number=batch.part_number, characteristics=chars)
    return load_profile(settings, job.profile) if job.profile else None


def _causal_for(
    session: Session, cache: ModelCache, profile: Profile | None
) -> tuple[CausalModel | None, dict[str, Any] | None]:
    if profile is None:
        return None, None
    cm = cache.causal_model(session, profile)
    if cm is not None:
        return cm, None
    try:
        return cache.learn_causal_model(session, profile), None
    except InsufficientData as exc:
        return None, {
            "message": f"insufficient data for a causal model: {exc.message}",
            "needed": exc.needed,
            "got": exc.got,
            "what": exc.what,
        }


def _analyse(session: Session, settings: Settings, job: AnalysisJob, batch: Batch) -> AnalysisOutcome:
    from app.analysis.engine import quality_mask, run_analysis
    from app.analysis.models import cache_for

    cache = cache_for(settings)
    long = batch_long(session, batch.id)
    profile = _profile_of(session, settings, job, batch, long)
    pks = clean_history_batches(
        session,
        before_job_id=job.id,
        limit=settings.analysis_history_batches,
        supplier_id=batch.supplier_id,
        part_number=batch.part_number,
    )
    history = history_series(session, pks, tier="quality", ordered=True)
    chars = set(long.loc[quality_mask(long), "variable"])
    model = cache.anomaly_model(profile.name if profile else None, chars)
    causal, problem = None, None
    info = {"id": batch.id, "batch_id": batch.batch_id, "part_number": batch.part_number, "lot_id": batch.lot_id}
    # the causal model is only needed (and learned) when the verdict is anomalous: score first
    analyse = functools.partial(
        run_analysis,
        batch_info=info,
        long=long,
        history=history,
        history_batches=pks,
        profile=profile,
        declared_spec={},
        model=model,
        settings=settings,
    )
    outcome = analyse(causal=None, causal_problem=None)
    if outcome.anomalous and profile is not None:
        causal, problem = _causal_for(session, cache, profile)
        outcome = analyse(causal=causal, causal_problem=problem)
    return outcome


def _store(session: Session, job: AnalysisJob, batch: Batch, outcome: AnalysisOutcome) -> AnalysisResult:
    seq = (session.scalar(select(func.max(AnalysisResult.seq)).where(AnalysisResult.batch_pk == batch.id)) or 0) + 1
    row = AnalysisResult(
        batch_pk=batch.id,
        seq=seq,
        profile=job.profile,
        anomalous=outcome.anomalous,
        complete=outcome.complete,
        root_cause_status=outcome.root_cause_status,
        top_cause=outcome.top_cause,
        document=outcome.canonical_json,
        sha256=outcome.sha256,
        input_sha256=outcome.input_sha256,
        graph_sha256=outcome.graph_sha256,
    )
    session.add(row)
    if outcome.anomalous:
        wakeups.note(session, CaseRecord.__tablename__)  # an anomalous, anchored batch is due a tracing case
    job.status = "done"
    job.outcome = "anomalous" if outcome.anomalous else "clean"
    # the SPC history query reads these copies of done jobs: a job written without them (by a gateway on the
    # code before migration 0017) gets them here, so its batch does not drop out of later histories
    job.supplier_id, job.part_number = batch.supplier_id, batch.part_number
    job.last_error = None
    session.flush()
    return row


def _run_job(session: Session, settings: Settings, job_id: int) -> Profile | None:
    """Analyse and store; returns the profile whose models a clean batch feeds (None: nothing to feed).
    The job row is claimed by this worker (app/jobs.py), so it is not locked for the analysis' duration."""
    # the job and its batch in one round trip (no row: the job or its batch is gone)
    found = session.execute(
        select(AnalysisJob, Batch).join(Batch, Batch.id == AnalysisJob.batch_pk).where(AnalysisJob.id == job_id)
    ).first()
    if found is None or found[0].status != "pending":
        return None  # gone, or done meanwhile (API re-score or another pass)
    job, batch = found
    with session.no_autoflush:  # no write (and so no SQLite write lock) until the result is stored
        outcome = _analyse(session, settings, job, batch)
    _store(session, job, batch, outcome)
    if not outcome.anomalous and job.profile:
        return load_profile(settings, job.profile)
    return None


def _feed_models(session: Session, settings: Settings, profile: Profile) -> None:
    """After a clean batch: learn/refresh the causal model and train a first anomaly model when due."""
    from app.analysis.models import cache_for

    cache = cache_for(settings)
    cm = cache.causal_model(session, profile)
    # since the model's last clean batch, or since an attempt that had too few rows (a profile without process
    # data never has enough: it is not re-read in full after every clean batch)
    short = cache.causal_short_through.get(profile.name)
    since = cm.through_job_id if cm is not None else (short or 0)
    new_clean = (
        session.scalar(
            select(func.count()).where(
                AnalysisJob.profile == profile.name,
                AnalysisJob.status == "done",
                AnalysisJob.outcome == "clean",
                AnalysisJob.id > since,
            )
        )
        or 0
    )
    if (cm is None and short is None) or new_clean >= settings.analysis_causal_refresh_every:
        with contextlib.suppress(InsufficientData):  # not enough clean rows yet: learned on a later batch
            cache.learn_causal_model(session, profile)
    name = cache.anomaly_name(profile.name)
    if not cache.registry.list_versions(name):
        with contextlib.suppress(InsufficientData):
            cache.train_anomaly_model(session, profile)


# --- queries for the API -------------------------------------------------------------------------------------
def _job(session: Session, batch: Batch) -> AnalysisJob:
    job = session.scalars(select(AnalysisJob).where(AnalysisJob.batch_pk == batch.id)).first()
    if job is None:
        raise NotFound(f"batch {batch.id} has no analysis job (stored before analysis existed?)")
    return job


def _latest(session: Session, batch: Batch) -> AnalysisResult | None:
    return session.scalars(
        select(AnalysisResult).where(AnalysisResult.batch_pk == batch.id).order_by(AnalysisResult.seq.desc())
    ).first()


def _result_body(row: AnalysisResult) -> dict[str, Any]:
    return {
        "status": "done",
        "seq": row.seq,
        "profile": row.profile,
        "anomalous": row.anomalous,
        "complete": row.complete,
        "root_cause_status": row.root_cause_status,
        "top_cause": row.top_cause,
        "sha256": row.sha256,
        "input_sha256": row.input_sha256,
        "graph_sha256": row.graph_sha256,
        "created_at": row.created_at.isoformat(),
        "analysis": json.loads(row.document),
    }


def get_analysis(*, session: Session, batch: Batch) -> dict[str, Any]:
    """The latest stored analysis of ``batch``, or its job status (``pending`` / ``failed``)."""
    row = _latest(session, batch)
    if row is not None:
        return _result_body(row)
    job = _job(session, batch)
    return {"status": job.status, "attempts": job.attempts, "last_error": job.last_error, "analysis": None}


def rescore(*, session: Session, settings: Settings, batch: Batch) -> dict[str, Any]:
    """Analyse ``batch`` again now with the current models; stored as the next analysis version."""
    job = _job(session, batch)
    outcome = _analyse(session, settings, job, batch)
    row = _store(session, job, batch, outcome)
    return _result_body(row)


def _context(session: Session, settings: Settings, batch: Batch) -> tuple[Profile, CausalModel, pd.DataFrame]:
    from app.analysis.models import cache_for

    job = _job(session, batch)
    profile = _profile_of(session, settings, job, batch)
    if profile is None:
        raise InvalidRequest(
            f"batch {batch.id} is linked to no process profile, so it has no causal model", field="batch"
        )
    cm, problem = _causal_for(session, cache_for(settings), profile)
    if cm is None:
        facts = dict(problem or {})
        raise AnalysisNotReady(str(facts.pop("message", "no causal model for this profile")), **facts)
    rows = sample_rows(batch_long(session, batch.id), list(cm.anm.order))
    if rows.empty:
        raise InvalidRequest(
            f"batch {batch.id} has no complete process data for the causal model of {profile.name!r}", field="process"
        )
    return profile, cm, rows


def _check_var(cm: CausalModel, name: str, field: str) -> None:
    if name not in cm.anm.index:
        raise InvalidRequest(
            f"unknown {field} {name!r} (known: {', '.join(sorted(cm.anm.order))})",
            field=field,
            known=sorted(cm.anm.order),
        )


def _pick_sample(rows: pd.DataFrame, sample_id: str | None, char: str, spec: Spec | None) -> Any:
    ids = [k[1] for k in rows.index]
    if sample_id is not None:
        if sample_id not in ids:
            raise InvalidRequest(f"batch has no sample {sample_id!r}", field="sample_id")
        return rows.index[ids.index(sample_id)]
    values = rows[char]
    if spec is not None and (spec.lsl is not None or spec.usl is not None):
        return values.map(spec.margin).idxmin()
    return (values - values.mean()).abs().idxmax()


def counterfactual_query(
    *,
    session: Session,
    settings: Settings,
    batch: Batch,
    variable: str,
    characteristic: str,
    value: float | None = None,
    value_range: tuple[float, float] | None = None,
    within_pct: float | None = None,
    sample_id: str | None = None,
) -> dict[str, Any]:
    """ "Had ``variable`` been x / within [lo, hi] / within +/-pct % of nominal, would ``characteristic``
    have been in spec?" for one sample of the batch (default: its worst sample for the characteristic)."""
    from models.causal import counterfactual

    given = [v is not None for v in (value, value_range, within_pct)]
    if sum(given) != 1:
        raise InvalidRequest("give exactly one of 'value', 'range' or 'within_pct'", field="value")
    profile, cm, rows = _context(session, settings, batch)
    _check_var(cm, variable, "variable")
    _check_var(cm, characteristic, "characteristic")
    spec = profile.constraints.specs.get(characteristic)
    if spec is None:
        raise InvalidRequest(
            f"{characteristic!r} has no spec limits in profile {profile.name!r}", field="characteristic"
        )
    if within_pct is not None:
        nominal = profile.constraints.nominal.get(variable, float(cm.anm.mean[cm.anm.index[variable]]))
        half = abs(nominal) * within_pct / 100.0
        intervention: float | tuple[float, float] = (nominal - half, nominal + half)
    elif value_range is not None:
        intervention = (float(value_range[0]), float(value_range[1]))
    else:
        assert value is not None
        intervention = float(value)
    key = _pick_sample(rows, sample_id, characteristic, spec)
    try:
        res = counterfactual(cm.anm, rows.loc[key], {variable: intervention}, characteristic, spec=spec)
    except ModelError as exc:
        raise translate_model_error(exc) from exc
    return {
        "variable": variable,
        "characteristic": characteristic,
        "sample_id": str(key[1]),
        "intervention": list(intervention) if isinstance(intervention, tuple) else intervention,
        "observed_variable": float(rows.loc[key, variable]),
        "factual": res.factual,
        "factual_in_spec": spec.contains(res.factual),
        "counterfactual_value": res.value,
        "in_spec": res.in_spec,
        "answer": "yes" if res.in_spec else "no",
        "probability": res.probability,
        "value_min": res.value_min,
        "value_max": res.value_max,
        "spec": {"lsl": spec.lsl, "usl": spec.usl},
        "model": {
            "graph_sha256": cm.graph.sha256,
            "anm_sha256": cm.anm.version().sha256,
            "graph_version": cm.graph_version,
        },
    }


def safe_domain_query(
    *,
    session: Session,
    settings: Settings,
    batch: Batch,
    variables: list[str],
    characteristic: str,
    sample_id: str | None = None,
) -> dict[str, Any]:
    """Is the batch's (worst sample's) combination of 2-3 variables inside the in-spec region, how far?"""
    from models.causal import safe_domain

    if not 2 <= len(variables) <= 3 or len(set(variables)) != len(variables):
        raise InvalidRequest("give 2 or 3 distinct variables", field="variables")
    profile, cm, rows = _context(session, settings, batch)
    for v in variables:
        _check_var(cm, v, "variable")
    _check_var(cm, characteristic, "characteristic")
    spec = profile.constraints.specs.get(characteristic)
    if spec is None:
        raise InvalidRequest(f"{characteristic!r} has no spec limits", field="characteristic")
    key = _pick_sample(rows, sample_id, characteristic, spec)
    try:
        res = safe_domain(cm.anm, rows.loc[key], variables, characteristic, spec=spec, grid=21)
    except ModelError as exc:
        raise translate_model_error(exc) from exc
    finite = res.distance if abs(res.distance) != float("inf") else None
    return {
        "characteristic": characteristic,
        "variables": list(res.variables),
        "sample_id": str(key[1]),
        "current": res.current,
        "inside": res.inside,
        "distance_sd": finite,
        "boundary_found": res.boundary_point is not None,
        "boundary_point": res.boundary_point,
        "method": res.method,
    }


def spc_chart(
    *, session: Session, settings: Settings, batch: Batch, characteristic: str, fmt: Literal["svg", "png"]
) -> bytes:
    """Control chart (SVG/PNG) of ``characteristic``: earlier clean history then this batch, rules marked."""
    from app.analysis.engine import spc_rules
    from models.charts import control_chart
    from models.spc import IndividualsChart
    from models.spec import SpecLimit

    job = _job(session, batch)
    long = batch_long(session, batch.id)
    cur = long[(long["tier"] == "quality") & (long["variable"] == characteristic)]
    if cur.empty:
        known = sorted(set(long.loc[long["tier"] == "quality", "variable"]))
        raise NotFound(f"batch has no characteristic {characteristic!r} (measured: {', '.join(known)})", known=known)
    pks = clean_history_batches(
        session,
        before_job_id=job.id,
        limit=settings.analysis_history_batches,
        supplier_id=batch.supplier_id,
        part_number=batch.part_number,
    )
    base: Any = history_series(session, pks, tier="quality").values.get(characteristic, [])
    if len(base) < settings.analysis_min_history:
        raise AnalysisNotReady(
            f"insufficient history for a control chart of {characteristic!r}: "
            f"{len(base)} points < {settings.analysis_min_history}",
            needed=settings.analysis_min_history,
            got=len(base),
            what="history points",
        )
    chart = IndividualsChart(characteristic, min_baseline=settings.analysis_min_history, rules=spc_rules(settings)).fit(
        base
    )
    values = list(base) + cur["value"].tolist()
    result = chart.score(values)
    profile = load_profile(settings, job.profile) if job.profile else None
    spec_limit = None
    if profile is not None and characteristic in profile.spec():
        spec_limit = SpecLimit(characteristic=characteristic, **profile.spec()[characteristic])
    labels = [""] * len(base) + [str(s) for s in cur["sample_id"]]
    unit = cur["unit"].iloc[0] if cur["unit"].iloc[0] else None
    return control_chart(
        result,
        spec=spec_limit,
        fmt=fmt,
        labels=labels,
        first_new=len(base),
        unit=unit,
        title=f"{characteristic}: batch {batch.lot_id or batch.id}",
    )


def graph_image(*, session: Session, settings: Settings, batch: Batch, fmt: str = "svg") -> bytes:
    """The profile's causal graph with the batch's anomalous characteristic and ranked path highlighted."""
    from models.causal import plot_graph
    from models.causal.ranking import RootCause, RootCauseReport

    profile, cm, _ = _context(session, settings, batch)
    report = None
    row = _latest(session, batch)
    if row is not None and row.root_cause_status == "done":
        rc = json.loads(row.document)["root_cause"]["reports"][0]
        fields = set(RootCause.__dataclass_fields__)
        cands = tuple(
            RootCause(**{**{k: v for k, v in c.items() if k in fields}, "path": tuple(c["path"])})
            for c in rc["candidates"]
            if c.get("on_learned_path", True)
        )
        if cands:
            report = RootCauseReport(
                rc["characteristic"], rc["observed"], rc["nominal"], rc["deviation"], cands, rc["model_sha256"]
            )
    return plot_graph(
        cm.graph,
        profile.constraints.tiers,
        report,
        fmt=fmt,
        title=f"{profile.name} causal graph v{cm.graph_version} ({cm.graph.sha256[:12]})",
    )


def _refresh_body(job: ModelRefreshJob) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "profile": job.profile,
        "causal": job.causal,
        "anomaly": job.anomaly,
        "status": job.status,
        "stage": job.stage,
        "steps_done": job.steps_done,
        "steps_total": job.steps_total,
        "result": json.loads(job.result) if job.result else None,
        "error": json.loads(job.error) if job.error else None,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def start_refresh(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    profile: str,
    causal: bool = True,
    anomaly: bool = True,
    requested_by: int | None = None,
) -> dict[str, Any]:
    """Check the request and store a pending refresh job (committed, so a background runner sees it).

    The work is :func:`run_refresh`; call it with the returned ``job_id`` from a thread or a job queue.
    """
    if load_profile(settings, profile) is None:
        known = [p.name for p in list_profiles(settings)]
        raise InvalidRequest(f"unknown profile {profile!r} (known: {', '.join(known)})", field="profile", known=known)
    if not causal and not anomaly:
        raise InvalidRequest("nothing to refresh: set 'causal' and/or 'anomaly'", field="causal")
    with sessions() as s, s.begin():
        job = ModelRefreshJob(
            profile=profile,
            causal=causal,
            anomaly=anomaly,
            requested_by=requested_by,
            status="pending",
            steps_done=0,
            steps_total=int(causal) + int(anomaly),
        )
        s.add(job)
        s.flush()
        return _refresh_body(job)


def refresh_status(*, session: Session, job_id: int) -> dict[str, Any]:
    """Status, stage, progress (steps done of total) and, once done, the new model versions of a refresh."""
    job = session.get(ModelRefreshJob, job_id)
    if job is None:
        raise NotFound(f"no model refresh job {job_id}")
    return _refresh_body(job)


def _refresh_step(sessions: sessionmaker[Session], job_id: int, **changes: Any) -> None:
    with sessions() as s, s.begin():
        job = s.get(ModelRefreshJob, job_id)
        if job is not None:
            for k, v in changes.items():
                setattr(job, k, v)


def run_refresh(job_id: int, *, sessions: sessionmaker[Session], settings: Settings) -> None:
    """Run refresh job ``job_id``: re-learn the causal model (full fit) and/or train a new anomaly model.

    Each model is trained in its own transaction and the job row records the stage and steps done, so a
    client can show progress. Errors end the job as ``failed`` with the reason; nothing is raised.
    """
    from app.analysis.models import cache_for

    with sessions() as s:
        job = s.get(ModelRefreshJob, job_id)
        if job is None or job.status != "pending":
            return
        prof_name, causal, anomaly = job.profile, job.causal, job.anomaly
    _refresh_step(sessions, job_id, status="running", started_at=utcnow())
    out: dict[str, Any] = {"profile": prof_name}
    done = 0
    try:
        prof = load_profile(settings, prof_name)
        if prof is None:
            raise InvalidRequest(f"profile {prof_name!r} is no longer configured", field="profile")
        cache = cache_for(settings)
        if causal:
            _refresh_step(sessions, job_id, stage="causal model")
            with sessions() as s, s.begin():
                cm = cache.learn_causal_model(s, prof)
                out["causal"] = {
                    "graph_version": cm.graph_version,
                    "graph_sha256": cm.graph.sha256,
                    "anm_sha256": cm.anm.version().sha256,
                    "rows": cm.n_rows,
                    "edges": len(cm.graph.edges),
                }
            done += 1
            _refresh_step(sessions, job_id, steps_done=done)
        if anomaly:
            _refresh_step(sessions, job_id, stage="anomaly model")
            with sessions() as s, s.begin():
                model = cache.train_anomaly_model(s, prof)
                out["anomaly"] = {
                    "name": model.version.name,
                    "version": model.version.version,
                    "sha256": model.version.sha256,
                    "features": list(model.features),
                }
            done += 1
        _refresh_step(
            sessions, job_id, status="done", stage=None, steps_done=done, result=json.dumps(out), finished_at=utcnow()
        )
    except Exception as exc:  # the job records why; a background runner has nobody to raise to
        if isinstance(exc, ModelError):
            error = translate_model_error(exc).body()["error"]
        elif isinstance(exc, AppError):
            error = exc.body()["error"]
        else:
            error = {"code": "internal", "message": f"{type(exc).__name__}: {exc}"[:2000]}
            log.exception("model refresh job %s failed", job_id)
        _refresh_step(sessions, job_id, status="failed", error=json.dumps(error, default=str), finished_at=utcnow())


def launch_refresh(job_id: int, *, sessions: sessionmaker[Session], settings: Settings) -> None:
    """Run :func:`run_refresh` in a background thread of this process (the request returns at once)."""
    threading.Thread(
        target=run_refresh,
        args=(job_id,),
        kwargs={"sessions": sessions, "settings": settings},
        name=f"qcn-model-refresh-{job_id}",
        daemon=True,
    ).start()


def list_models(*, session: Session, settings: Settings) -> dict[str, Any]:
    """Anomaly model versions (with SHA-256) and causal graph versions (with hash) per profile."""
    from app.analysis.models import cache_for

    cache = cache_for(settings)
    anomaly = []
    for name in cache.registry.list_models():
        for v in cache.registry.list_versions(name):
            meta = cache.registry.read_meta(name, v)
            anomaly.append(
                {
                    "name": name,
                    "version": v,
                    "sha256": meta["sha256"],
                    "features": meta["features"],
                    "n_training_rows": meta.get("n_training_rows"),
                    "created_at": meta.get("created_at"),
                }
            )
    from models.artifacts import DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION, default_registry

    meta = default_registry().read_meta(DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION)
    anomaly.append(
        {
            "name": DEFAULT_MODEL_NAME,
            "version": DEFAULT_MODEL_VERSION,
            "sha256": meta["sha256"],
            "features": meta["features"],
            "n_training_rows": meta.get("n_training_rows"),
            "created_at": meta.get("created_at"),
            "shipped": True,
        }
    )
    causal = [
        {
            "profile": r.profile,
            "graph_version": r.graph_version,
            "graph_sha256": r.graph_sha256,
            "anm_sha256": r.anm_sha256,
            "rows": r.n_rows,
            "batches": r.n_batches,
            "method": r.method,
            "created_at": r.created_at.isoformat(),
        }
        for r in session.scalars(select(CausalModelRecord).order_by(CausalModelRecord.id))
    ]
    return {
        "anomaly_models": anomaly,
        "causal_models": causal,
        "profiles": [
            {"name": p.name, "characteristics": p.characteristics, "sha256": p.sha256} for p in list_profiles(settings)
        ],
    }
