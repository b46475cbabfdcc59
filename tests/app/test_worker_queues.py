"""Which queues a worker process runs: ``worker_queues`` / ``worker_exclude_queues`` (``qcn worker --queues /
--exclude``), so the analysis can have a process of its own (docker-compose.yml)."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app import jobs
from app.db import AnalysisJob, Batch, Lease, ObservationPack, Party, make_engine, make_session_factory, upgrade, utcnow
from app.services import analysis
from app.settings import WORKER_QUEUES, Settings
from app.worker import AnchorWorker


def _names(**selection: str) -> list[str]:
    worker = AnchorWorker(settings=Settings(env="test", **selection), session_factory=None, chain=None)  # type: ignore[arg-type]
    return [q.spec.name for q in worker.selected_queues()]


def test_a_worker_runs_every_queue_unless_told_otherwise() -> None:
    every = _names()
    assert {"anchoring", "analysis", "cases", "indexing", "scheduling", "webhooks", "relay", "reconcile"} == set(every)
    assert tuple(every) == WORKER_QUEUES  # the names a selection is checked against are the worker's own
    assert _names(worker_queues="analysis") == ["analysis"]
    assert _names(worker_exclude_queues="analysis") == [n for n in every if n != "analysis"]
    assert _names(worker_queues=" analysis , webhooks ") == [n for n in every if n in ("analysis", "webhooks")]
    # the two compose services together run each queue exactly once
    split = _names(worker_exclude_queues="analysis") + _names(worker_queues="analysis")
    assert sorted(split) == sorted(every)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"worker_queues": "analysys"}, "unknown worker queue(s) analysys: the queues are anchoring, analysis"),
        ({"worker_exclude_queues": "anchors,analysis"}, "unknown worker queue(s) anchors"),
        ({"worker_queues": "analysis", "worker_exclude_queues": "analysis"}, "the worker queue selection leaves no"),
    ],
)
def test_a_selection_that_names_no_queue_or_an_unknown_one_is_refused(
    selection: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused when the settings are read (a gateway with an embedded worker does not start), also from the
    environment, and by ``qcn worker``, which changes only the selection of settings already read."""
    pattern = re.escape(message)
    with pytest.raises(ValueError, match=pattern):
        _names(**selection)
    for name, value in selection.items():
        monkeypatch.setenv(f"QCN_{name.upper()}", value)
    with pytest.raises(ValueError, match=pattern):
        Settings(env="test")
    monkeypatch.undo()
    copied = Settings(env="test").model_copy(update=selection)  # what the CLI does with --queues / --exclude
    with pytest.raises(ValueError, match="^" + pattern):
        AnchorWorker(settings=copied, session_factory=None, chain=None).selected_queues()  # type: ignore[arg-type]


# --- an analysis-only process run once (``qcn worker --once --queues analysis``) --------------------------------
def _stored_worker(tmp_path: Path, **settings: Any) -> tuple[AnchorWorker, Any]:
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    worker = AnchorWorker(settings=Settings(env="test", db_url=url, **settings), session_factory=sessions,
                          chain=None)  # type: ignore[arg-type]  # fmt: skip
    return worker, sessions


def test_an_analysis_only_pass_runs_while_another_worker_holds_the_sender_lease_and_takes_no_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker, sessions = _stored_worker(tmp_path, worker_queues="analysis")
    ran: list[list[str]] = []
    monkeypatch.setattr(jobs.JobRunner, "drain_once",
                        lambda self: ran.append([q.spec.name for q in self.queues]) or {"analysis": 0})  # fmt: skip
    worker.run_once()  # nobody holds the lease: an analysis-only pass must not take it
    with sessions() as s:
        assert s.get(Lease, "anchor-sender") is None
    with sessions() as s, s.begin():  # the anchoring worker (alive, on another host) holds it
        s.add(Lease(name="anchor-sender", holder="other-host:1:abc", expires_at=utcnow() + timedelta(seconds=30)))
    worker.run_once()
    assert ran == [["analysis"], ["analysis"]]
    # a worker that does send still waits for the lease
    sender, _ = _stored_worker(tmp_path, worker_exclude_queues="analysis")
    assert sender.run_once() == 0 and ran == [["analysis"], ["analysis"]]


# --- claimed analysis jobs run one after another ----------------------------------------------------------------
def _jobs(sessions: Any, n: int, **job: Any) -> list[int]:
    with sessions() as s, s.begin():
        party = Party(name=f"s{uuid.uuid4().hex[:6]}", kind="supplier", account="0x" + uuid.uuid4().hex[:20] * 2)
        s.add(party)
        s.flush()
        rows = []
        for _ in range(n):
            pk = str(uuid.uuid4())
            s.add(Batch(id=pk, batch_id="0x" + uuid.uuid4().hex * 2, supplier_id=party.id, idempotency_key=pk,
                        content_sha256="0", record_count=1, leaf_count=1, root="0x", report_hash="0x",
                        agreement_id="0x", verdict=0, supersedes="0x", part_number="P-1"))  # fmt: skip
            s.flush()
            rows.append(AnalysisJob(batch_pk=pk, **job))
            s.add(rows[-1])
        s.flush()
        return [r.id for r in rows]


