"""``qcn analysis rank``: rank the root causes of batches offline, with the gateway's code path.

The model is fitted once on ``--train`` and every batch (``--batch`` repeated, or a folder of ``*.csv``) is
ranked against it; ``--json`` prints JSON Lines, one object per batch with its file name. Heavy imports
(pandas, numpy, the analysis core) happen inside the command, so ``qcn --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]


def _batches(items: list[Path]) -> list[Path]:
    from models.errors import InvalidInput

    out: list[Path] = []
    for p in items:
        if p.is_dir():
            found = sorted(p.glob("*.csv"))
            if not found:
                raise InvalidInput(f"folder {p} holds no .csv file", field="--batch")
            out += found
        else:
            out.append(p)
    return out


def _human(name: str, doc: dict[str, Any]) -> str:
    lines = [f"{name}: {doc['rows']} rows, {doc['anomalous_rows']} anomalous, ranked in {doc['ranking_ms']:.1f} ms"]
    outs = ", ".join(f"{o['variable']} ({o['evidence']}, z={o['score']:.1f})" for o in doc["outputs"]) or "none"
    lines.append(f"  anomalous outputs: {outs}")
    for c in doc["causes"]:
        cf = c.get("counterfactual") or {}
        frac = cf.get("restored_fraction")
        cf_txt = (
            f"; had it stayed normal {cf['restored_rows']}/{cf['anomalous_rows']} anomalous rows restored "
            f"[{cf['interval'][0]:.2f}, {cf['interval'][1]:.2f}]"
            if frac is not None
            else ""
        )
        lines.append(
            f"  {c['rank']}. {c['variable']}  {c['evidence']} z={c['score']:.1f}  path {' -> '.join(c['path'])}{cf_txt}"
        )
    return "\n".join(lines)


def rank(
    train: Annotated[Path, typer.Option("--train", help="CSV of normal rows in time order (one column per variable).")],
    batch: Annotated[
        list[Path],
        typer.Option("--batch", help="CSV of one batch (rows in time order), or a folder of them; repeatable."),
    ],
    graph: Annotated[Path | None, typer.Option("--graph", help="DAG.json: a complete known graph.")] = None,
    tiers: Annotated[Path | None, typer.Option("--tiers", help="TIERS.json: tiers, discrete variables, edges.")] = None,
    spec: Annotated[Path | None, typer.Option("--spec", help="SPEC.json: specification limits.")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many causes to list.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines: one object per batch.")] = False,
) -> None:
    """Rank the root causes of each batch against a model fitted once on normal data (docs/analysis.md)."""
    from app.analysis.rank import fit_ranker, rank_document, read_table
    from models.causal.knowledge import load_json
    from models.errors import ModelError

    try:
        files = _batches(batch)
        t0 = time.perf_counter()
        model = fit_ranker(
            read_table(train),
            graph=load_json(graph, "graph") if graph else None,
            tiers=load_json(tiers, "tiers") if tiers else None,
            spec=load_json(spec, "spec") if spec else None,
        )
        fit_s = time.perf_counter() - t0
        if not as_json:
            how = "known graph" if graph else f"learned graph ({len(model.graph.edges)} edges)"
            typer.echo(f"model fitted on {train} in {fit_s:.2f} s, {how}")
        failed = 0
        for f in files:
            try:
                doc = rank_document(model, read_table(f), k=top)
            except ModelError as exc:
                failed += 1
                if as_json:
                    typer.echo(json.dumps({"batch": f.name, "error": exc.to_dict()}))
                else:
                    typer.echo(f"{f.name}: error: {exc.message}", err=True)
                continue
            if as_json:
                typer.echo(json.dumps({"batch": f.name, **doc}, allow_nan=False))
            else:
                typer.echo(_human(f.name, doc))
    except ModelError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    if failed:
        sys.exit(1)


def register(group: typer.Typer) -> None:
    """Add ``rank`` to the ``qcn analysis`` command group."""
    group.command("rank")(rank)
