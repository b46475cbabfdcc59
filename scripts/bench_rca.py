"""Hard root-cause benchmark: six process models from published physics (two held out), every ranker on the
same cases in the same run.

Material: :mod:`models.bench` (not the demo simulator). Per process: 2,000 normal rows in time order
(seed 101) to fit on, ``cases`` labelled anomalous batches of 20-50 rows (seed 7: six fault kinds in
rotation, a harmless concurrent change in ~45 % of them). Held-out processes (``models.bench.HELDOUT``)
were fixed before any tuning and are reported separately.

Rankers (all rank only non-symptom variables: quality outputs are symptoms):

- ``qcn`` / ``qcn_learned``: :class:`models.causal.rca.BatchRootCauseModel` with the true DAG (hidden
  confounders as bidirected edges) / with the structure it learns from the normal rows and the tiers;
- ``zscore``: per-variable ``mean |x - mean| / sd`` over the batch (discrete: 10 x share of unseen levels);
- ``zscore_flat``: the same plus a flat-line rule (a variable whose readings repeat on >= 50 % of the
  consecutive pairs while they do on < 20 % in normal data ranks first);
- ``circa_rht``: CIRCA's regression-based hypothesis testing (Li et al., KDD 2022) on the true DAG:
  linear regression of each variable on its parents (discrete parents one-hot) fitted on normal rows,
  score = max over the batch of the absolute standardised residual (its descendant adjustment is not
  implemented);
- ``dowhy``: ``dowhy.gcm.anomaly_scores`` (IT scores) on an ``InvertibleStructuralCausalModel`` with the
  true DAG and auto-assigned mechanisms (discrete variables integer-coded: its empirical root
  distributions need numbers), batch score = mean over rows (on a fixed subset of cases: it is slow);
- ``qcn_v1`` / ``qcn_v1_learned``: the previous engine (``rank_root_causes`` on the batch mean, target =
  the output furthest from its mean) on the true DAG / on pgmpy PC (``StructureLearner``, tiers as FMEA).

``python scripts/bench_rca.py [--quick]`` merges the ``hard_*`` keys into ``bench/results/causal.json``.
Latency: one core (BLAS threads pinned to 1), per batch, including the counterfactual checks.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.bench import DEV, FAULT_KINDS, HELDOUT, PROCESSES, BenchProcess, Case, get, make_cases  # noqa: E402
from models.causal.knowledge import KnownGraph, ProcessKnowledge  # noqa: E402
from models.causal.rca import BatchRootCauseModel  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "causal.json"
TRAIN_ROWS = 2000


def _f1(true: set[frozenset[str]], est: set[frozenset[str]]) -> dict[str, float]:
    tp = len(true & est)
    p = tp / len(est) if est else 0.0
    r = tp / len(true) if true else 0.0
    return {"f1": 2 * p * r / (p + r) if tp else 0.0, "precision": p, "recall": r}


def _rank(order: list[str], truth: frozenset[str]) -> int:
    return next((i + 1 for i, v in enumerate(order) if v in truth), 10**6)


# --- baselines ----------------------------------------------------------------------------------------
class ZScore:
    """Per-variable z-score of the batch (no graph); optional flat-line rule."""

    def __init__(self, proc: BenchProcess, train: pd.DataFrame, flat: bool) -> None:
        self.cands = [v for v in proc.observed if v not in proc.quality]
        self.cats = set(proc.categorical)
        self.flat = flat
        self.mu = {v: float(train[v].mean()) for v in self.cands if v not in self.cats}
        self.sd = {v: float(train[v].std()) or 1.0 for v in self.cands if v not in self.cats}
        self.seen = {v: set(train[v]) for v in self.cats}
        self.flat0 = {v: float((np.diff(train[v].to_numpy()) == 0).mean()) for v in self.mu}

    def rank(self, batch: pd.DataFrame) -> list[str]:
        s: dict[str, float] = {}
        for v in self.cands:
            if v in self.cats:
                s[v] = 10.0 * float((~batch[v].isin(self.seen[v])).mean())
                continue
            x = batch[v].to_numpy(dtype=float)
            s[v] = float(np.mean(np.abs(x - self.mu[v]) / self.sd[v]))
            if self.flat and self.flat0[v] < 0.2 and float((np.diff(x) == 0).mean()) >= 0.5:
                s[v] += 100.0
        return sorted(s, key=lambda v: -s[v])


class CircaRHT:
    """CIRCA regression-based hypothesis testing on the true DAG (linear regression on parents)."""

    def __init__(self, proc: BenchProcess, train: pd.DataFrame) -> None:
        self.proc = proc
        self.cats = set(proc.categorical)
        self.levels = {v: sorted(set(train[v])) for v in self.cats}
        self.cands = [v for v in proc.observed if v not in proc.quality]
        edges = proc.observed_edges()
        self.parents = {v: sorted(u for u, w in edges if w == v) for v in proc.observed}
        self.models: dict[str, tuple[np.ndarray, float]] = {}
        for v in proc.observed:
            if v in self.cats:
                continue
            f = self._design(train, v)
            y = train[v].to_numpy(dtype=float)
            f1 = np.column_stack([f, np.ones(len(y))])
            coef, *_ = np.linalg.lstsq(f1, y, rcond=None)
            r = y - f1 @ coef
            self.models[v] = (coef, float(r.std()) or 1e-12)

    def _design(self, df: pd.DataFrame, v: str) -> np.ndarray:
        cols = []
        for p in self.parents[v]:
            if p in self.cats:
                col = df[p].to_numpy()
                cols += [(col == lv).astype(float) for lv in self.levels[p][1:]]
            else:
                cols.append(df[p].to_numpy(dtype=float))
        return np.column_stack(cols) if cols else np.empty((len(df), 0))

    def rank(self, batch: pd.DataFrame) -> list[str]:
        s: dict[str, float] = {}
        for v in self.cands:
            if v in self.cats:
                s[v] = 10.0 * float((~batch[v].isin(self.levels[v])).mean())
                continue
            coef, sd = self.models[v]
            f1 = np.column_stack([self._design(batch, v), np.ones(len(batch))])
            s[v] = float(np.max(np.abs(batch[v].to_numpy(dtype=float) - f1 @ coef)) / sd)
        return sorted(s, key=lambda v: -s[v])


class DowhyScores:
    """dowhy.gcm.anomaly_scores on the true DAG."""

    def __init__(self, proc: BenchProcess, train: pd.DataFrame) -> None:
        import networkx as nx
        from dowhy import gcm

        gcm.config.disable_progress_bars()
        self.gcm = gcm
        self.cands = [v for v in proc.observed if v not in proc.quality]
        g = nx.DiGraph()
        g.add_nodes_from(proc.observed)
        g.add_edges_from(proc.observed_edges())
        # dowhy's empirical root distributions need numbers: discrete levels become integer codes
        self.codes = {v: {lv: float(i) for i, lv in enumerate(sorted(set(train[v])))} for v in proc.categorical}
        self.model = gcm.InvertibleStructuralCausalModel(g)
        num = self._num(train)
        gcm.auto.assign_causal_mechanisms(self.model, num)
        gcm.fit(self.model, num)

    def _num(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        for v, codes in self.codes.items():
            out[v] = [codes.get(x, float(len(codes))) for x in df[v]]
        return out

    def rank(self, batch: pd.DataFrame) -> list[str]:
        sc = self.gcm.anomaly_scores(self.model, self._num(batch))
        s = {v: float(np.mean(np.asarray(sc[v], dtype=float))) for v in self.cands}
        return sorted(s, key=lambda v: -s[v])


class QcnV1:
    """The previous engine: additive-noise ranking of the batch mean on a numeric-coded copy."""

    def __init__(self, proc: BenchProcess, train: pd.DataFrame, learned: bool) -> None:
        from models.causal import AdditiveNoiseModel, CausalConstraints, CausalGraph, StructureLearner, Tier

        self.proc = proc
        self.cats = proc.categorical
        self.codes = {v: {lv: float(i) for i, lv in enumerate(sorted(set(train[v])))} for v in self.cats}
        num = self._num(train)
        if learned:
            tiers = {v: proc.by_name[v].tier for v in proc.observed}
            cons = CausalConstraints(
                name=proc.name,
                tiers={v: Tier.PROCESS if t == "intermediate" else Tier(t) for v, t in tiers.items()},
            )
            self.graph = StructureLearner(cons).fit(num)
        else:
            self.graph = CausalGraph.build(proc.observed, sorted(proc.observed_edges()))
        self.anm = AdditiveNoiseModel().fit(num, graph=self.graph)
        self.mu, self.sd = num.mean(), num.std().replace(0, 1.0)

    def _num(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        for v in self.cats:
            out[v] = [self.codes[v].get(x, float(len(self.codes[v]))) for x in df[v]]
        return out

    def rank(self, batch: pd.DataFrame) -> list[str]:
        from models.causal import rank_root_causes

        num = self._num(batch)
        mean = num.mean()
        dev = {q: abs(float(mean[q] - self.mu[q]) / float(self.sd[q])) for q in self.proc.quality}
        target = max(dev, key=lambda q: dev[q])
        rep = rank_root_causes(self.anm, mean, target, k=len(self.proc.observed))
        return [c.variable for c in rep.candidates if c.variable not in self.proc.quality]


# --- the run ------------------------------------------------------------------------------------------
def _cf_confirms(res: dict[str, Any] | None) -> bool | None:
    """The engine's own verdict of a check (``None``: no check, or fewer than 3 anomalous rows to decide on)."""
    return None if res is None else res.get("confirms")


