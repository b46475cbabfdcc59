"""The Foundry invariant suite (contracts/forge/) runs green on the production artifacts (bounded smoke run).

`make test` runs forge's ``ci`` profile (runs x depth from foundry.toml); `make bench` the full campaign
through scripts/bench_contracts.py. The first build compiles the suite via IR with solc-js (~1.5 min on
2 cores); forge caches it under .forge/.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from forge_invariants import run_forge_invariants  # noqa: E402

pytestmark = pytest.mark.slow


def test_forge_invariant_suite_holds_on_the_production_artifacts() -> None:
    profile = tomllib.loads((ROOT / "foundry.toml").read_text())["profile"]["ci"]["invariant"]
    result = run_forge_invariants("ci")
    assert result["forge_tests_failed"] == [], result["forge_output_tail"]
    assert result["forge_tests_passed"] == [
        "invariant_fundsMoveOnlyPerTheTrustModel",
        "test_setupDeploysTheProductionContracts",
    ]
    assert result["invariant_violations"] == 0
    assert result["invariant_calls"] == profile["runs"] * profile["depth"]
    assert result["forge_exit_code"] == 0
