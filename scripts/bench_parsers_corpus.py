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

from parsers.pdf_accuracy import score_public  # noqa: E402

PUBLIC = ROOT / "tests" / "fixtures" / "reports" / "public"
CACHE = ROOT / ".cache" / "reports" / "public"


def measure_corpus(cache: Path = CACHE, splits: tuple[str, ...] = ("dev", "heldout")) -> dict[str, Any]:
    """Figures for ``bench/results/parsers.json`` (keys prefixed ``dev_`` / ``heldout_``)."""
    out: dict[str, Any] = {}
    for split in splits:
        res = score_public(PUBLIC, cache, split=split)
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
    return out


def main() -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", choices=("dev", "heldout", "both"), default="dev")
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args()
    splits = ("dev", "heldout") if args.split == "both" else (args.split,)
    print(json.dumps(measure_corpus(args.cache, splits), indent=2))


if __name__ == "__main__":
    main()