def _cf_majority(res: dict[str, Any] | None) -> bool | None:
    """Any check with an anomalous row: at least half restored (counts one- and two-row checks too)."""
    if res is None or res.get("restored_fraction") is None:
        return None
    return bool(res["restored_fraction"] >= 0.5)


def run(quick: bool = False, n_cases: int = 110, dowhy_cases: int = 30, split: str = "all") -> dict[str, Any]:
    """Every ranker on the same cases; ``split``: ``all``, ``dev`` (development runs) or ``heldout``."""
    warnings.simplefilter("ignore")
    procs = {"all": PROCESSES, "dev": DEV, "heldout": HELDOUT}[split]
    procs = ("thermal_oxidation", "tempering") if quick else procs
    n_cases = 12 if quick else n_cases
    rankers = ["qcn", "qcn_learned", "zscore", "zscore_flat", "circa_rht", "qcn_v1", "qcn_v1_learned"]
    if not quick:
        rankers.append("dowhy")
    ranks: dict[str, list[tuple[Case, int]]] = defaultdict(list)
    lat: dict[str, list[float]] = defaultdict(list)
    skeleton: dict[str, Any] = {}
    cf: dict[str, list[bool]] = defaultdict(list)
    fit_s: dict[str, float] = {}
    for name in procs:
        proc = get(name)
        train = proc.simulate(TRAIN_ROWS, np.random.default_rng(101))
        cases = make_cases(proc, n_cases, seed=7)
        knowledge = ProcessKnowledge.from_doc(proc.tiers_doc())
        true_graph = KnownGraph.from_doc(proc.dag_doc())
        t0 = time.perf_counter()
        learned = BatchRootCauseModel().fit(train, knowledge=knowledge)
        fit_s[name] = time.perf_counter() - t0
        known = BatchRootCauseModel().fit(train, knowledge=knowledge, graph=true_graph)
        truth_sk = {frozenset(e) for e in proc.observed_edges()}
        skeleton[name] = _f1(truth_sk, {frozenset(e) for e in learned.graph.edges})
        fns: dict[str, Callable[[pd.DataFrame], list[str]]] = {}
        z, zf, circa = ZScore(proc, train, False), ZScore(proc, train, True), CircaRHT(proc, train)
        fns["zscore"], fns["zscore_flat"], fns["circa_rht"] = z.rank, zf.rank, circa.rank
        v1, v1l = QcnV1(proc, train, False), QcnV1(proc, train, True)
        fns["qcn_v1"], fns["qcn_v1_learned"] = v1.rank, v1l.rank
        skeleton[name]["pgmpy_pc_f1"] = _f1(truth_sk, {frozenset(e) for e in v1l.graph.edges})["f1"]
        dw = DowhyScores(proc, train) if "dowhy" in rankers else None
        for i, c in enumerate(cases):
            for label, model in (("qcn", known), ("qcn_learned", learned)):
                t0 = time.perf_counter()
                rk = model.rank(c.batch)
                lat[label].append(time.perf_counter() - t0)
                order = [x.variable for x in rk.causes]
                ranks[label].append((c, _rank(order, c.truth)))
                if label == "qcn" or label == "qcn_learned":
                    cfs = {x.variable: x.counterfactual for x in rk.causes}
                    true_cf = next((cfs[v] for v in order if v in c.truth and cfs.get(v)), None)
                    if true_cf is None and rk.anomalous_rows:
                        true_cf = model.counterfactual(c.batch, c.root)
                    wrong = next((v for v in order if v not in c.truth), None)
                    wrong_cf = cfs.get(wrong) if wrong else None
                    if wrong and wrong_cf is None and rk.anomalous_rows:
                        wrong_cf = model.counterfactual(c.batch, wrong)
                    suffix = "" if label == "qcn" else "_learned"
                    for key, res in (("true" + suffix, true_cf), ("wrong" + suffix, wrong_cf)):
                        ok = _cf_confirms(res)
                        if ok is not None:
                            cf[key].append(ok)
                        ok = _cf_majority(res)
                        if ok is not None:
                            cf[key + "_any"].append(ok)
            for label, fn in fns.items():
                t0 = time.perf_counter()
                order = fn(c.batch)
                lat[label].append(time.perf_counter() - t0)
                ranks[label].append((c, _rank(order, c.truth)))
            if dw is not None and i < dowhy_cases:
                t0 = time.perf_counter()
                order = dw.rank(c.batch)
                lat["dowhy"].append(time.perf_counter() - t0)
                ranks["dowhy"].append((c, _rank(order, c.truth)))
        summary = {r: round(float(np.mean([x == 1 for cc, x in ranks[r] if cc.process == name])), 3) for r in rankers}
        print(name, "top1", summary, "skeleton", skeleton[name], flush=True)

    def top(label: str, k: int, split: tuple[str, ...] | None = None, kind: str | None = None) -> float | None:
        xs = [r for c, r in ranks[label] if (split is None or c.process in split) and (kind is None or c.kind == kind)]
        return round(float(np.mean([r <= k for r in xs])), 4) if xs else None

    def ms(label: str, q: float) -> float | None:
        return round(float(np.percentile(np.array(lat[label]) * 1e3, q)), 3) if lat[label] else None

    dev = tuple(p for p in procs if p in DEV)
    held = tuple(p for p in procs if p in HELDOUT)
    out: dict[str, Any] = {
        "hard_quick": quick,
        "hard_processes": list(procs),
        "hard_heldout_processes": list(held),
        "hard_cases": len(ranks["qcn"]),
        "hard_cases_with_concurrent_change": sum(1 for c, _ in ranks["qcn"] if c.concurrent),
        "hard_train_rows": TRAIN_ROWS,
        "hard_top1": top("qcn", 1),
        "hard_top3": top("qcn", 3),
        "hard_top1_learned": top("qcn_learned", 1),
        "hard_top3_learned": top("qcn_learned", 3),
        "hard_dev_top1": top("qcn", 1, dev),
        "hard_dev_top3": top("qcn", 3, dev),
        "hard_dev_top1_learned": top("qcn_learned", 1, dev),
        "hard_dev_top3_learned": top("qcn_learned", 3, dev),
        "hard_heldout_top1": top("qcn", 1, held),
        "hard_heldout_top3": top("qcn", 3, held),
        "hard_heldout_top1_learned": top("qcn_learned", 1, held),
        "hard_heldout_top3_learned": top("qcn_learned", 3, held),
        "hard_latency_ms_p50": ms("qcn_learned", 50),
        "hard_latency_ms_p95": ms("qcn_learned", 95),
        "hard_latency_ms_p95_true_graph": ms("qcn", 95),
        "hard_fit_seconds_learned": {k: round(v, 2) for k, v in fit_s.items()},
        "hard_top1_by_kind": {k: top("qcn", 1, kind=k) for k in FAULT_KINDS},
        "hard_top1_learned_by_kind": {k: top("qcn_learned", 1, kind=k) for k in FAULT_KINDS},
        "hard_heldout_top1_learned_by_kind": {k: top("qcn_learned", 1, held, kind=k) for k in FAULT_KINDS},
        "hard_top1_concurrent_learned": round(
            float(np.mean([r == 1 for c, r in ranks["qcn_learned"] if c.concurrent])), 4
        ),
        "hard_skeleton_f1": {k: round(v["f1"], 4) for k, v in skeleton.items()},
        "hard_skeleton": {k: {kk: round(vv, 4) for kk, vv in v.items()} for k, v in skeleton.items()},
        "hard_baselines": {},
    }
    # confirms_*: the engine's verdict, decided on >= 3 anomalous rows; *_any_rows: every check with an anomalous
    # row, "at least half restored" (one- and two-row checks included); checks_*: how many checks each covers
    for who in ("true", "wrong"):
        for label, key in ((who, ""), (who + "_learned", "_learned")):
            xs, ys = cf.get(label, []), cf.get(label + "_any", [])
            out[f"counterfactual_confirms_{who}_root{key}"] = round(float(np.mean(xs)), 4) if xs else None
            out[f"counterfactual_checks_{who}_root{key}"] = len(xs)
            out[f"counterfactual_confirms_{who}_root{key}_any_rows"] = round(float(np.mean(ys)), 4) if ys else None
            out[f"counterfactual_checks_{who}_root{key}_any_rows"] = len(ys)
    for label in rankers:
        if label in ("qcn", "qcn_learned"):
            continue
        cases_of = {c.process for c, _ in ranks[label]}
        out["hard_baselines"][label] = {
            "cases": len(ranks[label]),
            "top1": top(label, 1),
            "top3": top(label, 3),
            "dev_top1": top(label, 1, dev),
            "heldout_top1": top(label, 1, held),
            "heldout_top3": top(label, 3, held),
            "latency_ms_p50": ms(label, 50),
            "top1_by_kind": {k: top(label, 1, kind=k) for k in FAULT_KINDS},
            "processes": sorted(cases_of),
        }
    if "dowhy" in rankers:  # the same subset for ours, so the comparison is like for like
        sub = {(c.process, c.index) for c, _ in ranks["dowhy"]}
        for label in ("qcn", "qcn_learned"):
            xs = [r for c, r in ranks[label] if (c.process, c.index) in sub]
            out["hard_baselines"]["dowhy"][f"{label}_top1_same_cases"] = round(float(np.mean([r == 1 for r in xs])), 4)
    return out


