"""Batch analysis through the API on a real anvil node (SQLite and PostgreSQL): upload a clean history of simulated
electrode-coating batches with their process data, then a faulty batch; the worker scores every batch and
explains the anomalous one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app import wakeups
from app.analysis.models import ModelCache
from app.analysis.observations import batch_long
from app.chainctx import deploy_contracts
from app.db import AnalysisJob, AnalysisResult, ObservationPack
from app.main import create_app
from app.worker import AnchorWorker
from models.simulate import Fault
from models.simulate.lots import DemoBatch, make_batch, make_history
from tests.app.conftest import ACCOUNTS, CSV_OK, Gateway, make_settings

pytestmark = pytest.mark.node

N_SAMPLES = 10
N_HISTORY = 14


@pytest.fixture
def gw(tmp_path: Path, db_url: str, anvil: Any) -> Iterator[Gateway]:
    settings = make_settings(
        tmp_path,
        db_url,
        anvil.url,
        parse_isolated=False,
        analysis_causal_min_rows=100,
        analysis_model_min_rows=100,
        analysis_causal_refresh_every=5,
    )
    deploy_contracts(settings)
    app = create_app(settings, embedded_worker=False)
    with TestClient(app) as client:
        g = Gateway(
            client=client,
            settings=settings,
            worker=AnchorWorker(
                settings=settings, session_factory=app.state.session_factory, chain=app.state.chain_holder.get()
            ),
            keys={},
            admin_token=settings.api_admin_token.get_secret_value(),
        )
        for who, kind in [("oem", "oem"), ("supplier", "supplier"), ("supplier2", "supplier")]:
            resp = client.post(
                "/v1/parties",
                json={"name": f"{who} ltd", "kind": kind, "account": ACCOUNTS[who]},
                headers=g.auth("admin"),
            )
            assert resp.status_code == 201, resp.text
            g.keys[who] = resp.json()["api_key"]
        yield g


def _upload(gw: Gateway, batch: DemoBatch, who: str = "supplier") -> dict[str, Any]:
    resp = gw.client.post("/v1/batches", files=batch.files(), headers=gw.auth(who))
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _analysis(gw: Gateway, ref: str, who: str = "supplier") -> dict[str, Any]:
    resp = gw.client.get(f"/v1/batches/{ref}/analysis", headers=gw.auth(who))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _history(gw: Gateway, n: int = N_HISTORY) -> list[dict[str, Any]]:
    out = [_upload(gw, b) for b in make_history(n, n_samples=N_SAMPLES)]
    gw.anchor_all()
    return out


ROLL_FAULT = Fault("mean_shift", "roll_pressure", 6.0)


@pytest.mark.slow
def test_faulty_batch_is_anomalous_and_its_injected_root_cause_ranks_first(gw: Gateway) -> None:
    history = _history(gw)
    clean = [_analysis(gw, b["id"]) for b in history]
    assert all(a["status"] == "done" for a in clean)
    # the first batches have no SPC baseline yet: said explicitly, never reported as a complete clean check
    first = clean[0]["analysis"]["verdict"]
    assert first["complete"] is False
    assert {r["kind"] for r in first["reasons"]} >= {"insufficient_history"}
    assert sum(not a["anomalous"] for a in clean) >= N_HISTORY - 3

    faulty = _upload(gw, make_batch(seed=500, lot_id="LOT-F", n_samples=N_SAMPLES, fault=ROLL_FAULT))
    assert _analysis(gw, faulty["id"])["status"] == "pending"
    gw.anchor_all()
    got = _analysis(gw, faulty["id"])
    assert got["status"] == "done" and got["anomalous"] is True
    doc = got["analysis"]
    reasons = [r for r in doc["verdict"]["reasons"] if r["severity"] == "anomaly"]
    assert any(
        r["kind"] in ("spec_failure", "spc_rule") and r["characteristic"] == "adhesion_strength" for r in reasons
    ), reasons
    assert doc["verdict"]["complete"] is True and doc["verdict"]["spc_checked"]
    rc = doc["root_cause"]
    assert rc["status"] == "done", rc
    assert got["top_cause"] == "roll_pressure" == rc["primary"]["variable"]
    assert rc["primary"]["path"][0] == "roll_pressure" and rc["primary"]["path"][-1] == rc["primary"]["characteristic"]
    assert rc["primary"]["z"] > 3
    # counterfactual check of the top candidate: back inside +/-0.8 % of nominal the batch would have passed
    cf = next(c for c in rc["counterfactuals"] if c["variable"] == "roll_pressure")
    assert cf["window"] == pytest.approx([49.6, 50.4])
    assert cf["in_control"] is True or cf.get("in_spec") is True
    # reproducible identity: model versions and hashes recorded, sha256 is the hash of the stored document
    assert doc["models"]["causal"]["graph_sha256"] == got["graph_sha256"]
    assert len(got["sha256"]) == 64 and got["input_sha256"] == doc["input_sha256"]
    import hashlib
    import json

    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(text.encode()).hexdigest() == got["sha256"]

    # ask a counterfactual through the API: roll pressure at nominal -> adhesion back to normal
    q = gw.client.post(
        f"/v1/batches/{faulty['id']}/counterfactual",
        json={"variable": "roll_pressure", "characteristic": "adhesion_strength", "within_pct": 0.8},
        headers=gw.auth("admin"),
    )
    assert q.status_code == 200, q.text
    ans = q.json()
    assert ans["answer"] == "yes" and ans["probability"] == pytest.approx(1.0)
    assert abs(ans["counterfactual_value"] - 20.0) < abs(ans["factual"] - 20.0)
    worse = gw.client.post(
        f"/v1/batches/{faulty['id']}/counterfactual",
        json={"variable": "roll_pressure", "characteristic": "adhesion_strength", "value": 75.0},
        headers=gw.auth("admin"),
    ).json()
    assert worse["counterfactual_value"] > ans["factual"]

    sd = gw.client.post(
        f"/v1/batches/{faulty['id']}/safe-domain",
        json={"variables": ["roll_pressure", "bake_temperature"], "characteristic": "adhesion_strength"},
        headers=gw.auth("supplier"),
    )
    assert sd.status_code == 200, sd.text
    assert set(sd.json()["current"]) == {"roll_pressure", "bake_temperature"}

    graph = gw.client.get(f"/v1/batches/{faulty['id']}/causal-graph.svg", headers=gw.auth("admin"))
    assert graph.status_code == 200 and graph.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in graph.content and b"roll_pressure" in graph.content


def test_charts_are_svg_with_rule_labels_and_png(gw: Gateway) -> None:
    _history(gw, 4)
    faulty = _upload(gw, make_batch(seed=501, lot_id="LOT-C", n_samples=N_SAMPLES, fault=ROLL_FAULT))
    gw.anchor_all()
    svg = gw.client.get(f"/v1/batches/{faulty['id']}/charts/adhesion_strength.svg", headers=gw.auth("supplier"))
    assert svg.status_code == 200, svg.text
    assert svg.content.lstrip().startswith(b"<?xml") and b"<svg" in svg.content
    assert b"R1" in svg.content and b"UCL" in svg.content and b"LOT-C-S001" in svg.content
    png = gw.client.get(f"/v1/batches/{faulty['id']}/charts/adhesion_strength.png", headers=gw.auth("admin"))
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    missing = gw.client.get(f"/v1/batches/{faulty['id']}/charts/nope.svg", headers=gw.auth("admin"))
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]


def _refresh(gw: Gateway, who: str, profile: str) -> dict[str, Any]:
    """Ask for a model refresh (202: a background job) and follow it until it ends."""
    started = gw.client.post("/v1/models/refresh", json={"profile": profile}, headers=gw.auth(who))
    assert started.status_code == 202, started.text
    assert started.json()["status"] in ("pending", "running", "done", "failed")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = gw.client.get(f"/v1/models/refresh/{started.json()['job_id']}", headers=gw.auth(who))
        assert job.status_code == 200, job.text
        if job.json()["status"] in ("done", "failed"):
            return dict(job.json())
        time.sleep(0.05)
    raise AssertionError("model refresh did not finish in 300 s")


def test_an_anomalous_analysis_wakes_the_tracing_case_queue_and_a_clean_one_does_not(gw: Gateway) -> None:
    """The cases queue sleeps while nothing is due; an anomalous verdict may make a case due, so storing one wakes
    the queue at commit (its discovery runs at once, not at the next idle poll)."""
    _history(gw, 3)
    cases = wakeups.for_sessions(gw.client.app.state.session_factory).subscribe("cases")  # type: ignore[attr-defined]
    runner = gw.worker.runner()
    by_name = {q.spec.name: q for q in runner.queues}
    for lot, fault, wakes in (("LOT-C", None, False), ("LOT-F", ROLL_FAULT, True)):
        batch = _upload(gw, make_batch(seed=503, lot_id=lot, n_samples=N_SAMPLES, fault=fault))
        runner.run_pass(by_name["anchoring"])
        cases.clear()  # an anchoring wakes it too: a batch anchored after its anomalous analysis is due a case
        assert runner.run_pass(by_name["analysis"]) == 1
        assert _analysis(gw, batch["id"])["anomalous"] is wakes
        assert cases.is_set() is wakes, lot


def test_a_profile_short_of_rows_is_not_relearned_after_every_clean_batch(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Learning a causal model reads the profile's whole clean history. While it has too few rows (or no process
    data at all) the next attempt waits for ``analysis_causal_refresh_every`` (5) more clean batches instead of
    coming after each one; the model is learned once there are enough."""
    attempts: list[int] = []
    learn = ModelCache.learn_causal_model

    def counted(self: ModelCache, session: Any, profile: Any) -> Any:
        attempts.append(1)
        return learn(self, session, profile)

    monkeypatch.setattr(ModelCache, "learn_causal_model", counted)
    for batch in make_history(12, n_samples=N_SAMPLES):  # 10 rows a batch, 100 needed
        _upload(gw, batch)
        gw.anchor_all()
    assert len(attempts) == 3  # clean batches 1 (10 rows), 6 (60) and 11 (110 rows: learned)
    causal = gw.client.get("/v1/models", headers=gw.auth("admin")).json()["causal_models"]
    assert [(m["rows"], m["batches"]) for m in causal] == [(110, 11)]


