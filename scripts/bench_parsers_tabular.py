"""Benchmark the tabular/measurement parsers; prints figures and writes bench/results/parsers_tabular.json.

- ``csv_rows_per_s``: a generated 100k-row long-format CSV (``;``, decimal comma, 7 columns) through
  :func:`parsers.parse` (detection, decoding, validation, model construction); best of 3.
- ``qif_docs_per_s`` (wall) / ``qif_docs_per_s_cpu`` (process CPU time: an unloaded core): the public QIF 3
  results samples through :func:`parsers.parse` (safe XML parse with entity/depth checks, validation against
  the shipped QIF 3.0.0 XSD, model construction); best of 7 passes over the set. Baseline in the same run:
  ``qif_lxml_parse_only_docs_per_s_cpu`` (libxml2 parse alone, same files). ``qif_validation`` says what
  "validated" means (see ``parsers/schemas/README.md``).
- ``json_rows_per_s``, ``xlsx_rows_per_s`` for context (xlsx on 10k rows).
- ``csv_upload_cpu_ms``: process CPU time of one upload as ``scripts/bench_gateway.py`` sends it (1,000 rows,
  five columns) through :func:`parsers.parse` and ``records()``, as the gateway does per file; best of 7
  rounds of 50.
"""

from __future__ import annotations

import io
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.demo_data import load_csv  # noqa: E402

QIF_DIRS = (ROOT / "tests" / "fixtures" / "inspection" / "qif", ROOT.parent / "shared" / "data" / "reports" / "qif")


def _csv_bytes(rows: int) -> bytes:
    out = ["sample_id;characteristic;value;unit;uncertainty;coverage_factor;measured_at"]
    chars = ("bore_diameter", "flatness", "length", "width")
    for i in range(rows):
        s, c = divmod(i, len(chars))
        out.append(
            f"S{s:06d};{chars[c]};{12 + (i % 97) / 1000:.3f}".replace(".", ",") + ";mm;0,004;2;2025-03-04T08:15:00"
        )
    return ("\n".join(out) + "\n").encode()


def _upload_cpu_ms(data: bytes, rounds: int = 7, per_round: int = 50) -> float:
    from parsers import parse

    best = math.inf
    for _ in range(rounds):
        c0 = time.process_time()
        for _ in range(per_round):
            parsed = parse(data, filename="lot.csv")
            assert parsed.inspection is not None
            parsed.inspection.records()
        best = min(best, (time.process_time() - c0) / per_round)
    return best * 1000


def _json_bytes(rows: int) -> bytes:
    ms = [
        {
            "sample_id": f"S{i // 4:06d}",
            "characteristic": f"c{i % 4}",
            "value": 12 + (i % 97) / 1000,
            "unit": "mm",
            "uncertainty": 0.004,
            "coverage_factor": 2,
        }
        for i in range(rows)
    ]
    return json.dumps({"lot_id": "L1", "measurements": ms}).encode()


def _xlsx_bytes(rows: int) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Measurements")
    ws.append(["sample_id", "characteristic", "value", "unit"])
    for i in range(rows):
        ws.append([f"S{i // 4:06d}", f"c{i % 4}", 12 + (i % 97) / 1000, "mm"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _rate(data: bytes, n_items: int, repeats: int) -> float:
    from parsers import parse

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        parsed = parse(data)
        times.append(time.perf_counter() - t0)
        assert parsed.inspection is not None
        got = len(parsed.inspection.measurements)
        if got != n_items:
            raise RuntimeError(f"expected {n_items} measurements, parsed {got}")
    return n_items / min(times)


def measure_tabular() -> dict[str, Any]:
    """Run the tabular parser benchmarks and return flat figures (rates per second)."""
    from parsers import parse

    out: dict[str, Any] = {}
    rows = 100_000
    out["csv_rows"] = rows
    out["csv_rows_per_s"] = round(_rate(_csv_bytes(rows), rows, 3), 0)
    out["json_rows_per_s"] = round(_rate(_json_bytes(rows), rows, 2), 0)
    out["xlsx_rows_per_s"] = round(_rate(_xlsx_bytes(10_000), 10_000, 2), 0)
    out["csv_upload_cpu_ms"] = round(_upload_cpu_ms(load_csv(1000, seed=1)), 2)

    docs: list[bytes] = []
    seen: set[str] = set()
    for d in QIF_DIRS:
        if d.is_dir():
            for p in sorted(d.glob("*.QIF")):
                if p.name not in seen:
                    data = p.read_bytes()
                    try:
                        parse(data)
                    except Exception:  # noqa: S112 - results-less samples are not throughput material
                        continue
                    seen.add(p.name)
                    docs.append(data)
    if docs:
        from lxml import etree

        per_doc: list[float] = []
        per_doc_cpu: list[float] = []
        base_cpu: list[float] = []
        plain = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        for _ in range(7):
            t0, c0 = time.perf_counter(), time.process_time()
            for data in docs:
                parse(data)
            per_doc.append((time.perf_counter() - t0) / len(docs))
            per_doc_cpu.append((time.process_time() - c0) / len(docs))
            c0 = time.process_time()
            for data in docs:
                etree.fromstring(data, plain)  # baseline: libxml2 parse alone, same files, same run
            base_cpu.append((time.process_time() - c0) / len(docs))
        out["qif_docs"] = len(docs)
        out["qif_mean_doc_kib"] = round(statistics.mean(len(d) for d in docs) / 1024, 1)
        out["qif_docs_per_s"] = round(1 / min(per_doc), 1)
        out["qif_docs_per_s_cpu"] = round(1 / min(per_doc_cpu), 1) if min(per_doc_cpu) > 0 else None
        out["qif_lxml_parse_only_docs_per_s_cpu"] = round(1 / min(base_cpu), 1) if min(base_cpu) > 0 else None
        out["qif_validation"] = (
            "QIF 3.0.0 XSD via libxml2, compiled once per thread; its xs:key/keyref/unique replaced by an "
            "id-uniqueness check"
        )
    return out


if __name__ == "__main__":
    figures = measure_tabular()
    for k, v in figures.items():
        print(f"{k:>24}: {v}")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "parsers_tabular.json").write_text(json.dumps(figures, indent=2) + "\n")