def measure_false_alarms(lots_per_process: int = 1250, faulty_per_process: int = 100) -> dict[str, Any]:
    """Clean lots that would open a tracing case, with the verdict settings the gateway ships.

    Per shipped process (``models.simulate``, its FMEA profile's spec limits): SPC history = 30 clean lots of
    10 samples, the anomaly model the gateway trains on them (PCA/Mahalanobis, ONNX, the shipped
    threshold quantile), then ``lots_per_process`` further clean lots of 10 samples and
    ``faulty_per_process`` lots with a 4-sd mean shift of a random process variable upstream of a
    characteristic. A case opens for every anomalous verdict of an anchored lot under an agreement unless
    its only anomaly is one value of one sample (``BatchAnomalyVerdict.single_value``, the rule of
    ``app.services.cases.discover``), so false cases = such verdicts on clean lots (all anomalous verdicts
    are reported too). Same lots with ``lot_alpha=None`` (the per-point rules
    shipped before) as the baseline.
    """
    import tempfile

    import networkx as nx

    from app.analysis.engine import spc_rules
    from app.analysis.profiles import load_profile
    from app.settings import get_settings
    from models.mspc import PcaMahalanobisModel
    from models.registry import ModelRegistry
    from models.simulate import PROCESS_MODELS, Fault, get_process
    from models.verdict import BatchAnomalyVerdict, score_batch

    def opens_case(v: BatchAnomalyVerdict) -> bool:  # the gateway's rule (app.services.cases.discover)
        return v.anomalous and v.single_value() is None

    settings = get_settings()
    rules = spc_rules(settings)

    def long(df: pd.DataFrame, chars: list[str], lot: str) -> pd.DataFrame:
        rows = [(f"{lot}-S{i:03d}", c, float(df[c].iloc[i])) for i in range(len(df)) for c in chars]
        return pd.DataFrame(rows, columns=["sample_id", "characteristic", "value"])

    out: dict[str, Any] = {
        "false_alarm_settings": {
            "lot_alpha": settings.analysis_lot_alpha,
            "spc_rules": [r.rule for r in rules],
            "model_threshold_quantile": settings.analysis_model_threshold_quantile,
        }
    }
    clean = {"shipped": 0, "per_point": 0}
    anomalous = {"shipped": 0, "per_point": 0}
    caught = {"shipped": 0, "per_point": 0}
    n_clean = n_faulty = 0
    per: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(Path(tmp))
        for name in PROCESS_MODELS:
            scm = get_process(name)
            profile = load_profile(settings, name)
            spec = profile.spec() if profile is not None else {}
            chars = scm.characteristics
            hist_rows = scm.sample(300, seed=4242)
            hist = long(hist_rows, chars, "H")
            model = PcaMahalanobisModel(threshold_quantile=settings.analysis_model_threshold_quantile)
            model.fit(hist_rows[chars].reset_index(drop=True))
            registry.save(model, f"{name}-anomaly", "1", extra={})
            loaded = registry.load(f"{name}-anomaly", "1")
            counts = {"shipped": 0, "per_point": 0}
            verdicts = {"shipped": 0, "per_point": 0}
            for i in range(lots_per_process):
                lot = long(scm.sample(10, seed=10_000 + i), chars, f"L{i}")
                for label, alpha in (("shipped", settings.analysis_lot_alpha), ("per_point", None)):
                    v = score_batch(
                        lot, spec, hist, loaded, min_history=settings.analysis_min_history, rules=rules, lot_alpha=alpha
                    )
                    counts[label] += int(opens_case(v))
                    verdicts[label] += int(v.anomalous)
            rng = np.random.default_rng(5)
            upstream = sorted(
                v for c in chars for v in nx.ancestors(scm.graph, c) if scm.by_name[v].tier.value != "quality"
            )
            det = {"shipped": 0, "per_point": 0}
            for i in range(faulty_per_process):
                var = str(rng.choice(upstream))
                df = scm.sample(10, seed=50_000 + i, fault=Fault("mean_shift", var, 4.0, 0))
                lot = long(df, chars, f"F{i}")
                for label, alpha in (("shipped", settings.analysis_lot_alpha), ("per_point", None)):
                    v = score_batch(
                        lot, spec, hist, loaded, min_history=settings.analysis_min_history, rules=rules, lot_alpha=alpha
                    )
                    det[label] += int(opens_case(v))
            for k in clean:
                clean[k] += counts[k]
                anomalous[k] += verdicts[k]
                caught[k] += det[k]
            n_clean += lots_per_process
            n_faulty += faulty_per_process
            per[name] = {
                "clean_lots": lots_per_process,
                "false_cases": counts,
                "anomalous_verdicts": verdicts,
                "faulty_lots": faulty_per_process,
                "faulty_detected": det,
            }
            print("false alarms", name, per[name], flush=True)
    out.update(
        {
            "false_alarm_clean_lots": n_clean,
            "false_cases_per_1000_clean_lots": round(1000 * clean["shipped"] / n_clean, 3),
            "false_cases_per_1000_clean_lots_per_point_rules": round(1000 * clean["per_point"] / n_clean, 3),
            "anomalous_verdicts_per_1000_clean_lots": round(1000 * anomalous["shipped"] / n_clean, 3),
            "false_alarm_faulty_lots": n_faulty,
            "faulty_lots_detected_share": round(caught["shipped"] / n_faulty, 4),
            "faulty_lots_detected_share_per_point_rules": round(caught["per_point"] / n_faulty, 4),
            "false_alarm_by_process": per,
        }
    )
    return out


