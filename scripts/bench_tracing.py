"""Tracing-case benchmark on a local anvil node: anomaly-to-case latency and time to settlement.

Everything goes through the product: the world of ``scripts/bench_world.py`` (parties, template, agreement,
deposit made through the gateway API with each party's own key), lots uploaded under the agreement through
``POST /v1/batches`` (so the template check runs as for any delivery), the real analysis opening each case, and
the parties acting through the case API. ``measure_tracing() -> dict`` (flat keys) runs, on a fresh anvil node
and a SQLite gateway database:

1. **anomaly -> case**: a clean history of simulated electrode-coating lots, then ``N_ANOMALOUS`` faulty lots;
   the clock runs from the upload request until the case is open on chain (the worker anchors, analyses — the
   real anomaly verdict and root cause — and sends ``openCase``; passes run back to back, as the embedded worker
   does when busy): ``anomaly_to_case_ms_p50`` / ``_p95``;
2. **time to settlement**: ``N_SIMULATED`` faulty lots whose cases the gateway opens, driven through the real
   contracts with anvil time travel, parties answering after lognormal delays (supplier ~4 h, lab ~20 h,
   acceptance ~2 h, arbiter ~2 days), some silent suppliers, some disputes, some silent acceptances; the
   scheduler advances deadlines and settles. Hours from ``CaseOpened`` to ``CaseSettled`` in chain time (read
   from each case's timeline): ``settlement_hours_p50`` / ``_p95``, next to the seed's reference (42 days
   before, 7.3 hours with a chain);
3. gas of ``openCase``, ``submitVerdict`` and ``settle`` from ``scripts/bench_tracing_gas.py``.

Run ``python scripts/bench_tracing.py [--simulated N]`` to print the figures and write
``bench/results/tracing.json``.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from models.simulate import Fault  # noqa: E402
from models.simulate.lots import make_batch, make_history  # noqa: E402
from scripts.bench_world import World, build_world  # noqa: E402

N_HISTORY = 8
N_ANOMALOUS = 20
N_SIMULATED = 100
N_SAMPLES = 32  # the template's ISO 2859-1 sample size for the lot size the world declares
REFERENCE = {"before_days": 42.0, "with_chain_hours": 7.3}
HOUR = 3_600
FAULT = Fault("mean_shift", "roll_pressure", 6.0)
LAB_FEE = 750 * 10**18  # the electrode-coating-line template's lab fee


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def _open_case(world: World, batch_pk: str, passes: int = 20) -> dict[str, Any] | None:
    """Worker passes until the batch's case is open on chain (None if the analysis found no anomaly)."""
    for _ in range(passes):
        world.run()
        case = world.case_of(batch_pk)
        if case is not None and case["open"]["status"] == "done" and case["case_id"]:
            return case
    return None


def measure_latency(world: World) -> list[float]:
    """Upload a clean history, then faulty lots one by one; ms from upload to the case open on chain."""
    world.faucet("oem", LAB_FEE * N_ANOMALOUS * 2)
    world.fund_lab_fees(LAB_FEE * N_ANOMALOUS * 2)
    for b in make_history(N_HISTORY, n_samples=N_SAMPLES, prefix="HIST"):
        world.upload(b)
    world.run(2)
    out = []
    for i in range(N_ANOMALOUS):
        batch = make_batch(seed=500 + i, lot_id=f"LOT-F{i:03d}", n_samples=N_SAMPLES, fault=FAULT)
        t0 = time.perf_counter()
        pk = world.upload(batch)["id"]
        if _open_case(world, pk) is not None:
            out.append((time.perf_counter() - t0) * 1000)
    return out


def _sign_typed(world: World, who: str, path: str, **params: Any) -> dict[str, Any]:
    party = world.parties[who]
    typed = party.get(path, **params)["typed_data"]
    return {"message": typed["message"], "signature": party.sign_typed_data(typed)}


def _respond(world: World, case_id: str, evidence: bytes) -> None:
    supplier = world.parties["supplier"]
    files = [("files", ("8d.txt", evidence, "text/plain"))]
    prep = supplier.post(f"/v1/cases/{case_id}/response/prepare", files=files)
    supplier.post(f"/v1/cases/{case_id}/response", json={"raw": supplier.sign_transactions(prep["transactions"])[0]})


def _answer(world: World, case_id: str, who: str, *, accept: bool = True) -> None:
    body = _sign_typed(world, who, f"/v1/cases/{case_id}/acceptance-typed-data", accept=str(accept).lower())
    world.parties[who].post(f"/v1/cases/{case_id}/acceptance", json=body)