def test_insufficient_data_is_explicit(gw: Gateway) -> None:
    _history(gw, 3)  # 30 rows: SPC baseline yes, causal model no (needs 100)
    faulty = _upload(gw, make_batch(seed=502, lot_id="LOT-I", n_samples=N_SAMPLES, fault=ROLL_FAULT))
    gw.anchor_all()
    got = _analysis(gw, faulty["id"])
    assert got["anomalous"] is True
    rc = got["analysis"]["root_cause"]
    assert rc["status"] == "insufficient_data" and rc["needed"] == 100 and rc["got"] == 30
    assert "insufficient data" in rc["message"]
    q = gw.client.post(
        f"/v1/batches/{faulty['id']}/counterfactual",
        json={"variable": "roll_pressure", "characteristic": "adhesion_strength", "within_pct": 0.8},
        headers=gw.auth("admin"),
    )
    assert q.status_code == 409 and q.json()["error"]["code"] == "insufficient_data"
    assert q.json()["error"]["needed"] == 100
    refresh = _refresh(gw, "admin", "electrode_coating")
    assert refresh["status"] == "failed" and refresh["steps_done"] == 0 and refresh["steps_total"] == 2
    assert refresh["error"]["code"] == "insufficient_data" and refresh["error"]["needed"] == 100