def merge(figures: dict[str, Any]) -> dict[str, Any]:
    """Existing causal.json keys are kept; the ``hard_*`` figures are replaced."""
    doc: dict[str, Any] = {}
    if RESULTS.exists():
        try:
            doc = json.loads(RESULTS.read_text())
        except json.JSONDecodeError:
            doc = {}
    doc.update(figures)
    return doc


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run (2 processes x 12 cases, no dowhy)")
    ap.add_argument("--cases", type=int, default=110, help="cases per process (full run)")
    ap.add_argument("--dowhy-cases", type=int, default=30, help="cases per process for the slow dowhy baseline")
    ap.add_argument("--split", choices=("all", "dev", "heldout"), default="all")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--false-alarms-only", action="store_true", help="only the clean-lot false-alarm measurement")
    args = ap.parse_args()
    if args.false_alarms_only:
        res = measure_false_alarms(60 if args.quick else 1250, 10 if args.quick else 100)
    else:
        res = run(quick=args.quick, n_cases=args.cases, dowhy_cases=args.dowhy_cases, split=args.split)
        res.update(measure_false_alarms(60 if args.quick else 1250, 10 if args.quick else 100))
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(merge(res), indent=2, sort_keys=True) + "\n")
    print(json.dumps(res, indent=2, sort_keys=True))
