"""One batch analysis: anomaly verdict (spec + SPC + ONNX model) and, when anomalous, root-cause analysis.

The result is a plain JSON document (``qcn-analysis/3``)::

    {"format", "batch", "profile", "inputs": {observations_sha256, history_sha256, history_batches, ...},
     "verdict": <models.verdict.BatchAnomalyVerdict>, "verdict_sha256",
     "models": {"anomaly": <ModelVersion|null>, "causal": {graph_version, graph_sha256, anm_sha256}|null},
     "root_cause": {"status": "done" | "not_anomalous" | "insufficient_data" | "no_profile" | "no_process_data",
                    "message", "primary": {...top candidate...}, "reports": [...], "counterfactuals": [...]}}

Its RFC 8785 canonical JSON is what is hashed (``sha256``) and anchored when it opens a tracing case. Its
``format`` names the canonical form (:data:`HASH_FORMATS`): ``qcn-analysis/1`` documents, stored before, were
serialised with sorted-keys ``json.dumps`` and still verify with :func:`verify_document`. The
``input_sha256`` covers the batch's observations, the SPC history (hash of its values) and the settings
that change the verdict, so an analysis can be recomputed and compared.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.analysis.models import CausalModel
from app.analysis.observations import History, sample_rows
from app.analysis.profiles import Profile
from app.analysis.rank import rank_document
from app.settings import Settings
from chain.canonical import HashFormat, canonical_json, json_sha256, number_texts, string_text
from models.anomaly import LoadedModel
from models.base import sha256_bytes
from models.causal import RootCauseReport, Spec, Tier, counterfactual, rank_root_causes
from models.errors import ModelError
from models.spc import NELSON
from models.verdict import BatchAnomalyVerdict, score_batch

_SHARE_FLOOR = 1e-3  # as in models.causal.ranking

__all__ = [
    "FORMAT",
    "HASH_FORMATS",
    "MODEL_HASH_FORMATS",
    "AnalysisOutcome",
    "canonical",
    "pick_targets",
    "quality_mask",
    "run_analysis",
    "spc_rules",
    "verify_document",
    "verify_verdict_hash",
]

FORMAT = "qcn-analysis/3"
#: document format -> how its canonical bytes were made (the version tag travels inside the hashed document)
HASH_FORMATS = {
    "qcn-analysis/1": HashFormat.LEGACY_JSON,
    "qcn-analysis/2": HashFormat.RFC8785,
    "qcn-analysis/3": HashFormat.RFC8785,
}
#: document format -> how the model hashes inside it (``verdict_sha256``, the causal model's ``anm_sha256``)
#: were made: sorted-keys JSON up to ``qcn-analysis/2``, RFC 8785 since ``/3`` (:func:`models.base.sha256_json`)
MODEL_HASH_FORMATS = {
    "qcn-analysis/1": HashFormat.LEGACY_JSON,
    "qcn-analysis/2": HashFormat.LEGACY_JSON,
    "qcn-analysis/3": HashFormat.RFC8785,
}


def canonical(doc: Any) -> str:
    """The canonical text of an analysis document in the form its ``format`` names (the bytes hashed)."""
    return canonical_json(doc, HASH_FORMATS[doc.get("format", FORMAT)]).decode("utf-8")


def verify_document(text: str, sha256_hex: str) -> bool:
    """True if ``text`` is an analysis document in its canonical form and hashes to ``sha256_hex``."""
    doc = json.loads(text)
    if doc.get("format") not in HASH_FORMATS:
        return False
    return canonical(doc) == text and sha256_bytes(text.encode("utf-8")) == sha256_hex.removeprefix("0x")


def verify_verdict_hash(doc: dict[str, Any]) -> bool:
    """True if ``verdict_sha256`` is the hash of the document's ``verdict`` in the form its ``format`` names."""
    from models.verdict import BatchAnomalyVerdict

    fmt = MODEL_HASH_FORMATS.get(str(doc.get("format")))
    if fmt is None or not isinstance(doc.get("verdict"), dict):
        return False
    return BatchAnomalyVerdict.model_validate(doc["verdict"]).sha256(fmt) == doc.get("verdict_sha256")


