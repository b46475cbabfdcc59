"""DCC reading and signature judgement on real public certificates; merged into ``bench/results/parsers.json``.

* ``dcc_results_read_ratio`` = results read / results present, over every DCC fixture the schema accepts
  (hand-counted in ``tests/fixtures/reports/dcc-public/expected.json``: PTB/pydcc 3.1.x-3.2.0 temperature,
  humidity and resistance certificates, PTB's own 3.0.0-3.1.1 vacuum-gauge and silicon-sphere examples, PTB
  2.4.0 samples, dcclib 3.3.0 samples, the .p7m, and one fixture of ours holding every D-SI form);
  ``dcc_files_exact`` counts files whose count matches exactly (over-reading would not raise the ratio above 1
  unnoticed);
* ``signature_verdicts_correct`` / ``signature_cases``: verdicts equal to the expected one over
  ``tests/parsers/signature_cases.py`` (11 real public signed DCCs incl. LT and .p7m, plus XAdES XML and
  PAdES PDF files of a test PKI built at run time: one or more per verdict);
* ``dcc_public_docs_per_s``: :func:`parsers.parse` incl. XSD validation over the accepted public DCCs, best
  of several passes (schema compilation outside the timed loop); ``signature_checks_per_s`` likewise for
  the verdicts.

Only these keys are written: the file is read, updated and written back (other sections own other keys).
Usage: ``.venv/bin/python scripts/bench.py --only dcc`` (or this file directly).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from parsers import parse  # noqa: E402
from parsers.signatures import verify_report_signature  # noqa: E402
from tests.parsers.signature_cases import all_cases  # noqa: E402

PUBLIC = ROOT / "tests" / "fixtures" / "reports" / "dcc-public"


def measure_dcc(passes: int = 10) -> dict[str, Any]:
    """Run the measurement and return the figures (see the module docstring)."""
    expected = {k: v for k, v in json.loads((PUBLIC / "expected.json").read_text()).items() if not k.startswith("_")}
    accepted = [
        (k, (PUBLIC / k).resolve().read_bytes()) for k, v in expected.items() if v["schema"] != "schema_violation"
    ]
    present = read = exact = 0
    for rel, data in accepted:
        report = parse(data, filename=Path(rel).name).report
        n = len(report.results) if report is not None else 0
        want = int(expected[rel]["results"])
        present += want
        read += min(n, want)
        exact += n == want
    best = float("inf")
    for _ in range(passes):
        t = time.perf_counter()
        for rel, data in accepted:
            parse(data, filename=Path(rel).name)
        best = min(best, time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        cases = all_cases(Path(tmp))
        correct = 0
        wrong = []
        t = time.perf_counter()
        for c in cases:
            verdict = verify_report_signature(c.data, c.fmt, trust=c.trust, now=c.now).verdict
            correct += verdict == c.expected
            if verdict != c.expected:
                wrong.append(f"{c.name}: {verdict} (expected {c.expected})")
        sig_s = time.perf_counter() - t
    return {
        "dcc_results_read_ratio": round(read / present, 4),
        "dcc_results_present": present,
        "dcc_files": len(accepted),
        "dcc_files_exact": exact,
        "dcc_public_docs_per_s": round(len(accepted) / best, 1),
        "signature_verdicts_correct": correct,
        "signature_cases": len(cases),
        "signature_wrong": wrong,
        "signature_checks_per_s": round(len(cases) / sig_s, 1),
    }


def merge_into(path: Path, figures: dict[str, Any]) -> dict[str, Any]:
    """Read ``path`` (if any), update only ``figures``' keys, write it back; return the merged content."""
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(figures)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    return current


if __name__ == "__main__":
    res = measure_dcc()
    merge_into(ROOT / "bench" / "results" / "parsers.json", res)
    print(json.dumps(res, indent=2))
