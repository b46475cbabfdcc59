"""Root-cause benchmark material: process models written from published process physics, with faults.

Separate from the demo simulator (:mod:`models.simulate`) and never imported by product code: it is the
yard-stick, not the engine. See :mod:`models.bench.processes` for the six processes and
:mod:`models.bench.cases` for the labelled fault cases.
"""

from models.bench.cases import FAULT_KINDS, Case, make_cases
from models.bench.processes import DEV, HELDOUT, PROCESSES, BenchProcess, get

__all__ = ["DEV", "FAULT_KINDS", "HELDOUT", "PROCESSES", "BenchProcess", "Case", "get", "make_cases"]
