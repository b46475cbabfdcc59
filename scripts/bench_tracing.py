"""Tracing-case benchmark on a local anvil node: anomaly-to-case latency and time to settlement.

``measure_tracing() -> dict`` (flat keys) runs, on a fresh anvil node and a SQLite gateway database:

1. **anomaly -> case**: a clean history of simulated electrode-coating batches, then ``N_ANOMALOUS`` faulty
   batches, each uploaded through the API under the agreement; the clock runs from the upload request until
   the case is open on chain (the worker anchors, analyses — the real anomaly verdict and root cause — and
   sends ``openCase``; passes run back to back, as the embedded worker does when busy):
   ``anomaly_to_case_ms_p50`` / ``_p95``;
2. **time to settlement**: ``N_SIMULATED`` cases opened by the gateway and driven through the real contracts
   with anvil time travel, parties answering after lognormal delays (supplier ~4 h, lab ~20 h, acceptance
   ~2 h, arbiter ~2 days), some silent suppliers, some disputes, some silent acceptances; the scheduler
   advances deadlines and settles. Hours from ``CaseOpened`` to ``CaseSettled`` in chain time:
   ``settlement_hours_p50`` / ``_p95``, next to the seed's reference (42 days before, 7.3 hours with a chain);
3. gas of ``openCase``, ``submitVerdict`` and ``settle`` from ``scripts/bench_tracing_gas.py``.

Run ``python scripts/bench_tracing.py`` to print the figures and write ``bench/results/tracing.json``.
"""

from __future__ import annotations

import json
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
from sqlalchemy import select, update  # noqa: E402

from app.db import Batch, CaseRecord, ChainEventRecord  # noqa: E402
from models.simulate import Fault  # noqa: E402
from models.simulate.lots import make_batch, make_history  # noqa: E402

N_HISTORY = 8
N_ANOMALOUS = 20
N_SIMULATED = 100
REFERENCE = {"before_days": 42.0, "with_chain_hours": 7.3}
HOUR = 3_600


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def _upload_under_agreement(tr: Any, batch: Any) -> str:
    from tests.app.cases_support import AGREEMENT_ID

    resp = tr.client.post("/v1/batches", files=batch.files(), headers=tr.auth("supplier"))
    if resp.status_code not in (200, 201):
        raise RuntimeError(f"upload failed: {resp.status_code} {resp.text}")
    pk = str(resp.json()["id"])
    with tr.sessions()() as s, s.begin():
        s.execute(update(Batch).where(Batch.id == pk).values(agreement_id=AGREEMENT_ID))
    return pk


def _case_open(tr: Any, batch_pk: str) -> bool:
    with tr.sessions()() as s:
        case = s.scalars(select(CaseRecord).where(CaseRecord.batch_pk == batch_pk)).first()
        return case is not None and case.open_status == "done"