@dataclass(frozen=True)
class AnalysisOutcome:
    """What :func:`run_analysis` produced, ready to store."""

    document: dict[str, Any]
    canonical_json: str
    sha256: str
    input_sha256: str
    anomalous: bool
    complete: bool
    root_cause_status: str
    top_cause: str | None
    graph_sha256: str | None


def spc_rules(settings: Settings) -> list[Any]:
    """The Nelson rules selected by ``settings.analysis_spc_rules``."""
    wanted = set(settings.analysis_spc_rules)
    return [r for r in NELSON if r.rule in wanted]


def quality_mask(long: pd.DataFrame) -> np.ndarray:
    """Rows of quality characteristics, as ``long["tier"] == "quality"`` (missing: False) but compared in
    numpy: pandas compares its python-backed strings one by one in Python (a 20-batch history: ~20,000)."""
    return np.asarray(long["tier"].to_numpy(dtype=object) == "quality", dtype=bool)


def _measurements(long: pd.DataFrame) -> pd.DataFrame:
    q = long[quality_mask(long)]
    return q.rename(columns={"variable": "characteristic"})[["sample_id", "characteristic", "value"]].reset_index(
        drop=True
    )


def pick_targets(verdict: BatchAnomalyVerdict, batch_rows: pd.DataFrame, cm: CausalModel, limit: int = 3) -> list[str]:
    """Characteristics to explain: those named by spec/SPC reasons (most reasons first); if only the
    multivariate model fired, the characteristic whose batch mean is furthest from its training mean."""
    count: Counter[str] = Counter()
    for r in verdict.reasons:
        if r.severity == "anomaly" and r.kind in ("spec_failure", "spc_rule"):
            count[r.characteristic] += 1
    known = [c for c in count if c in cm.anm.index]
    if known:
        return sorted(known, key=lambda c: (-count[c], c))[:limit]
    chars = [v for v in cm.anm.order if cm.graph.variables and v in batch_rows.columns and v in cm.anm.specs]
    if not chars:
        return []
    dev = {
        c: abs(float(batch_rows[c].mean()) - cm.anm.mean[cm.anm.index[c]]) / cm.anm.std[cm.anm.index[c]] for c in chars
    }
    return [max(dev, key=lambda c: dev[c])]


def _worst_sample(batch_rows: pd.DataFrame, char: str, spec: Spec | None, center: float) -> Any:
    values = batch_rows[char]
    if spec is not None and (spec.lsl is not None or spec.usl is not None):
        margins = values.map(spec.margin)
        return margins.idxmin()
    return (values - center).abs().idxmax()


def _window(nominal: float | None, observed_mean: float, pct: float) -> tuple[float, float]:
    base = nominal if nominal is not None and nominal != 0.0 else observed_mean
    half = abs(base) * pct / 100.0
    return (base - half, base + half)


