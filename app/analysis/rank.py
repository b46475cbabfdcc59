"""Batch root-cause ranking as the gateway, the offline Python API and ``qcn analysis rank`` all run it.

Python API (no gateway, no database)::

    from app.analysis.rank import fit_ranker, rank_document, read_table
    model = fit_ranker(read_table("normal.csv"), graph=load_json("dag.json", "graph"))
    doc = rank_document(model, read_table("batch-17.csv"))   # {"causes": [...], "ranking_ms": ...}

:func:`fit_ranker` takes the documents of ``docs/analysis.md`` (DAG.json, TIERS.json, SPEC.json) as parsed
JSON; :func:`rank_document` returns the JSON object the CLI prints and the gateway stores under
``root_cause.batch_ranking``. Every failure is a :class:`models.errors.ModelError` naming the problem.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from models.causal.knowledge import KnownGraph, ProcessKnowledge, specs_from_doc
from models.causal.rca import BatchRootCauseModel
from models.errors import InvalidInput

__all__ = ["FORMAT", "fit_ranker", "rank_document", "read_table"]

FORMAT = "qcn-rank/1"


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV file of rows in time order (one column per variable)."""
    p = Path(path)
    try:
        df = pd.read_csv(p)
    except FileNotFoundError:
        raise InvalidInput(f"file not found: {p}", field=str(p)) from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidInput(f"{p} is not a readable CSV file: {exc}", field=str(p)) from None
    if df.empty:
        raise InvalidInput(f"{p} has no data rows", field=str(p))
    return df


def _columns(train: pd.DataFrame, graph: KnownGraph | None, knowledge: ProcessKnowledge | None) -> list[str]:
    if graph is not None:
        return list(graph.nodes)
    if knowledge is not None and knowledge.tiers:
        return [c for c in train.columns if c in knowledge.tiers]
    # no declared variables: every numeric column and every text column that repeats (a label, not an id)
    return [c for c in train.columns if pd.api.types.is_numeric_dtype(train[c]) or train[c].nunique() < len(train) / 2]


def fit_ranker(
    train: pd.DataFrame,
    *,
    graph: Any = None,
    tiers: Any = None,
    spec: Any = None,
) -> BatchRootCauseModel:
    """Fit the batch root-cause model on normal rows; ``graph``/``tiers``/``spec`` are parsed JSON documents."""
    kg = KnownGraph.from_doc(graph) if graph is not None else None
    kn = ProcessKnowledge.from_doc(tiers, variables=kg.nodes if kg else ()) if tiers is not None else None
    if kn is None and kg is not None:
        kn = ProcessKnowledge.from_graph(kg)
    specs = specs_from_doc(spec)[0] if spec is not None else {}
    cols = _columns(train, kg, kn)
    missing = [c for c in cols if c not in train.columns]
    if missing:
        raise InvalidInput(f"training data lacks variable(s) {', '.join(missing[:8])}", field=missing[0])
    if kn is not None:
        unknown = [v for v in kn.tiers if v not in train.columns]
        if unknown:
            raise InvalidInput(
                f"tiers name variable(s) not in the training data: {', '.join(unknown[:8])}", field=unknown[0]
            )
    return BatchRootCauseModel().fit(train[cols], knowledge=kn, graph=kg, specs=specs)


def rank_document(model: BatchRootCauseModel, batch: pd.DataFrame, *, k: int = 5) -> dict[str, Any]:
    """Ranked causes of one batch as a JSON-able object (see ``docs/analysis.md``)."""
    t0 = time.perf_counter()
    ranking = model.rank(batch, k=k)
    ms = (time.perf_counter() - t0) * 1e3
    body = ranking.to_dict()
    body.pop("seconds", None)
    return {"format": FORMAT, **body, "ranking_ms": round(ms, 3)}
