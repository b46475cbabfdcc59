"""Versioned, hashed causal graphs and their on-disk store.

A :class:`CausalGraph` is identified by ``sha256`` over the RFC 8785 canonical JSON of
``{"variables": sorted, "edges": sorted, "constraints_sha256", "data_sha256"}``: the same data and
constraints give the same hash; any change to data, constraints or the learned edges changes it.
``method``/``params``/``created_at`` are recorded but not hashed (they describe, not identify).

:class:`GraphStore` keeps ``<root>/<name>/v0001-<hash12>.json`` files; loading re-computes the hash
and refuses a file whose content no longer matches (:class:`~models.errors.ModelIntegrityError`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import rfc8785

from models.causal.errors import GraphError
from models.errors import InvalidInput, ModelIntegrityError, UnknownVariable

__all__ = ["CausalGraph", "GraphStore", "columns_sha256", "data_sha256", "text_column_bytes"]


def data_sha256(data: pd.DataFrame) -> str:
    """Deterministic SHA-256 of a DataFrame's content: columns sorted by name, values by column.

    Numeric columns hash as little-endian float64 bytes; other columns as UTF-8 strings of the values.
    Row order matters (it is the order the data arrived in).
    """
    columns = []
    for col in sorted(map(str, data.columns)):
        s = data[col]
        if pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
            columns.append((col, [np.ascontiguousarray(s.to_numpy(dtype="<f8")).tobytes()]))
        else:
            columns.append((col, [text_column_bytes(s.tolist())]))
    return columns_sha256(len(data), columns)


def text_column_bytes(values: Iterable[Any]) -> bytes:
    """How :func:`data_sha256` hashes a non-numeric column: the values' strings joined by U+001F, UTF-8. The
    bytes of consecutive pieces of a column, joined by ``b"\\x1f"``, are those of the whole column."""
    return "\x1f".join(map(str, values)).encode("utf-8")


def columns_sha256(rows: int, columns: Iterable[tuple[str, Iterable[bytes]]]) -> str:
    """:func:`data_sha256` from each column's bytes given in pieces (columns sorted by name): what a caller
    holding a table in parts hashes without joining it first."""
    h = hashlib.sha256(f"rows={rows};".encode())
    for name, pieces in columns:
        h.update(f"col={name};".encode())
        for piece in pieces:
            h.update(piece)
    return h.hexdigest()


@dataclass(frozen=True)
class CausalGraph:
    """A DAG over named variables plus what it was learned from (constraints hash, data hash)."""

    variables: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    constraints_sha256: str = ""
    data_sha256: str = ""
    method: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def __post_init__(self) -> None:
        names = set(self.variables)
        if len(names) != len(self.variables):
            raise InvalidInput("duplicate variable names in graph", field="variables")
        for u, v in self.edges:
            for n in (u, v):
                if n not in names:
                    raise UnknownVariable(n, f"edge {u}->{v} names unknown variable {n!r}")
        if not nx.is_directed_acyclic_graph(self.to_networkx()):
            cycle = nx.find_cycle(self.to_networkx())
            raise GraphError(f"graph is cyclic: {cycle}", edge=(cycle[0][0], cycle[0][1]))

    @classmethod
    def build(cls, variables: Iterable[str], edges: Iterable[tuple[str, str]], **kw: Any) -> CausalGraph:
        """Construct with variables and edges sorted (canonical form)."""
        return cls(tuple(sorted(variables)), tuple(sorted((str(u), str(v)) for u, v in edges)), **kw)

    def identity(self) -> dict[str, Any]:
        """The hashed part: sorted variables and edges, constraints hash, data hash."""
        return {
            "variables": sorted(self.variables),
            "edges": sorted([list(e) for e in self.edges]),
            "constraints_sha256": self.constraints_sha256,
            "data_sha256": self.data_sha256,
        }

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical (RFC 8785) JSON of :meth:`identity`."""
        return hashlib.sha256(rfc8785.dumps(self.identity())).hexdigest()

    def to_networkx(self) -> nx.DiGraph:
        """A fresh ``networkx.DiGraph`` of this graph."""
        g = nx.DiGraph()
        g.add_nodes_from(self.variables)
        g.add_edges_from(self.edges)
        return g

    def parents(self, name: str) -> list[str]:
        """Sorted parents of ``name``; raises UnknownVariable."""
        if name not in self.variables:
            raise UnknownVariable(name, known=list(self.variables))
        return sorted(u for u, v in self.edges if v == name)

    def skeleton(self) -> set[frozenset[str]]:
        """Undirected adjacencies."""
        return {frozenset(e) for e in self.edges}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form including the hash and the descriptive metadata."""
        d = self.identity()
        d.update(
            {"sha256": self.sha256, "method": self.method, "params": dict(self.params), "created_at": self.created_at}
        )
        return d

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CausalGraph:
        """Inverse of :meth:`to_dict`; checks the recorded hash when present."""
        g = cls(
            tuple(doc["variables"]),
            tuple((str(u), str(v)) for u, v in doc["edges"]),
            constraints_sha256=doc.get("constraints_sha256", ""),
            data_sha256=doc.get("data_sha256", ""),
            method=doc.get("method", ""),
            params=doc.get("params", {}),
            created_at=doc.get("created_at", ""),
        )
        if "sha256" in doc and doc["sha256"] != g.sha256:
            raise ModelIntegrityError("<graph document>", str(doc["sha256"]), g.sha256)
        return g


_VERSION_RE = re.compile(r"^v(\d{4,})-([0-9a-f]{12})\.json$")


class GraphStore:
    """Directory of versioned graphs: ``<root>/<name>/v0001-<sha12>.json``.

    Saving a graph identical (same hash) to the latest version returns that version instead of
    writing a duplicate.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, name: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
            raise InvalidInput(f"graph name {name!r} must be [A-Za-z0-9_.-]+", field="name")
        return self.root / name

    def versions(self, name: str) -> list[int]:
        """Stored version numbers of graph ``name``, ascending (empty if none)."""
        d = self._dir(name)
        if not d.is_dir():
            return []
        return sorted(int(m.group(1)) for p in d.iterdir() if (m := _VERSION_RE.match(p.name)))

    def _path(self, name: str, version: int) -> Path:
        for p in self._dir(name).glob(f"v{version:04d}-*.json"):
            return p
        raise UnknownVariable(f"{name}@{version}", f"graph {name!r} has no version {version}")

    def save(self, name: str, graph: CausalGraph) -> int:
        """Store ``graph`` as the next version of ``name``; returns the version number."""
        vs = self.versions(name)
        if vs and self.load(name, vs[-1]).sha256 == graph.sha256:
            return vs[-1]
        version = (vs[-1] + 1) if vs else 1
        d = self._dir(name)
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"v{version:04d}-{graph.sha256[:12]}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(graph.to_dict(), indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
        return version

    def load(self, name: str, version: int | None = None) -> CausalGraph:
        """Load a version (default: latest); raises ModelIntegrityError if the file was altered."""
        vs = self.versions(name)
        if not vs:
            raise UnknownVariable(name, f"no stored graph named {name!r} in {self.root}")
        path = self._path(name, vs[-1] if version is None else version)
        doc = json.loads(path.read_text(encoding="utf-8"))
        g = CausalGraph.from_dict({k: v for k, v in doc.items() if k != "sha256"})
        m = _VERSION_RE.match(path.name)
        recorded = str(doc.get("sha256", ""))
        if recorded != g.sha256 or m is None or not recorded.startswith(m.group(2)):
            raise ModelIntegrityError(str(path), recorded, g.sha256)
        return g