def test_other_supplier_gets_404_and_supplier_cannot_refresh(gw: Gateway) -> None:
    ref = _history(gw, 2)[-1]["id"]
    for method, path, body in [
        ("GET", "analysis", None),
        ("POST", "analysis", None),
        ("GET", "charts/porosity.svg", None),
        ("GET", "causal-graph.svg", None),
        ("POST", "counterfactual", {"variable": "roll_pressure", "characteristic": "porosity", "value": 50.0}),
        ("POST", "safe-domain", {"variables": ["roll_pressure", "bake_temperature"], "characteristic": "porosity"}),
    ]:
        resp = gw.client.request(method, f"/v1/batches/{ref}/{path}", json=body, headers=gw.auth("supplier2"))
        assert resp.status_code == 404, (path, resp.text)
    # an OEM sees only batches delivered under its own agreements: these were delivered under none
    assert gw.client.get(f"/v1/batches/{ref}/analysis", headers=gw.auth("oem")).status_code == 404
    assert gw.client.get(f"/v1/batches/{ref}/analysis", headers=gw.auth("admin")).status_code == 200
    for who in ("supplier", "oem"):
        denied = gw.client.post("/v1/models/refresh", json={"profile": "electrode_coating"}, headers=gw.auth(who))
        assert denied.status_code == 403 and "admin" in denied.json()["error"]["message"]
    two = gw.client.post(
        f"/v1/batches/{ref}/counterfactual",
        json={"variable": "roll_pressure", "characteristic": "porosity", "value": 1.0, "within_pct": 1.0},
        headers=gw.auth("admin"),
    )
    assert two.status_code == 422 and "exactly one" in two.json()["error"]["message"]
    bad_profile = gw.client.post("/v1/models/refresh", json={"profile": "nope"}, headers=gw.auth("admin"))
    assert bad_profile.status_code == 422 and "nope" in bad_profile.json()["error"]["message"]
    assert gw.client.get("/v1/models/refresh/999", headers=gw.auth("admin")).status_code == 404
    assert gw.client.get("/v1/models/refresh/999", headers=gw.auth("oem")).status_code == 403
    assert gw.client.get("/v1/models/refresh/1", headers=gw.auth("supplier")).status_code == 403


