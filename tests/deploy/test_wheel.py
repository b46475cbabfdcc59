"""The built wheel is a working ``qcn`` on its own: contract artifacts and data files ship inside it.

How it runs without a network: the wheel is built (``uv build --wheel``) and installed with ``--no-deps`` into
a fresh virtual environment whose only extra path (a ``.pth`` file) is the project environment's
site-packages, so the pinned dependencies are found there. That directory's own ``.pth`` files (among them
the editable install of this checkout) are *not* processed for an added path, and every command runs in an
empty working directory, so the code that runs is the wheel's: the test asserts it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(cmd: list[str | Path], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("QCN_")}
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its bin directory."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is needed to build the wheel (make setup installs it)")
    tmp = tmp_path_factory.mktemp("wheel")
    built = _run([uv, "build", "--wheel", "--out-dir", tmp / "dist", ROOT], cwd=tmp)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("qcn-*.whl")
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp).stdout.strip()
    )
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "_qcn_project_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    inst = _run([uv, "pip", "install", "--offline", "--no-deps", "--python", python, wheel], cwd=tmp)
    assert inst.returncode == 0, inst.stderr[-3000:]
    return venv / "bin"


def test_the_installed_package_is_the_wheel_not_this_checkout(installed: Path, tmp_path: Path) -> None:
    code = (
        "import json, app, chain, parsers, models\n"
        "print(json.dumps([m.__file__ for m in (app, chain, parsers, models)]))"
    )
    out = _run([installed / "python", "-c", code], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for path in json.loads(out.stdout):
        assert Path(path).is_relative_to(installed.parent), path


def test_qcn_demo_help_runs_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    out = _run([installed / "qcn", "demo", "--help"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "--chain-port" in out.stdout


def test_qcn_parse_reads_a_measurement_file_and_a_dcc_certificate(installed: Path, tmp_path: Path) -> None:
    csv = tmp_path / "lot.csv"
    shutil.copy(ROOT / "scripts" / "sample_data" / "coating_lot_A.csv", csv)
    out = _run([installed / "qcn", "parse", csv], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    parsed = json.loads(out.stdout)
    lines = (ROOT / "scripts" / "sample_data" / "coating_lot_A.csv").read_text().strip().splitlines()
    assert parsed["format"] == "csv"
    assert parsed["inspection"]["lot_id"] == "LOT-2026-1127-A"
    assert len(parsed["inspection"]["measurements"]) == len(lines) - 1
    # a DCC is validated against the XSDs shipped in parsers/schemas: package data
    dcc = tmp_path / "cert.xml"
    shutil.copy(ROOT / "tests" / "fixtures" / "reports" / "dcc3" / "dcc-3.3.0-mass-amended.xml", dcc)
    out = _run([installed / "qcn", "parse", dcc], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["format"] == "dcc" and report["results"]  # a LabReport (docs/labreport.schema.json)


def test_contract_artifacts_and_data_files_load_from_the_installed_package(installed: Path, tmp_path: Path) -> None:
    code = """
import json
from chain.contracts import load_artifact
from app.quality import library_template
from app.settings import Settings
from app.analysis.profiles import list_profiles
from models.artifacts import DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION, default_registry
art = load_artifact("AgreementRegistry")
print(json.dumps({
    "artifact": art.path,
    "functions": len([e for e in art.abi if e["type"] == "function"]),
    "template": library_template("electrode_coating_line").document()["template_id"],
    "profiles": sorted(p.name for p in list_profiles(Settings())),
    "model": default_registry().read_meta(DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION)["sha256"],
}))
"""
    out = _run([installed / "python", "-c", code], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    facts = json.loads(out.stdout)
    assert Path(facts["artifact"]).is_relative_to(installed.parent)
    assert facts["functions"] > 10
    assert facts["template"]
    assert "electrode_coating" in facts["profiles"]
    assert len(facts["model"]) == 64
