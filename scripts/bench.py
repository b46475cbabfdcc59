"""``make bench``: run every benchmark and write flat JSON files under bench/results/.

Each section runs in this process (one after the other, nothing else running) and prints its figures; a
section that fails is reported with its error and the others still run. ``--only anchor,parsers`` runs some.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
RESULTS = ROOT / "bench" / "results"


def _anchor() -> dict[str, Any]:
    from bench_anchor import measure_upload_to_anchored
    from bench_gas import measure_anchor_gas
    from bench_merkle import measure_merkle

    out: dict[str, Any] = {}
    out.update(measure_merkle())
    out.update(measure_anchor_gas())
    out.update(measure_upload_to_anchored())
    return out


def _contracts() -> dict[str, Any]:
    from bench_contracts import measure_contract_gas, measure_trust_model

    return measure_contract_gas() | measure_trust_model()


def _parsers() -> dict[str, Any]:
    from bench_parsers_reports import measure_reports
    from bench_parsers_tabular import measure_tabular

    out: dict[str, Any] = {}
    tab = measure_tabular()
    rep = measure_reports()
    out.update(tab)
    out.update(rep)
    docs = [
        v
        for k, v in (("qif_docs_per_s", tab.get("qif_docs_per_s")), ("dcc_docs_per_s", rep.get("dcc_docs_per_s")))
        if v
    ]
    if docs:
        # harmonic mean: the rate of parsing an equal mix of DCC and QIF documents
        out["xml_docs_per_s"] = round(len(docs) / sum(1 / d for d in docs), 1)
    cpu = [v for v in (tab.get("qif_docs_per_s_cpu"), rep.get("dcc_docs_per_s_cpu")) if v]
    if len(cpu) == 2:
        out["xml_docs_per_s_cpu"] = round(2 / sum(1 / d for d in cpu), 1)  # same mix, process CPU time
    return out


def _dcc() -> dict[str, Any]:
    from bench_dcc import measure_dcc

    return measure_dcc()


def _parsers_corpus() -> dict[str, Any]:
    """Public-report corpus (hand-written ground truth): dev and held-out halves, scored side by side."""
    from bench_parsers_corpus import measure_corpus

    return measure_corpus()


def _causal() -> dict[str, Any]:
    from bench_causal import measure_causal
    from bench_onnx import measure_onnx
    from bench_rca import measure_false_alarms
    from bench_rca import run as measure_hard_rca

    out = measure_causal()
    out.update(measure_onnx())
    out.update(measure_hard_rca())  # hard_*: six unseen processes, baselines in the same run
    out.update(measure_false_alarms())
    return out


def _tracing() -> dict[str, Any]:
    from bench_tracing import measure_tracing

    return measure_tracing()


def _startup() -> dict[str, Any]:
    from bench_startup import measure_startup

    return measure_startup()


def _gateway() -> dict[str, Any]:
    from bench_gateway import measure_gateway

    return measure_gateway()


def _portal() -> dict[str, Any]:
    from bench_portal import measure_portal

    return measure_portal()


SECTIONS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "anchor": ("anchor.json", _anchor),
    "contracts": ("contracts.json", _contracts),
    "parsers": ("parsers.json", _parsers),
    "dcc": ("parsers.json", _dcc),  # its own keys only, merged into parsers.json
    "parsers_corpus": ("parsers.json", _parsers_corpus),
    "causal": ("causal.json", _causal),
    "tracing": ("tracing.json", _tracing),
    "startup": ("startup.json", _startup),
    "gateway": ("gateway.json", _gateway),
    "portal": ("portal.json", _portal),
}


_MERGED = {"dcc", "parsers_corpus"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated sections: " + ",".join(SECTIONS))
    args = parser.parse_args()
    chosen = [s for s in args.only.split(",") if s] or list(SECTIONS)
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed = []
    progress = Progress(
        TextColumn("bench {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} sections"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    with progress:
        task = progress.add_task(chosen[0], total=len(chosen))
        for name in chosen:
            progress.update(task, description=name)
            filename, fn = SECTIONS[name]
            progress.console.print(f"== {name} ==")
            t0 = time.perf_counter()
            try:
                figures = fn()
            except Exception:  # a broken section must not hide the others' figures
                progress.console.print_exception()
                failed.append(name)
                progress.advance(task)
                continue
            meta = f"{name}_" if name in _MERGED else ""  # a merged section must not overwrite the owner's meta keys
            figures[f"{meta}bench_seconds"] = round(time.perf_counter() - t0, 1)
            figures[f"{meta}measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            figures[f"{meta}machine"] = (
                f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip()
            )
            path = RESULTS / filename
            if name in _MERGED and path.exists():  # shares a file with another section: keep the other keys
                kept = json.loads(path.read_text())
                if name == "parsers_corpus":  # keys of the retired held-out halves (now dev) must not linger
                    kept = {k: v for k, v in kept.items() if not k.startswith(("heldout_old_", "heldout_new_"))}
                figures = {**kept, **figures}
            path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
            progress.console.print(json.dumps(figures, indent=2, sort_keys=True))
            progress.advance(task)
    if failed:
        print(f"sections that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
