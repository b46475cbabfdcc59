"""Field-level accuracy of the PDF parser over the report corpus (``tests/fixtures/reports``).

Ground truth:

* generated reports: ``<name>.json`` written by ``scripts/make_report_corpus.py`` from the same data that
  was rendered (never from the parser);
* PTB certificates (``ptb/<name>.pdf``): the twin DCC XML parsed with :func:`parsers.dcc.parse_dcc`,
  restricted to the fields both forms state (:data:`PTB_OVERLAP`).

Every ground-truth field counts; a field is correct when the parsed value equals the expected one after
whitespace normalisation. A file whose ground truth expects an error (``NeedsOCR``) scores by raising it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from parsers.errors import ParseError
from parsers.limits import Limits
from parsers.provenance import SourceFile

__all__ = ["CORPUS_DIR", "PTB_OVERLAP", "corpus_files", "measure_accuracy", "ptb_ground_truth"]

CORPUS_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "reports"
PTB_OVERLAP = ("report_id", "dates.performance_start", "dates.performance_end", "items[0].id", "customer.name")
_PTB_TWINS = {"example.pdf": "example.xml", "vacuumlab-CDG.pdf": "dcc-vacuumlab-CDG.xml"}


def _norm(value: Any) -> str:
    return " ".join(str(value).split())


def source_of(data: bytes, fmt: str, name: str | None = None) -> SourceFile:
    """SourceFile for raw bytes (sha256, size, format)."""
    return SourceFile(sha256=hashlib.sha256(data).hexdigest(), size=len(data), format=fmt, filename=name)


def ptb_ground_truth(xml_path: Path) -> dict[str, str]:
    """Overlapping fields of a PTB certificate, read from its DCC XML twin."""
    from parsers.dcc import parse_dcc

    data = xml_path.read_bytes()
    flat = parse_dcc(data, source=source_of(data, "dcc", xml_path.name), limits=Limits()).flat_values()
    return {k: flat[k] for k in PTB_OVERLAP if k in flat}


def corpus_files(corpus_dir: Path = CORPUS_DIR) -> list[tuple[Path, str, str | None, dict[str, str]]]:
    """``(pdf path, layout, expected error, ground-truth fields)`` for every corpus PDF."""
    out: list[tuple[Path, str, str | None, dict[str, str]]] = []
    for gt_path in sorted(corpus_dir.glob("*.json")):
        gt = json.loads(gt_path.read_text(encoding="utf-8"))
        out.append((gt_path.with_suffix(".pdf"), gt["layout"], gt.get("expect_error"), gt["fields"]))
    for pdf_name, xml_name in _PTB_TWINS.items():
        pdf = corpus_dir / "ptb" / pdf_name
        if pdf.exists():
            out.append((pdf, "ptb_calibration", None, ptb_ground_truth(corpus_dir / "ptb" / xml_name)))
    return out


def measure_accuracy(corpus_dir: Path = CORPUS_DIR) -> dict[str, Any]:
    """Exact-match field accuracy over the corpus: totals, per-file scores and every mismatch."""
    from parsers.pdf import parse_pdf

    total = correct = 0
    files: dict[str, Any] = {}
    layouts: set[str] = set()
    for pdf, layout, expect_error, fields in corpus_files(corpus_dir):
        layouts.add(layout)
        data = pdf.read_bytes()
        entry: dict[str, Any] = {"layout": layout, "fields": len(fields), "correct": 0, "mismatches": {}}
        try:
            report = parse_pdf(data, source=source_of(data, "pdf", pdf.name), limits=Limits())
        except ParseError as exc:
            entry["error"] = type(exc).__name__
            entry["expected_error_raised"] = type(exc).__name__ == expect_error
            files[pdf.name] = entry
            total += len(fields)
            continue
        if expect_error:
            entry["expected_error_raised"] = False
        got = report.flat_values()
        for key, want in fields.items():
            total += 1
            if _norm(got.get(key, "<missing>")) == _norm(want):
                correct += 1
                entry["correct"] += 1
            else:
                entry["mismatches"][key] = {"expected": want, "got": got.get(key)}
        entry["profile"] = report.layout_profile
        files[pdf.name] = entry
    return {
        "field_accuracy": round(correct / total, 4) if total else 0.0,
        "fields_total": total,
        "fields_correct": correct,
        "corpus_files": len(files),
        "corpus_layouts": len(layouts),
        "expected_errors_ok": all(e.get("expected_error_raised", True) for e in files.values()),
        "files": files,
    }
