"""Manufacturing process simulator with ground-truth causal structure and injected, labelled faults.

Public surface: :class:`SCM` (+ :class:`Node`, :class:`Term`, :class:`Fault`), the shipped process
models (:func:`get_process`, :data:`PROCESS_MODELS`), :func:`random_process` for large benchmarks and
:func:`make_cases` for labelled root-cause cases.
"""

from models.simulate.cases import FaultCase, make_cases, training_data
from models.simulate.processes import PROCESS_MODELS, get_process, random_process
from models.simulate.scm import FAULT_KINDS, SCM, Fault, Node, Term

__all__ = [
    "FAULT_KINDS",
    "PROCESS_MODELS",
    "SCM",
    "Fault",
    "FaultCase",
    "Node",
    "Term",
    "get_process",
    "make_cases",
    "random_process",
    "training_data",
]