@pytest.mark.slow
def test_unknown_variable_model_refresh_and_rescore(gw: Gateway) -> None:
    history = _history(gw, 13)
    ref = history[-1]["id"]
    unknown = gw.client.post(
        f"/v1/batches/{ref}/counterfactual",
        json={"variable": "moon_phase", "characteristic": "porosity", "value": 1.0},
        headers=gw.auth("admin"),
    )
    assert unknown.status_code == 422, unknown.text
    assert "moon_phase" in unknown.json()["error"]["message"]

    # admin refresh: a full re-learn and a new anomaly model version, both listed with their hashes
    before = gw.client.get("/v1/models", headers=gw.auth("admin")).json()
    job = _refresh(gw, "admin", "electrode_coating")
    assert job["status"] == "done", job
    assert (job["steps_done"], job["steps_total"], job["stage"]) == (2, 2, None)
    body = job["result"]
    after = gw.client.get("/v1/models", headers=gw.auth("supplier")).json()
    assert len(after["causal_models"]) >= len(before["causal_models"])
    assert body["causal"]["graph_sha256"] in {m["graph_sha256"] for m in after["causal_models"]}
    assert body["anomaly"]["sha256"] in {m["sha256"] for m in after["anomaly_models"]}
    assert body["anomaly"]["features"] == ["adhesion_strength", "areal_capacity", "porosity"] or set(
        body["anomaly"]["features"]
    ) == {"adhesion_strength", "areal_capacity", "porosity"}

    # re-score (the OEM of the batch's agreement or the admin; the supplier may not): a new version of the
    # analysis, same inputs -> same input hash
    first = _analysis(gw, ref)
    assert gw.client.post(f"/v1/batches/{ref}/analysis", headers=gw.auth("supplier")).status_code == 403
    again = gw.client.post(f"/v1/batches/{ref}/analysis", headers=gw.auth("admin")).json()
    assert again["seq"] == first["seq"] + 1 and again["input_sha256"] == first["input_sha256"]


