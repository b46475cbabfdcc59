"""The garbage collector in the long-running gateway and worker processes.

A process holding the web3/pandas/scipy stack tracks a few hundred thousand objects, nearly all created at
start-up and alive for good. CPython's full collections walk every one of them, and an upload allocates
enough short-lived objects (rows, records, hashes) to trigger them often: measured 4.3 ms of a 15 ms parse +
Merkle tree of a 1,000-record CSV was the collector. :func:`settle` moves what exists after start-up (or
after a lazily imported stack has loaded) out of the collector's sight with ``gc.freeze()``, and the young
generation threshold is raised so a burst of short-lived objects does not trigger collections by itself.
Reference counting still frees everything at once; only cycles wait a little longer.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["settle", "settle_once"]

_YOUNG_THRESHOLD = 10_000  # CPython's default is 700
_settled: set[str] = set()
_lock = threading.Lock()


def settle() -> None:
    """Collect once, then freeze every surviving object (they are never scanned again) and raise the young
    threshold. Cheap to call again: each call freezes what was created since."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_YOUNG_THRESHOLD, older, oldest)


def settle_once(stage: str) -> None:
    """:func:`settle` the first time this process reaches ``stage`` (e.g. once the analysis stack is loaded)."""
    with _lock:
        if stage in _settled:
            return
        _settled.add(stage)
    settle()
