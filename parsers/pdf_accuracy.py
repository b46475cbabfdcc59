"""Accuracy of the PDF parser: the generated corpus and the corpus of public reports (dev / held-out halves).

The corpus directories are arguments (the tests pass ``tests/fixtures/reports``; product code does not
know where tests keep their files).

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

__all__ = [
    "PTB_OVERLAP",
    "corpus_files",
    "load_manifest",
    "measure_accuracy",
    "ptb_ground_truth",
    "score_public",
    "source_of",
]

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


def corpus_files(corpus_dir: Path) -> list[tuple[Path, str, str | None, dict[str, str]]]:
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


def measure_accuracy(corpus_dir: Path) -> dict[str, Any]:
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
        if expect_error == "NeedsOCR" and report.ocr_pages:
            entry["expected_error_raised"] = True  # Tesseract is installed: the scan was read instead
        elif expect_error:
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


def load_manifest(public_dir: Path) -> dict[str, Any]:
    """The public corpus manifest (documents with source, sha256, split)."""
    return dict(json.loads((public_dir / "manifest.json").read_text(encoding="utf-8")))


def _qnorm(text: str) -> str:
    import re
    import unicodedata

    t = unicodedata.normalize("NFKC", text).lower().replace("∆", "δ").replace("Δ".lower(), "δ")
    return re.sub(r"[^0-9a-zδ\u00c0-\u024f\u4e00-\u9fff]+", "", t)


def _vnorm(text: str) -> str:
    t = " ".join(str(text).split()).lower().replace(",", ".").replace(" ", "")
    return t


def _report_flat(report: Any) -> dict[str, str]:
    flat = report.flat_values()
    if report.accreditation is not None:
        flat["accreditation.body"] = report.accreditation.body.value
        flat["accreditation.id"] = report.accreditation.id.value
    return flat


def score_public(public_dir: Path, cache_dir: Path, *, split: str, limits: Limits | None = None) -> dict[str, Any]:
    """Score one split of the public corpus against its hand-written ground truth.

    ``public_dir`` holds ``manifest.json`` and ``gt/<file>.json``; the documents are looked for in
    ``cache_dir`` (their licences do not allow committing them) or at ``committed_path`` below the
    repository root. Result recall: a ground-truth row counts when a parsed row has the same quantity
    (letters and digits compared) and the same value as printed (decimal comma = point); each parsed row
    matches one ground-truth row at most. Header accuracy: ground-truth header fields equal after
    whitespace and case folding. Documents not present are listed, never scored as zero.
    """
    from parsers.pdf import parse_pdf

    limits = limits or Limits()
    manifest = load_manifest(public_dir)
    root = public_dir
    while root != root.parent and not (root / "pyproject.toml").exists():
        root = root.parent
    rows_total = rows_hit = head_total = head_hit = 0
    docs: dict[str, Any] = {}
    missing: list[str] = []
    by_lang: dict[str, list[int]] = {}  # language -> [rows, rows hit, fields, fields right]
    for doc in manifest["documents"]:
        if doc["split"] != split:
            continue
        gt_path = public_dir / "gt" / (doc["file"] + ".json")
        if not gt_path.exists():
            missing.append(doc["file"] + " (no ground truth)")
            continue
        path = root / doc["committed_path"] if doc.get("committed_path") else cache_dir / doc["file"]
        if not path.exists():
            missing.append(doc["file"])
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != doc["sha256"]:
            missing.append(doc["file"] + " (sha256 differs from the manifest)")
            continue
        gt = json.loads(gt_path.read_text(encoding="utf-8"))
        entry: dict[str, Any] = {"rows": len(gt["results"]), "rows_found": 0, "header": len(gt["header"])}
        try:
            if doc["file"].lower().endswith(".xml"):  # a DCC: read by the DCC parser, scored the same way
                from parsers.dcc import parse_dcc

                report = parse_dcc(data, source=source_of(data, "dcc", doc["file"]), limits=limits)
            else:
                report = parse_pdf(data, source=source_of(data, "pdf", doc["file"]), limits=limits)
        except ParseError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            rows_total += len(gt["results"])
            head_total += len(gt["header"])
            docs[doc["file"]] = entry
            lang = by_lang.setdefault(doc.get("language", "?"), [0, 0, 0, 0])
            lang[0] += len(gt["results"])
            lang[2] += len(gt["header"])
            continue
        flat = _report_flat(report)
        wrong: dict[str, Any] = {}
        for key, want in gt["header"].items():
            head_total += 1
            got = flat.get(key)
            if got is not None and _norm(got).lower() == _norm(want).lower():
                head_hit += 1
            else:
                wrong[key] = {"expected": want, "got": got}
        entry["header_found"] = len(gt["header"]) - len(wrong)
        entry["header_mismatches"] = wrong
        parsed = [(_qnorm(r.quantity.value), _vnorm(r.value.value)) for r in report.results]
        used: set[int] = set()
        missed: list[Any] = []
        for row in gt["results"]:
            rows_total += 1
            q, v = _qnorm(row["quantity"]), _vnorm(row["value"])
            hit = next((i for i, p in enumerate(parsed) if i not in used and p == (q, v)), None)
            if hit is None:
                missed.append(row)
            else:
                used.add(hit)
                rows_hit += 1
                entry["rows_found"] += 1
        entry["rows_missed"] = missed[:10]
        entry["review_required"] = report.review.required
        docs[doc["file"]] = entry
        lang = by_lang.setdefault(doc.get("language", "?"), [0, 0, 0, 0])
        for i, n in enumerate((entry["rows"], entry["rows_found"], entry["header"], entry["header_found"])):
            lang[i] += n
    return {
        "split": split,
        "docs": len(docs),
        "missing": missing,
        "result_recall": round(rows_hit / rows_total, 4) if rows_total else None,
        "result_rows": rows_total,
        "result_rows_found": rows_hit,
        "header_accuracy": round(head_hit / head_total, 4) if head_total else None,
        "header_fields": head_total,
        "header_fields_right": head_hit,
        "languages": {
            code: {
                "docs": sum(1 for d in manifest["documents"] if d["split"] == split and d.get("language") == code),
                "result_recall": round(v[1] / v[0], 4) if v[0] else None,
                "result_rows": v[0],
                "header_accuracy": round(v[3] / v[2], 4) if v[2] else None,
                "header_fields": v[2],
            }
            for code, v in sorted(by_lang.items())
        },
        "files": docs,
    }
