"""How many heavy parses one gateway process runs at once, and how many of them one party may hold.

A parse in a child process (PDF/OCR, XML, XLSX, JSON and any large file: :func:`parsers.guarded.parse_guarded`)
costs a fork, up to ``parse_max_memory_bytes`` and up to ``parse_max_seconds`` of a core; a lab report's
signature check costs certificate-path work. Without a bound, one party sending many such uploads at once would
start as many children as it has connections, and everyone else's uploads would queue behind them or the
machine would run out of memory. So each process holds a fixed number of *slots*: a heavy step takes one, one
party holds at most half of them (others always find a free one), a request waits for a slot at most
``wait_s`` and then gets a 503 with ``Retry-After`` (nothing was stored), never an unbounded queue.
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
    """``capacity`` concurrent heavy steps in this process (0: the CPU count), at most ``per_party`` for one
    party (default: half the capacity, at least 1)."""

    def __init__(self, capacity: int = 0, *, per_party: int | None = None, wait_s: float = 30.0) -> None:
        self.capacity = capacity or os.cpu_count() or 2
        self.per_party = per_party or max(1, self.capacity // 2)
        self.wait_s = wait_s
        self._busy = 0
        self._by_party: dict[object, int] = {}
        self._free = threading.Condition()

    @contextmanager
    def hold(self, party: object, what: str) -> Iterator[None]:
        """Run the block in a slot of ``party``; :class:`ServiceUnavailable` (503) if none frees up in time."""
        deadline = time.monotonic() + self.wait_s
        with self._free:
            while self._busy >= self.capacity or self._by_party.get(party, 0) >= self.per_party:
                left = deadline - time.monotonic()
                if left <= 0:
                    mine = self._by_party.get(party, 0)
                    reason = (
                        f"this party already runs {mine} of at most {self.per_party}"
                        if mine >= self.per_party
                        else f"all {self.capacity} are busy"
                    )
                    raise ServiceUnavailable(
                        f"no parser slot for {what} within {self.wait_s:g} s ({reason}); nothing was stored: "
                        "send the upload again later",
                        retry_after=max(1.0, self.wait_s / 2),
                    )
                self._free.wait(left)
            self._busy += 1
            self._by_party[party] = self._by_party.get(party, 0) + 1
        try:
            yield
        finally:
            with self._free:
                self._busy -= 1
                if self._by_party[party] <= 1:
                    del self._by_party[party]
                else:
                    self._by_party[party] -= 1
                self._free.notify_all()
