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


def measure_corpus(cache: Path = CACHE, splits: tuple[str, ...] = ("dev", "heldout")) -> dict[str, Any]:
    """Figures for ``bench/results/parsers.json``.

    Keys per split: ``dev_*`` and ``heldout_*``. The held-out half is batch 3 (11 COAs whose ground truth was
    written, and split fixed, before any parser run on them; scored once at the end). The earlier held-out
    halves (batch 1's ``heldout`` and batch 2's ``heldout_new``) were looked at after their scoring and are
    part of dev now; ``dev_formerly_heldout_*`` gives their figures alone. ``languages`` gives
    recall/accuracy per document language and split.
    """
    out: dict[str, Any] = measure_synthetic()
    scored: dict[str, dict[str, Any]] = {}
    manifest = json.loads((PUBLIC / "manifest.json").read_text(encoding="utf-8"))
    for split in splits:
        res = scored[split] = score_public(PUBLIC, cache, split=split)
        out[f"{split}_result_recall"] = res["result_recall"]
        out[f"{split}_header_accuracy"] = res["header_accuracy"]
        out[f"{split}_docs"] = res["docs"]
        out[f"{split}_result_rows"] = res["result_rows"]
        out[f"{split}_header_fields"] = res["header_fields"]
        out[f"{split}_missing"] = res["missing"]
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        (ROOT / "bench" / "results" / f"corpus_{split}.json").write_text(
            json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    if "dev" in scored:
        moved = {d["file"] for d in manifest["documents"] if d.get("split_before")}
        files = [e for f, e in scored["dev"]["files"].items() if f in moved]
        rows = sum(e["rows"] for e in files)
        fields = sum(e["header"] for e in files)
        out["dev_formerly_heldout_docs"] = len(files)
        out["dev_formerly_heldout_result_recall"] = (
            round(sum(e["rows_found"] for e in files) / rows, 4) if rows else None
        )
        out["dev_formerly_heldout_header_accuracy"] = (
            round(sum(e.get("header_found", 0) for e in files) / fields, 4) if fields else None
        )
    out["languages"] = {split: res["languages"] for split, res in scored.items()}
    docs_by_lang: dict[str, int] = {}
    for doc in manifest["documents"]:
        for code in doc.get("language", "?").split("/"):
            docs_by_lang[code] = docs_by_lang.get(code, 0) + 1
    out["public_docs_by_language"] = docs_by_lang
    out["public_languages"] = len(docs_by_lang)  # distinct document languages in the manifest (de/en counts both)
    return out


def main() -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", choices=("dev", "heldout", "all"), default="dev")
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args()
    splits = ("dev", "heldout") if args.split == "all" else (args.split,)
    print(json.dumps(measure_corpus(args.cache, splits), indent=2))


if __name__ == "__main__":
    main()