def _root_cause(
    *,
    verdict: BatchAnomalyVerdict,
    long: pd.DataFrame,
    profile: Profile,
    cm: CausalModel,
    settings: Settings,
    control: dict[str, tuple[float, float]],
) -> dict[str, Any]:
    batch_rows = sample_rows(long, list(cm.anm.order))
    if batch_rows.empty:
        missing = [v for v in cm.anm.order if v not in set(long["variable"])]
        return {
            "status": "no_process_data",
            "message": "the batch lacks variables the causal model needs: " + ", ".join(missing[:10]),
            "missing": missing,
        }
    targets = pick_targets(verdict, batch_rows, cm)
    if not targets:
        return {"status": "no_target", "message": "no anomalous characteristic is part of the causal model"}
    representative = batch_rows.mean(axis=0)
    reports = []
    for char in targets:
        rep = rank_root_causes(cm.anm, representative, char, k=settings.analysis_top_k)
        reports.append(_widen(rep, cm, profile, representative, settings.analysis_top_k))
    ranking = rank_document(cm.rca, batch_rows, k=settings.analysis_top_k) if cm.rca is not None else None
    primary = _primary(ranking, reports[0], targets)
    checks = []
    tiers = profile.constraints.tiers
    names = [c["variable"] for c in ranking["causes"]] if ranking else [c["variable"] for c in reports[0]["candidates"]]
    learned = {c["variable"]: c["on_learned_path"] for c in reports[0]["candidates"]}
    target = primary["characteristic"]
    spec = profile.constraints.specs.get(target)
    center = cm.anm.mean[cm.anm.index[target]]
    for var in names[:3]:
        if tiers.get(var) is Tier.QUALITY or var not in cm.anm.index:
            continue
        lo, hi = _window(
            profile.constraints.nominal.get(var), float(batch_rows[var].mean()), settings.analysis_cf_within_pct
        )
        sample = _worst_sample(batch_rows, target, spec, center)
        row = batch_rows.loc[sample]
        entry: dict[str, Any] = {
            "variable": var,
            "characteristic": target,
            "sample_id": str(sample[1]),
            "question": (
                f"had {var} stayed within +/-{settings.analysis_cf_within_pct:g} % of nominal "
                f"[{lo:.6g}, {hi:.6g}], would {target} of sample {sample[1]} have been in spec?"
            ),
            "window": [lo, hi],
            "observed_variable": float(row[var]),
            "informative": learned.get(var, True),
        }
        if spec is not None:
            res = counterfactual(cm.anm, row, {var: (lo, hi)}, target, spec=spec)
            entry.update(
                factual=res.factual,
                counterfactual_value=res.value,
                factual_in_spec=spec.contains(res.factual),
                in_spec=res.in_spec,
                probability_in_spec=res.probability,
                answer="yes" if res.in_spec else "no",
            )
        if target in control:
            lcl, ucl = control[target]
            res_c = counterfactual(cm.anm, row, {var: (lo, hi)}, target, spec=Spec(lcl, ucl))
            entry.update(in_control=res_c.in_spec, probability_in_control=res_c.probability, control_limits=[lcl, ucl])
        checks.append(entry)
    how = f"{primary['evidence']}, z = {primary['z']:.2f}, path {' -> '.join(primary['path'])}"
    return {
        "status": "done",
        "message": f"most likely root cause of the {target} deviation: {primary['variable']} ({how})",
        "primary": primary,
        "unit": "batch: fault-shape detectors on each variable's own noise over its samples",
        "batch_ranking": ranking,
        "reports": reports,
        "counterfactuals": checks,
    }


def _primary(ranking: dict[str, Any] | None, report: dict[str, Any], targets: list[str]) -> dict[str, Any]:
    """The top cause: from the batch ranking when there is one, else from the batch-mean report."""
    if ranking is None or not ranking["causes"]:
        top = report["candidates"][0]
        return {"characteristic": target_of(report), **top, "evidence": "batch_mean"}
    top = ranking["causes"][0]
    path = list(top["path"])
    if len(path) < 2:
        path.append(targets[0])  # no output reachable in the graph: name the output it is asked about
    return {
        "characteristic": path[-1],
        "variable": top["variable"],
        "score": top["score"],
        "z": top["score"],
        "evidence": top["evidence"],
        "detectors": top["detectors"],
        "path": path,
        "reaches_output": top["reaches_output"],
        "on_learned_path": top["reaches_output"],
        "counterfactual": top["counterfactual"],
    }


def target_of(report: dict[str, Any]) -> str:
    """The characteristic a (widened) report explains."""
    return str(report["characteristic"])