def measure_latency(tr: Any) -> list[float]:
    """Upload a clean history, then faulty batches one by one; ms from upload to the case open on chain."""
    from tests.app.cases_support import ADDRESSES, LAB_FEE

    # every case reserves its lab fee from the OEM's pool: fund one per faulty batch
    oem, token, pool = tr.sender("oem"), tr.token(), LAB_FEE * N_ANOMALOUS * 2
    oem.send(token.functions.mint(ADDRESSES["oem"], pool))
    oem.send(token.functions.approve(tr.chain.cases.address, pool))
    tr.cases_as("oem").fund_lab_fees(ADDRESSES["oem"], pool)
    for b in make_history(N_HISTORY, n_samples=32):
        _upload_under_agreement(tr, b)
    tr.run(2)
    fault = Fault("mean_shift", "roll_pressure", 6.0)
    out = []
    for i in range(N_ANOMALOUS):
        batch = make_batch(seed=500 + i, lot_id=f"LOT-F{i:03d}", n_samples=32, fault=fault)
        t0 = time.perf_counter()
        pk = _upload_under_agreement(tr, batch)
        for _ in range(20):
            tr.gw.worker.run_once()
            if _case_open(tr, pk):
                break
        else:
            continue  # not judged anomalous (counted below as missing)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def simulate(tr: Any, rng: np.random.Generator) -> tuple[list[float], dict[str, int]]:
    """Drive ``N_SIMULATED`` cases with sampled party delays; returns settlement hours and outcome counts."""
    from tests.app.cases_support import DISPUTE_WINDOW, SUPPLIER_RESPONSE

    kinds = {"accepted": 0, "silent_supplier": 0, "disputed": 0, "silent_acceptance": 0}
    for i in range(N_SIMULATED):
        case_id = tr.open_case(f"SIM-{i:03d}")
        if rng.random() < 0.1:
            kinds["silent_supplier"] += 1
            tr.travel(SUPPLIER_RESPONSE + 60)
            tr.run()
        else:
            tr.travel(int(min(rng.lognormal(np.log(4 * HOUR), 0.8), SUPPLIER_RESPONSE - HOUR)))
            tr.respond(case_id, evidence=f"8D report {i}".encode())
        tr.travel(int(min(rng.lognormal(np.log(20 * HOUR), 0.6), 9 * 24 * HOUR)))
        resp = tr.verdict(case_id)
        if resp.status_code != 200:
            raise RuntimeError(f"verdict of {case_id} refused: {resp.text}")
        tr.run()
        u = rng.random()
        if u < 0.15:
            kinds["disputed"] += 1
            tr.travel(int(rng.lognormal(np.log(6 * HOUR), 0.8)) % (DISPUTE_WINDOW - HOUR) + 60)
            tr.answer(case_id, "supplier", accept=False)
            tr.travel(int(rng.lognormal(np.log(48 * HOUR), 0.5)))
            ruling = {"responsible_party": 1, "nc_class": 3, "root_cause": "roll_pressure", "ruling": f"case {i}"}
            tr.client.post(f"/v1/cases/{case_id}/arbitrate", json=ruling, headers=tr.auth("admin"))
        elif u < 0.25:
            kinds["silent_acceptance"] += 1
            tr.travel(DISPUTE_WINDOW + 60)
        else:
            kinds["accepted"] += 1
            tr.travel(int(min(rng.lognormal(np.log(2 * HOUR), 0.7), DISPUTE_WINDOW // 2)))
            tr.answer(case_id, "oem")
            tr.travel(int(min(rng.lognormal(np.log(2 * HOUR), 0.7), DISPUTE_WINDOW // 2)))
            tr.answer(case_id, "supplier")
        tr.run(2)
    hours = []
    with tr.sessions()() as s:
        rows = s.execute(select(ChainEventRecord.case_id, ChainEventRecord.name, ChainEventRecord.block_time)).all()
    opened = {c: t for c, n, t in rows if n == "CaseOpened"}
    for c, n, t in rows:
        if n == "CaseSettled" and c in opened:
            hours.append((t - opened[c]) / HOUR)
    return hours, kinds


def _top_up(tr: Any, amount: int) -> None:
    from tests.app.cases_support import ADDRESSES, AGREEMENT_ID, POOL

    sender = tr.sender("supplier")
    token = tr.token()
    sender.send(token.functions.mint(ADDRESSES["supplier"], amount))
    sender.send(token.functions.approve(tr.chain.agreements.address, amount))
    tr.agreements_as("supplier").deposit(bytes.fromhex(AGREEMENT_ID[2:]), amount)
    oem = tr.sender("oem")
    oem.send(token.functions.mint(ADDRESSES["oem"], POOL * 20))
    oem.send(token.functions.approve(tr.chain.cases.address, POOL * 20))
    tr.cases_as("oem").fund_lab_fees(ADDRESSES["oem"], POOL * 20)


def measure_tracing() -> dict[str, Any]:
    """Run the three measurements (see the module docstring) and return flat figures."""
    from chain.node import LocalNode
    from scripts.bench_tracing_gas import measure_tracing_gas
    from tests.app.cases_support import make_tracing
    from tests.conftest import free_port

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qcn-bench-tracing-") as tmp:
        for part in ("latency", "simulation"):
            base = Path(tmp) / part
            node = LocalNode(base / "chain", port=free_port())
            node.start()
            try:
                gen = make_tracing(
                    base,
                    f"sqlite:///{base / 'qcn.db'}",
                    node,
                    analysis_causal_min_rows=100,
                    analysis_model_min_rows=100,
                    scheduler_evaluate_interval_s=10**9,
                )
                tr = next(gen)
                try:
                    if part == "latency":
                        ms = measure_latency(tr)
                        out.update(
                            anomaly_to_case_ms_p50=round(_pct(ms, 50), 1),
                            anomaly_to_case_ms_p95=round(_pct(ms, 95), 1),
                            anomaly_to_case_n=len(ms),
                            anomaly_to_case_missed=N_ANOMALOUS - len(ms),
                        )
                    else:
                        _top_up(tr, 10**9)
                        t0 = time.perf_counter()
                        hours, kinds = simulate(tr, np.random.default_rng(42))
                        out.update(
                            settlement_hours_p50=round(_pct(hours, 50), 2),
                            settlement_hours_p95=round(_pct(hours, 95), 2),
                            settlement_hours_mean=round(statistics.fmean(hours), 2) if hours else None,
                            settlement_cases=len(hours),
                            simulation_wall_s=round(time.perf_counter() - t0, 1),
                            **{f"simulation_{k}": v for k, v in kinds.items()},
                        )
                finally:
                    gen.close()
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
    results = measure_tracing()
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
