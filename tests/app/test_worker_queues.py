"""Which queues a worker process runs: ``worker_queues`` / ``worker_exclude_queues`` (``qcn worker --queues /
--exclude``), so the analysis can have a process of its own (docker-compose.yml)."""

from __future__ import annotations

import pytest

from app.settings import Settings
from app.worker import AnchorWorker


def _names(**selection: str) -> list[str]:
    worker = AnchorWorker(settings=Settings(env="test", **selection), session_factory=None, chain=None)  # type: ignore[arg-type]
    return [q.spec.name for q in worker.selected_queues()]


def test_a_worker_runs_every_queue_unless_told_otherwise() -> None:
    every = _names()
    assert {"anchoring", "analysis", "cases", "indexing", "scheduling", "webhooks", "relay", "reconcile"} == set(every)
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
def test_a_selection_that_names_no_queue_or_an_unknown_one_is_refused(selection: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        _names(**selection)
