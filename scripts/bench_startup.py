"""Start-up time of the gateway and the command line, against a named baseline commit, in the same run.

* ``gateway_ready_s``: ``qcn serve`` started in a fresh data directory (SQLite, migrations run, the embedded
  anchoring worker on, no chain node) until ``GET /health`` first answers 200; median of ``--runs``.
* ``cli_help_s``: ``qcn --help`` from process start to exit; median of ``--runs``.

The baseline is the same measurement on the source tree of ``BASELINE_REF`` (extracted with ``git archive``
and put first on ``PYTHONPATH``, same interpreter and packages), so the ratio compares code, not machines.
Figures measured while other work runs on the machine are pessimistic.

``python scripts/bench_startup.py [--runs 5] [--baseline REF|'']`` writes ``bench/results/startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
#: the last commit before the gateway imported its analysis stack lazily (7 s import of app.main)
BASELINE_REF = "85b8553"
_PACKAGES = ("app", "chain", "parsers", "models", "contracts")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(src: Path, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QCN_")}
    env.update(
        PYTHONPATH=str(src),
        QCN_DATA_DIR=str(data_dir),
        QCN_DEPLOYMENTS_DIR=str(data_dir / "deployments"),
        QCN_RPC_URL=f"http://127.0.0.1:{_free_port()}",  # nothing listens: the gateway must start without a chain
    )
    return env


def gateway_ready_s(src: Path, work: Path) -> float:
    """Seconds from ``qcn serve`` to the first 200 from /health (fresh SQLite database: migrations included)."""
    data_dir = Path(tempfile.mkdtemp(dir=work))
    port = _free_port()
    code = "import sys; from app.cli import main; sys.argv[0] = 'qcn'; main()"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", str(port)],
        cwd=data_dir,
        env=_env(src, data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with httpx.Client(timeout=1.0) as client:
            while time.perf_counter() - t0 < 120:
                if proc.poll() is not None:
                    raise RuntimeError(f"gateway exited with {proc.returncode}: {proc.stderr.read()[-2000:]!r}")
                try:
                    if client.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                        return time.perf_counter() - t0
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        raise RuntimeError("gateway did not answer /health within 120 s")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cli_help_s(src: Path, work: Path) -> float:
    """Seconds for ``qcn --help`` (the console script's import and exit)."""
    code = "import sys; from app.cli import main; sys.argv[0] = 'qcn'; main()"
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, "--help"],
        cwd=work,
        env=_env(src, work),
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def _checkout(ref: str, into: Path) -> Path:
    """The product packages of ``ref`` under ``into`` (read from git, the working tree is not touched)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, *_PACKAGES], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _median(fn: Any, src: Path, work: Path, runs: int) -> float:
    fn(src, work)  # warm the OS file cache: every run after it is measured the same way
    return round(statistics.median(fn(src, work) for _ in range(runs)), 3)


def measure_startup(*, runs: int = 5, baseline: str | None = BASELINE_REF) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qcn-bench-startup-") as tmp:
        work = Path(tmp)
        out: dict[str, Any] = {
            "runs": runs,
            "gateway_ready_s": _median(gateway_ready_s, ROOT, work, runs),
            "cli_help_s": _median(cli_help_s, ROOT, work, runs),
        }
        if baseline:
            base = _checkout(baseline, work / "baseline")
            out["baseline_ref"] = baseline
            out["baseline_gateway_ready_s"] = _median(gateway_ready_s, base, work, runs)
            out["baseline_cli_help_s"] = _median(cli_help_s, base, work, runs)
            out["gateway_ready_speedup"] = round(out["baseline_gateway_ready_s"] / out["gateway_ready_s"], 2)
            out["cli_help_speedup"] = round(out["baseline_cli_help_s"] / out["cli_help_s"], 2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", default=BASELINE_REF, help="git ref to compare with ('' for none)")
    args = parser.parse_args()
    figures = measure_startup(runs=args.runs, baseline=args.baseline or None)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(json.dumps(figures, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
