"""Errors specific to the causal core; all are :class:`models.errors.ModelError` subclasses.

Tree (the shared root lives in :mod:`models.errors`)::

    ModelError
    ├── InvalidInput
    │   ├── ConstraintError      FMEA/constraint file malformed or contradictory (field)
    │   └── GraphError           graph is cyclic or breaks the expert constraints (edge)
    ├── InsufficientData         too few rows to learn/fit (needed, got, what)
    └── UnknownVariable          variable not in the graph/model (name)
"""

from __future__ import annotations

from models.errors import InvalidInput

__all__ = ["ConstraintError", "GraphError"]


class ConstraintError(InvalidInput):
    """The expert constraints (FMEA YAML or dict) are malformed or contradict each other."""

    code = "invalid_constraints"


class GraphError(InvalidInput):
    """A causal graph is cyclic or violates the expert constraints; ``edge`` names the culprit."""

    code = "invalid_graph"

    def __init__(self, message: str, edge: tuple[str, str] | None = None) -> None:
        super().__init__(message, field=None if edge is None else f"{edge[0]}->{edge[1]}")
        self.edge = edge
