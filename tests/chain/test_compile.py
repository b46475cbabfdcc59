"""Artifacts: committed files equal a fresh compile; they are deterministic and path-free."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from chain.compile import COMPILER_SETTINGS, SOLC_VERSION, standard_json_input
from chain.contracts import ARTIFACTS_DIR, load_artifact

ROOT = Path(__file__).resolve().parents[2]


def test_committed_artifacts_are_well_formed_and_path_free():
    names = {p.stem for p in ARTIFACTS_DIR.glob("*.json")}
    assert {"ConsortiumRegistry", "ConsortiumRegistryHarness"} <= names
    for name in sorted(names):
        text = (ARTIFACTS_DIR / f"{name}.json").read_text()
        assert str(ROOT) not in text  # no absolute paths
        raw = json.loads(text)
        assert text == json.dumps(raw, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        assert raw["compiler"]["version"].startswith(SOLC_VERSION + "+")
        assert raw["compiler"]["settings"]["evmVersion"] == "prague"
        assert raw["compiler"]["settings"]["optimizer"]["enabled"] is True
        artifact = load_artifact(name)
        assert artifact.bytecode.startswith("0x6") and len(artifact.deployed_bytecode) > 100
    for name in ("ConsortiumRegistry", "ConsortiumRegistryHarness"):
        artifact = load_artifact(name)
        assert {e["name"] for e in artifact.abi if e["type"] == "error"} >= {
            "AlreadyAnchored",
            "NotAuthorisedFor",
            "NotSupplier",
            "EmptyRoot",
            "ZeroRecordCount",
            "UnknownPredecessor",
        }


def test_standard_json_input_uses_relative_unit_names():
    sources = standard_json_input()["sources"]
    assert "contracts/ConsortiumRegistry.sol" in sources
    assert all(not name.startswith("/") for name in sources)
    assert COMPILER_SETTINGS["metadata"] == {"bytecodeHash": "none"}


def _check_module():
    spec = importlib.util.spec_from_file_location("check_artifacts", ROOT / "scripts" / "check_artifacts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_recompile_matches_committed_artifacts_and_detects_drift(tmp_path):
    check = _check_module()
    fresh = check.fresh_artifacts()
    assert check.diff_artifacts(ARTIFACTS_DIR, fresh) == []
    # a drifted copy: one artifact edited, one missing, one stale extra
    for path in ARTIFACTS_DIR.glob("*.json"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    edited = tmp_path / "ConsortiumRegistry.json"
    edited.write_text(edited.read_text().replace('"0x60', '"0x61', 1))
    (tmp_path / "ConsortiumRegistryHarness.json").unlink()
    (tmp_path / "Old.json").write_text("{}")
    problems = check.diff_artifacts(tmp_path, fresh)
    assert problems == [
        f"differs: {edited} (sources changed; run `python -m chain.compile`)",
        f"missing: {tmp_path / 'ConsortiumRegistryHarness.json'} (run `python -m chain.compile`)",
        f"stale: {tmp_path / 'Old.json'} has no source any more",
    ]
