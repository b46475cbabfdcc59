"""How many heavy parses one gateway process runs at once, and how many of them one party may hold.

A parse in a child process (PDF/OCR, XML, XLSX, JSON and any large file: :func:`parsers.guarded.parse_guarded`)
costs a fork, up to ``parse_max_memory_bytes`` and up to ``parse_max_seconds`` of a core; a lab report's
signature check costs certificate-path work. Without a bound, one party sending many such uploads at once would
start as many children as it has connections, and everyone else's uploads would queue behind them or the
machine would run out of memory. So each process holds a fixed number of *slots* (at least 2): a heavy step
takes one; one party holds at most half of them, and a request of a party already at its share is refused at
once (it never waits, so a flood from one party never queues in front of the others); a request finding every
slot taken by several parties waits at most ``wait_s``. Either way the answer is a 503 with ``Retry-After``
and nothing stored, never an unbounded queue. The upload path holds no database connection while it waits.
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
    ``per_party`` for one party (default: half the capacity)."""

    def __init__(self, capacity: int = 0, *, per_party: int | None = None, wait_s: float = 30.0) -> None:
        self.capacity = max(2, capacity or len(os.sched_getaffinity(0)))  # the CPUs this process may run on
        self.per_party = per_party or self.capacity // 2
        self.wait_s = wait_s
        self._busy = 0
        self._by_party: dict[object, int] = {}
        self._free = threading.Condition()

    @contextmanager
    def hold(self, party: object, what: str) -> Iterator[None]:
        """Run the block in a slot of ``party``; :class:`ServiceUnavailable` (503) when the party already holds or
        waits for its share, or when no slot frees up within ``wait_s``."""
        deadline = time.monotonic() + self.wait_s
        with self._free:
            mine = self._by_party.get(party, 0)  # slots held and requests waiting
            if mine >= self.per_party:
                raise ServiceUnavailable(
                    f"no parser slot for {what}: this party already runs or waits for {mine} of at most "
                    f"{self.per_party}; nothing was stored: send the upload again when one of them is done",
                    retry_after=max(1.0, self.wait_s / 2),
                )
            self._by_party[party] = mine + 1
            try:
                while self._busy >= self.capacity:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise ServiceUnavailable(
                            f"no parser slot for {what} within {self.wait_s:g} s (all {self.capacity} are busy); "
                            "nothing was stored: send the upload again later",
                            retry_after=max(1.0, self.wait_s / 2),
                        )
                    self._free.wait(left)
            except BaseException:
                self._leave(party)
                raise
            self._busy += 1
        try:
            yield
        finally:
            with self._free:
                self._busy -= 1
                self._leave(party)
                self._free.notify_all()

    def _leave(self, party: object) -> None:
        if self._by_party[party] <= 1:
            del self._by_party[party]
        else:
            self._by_party[party] -= 1