def _widen(report: RootCauseReport, cm: CausalModel, profile: Profile, unit: pd.Series, k: int) -> dict[str, Any]:
    """Guard against a learned graph that misses an edge: also score every variable the tier order allows as
    a cause of the characteristic but that is not its ancestor in the graph, with the ranking's formula
    (``z**2 / 2 + ln(share)``) at the share floor (it explains nothing through the graph). A strongly
    unusual process variable then still ranks first, flagged ``on_learned_path = False``."""
    out = [{**c, "on_learned_path": True} for c in report.to_dict()["candidates"]]
    seen = {c["variable"] for c in out}
    z = cm.anm.score(unit[list(cm.anm.order)])
    target = report.characteristic
    rank_t = profile.constraints.rank(target)
    for var in cm.anm.order:
        if var in seen or var == target or profile.constraints.tier(var) is Tier.QUALITY:
            continue
        if profile.constraints.rank(var) > rank_t or (var, target) in profile.constraints.forbidden:
            continue
        zv = float(z[var].iloc[0])
        j = cm.anm.index[var]
        observed = float(unit[var])
        out.append(
            {
                "variable": var,
                "rank": 0,
                "score": zv * zv / 2.0 + math.log(_SHARE_FLOOR),
                "observed": observed,
                "expected": observed - zv * cm.anm.mechanisms[j].resid_sd,
                "z": zv,
                "tail_probability": math.erfc(abs(zv) / math.sqrt(2.0)),
                "contribution": 0.0,
                "share": 0.0,
                "path": [var, target],
                "on_learned_path": False,
            }
        )
    out.sort(key=lambda c: -float(c["score"]))
    out = out[:k]
    for i, c in enumerate(out, start=1):
        c["rank"] = i
    body = report.to_dict()
    body["candidates"] = out
    return body


def _observation_rows(long: pd.DataFrame) -> list[list[Any]]:
    """``[sample_id, variable, tier, value, unit]`` per row, the very values ``itertuples`` yields (a missing
    one stays NaN or None), read column by column: row tuples box every cell through pandas (~10 ms a batch)."""
    cols = [long[c].to_numpy(dtype=object).tolist() for c in ("sample_id", "variable", "tier", "value", "unit")]
    return [[sid, var, tier, float(value), unit] for sid, var, tier, value, unit in zip(*cols, strict=True)]


def _json_strings(col: list[Any]) -> dict[Any, str]:
    """The JSON text of each distinct value of a column of texts and Nones."""
    return {v: ("null" if v is None else string_text(v)) for v in dict.fromkeys(col)}


def observations_sha256(long: pd.DataFrame) -> str:
    """``json_sha256(_observation_rows(long))``, the canonical rows written column by column (each text and
    number once, not a generic walk of 5,000 cells). Anything unusual (a NaN, a non-text cell, a lone surrogate)
    takes the generic path, which raises as before."""
    texts = [long[c].to_numpy(dtype=object).tolist() for c in ("sample_id", "variable", "tier", "unit")]
    values = long["value"].to_numpy(dtype=float)
    if set(map(type, itertools.chain(*texts))) <= {str, type(None)} and bool(np.isfinite(values).all()):
        sid = [("null" if v is None else string_text(v)) for v in texts[0]]
        # variable, tier and unit repeat from row to row: each distinct text is written once
        var, tier, unit = (list(map(_json_strings(col).__getitem__, col)) for col in texts[1:])
        numbers = number_texts(values)
        rows = ",".join(f"[{a},{b},{c},{v},{u}]" for a, b, c, v, u in zip(sid, var, tier, numbers, unit, strict=True))
        with contextlib.suppress(UnicodeEncodeError):
            return hashlib.sha256(f"[{rows}]".encode()).hexdigest()
    return json_sha256(_observation_rows(long))


