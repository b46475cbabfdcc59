"""The long-running processes keep their start-up objects out of the garbage collector's walks."""

from __future__ import annotations

import gc

from app import heap


def test_settle_freezes_what_exists_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        keep = [{"row": i} for i in range(1000)]  # long-lived objects created at start-up
        heap.settle()
        assert gc.get_freeze_count() >= len(keep)
        assert gc.get_threshold()[0] == 10_000
        frozen = gc.get_freeze_count()
        heap.settle_once("stage-a")
        more = [[i] for i in range(500)]
        heap.settle_once("stage-a")  # only the first time
        assert gc.get_freeze_count() < frozen + len(more)
        heap.settle_once("stage-b")
        assert gc.get_freeze_count() >= frozen + len(more)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