def test_each_claimed_analysis_job_gets_its_time_limit_from_its_own_start_and_a_lapsed_claim_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside review: 8 jobs are claimed under one deadline and run in turn; without renewal a job still waiting
    was handed to a second worker and both analysed it."""
    worker, sessions = _stored_worker(tmp_path, analysis_time_limit_s=3.0)  # seconds: room for a slow host
    (q,) = [q for q in worker.queues() if q.spec.name == "analysis"]
    ids = _jobs(sessions, 3)
    stolen: dict[int, list[int]] = {}
    ran: list[int] = []

    def done(sessions: Any, job_id: int) -> bool:
        with sessions() as s, s.begin():
            s.get(AnalysisJob, job_id).status = "done"
        return True

    def slow(*, sessions: Any, settings: Any, job_id: int) -> bool:
        ran.append(job_id)
        stolen[job_id] = jobs.claim(sessions, q, "worker-B")  # may B take what A is running or about to run?
        time.sleep(2.0)  # within its own limit; the third job starts past the claim's first deadline
        return done(sessions, job_id)

    monkeypatch.setattr(analysis, "run_job", slow)
    jobs.run_rows(sessions, q, worker.holder)
    taken_by_b = {j for got in stolen.values() for j in got}
    assert not taken_by_b & set(ran), f"A ran jobs B had claimed: {stolen}"  # never analysed twice
    assert set(ran) | taken_by_b == set(ids)

    # a claim that did lapse (the first job overran its limit) and was taken by B: A skips B's jobs
    later = _jobs(sessions, 3)
    ran.clear()

    def overrun(*, sessions: Any, settings: Any, job_id: int) -> bool:
        ran.append(job_id)
        time.sleep(3.5)
        stolen[job_id] = jobs.claim(sessions, q, "worker-B")
        return done(sessions, job_id)

    monkeypatch.setattr(analysis, "run_job", overrun)
    jobs.run_rows(sessions, q, worker.holder)
    assert ran == later[:1] and set(later[1:]) <= set(stolen[later[0]])  # (the overrun job's own claim lapsed too)


def test_the_unstarted_jobs_of_a_killed_analysis_worker_are_free_after_the_claim_time_not_the_time_limit(
    tmp_path: Path,
) -> None:
    """A worker claims 8 analysis jobs at a time and starts them in turn. Killed after starting one, it left the
    other 7 waiting for the full time limit (600 s). Now only the job it started keeps its claim for that long;
    the others are free after ``analysis_claim_s``."""
    worker, sessions = _stored_worker(tmp_path, analysis_time_limit_s=600.0, analysis_claim_s=3.0)
    (q,) = [q for q in worker.queues() if q.spec.name == "analysis"]
    ids = _jobs(sessions, 4)
    assert jobs.claim(sessions, q, "killed") == ids
    assert jobs.renew_claim(sessions, AnalysisJob, ids[0], "killed", 600.0)  # it started the first, then died
    assert jobs.claim(sessions, q, "worker-B") == []  # still reserved
    time.sleep(3.2)
    assert jobs.claim(sessions, q, "worker-B") == ids[1:]  # the started job is not taken while it may still run


def test_a_job_written_without_its_batchs_supplier_and_part_gets_them_when_it_is_analysed(tmp_path: Path) -> None:
    """Outside review: a job row written without the copies (a gateway on the code before migration 0017 during a
    rolling upgrade) would leave its clean batch out of every SPC history; the analysis that marks it done
    writes them."""
    from app.analysis.observations import clean_history_batches, pack_columns

    worker, sessions = _stored_worker(tmp_path, data_dir=tmp_path / "data")
    (job,) = _jobs(sessions, 1)  # as the code before 0017 wrote it: AnalysisJob(batch_pk=...)
    with sessions() as s, s.begin():
        row = s.get(AnalysisJob, job)
        assert (row.supplier_id, row.part_number) == (None, None)
        columns = {"sample_id": ["S1", "S2"], "variable": ["thickness"] * 2, "tier": ["quality"] * 2,
                   "value": [12.3, 12.4], "unit": ["um"] * 2}  # fmt: skip
        s.add(ObservationPack(batch_pk=row.batch_pk, rows=2, data=pack_columns(columns)))
        supplier, batch_pk = s.get(Batch, row.batch_pk).supplier_id, row.batch_pk
    later = _jobs(sessions, 1)[0]
    with sessions() as s:
        assert clean_history_batches(s, before_job_id=later, limit=10, supplier_id=supplier, part_number="P-1") == []
    analysis.run_job(sessions=sessions, settings=worker.settings, job_id=job)  # (True only when models are fed)
    with sessions() as s:
        row = s.get(AnalysisJob, job)
        assert (row.status, row.outcome, row.supplier_id, row.part_number) == ("done", "clean", supplier, "P-1")
        assert clean_history_batches(s, before_job_id=later, limit=10, supplier_id=supplier, part_number="P-1") == [
            batch_pk
        ]