def simulate(world: World, rng: np.random.Generator, n: int) -> tuple[list[float], dict[str, int]]:
    """Drive ``n`` cases with sampled party delays; returns settlement hours and outcome counts."""
    from app.partyclient import PartyClient

    admin = PartyClient(world.client, world.settings.api_admin_token.get_secret_value())
    respond_s, dispute_s = world.deadlines["supplier_response_seconds"], world.deadlines["dispute_window_seconds"]
    kinds = {"accepted": 0, "silent_supplier": 0, "disputed": 0, "silent_acceptance": 0, "not_opened": 0}
    cases = []
    for i in range(n):
        batch = make_batch(seed=2_000 + i, lot_id=f"SIM-{i:03d}", n_samples=N_SAMPLES, fault=FAULT)
        case = _open_case(world, world.upload(batch)["id"])
        if case is None:
            kinds["not_opened"] += 1
            continue
        case_id = case["case_id"]
        cases.append(case_id)
        if rng.random() < 0.1:
            kinds["silent_supplier"] += 1
            world.travel(respond_s + 60)
            world.run()
        else:
            world.travel(int(min(rng.lognormal(np.log(4 * HOUR), 0.8), respond_s - HOUR)))
            _respond(world, case_id, f"8D report {i}".encode())
        world.travel(int(min(rng.lognormal(np.log(20 * HOUR), 0.6), 9 * 24 * HOUR)))
        verdict = _sign_typed(world, "lab", f"/v1/cases/{case_id}/verdict-typed-data", root_cause="roll_pressure")
        world.parties["lab"].post(f"/v1/cases/{case_id}/verdict", json=verdict)
        world.run()
        u = rng.random()
        if u < 0.15:
            kinds["disputed"] += 1
            world.travel(int(rng.lognormal(np.log(6 * HOUR), 0.8)) % (dispute_s - HOUR) + 60)
            _answer(world, case_id, "supplier", accept=False)
            world.travel(int(rng.lognormal(np.log(48 * HOUR), 0.5)))
            ruling = {"responsible_party": 1, "nc_class": 3, "root_cause": "roll_pressure", "ruling": f"case {i}"}
            admin.post(f"/v1/cases/{case_id}/arbitrate", json=ruling)
        elif u < 0.25:
            kinds["silent_acceptance"] += 1
            world.travel(dispute_s + 60)
        else:
            kinds["accepted"] += 1
            world.travel(int(min(rng.lognormal(np.log(2 * HOUR), 0.7), dispute_s // 2)))
            _answer(world, case_id, "oem")
            world.travel(int(min(rng.lognormal(np.log(2 * HOUR), 0.7), dispute_s // 2)))
            _answer(world, case_id, "supplier")
        world.run(2)
    hours = []
    for case_id in cases:
        steps = world.parties["oem"].get(f"/v1/cases/{case_id}/timeline")["steps"]
        times = {s["event"]: s["at"] for s in steps}
        if "CaseOpened" in times and "CaseSettled" in times:
            hours.append((times["CaseSettled"] - times["CaseOpened"]) / HOUR)
    return hours, kinds


def measure_tracing(*, simulated: int = N_SIMULATED) -> dict[str, Any]:
    """Run the three measurements (see the module docstring) and return flat figures."""
    from chain.node import LocalNode
    from scripts.bench_tracing_gas import measure_tracing_gas

    out: dict[str, Any] = {}
    world_settings = {
        # parsing in a child process per upload (the default) is what the parser benchmarks measure; here it
        # would only add the same constant to every upload (QCN_PARSE_ISOLATED=0 is a supported setting)
        "parse_isolated": False,
        "analysis_causal_min_rows": 100,
        "analysis_model_min_rows": 100,
        "scheduler_evaluate_interval_s": 10**9,
        "cases_lab_fee": LAB_FEE,
        "cases_retry_base_s": 0.0,
    }
    with tempfile.TemporaryDirectory(prefix="qcn-bench-tracing-") as tmp:
        for part in ("latency", "simulation"):
            base = Path(tmp) / part
            node = LocalNode(base / "chain", port=_free_port())
            node.start()
            try:
                with build_world(base, node, **world_settings) as world:
                    if part == "latency":
                        ms = measure_latency(world)
                        out.update(
                            anomaly_to_case_ms_p50=round(_pct(ms, 50), 1),
                            anomaly_to_case_ms_p95=round(_pct(ms, 95), 1),
                            anomaly_to_case_n=len(ms),
                            anomaly_to_case_missed=N_ANOMALOUS - len(ms),
                        )
                    else:
                        world.faucet("oem", LAB_FEE * simulated * 2)
                        world.fund_lab_fees(LAB_FEE * simulated * 2)
                        world.faucet("supplier", 10**30)
                        world.deposit(10**27)  # penalties of every simulated case are covered
                        for b in make_history(N_HISTORY, n_samples=N_SAMPLES, prefix="HIST"):
                            world.upload(b)
                        world.run(2)
                        t0 = time.perf_counter()
                        hours, kinds = simulate(world, np.random.default_rng(42), simulated)
                        out.update(
                            settlement_hours_p50=round(_pct(hours, 50), 2),
                            settlement_hours_p95=round(_pct(hours, 95), 2),
                            settlement_hours_mean=round(statistics.fmean(hours), 2) if hours else None,
                            settlement_cases=len(hours),
                            simulation_wall_s=round(time.perf_counter() - t0, 1),
                            **{f"simulation_{k}": v for k, v in kinds.items()},
                        )
            finally:
                node.stop()
    gas = measure_tracing_gas()
    out.update({k: gas[k] for k in ("gas_open_case", "gas_submit_verdict", "gas_settle")})
    out.update(
        reference_before_days=REFERENCE["before_days"],
        reference_with_chain_hours=REFERENCE["with_chain_hours"],
        target_anomaly_to_case_ms_p95=2000,
    )
    return out


def main() -> int:
    """Print the figures and write ``bench/results/tracing.json``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulated", type=int, default=N_SIMULATED, help="cases driven to settlement")
    results = measure_tracing(simulated=parser.parse_args().simulated)
    path = ROOT / "bench" / "results" / "tracing.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    for k, v in sorted(results.items()):
        print(f"{k:36s} {v}")
    print(
        f"settlement p50 {results['settlement_hours_p50']} h vs reference {REFERENCE['before_days']} days before, "
        f"{REFERENCE['with_chain_hours']} h with a chain"
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