def run_analysis(
    *,
    batch_info: dict[str, Any],
    long: pd.DataFrame,
    history: History,
    history_batches: list[str],
    profile: Profile | None,
    declared_spec: dict[str, dict[str, Any]],
    model: LoadedModel | None,
    causal: CausalModel | None,
    causal_problem: dict[str, Any] | None,
    settings: Settings,
) -> AnalysisOutcome:
    """Score one batch and, when it is anomalous, explain it. Pure: everything comes in as arguments.

    ``history``: the quality rows of the earlier clean batches (:func:`~app.analysis.observations.history_series`)."""
    meas = _measurements(long)
    spec = {**declared_spec, **(profile.spec() if profile is not None else {})}
    rules = spc_rules(settings)
    model_note: dict[str, Any] | None = None
    used_model = model
    if model is not None and not set(model.features) <= set(meas["characteristic"]):
        model_note = {"status": "skipped", "message": f"batch lacks features of {model.version.ref}"}
        used_model = None
    verdict = score_batch(
        meas,
        spec,
        history.values,
        used_model,
        min_history=settings.analysis_min_history,
        rules=rules,
        lot_alpha=settings.analysis_lot_alpha,
        ordered=history.ordered,
    )
    if used_model is None and model_note is None:
        model_note = {
            "status": "unavailable",
            "message": "no anomaly model for this profile yet (trained from in-control history: "
            "POST /v1/models/refresh, or automatically once enough clean samples exist)",
        }
    control: dict[str, tuple[float, float]] = {}
    for r in verdict.reasons:
        if r.kind == "spc_rule":
            control[r.characteristic] = (r.center - 3 * r.sigma, r.center + 3 * r.sigma)
    for ch, arr in sorted(history.values.items()):
        if ch not in control and arr.size >= settings.analysis_min_history:
            mr = float(np.mean(np.abs(np.diff(arr)))) / 1.128
            control[str(ch)] = (float(arr.mean()) - 3 * mr, float(arr.mean()) + 3 * mr)

    root: dict[str, Any]
    if not verdict.anomalous:
        root = {"status": "not_anomalous", "message": "batch is not anomalous: no root-cause analysis needed"}
    elif profile is None:
        root = {"status": "no_profile", "message": "batch is linked to no process profile: no causal model"}
    elif causal is None:
        root = {"status": "insufficient_data", **(causal_problem or {})}
        root.setdefault("message", "no causal model for this profile yet")
    else:
        try:
            root = _root_cause(
                verdict=verdict, long=long, profile=profile, cm=causal, settings=settings, control=control
            )
        except ModelError as exc:
            root = {"status": "failed", **exc.to_dict(), "error": exc.code}
            root["status"] = "failed"

    obs_hash = observations_sha256(long)
    inputs = {
        "observations_sha256": obs_hash,
        "history_sha256": history.sha256,
        "history_batches": len(history_batches),
        "history_batches_sha256": json_sha256(history_batches),
        "profile_sha256": profile.sha256 if profile is not None else None,
        "spec": spec,
        "spc_rules": [r.rule for r in rules],
        "min_history": settings.analysis_min_history,
        "lot_alpha": settings.analysis_lot_alpha,
        "cf_within_pct": settings.analysis_cf_within_pct,
    }
    input_sha = json_sha256(inputs)
    causal_ver = None
    if causal is not None:
        causal_ver = {
            "profile": causal.profile,
            "graph_version": causal.graph_version,
            "graph_sha256": causal.graph.sha256,
            "anm_sha256": causal.anm.version().sha256,
            "training_rows": causal.n_rows,
        }
    doc = {
        "format": FORMAT,
        "batch": batch_info,
        "profile": profile.name if profile is not None else None,
        "inputs": inputs,
        "input_sha256": input_sha,
        "verdict": verdict.model_dump(mode="json"),
        "verdict_sha256": verdict.sha256(MODEL_HASH_FORMATS[FORMAT]),
        "models": {
            "anomaly": verdict.model_version.model_dump(mode="json") if verdict.model_version else None,
            "anomaly_note": model_note,
            "causal": causal_ver,
        },
        "root_cause": root,
    }
    text = canonical(doc)
    top = root.get("primary", {}).get("variable") if root.get("status") == "done" else None
    return AnalysisOutcome(
        document=doc,
        canonical_json=text,
        sha256=sha256_bytes(text.encode("utf-8")),
        input_sha256=input_sha,
        anomalous=verdict.anomalous,
        complete=verdict.complete,
        root_cause_status=str(root["status"]),
        top_cause=top,
        graph_sha256=causal.graph.sha256 if causal is not None else None,
    )
