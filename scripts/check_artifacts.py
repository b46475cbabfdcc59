"""CI check: recompile the Solidity sources into a temp dir and compare with contracts/artifacts.

Exits 0 when every committed artifact is byte-identical to a fresh compile; otherwise prints each file
that differs, is missing or is stale, and exits 1 (2 if compilation itself fails).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chain.compile import compile_contracts, write_artifacts  # noqa: E402
from chain.errors import CompilationError  # noqa: E402


def fresh_artifacts(root: Path = ROOT) -> dict[str, bytes]:
    """File name -> bytes of every artifact a fresh compile of ``<root>/contracts`` writes."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_dir = Path(tmp)
        write_artifacts(compile_contracts(root), fresh_dir)
        return {p.name: p.read_bytes() for p in fresh_dir.glob("*.json")}


def diff_artifacts(committed_dir: Path, fresh: dict[str, bytes]) -> list[str]:
    """Problems found comparing the files in ``committed_dir`` with ``fresh`` (see ``fresh_artifacts``)."""
    committed = {p.name: p.read_bytes() for p in committed_dir.glob("*.json")}
    problems = []
    for name in sorted(fresh.keys() | committed.keys()):
        if name not in committed:
            problems.append(f"missing: {committed_dir / name} (run `python -m chain.compile`)")
        elif name not in fresh:
            problems.append(f"stale: {committed_dir / name} has no source any more")
        elif fresh[name] != committed[name]:
            problems.append(f"differs: {committed_dir / name} (sources changed; run `python -m chain.compile`)")
    return problems


def main() -> int:
    """Print problems and return the exit code."""
    try:
        problems = diff_artifacts(ROOT / "contracts" / "artifacts", fresh_artifacts())
    except CompilationError as exc:
        print(exc, file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("artifacts match the sources")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