def test_observations_and_job_are_stored_with_the_upload_and_run_exactly_once(gw: Gateway) -> None:
    b = make_batch(seed=1, lot_id="LOT-O", n_samples=4)
    up = _upload(gw, b)
    assert up["leaf_count"] == up["record_count"] + 2  # measurement file + process file are both leaves
    factory = gw.client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as s:
        obs = list(batch_long(s, up["id"]).itertuples(index=False))
        tiers = {o.tier for o in obs}
        assert len(obs) == 4 * 18 and tiers == {"quality", "material", "environment", "equipment", "process"}
        rp = next(o for o in obs if o.variable == "roll_pressure" and o.sample_id == "LOT-O-S001")
        assert rp.unit == "MPa" and rp.tier == "process"
        assert s.scalar(select(ObservationPack.rows).where(ObservationPack.batch_pk == up["id"])) == 4 * 18
    # same upload again: one batch, one job
    again = gw.client.post("/v1/batches", files=b.files(), headers=gw.auth("supplier"))
    assert again.status_code == 200
    gw.anchor_all()
    gw.anchor_all()
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(AnalysisJob)) == 1
        assert s.scalar(select(func.count()).select_from(AnalysisResult)) == 1
        job = s.scalars(select(AnalysisJob)).one()
        assert job.status == "done" and job.profile == "electrode_coating"
    # a measurement-only upload of an unknown part: verdict with explicit gaps, no profile
    plain = gw.upload("supplier", CSV_OK, key="LOT-PLAIN").json()
    gw.anchor_all()
    a = _analysis(gw, plain["id"])
    assert a["profile"] is None and a["analysis"]["root_cause"]["status"] == "not_anomalous"
    assert {r["kind"] for r in a["analysis"]["verdict"]["reasons"]} == {"no_spec_limits", "insufficient_history"}


def test_a_batch_level_process_value_and_one_without_unit_are_analysed(gw: Gateway) -> None:
    """A process value for the whole batch (no sample id) and one without a unit are stored as missing, not as
    NaN: the batch is analysed (the observations hash once raised on the NaN and the job failed for good)."""
    process = (
        "variable,tier,value,unit,sample_id\n"
        "oven_temperature,process,121.5,degC,\n"  # the whole batch
        "line_speed,process,12.0,,S1\n"  # no unit
        "line_speed,process,12.2,,S2\n"
    )
    files = [
        ("files", ("lot.csv", CSV_OK.encode(), "text/csv")),
        ("files", ("lot_process.csv", process.encode(), "text/csv")),
    ]
    resp = gw.client.post("/v1/batches", files=files, headers=gw.auth("supplier") | {"Idempotency-Key": "LOT-BL"})
    assert resp.status_code == 201, resp.text
    ref = resp.json()["id"]
    gw.anchor_all()
    gw.anchor_all()
    factory = gw.client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as s:
        job = s.scalars(select(AnalysisJob).where(AnalysisJob.batch_pk == ref)).one()
        assert job.status == "done", job.last_error
        obs = batch_long(s, ref)
        oven = obs[obs["variable"] == "oven_temperature"].iloc[0]
        assert oven["sample_id"] is None and oven["value"] == 121.5 and oven["unit"] == "degC"
        speed = obs[obs["variable"] == "line_speed"]
        assert list(speed["unit"]) == [None, None] and list(speed["sample_id"]) == ["S1", "S2"]
    analysis = _analysis(gw, ref)
    assert analysis["input_sha256"]
