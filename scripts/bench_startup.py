"""Start-up time of the gateway and the command line, against a named baseline commit, in the same run.

* ``gateway_ready_s``: ``qcn serve`` (SQLite database already migrated, the embedded anchoring worker on, no
  chain node) until ``GET /health`` first answers 200; median of ``--runs``. ``gateway_first_start_s``: the
  same on an empty data directory (migrations included), once.
* ``cli_help_s``: ``qcn --help`` from process start to exit; median of ``--runs``.
* ``*_cpu_s``: the CPU seconds (user + system) the process used for the same, which other work on the
  machine inflates far less than wall time.
* ``*_min_s``: the fastest of the ``--runs`` (the least disturbed by other work on a shared machine);
  ``load_average`` is the 1-minute load before and after the measurement.

Python runs with a bytecode cache (``PYTHONPYCACHEPREFIX`` in the run's temporary directory, filled by the first,
discarded start), as an installed package does: ``PYTHONDONTWRITEBYTECODE=1`` in the calling shell would
otherwise make every start compile every module from source (about a second more on this machine).

The baseline is the same measurement on the source tree of ``BASELINE_REF`` (extracted with ``git archive``
and put first on ``PYTHONPATH``, same interpreter and packages), so the ratio compares code, not machines.
Figures measured while other work runs on the machine are pessimistic.

``python scripts/bench_startup.py [--runs 5] [--baseline REF|'']`` writes ``bench/results/startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("QCN_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        PYTHONPATH=str(src),
        PYTHONPYCACHEPREFIX=str(Path(tempfile.gettempdir()) / "qcn-bench-startup-pycache"),
        QCN_DATA_DIR=str(data_dir),
        QCN_DEPLOYMENTS_DIR=str(data_dir / "deployments"),
        QCN_RPC_URL=f"http://127.0.0.1:{_free_port()}",  # nothing listens: the gateway must start without a chain
    )
    return env


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def gateway_ready_s(src: Path, data_dir: Path) -> tuple[float, float]:
    """Wall and CPU seconds from ``qcn serve`` to the first 200 from /health, data in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
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
                        return time.perf_counter() - t0, _cpu_s(proc.pid)
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


def cli_help_s(src: Path, work: Path) -> tuple[float, float]:
    """Wall and CPU seconds for ``qcn --help`` (the console script's import, the help text, exit)."""
    code = "import sys; from app.cli import main; sys.argv[0] = 'qcn'; main()"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, "--help"],
        cwd=work,
        env=_env(src, work),
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _checkout(ref: str, into: Path) -> Path:
    """The product packages of ``ref`` under ``into`` (read from git, the working tree is not touched)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, *_PACKAGES], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _stats(samples: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """Median wall, median CPU, min wall, min CPU."""
    walls, cpus = [w for w, _ in samples], [c for _, c in samples]
    return (
        round(statistics.median(walls), 3),
        round(statistics.median(cpus), 3),
        round(min(walls), 3),
        round(min(cpus), 3),
    )


def _measure(src: Path, work: Path, runs: int) -> dict[str, float]:
    data_dir = Path(tempfile.mkdtemp(dir=work))
    first, _ = gateway_ready_s(src, data_dir)  # creates and migrates the database, fills the bytecode cache
    gateway = _stats([gateway_ready_s(src, data_dir) for _ in range(runs)])
    cli_help_s(src, work)  # warm the OS file cache
    cli = _stats([cli_help_s(src, work) for _ in range(runs)])
    return {
        "gateway_first_start_s": round(first, 3),
        "gateway_ready_s": gateway[0],
        "gateway_ready_cpu_s": gateway[1],
        "gateway_ready_min_s": gateway[2],
        "gateway_ready_cpu_min_s": gateway[3],
        "cli_help_s": cli[0],
        "cli_help_cpu_s": cli[1],
        "cli_help_min_s": cli[2],
        "cli_help_cpu_min_s": cli[3],
    }


def measure_startup(*, runs: int = 5, baseline: str | None = BASELINE_REF) -> dict[str, Any]:
    """The figures of the module docstring for this tree and, with ``baseline``, for that commit."""
    with tempfile.TemporaryDirectory(prefix="qcn-bench-startup-") as tmp:
        work = Path(tmp)
        load_before = os.getloadavg()[0]
        out: dict[str, Any] = {"runs": runs, "bytecode_cache": True, **_measure(ROOT, work, runs)}
        if baseline:
            base = _checkout(baseline, work / "baseline")
            out["baseline_ref"] = baseline
            out |= {f"baseline_{k}": v for k, v in _measure(base, work, runs).items()}
            for k in ("gateway_ready_s", "gateway_ready_cpu_s", "cli_help_s", "cli_help_cpu_s"):
                out[f"{k.removesuffix('_s')}_speedup"] = round(out[f"baseline_{k}"] / out[k], 2)
        out["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
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
