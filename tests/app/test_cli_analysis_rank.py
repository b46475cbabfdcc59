"""``qcn analysis rank``: the offline ranking a user runs on CSV files (real files, the real CLI app)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import cli
from models.bench import get, make_cases

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("rank")
    proc = get("electrode_calendering")
    proc.simulate(1200, np.random.default_rng(5)).to_csv(d / "normal.csv", index=False)
    (d / "dag.json").write_text(json.dumps(proc.dag_doc()))
    (d / "tiers.json").write_text(json.dumps(proc.tiers_doc()))
    (d / "spec.json").write_text(json.dumps(proc.spec()))
    batches = d / "batches"
    batches.mkdir()
    cases = [c for c in make_cases(proc, 12, seed=3) if c.kind in ("mean_shift", "stuck", "material_lot")]
    for c in cases:
        c.batch.to_csv(batches / f"case{c.index:02d}.csv", index=False)
    return {"dir": d, "cases": {f"case{c.index:02d}.csv": c for c in cases}}


def test_folder_of_batches_gives_one_json_line_each_with_known_graph(files: dict) -> None:
    d: Path = files["dir"]
    res = runner.invoke(
        cli,
        [
            "analysis",
            "rank",
            "--train",
            str(d / "normal.csv"),
            "--batch",
            str(d / "batches"),
            "--graph",
            str(d / "dag.json"),
            "--spec",
            str(d / "spec.json"),
            "--json",
            "--top",
            "3",
        ],
    )
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.strip().splitlines()]
    assert [x["batch"] for x in lines] == sorted(files["cases"])
    hits = 0
    for doc in lines:
        case = files["cases"][doc["batch"]]
        assert doc["format"] == "qcn-rank/1" and doc["rows"] == len(case.batch)
        assert len(doc["causes"]) == 3 and doc["ranking_ms"] > 0
        quality = {"porosity", "thickness", "adhesion", "electrical_resistivity"}
        assert not quality & {c["variable"] for c in doc["causes"]}
        top = doc["causes"][0]
        assert top["path"][0] == top["variable"] and top["evidence"] in top["detectors"]
        assert "restored_fraction" in top["counterfactual"]
        hits += top["variable"] in case.truth
    assert hits >= len(lines) - 1


def test_repeated_batches_learned_graph_and_human_output(files: dict) -> None:
    d: Path = files["dir"]
    names = sorted(files["cases"])[:2]
    args = ["analysis", "rank", "--train", str(d / "normal.csv"), "--tiers", str(d / "tiers.json")]
    for n in names:
        args += ["--batch", str(d / "batches" / n)]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "learned graph" in res.output
    for n in names:
        assert f"{n}: {len(files['cases'][n].batch)} rows" in res.output


def test_bad_inputs_are_named_with_a_nonzero_exit(files: dict, tmp_path: Path) -> None:
    d: Path = files["dir"]
    base = ["analysis", "rank", "--train", str(d / "normal.csv")]
    res = runner.invoke(cli, [*base, "--batch", str(tmp_path / "nope.csv"), "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["error"]["message"].startswith("file not found")
    bad = tmp_path / "dag.json"
    bad.write_text("{not json")
    res = runner.invoke(cli, [*base, "--batch", str(d / "batches"), "--graph", str(bad)])
    assert res.exit_code == 2 and "not valid JSON" in res.output
    cyc = tmp_path / "cyc.json"
    cyc.write_text(
        json.dumps(
            {"nodes": ["porosity", "thickness"], "edges": [["porosity", "thickness"], ["thickness", "porosity"]]}
        )
    )
    res = runner.invoke(cli, [*base, "--batch", str(d / "batches"), "--graph", str(cyc)])
    assert res.exit_code == 2 and "cycle" in res.output
    short = tmp_path / "short.csv"
    short.write_text("line_load,porosity\n1.2,0.3\n")
    res = runner.invoke(cli, ["analysis", "rank", "--train", str(short), "--batch", str(short)])
    assert res.exit_code == 2 and "normal rows" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(cli, [*base, "--batch", str(empty)])
    assert res.exit_code == 2 and "no .csv file" in res.output
