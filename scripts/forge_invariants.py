"""Run the Foundry invariant suite of the trust model (contracts/forge/) and return its figures.

``run_forge_invariants(profile) -> dict`` runs ``forge test`` (npm ``@foundry-rs/forge``, offline, solc-js
behind ``contracts/tools/solc``; see foundry.toml) with ``FOUNDRY_PROFILE=profile`` and parses forge's
result lines: ``invariant_calls`` (runs x depth of the invariant campaign), ``invariant_violations`` (failed
invariants), the tests that passed and failed, and the seconds spent building and running. Profile ``ci``
is the bounded smoke run of ``make test``; ``default`` the campaign of ``make bench``.
``python scripts/forge_invariants.py [profile]`` prints the figures as JSON.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FORGE = ROOT / "node_modules" / "@foundry-rs" / "forge-linux-amd64" / "bin" / "forge"
_RESULT = re.compile(r"^\[(PASS|FAIL)[^\]]*\] (\w+)\(\)(?: \(runs: (\d+), calls: (\d+), reverts: (\d+)\))?", re.M)
_SOLC_TIME = re.compile(r"Solc [\d.]+ finished in ([\d.]+)(m?s)")


def run_forge_invariants(profile: str = "ci", *, timeout: float = 1_800) -> dict[str, Any]:
    """Build and run the suite with ``profile``; figures as described in the module docstring.

    Raises ``FileNotFoundError`` when forge is not installed (``npm ci``) and ``RuntimeError`` when forge
    ran no invariant (a build error): a run that tested nothing must not read as "0 violations".
    """
    if not FORGE.exists():
        raise FileNotFoundError(f"{FORGE} missing: run `npm ci` (devDependency @foundry-rs/forge)")
    env = {**os.environ, "FOUNDRY_PROFILE": profile, "NO_COLOR": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(  # fixed argv, no shell
        [str(FORGE), "test", "--color", "never"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - t0
    output = proc.stdout + proc.stderr
    results = _RESULT.findall(output)
    invariants = [r for r in results if r[1].startswith("invariant_")]
    if not invariants:
        raise RuntimeError(f"forge ran no invariant (exit {proc.returncode}):\n{output[-4000:]}")
    build = _SOLC_TIME.search(output)
    build_s = None if build is None else float(build.group(1)) / (1000 if build.group(2) == "ms" else 1)
    return {
        "invariant_calls": sum(int(r[3] or 0) for r in invariants),
        "invariant_runs": sum(int(r[2] or 0) for r in invariants),
        "invariant_violations": sum(1 for r in invariants if r[0] == "FAIL"),
        "invariant_tool": f"forge 1.7.1 (profile {profile}), contracts/forge/TrustInvariants.t.sol",
        "forge_tests_passed": sorted(r[1] for r in results if r[0] == "PASS"),
        "forge_tests_failed": sorted(r[1] for r in results if r[0] == "FAIL"),
        "forge_build_seconds": None if build_s is None else round(build_s, 1),
        "forge_total_seconds": round(seconds, 1),
        "forge_exit_code": proc.returncode,
        "forge_output_tail": output[-3000:],
    }


def main(argv: list[str] | None = None) -> int:
    """Print the figures of one run as JSON; exit 1 on a violation or a failed test."""
    args = sys.argv[1:] if argv is None else argv
    result = run_forge_invariants(args[0] if args else "ci")
    tail = result.pop("forge_output_tail")
    print(json.dumps(result, indent=2))
    if result["forge_exit_code"] != 0:
        print(tail, file=sys.stderr)
    return 0 if result["forge_exit_code"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
