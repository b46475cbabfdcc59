"""Score the PDF parser on public lab reports nobody here wrote: dev and held-out halves side by side.

The documents (``tests/fixtures/reports/public/manifest.json``: source URL, sha256, split) are third-party
certificates whose licences do not allow committing them; they are looked for in ``.cache/reports/public``
(``--cache``) and the figures say how many were present. The split was fixed by a hash of each file name
before development; ground truth (``gt/<file>.json``) was written by hand from the rendered pages.

Usage: ``.venv/bin/python scripts/bench_parsers_corpus.py [--split dev|heldout|both] [--cache DIR]``
(``make bench`` runs it as the ``parsers_corpus`` section and merges the keys into parsers.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from parsers.pdf_accuracy import _qnorm, _report_flat, _vnorm, score_public, source_of  # noqa: E402

PUBLIC = ROOT / "tests" / "fixtures" / "reports" / "public"
CACHE = ROOT / ".cache" / "reports" / "public"


def measure_synthetic(count: int = 40) -> dict[str, Any]:
    """Recall/accuracy on ``count`` randomised layouts of ``scripts/synth_reports.py`` (our own material)."""
    from synth_reports import make_report

    from parsers.limits import Limits
    from parsers.pdf import parse_pdf

    rows = hit = fields = right = 0
    for seed in range(count):
        pdf, truth = make_report(seed)
        rep = parse_pdf(pdf, source=source_of(pdf, "pdf"), limits=Limits())
        flat = _report_flat(rep)
        parsed = [
            (_qnorm(r.quantity.value), _vnorm(r.value.value), r.sample_id.value if r.sample_id else None)
            for r in rep.results
        ]
        used: set[int] = set()
        for row in truth.results:
            rows += 1
            want = (_qnorm(row["quantity"]), _vnorm(row["value"]))
            k = next(
                (
                    i
                    for i, p in enumerate(parsed)
                    if i not in used and p[:2] == want and row.get("sample") in (None, p[2])
                ),
                None,
            )
            if k is not None:
                used.add(k)
                hit += 1
        for key, value in truth.header.items():
            fields += 1
            right += int((flat.get(key) or "").lower() == value.lower())
    return {
        "synthetic_docs": count,
        "synthetic_result_recall": round(hit / rows, 4),
        "synthetic_header_accuracy": round(right / fields, 4),
    }


def measure_corpus(cache: Path = CACHE, splits: tuple[str, ...] = ("dev", "heldout", "heldout_new")) -> dict[str, Any]:
    """Figures for ``bench/results/parsers.json``.

    Keys per split: ``dev_*``, ``heldout_old_*`` (batch 1's held-out half: scored once blind, later looked
    at, so no longer blind) and ``heldout_new_*`` (batch 2's held-out half: ground truth written and split
    fixed before any parser run on it, scored once at the end). ``heldout_*`` is both held-out halves
    together; ``languages`` gives recall/accuracy per document language and split.
    """
    out: dict[str, Any] = measure_synthetic()
    scored: dict[str, dict[str, Any]] = {}
    for split in splits:
        res = scored[split] = score_public(PUBLIC, cache, split=split)
        key = "heldout_old" if split == "heldout" else split
        out[f"{key}_result_recall"] = res["result_recall"]
        out[f"{key}_header_accuracy"] = res["header_accuracy"]
        out[f"{key}_docs"] = res["docs"]
        out[f"{key}_result_rows"] = res["result_rows"]
        out[f"{key}_header_fields"] = res["header_fields"]
        out[f"{key}_missing"] = res["missing"]
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        (ROOT / "bench" / "results" / f"corpus_{split}.json").write_text(
            json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    held = [scored[s] for s in ("heldout", "heldout_new") if s in scored]
    if held:
        rows = sum(r["result_rows"] for r in held)
        fields = sum(r["header_fields"] for r in held)
        out["heldout_docs"] = sum(r["docs"] for r in held)
        out["heldout_result_rows"] = rows
        out["heldout_result_recall"] = round(sum(r["result_rows_found"] for r in held) / rows, 4) if rows else None
        out["heldout_header_fields"] = fields
        out["heldout_header_accuracy"] = (
            round(sum(r["header_fields_right"] for r in held) / fields, 4) if fields else None
        )
    out["languages"] = {split: res["languages"] for split, res in scored.items()}
    docs_by_lang: dict[str, int] = {}
    for doc in json.loads((PUBLIC / "manifest.json").read_text(encoding="utf-8"))["documents"]:
        for code in doc.get("language", "?").split("/"):
            docs_by_lang[code] = docs_by_lang.get(code, 0) + 1
    out["public_docs_by_language"] = docs_by_lang
    out["public_languages"] = len(docs_by_lang)  # distinct document languages in the manifest (de/en counts both)
    return out


def main() -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", choices=("dev", "heldout", "heldout_new", "all"), default="dev")
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args()
    splits = ("dev", "heldout", "heldout_new") if args.split == "all" else (args.split,)
    print(json.dumps(measure_corpus(args.cache, splits), indent=2))


if __name__ == "__main__":
    main()
