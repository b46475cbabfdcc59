"""How many heavy parses one gateway process runs at once, and how many of them one party may hold.

A parse in a child process (PDF/OCR, XML, XLSX, JSON and any large file: :func:`parsers.guarded.parse_guarded`)
costs a fork, up to ``parse_max_memory_bytes`` and up to ``parse_max_seconds`` of a core; a lab report's
signature check costs certificate-path work. Without a bound, one party sending many such uploads at once would
start as many children as it has connections, and everyone else's uploads would queue behind them or the
machine would run out of memory. So each process holds a fixed number of *slots* (at least 2): a heavy step
takes one; one party runs at most half of them at once and may have a few more requests waiting for its turn
(``queue_per_party``); beyond that its requests are refused at once, so a flood from one party holds neither
the slots nor the request threads the others need. A waiting request gets a slot within ``wait_s`` or a 503
with ``Retry-After``; either way nothing is stored, and the upload path holds no database connection while it
waits or parses.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from app.errors import ServiceUnavailable

__all__ = ["ParseSlots"]


class ParseSlots:
    """``capacity`` concurrent heavy steps in this process (0: the CPUs it may run on; at least 2), at most
    ``per_party`` of them for one party (default: half the capacity), and at most ``queue_per_party`` more
    requests of that party waiting for their turn."""

    def __init__(
        self, capacity: int = 0, *, per_party: int | None = None, queue_per_party: int = 8, wait_s: float = 30.0
    ) -> None:
        self.capacity = max(2, capacity or len(os.sched_getaffinity(0)))  # the CPUs this process may run on
        self.per_party = per_party or self.capacity // 2
        self.queue_per_party = queue_per_party
        self.wait_s = wait_s
        self._busy = 0
        self._held: dict[object, int] = {}
        self._queued: dict[object, int] = {}
        self._free = threading.Condition()

    @contextmanager
    def hold(self, party: object, what: str) -> Iterator[None]:
        """Run the block in a slot of ``party``; :class:`ServiceUnavailable` (503) when the party already runs and
        waits for all it may, or when no slot frees up within ``wait_s``."""
        deadline = time.monotonic() + self.wait_s
        with self._free:
            held, queued = self._held.get(party, 0), self._queued.get(party, 0)
            if held + queued >= self.per_party + self.queue_per_party:
                raise ServiceUnavailable(
                    f"no parser slot for {what}: this party already runs {held} and waits for {queued} heavy "
                    f"uploads (at most {self.per_party} + {self.queue_per_party}); nothing was stored: send it "
                    "again when one of them is done",
                    retry_after=max(1.0, self.wait_s / 2),
                )
            _count(self._queued, party, +1)
            try:
                while self._busy >= self.capacity or self._held.get(party, 0) >= self.per_party:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise ServiceUnavailable(
                            f"no parser slot for {what} within {self.wait_s:g} s ({self._busy} of {self.capacity} "
                            "busy); nothing was stored: send the upload again later",
                            retry_after=max(1.0, self.wait_s / 2),
                        )
                    self._free.wait(left)
            finally:
                _count(self._queued, party, -1)
            self._busy += 1
            _count(self._held, party, +1)
        try:
            yield
        finally:
            with self._free:
                self._busy -= 1
                _count(self._held, party, -1)
                self._free.notify_all()


def _count(counts: dict[object, int], party: object, step: int) -> None:
    n = counts.get(party, 0) + step
    if n:
        counts[party] = n
    else:
        del counts[party]
