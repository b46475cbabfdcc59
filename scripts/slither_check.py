"""Slither on the production contracts; every High/Medium finding must be reviewed in contracts/slither-triage.md.

``run_slither() -> SlitherResult`` builds the solc standard-JSON input of the production sources (what
``chain/compile.py`` compiles, without ``contracts/test/``: viaIR, optimizer, ``prague``), runs Slither
(``slither-analyzer`` in its own locked environment ``contracts/tools/slither/``: it pins web3 < 8) through
the solc-js stand-in ``contracts/tools/solc``, keeps the High and Medium findings and splits them into
those the triage file explains and the unexplained ones.

The triage file lists one reviewed finding per table row: ``| detector | location | why it is not a bug |``
with location ``<source file>:<Contract or function>.<name>`` as Slither names the finding's first element
(``python scripts/slither_check.py`` prints the key of each finding). Exit status 1 when a finding is
unexplained.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chain.compile import standard_json_input  # noqa: E402

SLITHER = ROOT / "contracts" / "tools" / "slither" / ".venv" / "bin" / "slither"
SOLC_STANDIN = ROOT / "contracts" / "tools" / "solc"
TRIAGE = ROOT / "contracts" / "slither-triage.md"
_IMPACTS = {"High", "Medium"}
_ROW = re.compile(r"^\|\s*`?([\w-]+)`?\s*\|\s*`?([^|`]+?)`?\s*\|\s*(.+?)\s*\|\s*$")


@dataclass(frozen=True)
class Finding:
    """One Slither result: detector, impact and the location key used by the triage file."""

    detector: str
    impact: str
    location: str
    description: str


@dataclass
class SlitherResult:
    """High/Medium findings split by the triage file, and how long Slither took."""

    explained: list[Finding] = field(default_factory=list)
    unexplained: list[Finding] = field(default_factory=list)
    seconds: float = 0.0


def production_input() -> dict[str, Any]:
    """Standard-JSON input of the production sources (no test contracts), with the outputs Slither reads."""
    data = standard_json_input(ROOT)
    data["sources"] = {k: v for k, v in data["sources"].items() if not k.startswith("contracts/test/")}
    settings = {k: v for k, v in data["settings"].items() if k != "outputSelection"}
    settings["outputSelection"] = {"*": {"*": ["abi", "evm.bytecode", "evm.deployedBytecode"], "": ["ast"]}}
    data["settings"] = settings
    return data


def location_of(result: dict[str, Any]) -> str:
    """The triage key of a Slither result: ``<file>:<parent>.<name>`` of its first element."""
    element = result["elements"][0]
    parent = element.get("type_specific_fields", {}).get("parent", {}).get("name", "")
    return f"{element['source_mapping']['filename_relative']}:{parent}.{element['name']}"


def reviewed(path: Path = TRIAGE) -> set[tuple[str, str]]:
    """(detector, location) pairs the triage file explains (rows with a non-empty reason)."""
    pairs = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match and match.group(1) != "detector" and not set(match.group(3)) <= {"-", " "}:
            pairs.add((match.group(1), match.group(2).strip()))
    return pairs


def run_slither(timeout: float = 1_200) -> SlitherResult:
    """Run Slither on the production contracts (see the module docstring)."""
    if not SLITHER.exists():
        raise FileNotFoundError(f"{SLITHER} missing: run `make setup` (uv sync --project contracts/tools/slither)")
    with tempfile.TemporaryDirectory() as tmp:
        # a folder of its own: crytic-compile would take the project's foundry.toml for a Foundry project
        work = Path(tmp)
        (work / "contracts").symlink_to(ROOT / "contracts")
        (work / "node_modules").symlink_to(ROOT / "node_modules")
        (work / "input.json").write_text(json.dumps(production_input()), encoding="utf-8")
        t0 = time.perf_counter()
        proc = subprocess.run(  # fixed argv, no shell
            [
                str(SLITHER),
                "input.json",
                "--compile-force-framework",
                "solc-json",
                "--solc",
                str(SOLC_STANDIN),
                "--json",
                "out.json",
                "--exclude-informational",
                "--exclude-low",
                "--exclude-optimization",
            ],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        seconds = time.perf_counter() - t0
        out = work / "out.json"
        report = json.loads(out.read_text()) if out.exists() else {"success": False}
    if not report.get("success"):
        raise RuntimeError(f"slither failed (exit {proc.returncode}): {report.get('error')}\n{proc.stderr[-3000:]}")
    known = reviewed()
    result = SlitherResult(seconds=seconds)
    for r in report.get("results", {}).get("detectors", []):
        if r["impact"] not in _IMPACTS:
            continue
        finding = Finding(r["check"], r["impact"], location_of(r), r["description"].strip())
        (result.explained if (finding.detector, finding.location) in known else result.unexplained).append(finding)
    return result


def main() -> int:
    """Print every High/Medium finding with its triage key; exit 1 if one is unexplained."""
    result = run_slither()
    for f in result.explained:
        print(f"reviewed     {f.impact:6s} {f.detector:24s} {f.location}")
    for f in result.unexplained:
        print(f"UNEXPLAINED  {f.impact:6s} {f.detector:24s} {f.location}\n    {f.description}")
    print(f"{len(result.explained)} reviewed, {len(result.unexplained)} unexplained, {result.seconds:.0f} s")
    return 1 if result.unexplained else 0


if __name__ == "__main__":
    raise SystemExit(main())
