"""What an engineer knows about a process: tiers as a partial order, discrete variables, a known graph.

Three JSON documents (formats in ``docs/analysis.md``):

- **TIERS.json** ``{"order": [["material", "environment"], "equipment", "process", "intermediate",
  "quality"], "variables": {name: tier}, "categorical": [names], "required": [[u, v]], "forbidden": [[u, v]],
  "symptoms": ["quality"]}``. ``order`` lists ranks, earliest first; tiers in one inner list share a rank
  (a partial order: neither precedes the other). An edge ``u -> v`` is allowed when ``rank(u) <= rank(v)``,
  ``u`` is not a symptom tier and the pair is not forbidden. Symptom tiers (default ``quality``) are
  outputs: never returned as root causes and never causes of a non-symptom (one output may drive another).
- **DAG.json** ``{"nodes": [{"name", "tier", "observed": true, "categorical": false}], "edges": [[u, v]],
  "bidirected": [[u, v]]}``: a complete known graph. Unobserved nodes are projected out: each pair of their
  observed children gets a bidirected edge (a hidden confounder), edges from an observed node through a
  hidden one become direct edges.
- **SPEC.json** ``{name: {"lsl": x, "usl": y, "nominal": z}}`` (any key optional).

Worked example: with ``order = [["material", "environment"], "process", "quality"]`` the edge
``humidity (environment) -> viscosity (material)`` is allowed (same rank), ``temperature (process) ->
viscosity (material)`` is not, and nothing leaves ``thickness (quality)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.causal.constraints import Spec
from models.causal.errors import ConstraintError, GraphError

__all__ = [
    "DEFAULT_ORDER",
    "KnownGraph",
    "ProcessKnowledge",
    "load_json",
    "specs_from_doc",
]

DEFAULT_ORDER: tuple[tuple[str, ...], ...] = (
    ("material", "environment"),
    ("equipment",),
    ("process",),
    ("intermediate",),
    ("quality",),
)


def load_json(path: str | Path, what: str) -> Any:
    """Read a JSON document, naming the file and the problem on failure."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConstraintError(f"cannot read {what} file {p}: {exc.strerror}", field=str(p)) from exc
    except json.JSONDecodeError as exc:
        raise ConstraintError(f"{what} file {p} is not valid JSON: {exc}", field=str(p)) from exc


def _pairs(raw: Any, key: str) -> frozenset[tuple[str, str]]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        raise ConstraintError(f"{key} must be a list of [from, to] pairs", field=key)
    out = set()
    for e in raw:
        if not isinstance(e, list | tuple) or len(e) != 2 or not all(isinstance(x, str) for x in e):
            raise ConstraintError(f"{key} entries must be [from, to] name pairs, got {e!r}", field=key)
        out.add((e[0], e[1]))
    return frozenset(out)


@dataclass(frozen=True)
class KnownGraph:
    """A complete graph over the observed variables: directed edges plus bidirected (confounded) pairs."""

    nodes: tuple[str, ...]
    edges: frozenset[tuple[str, str]]
    bidirected: frozenset[tuple[str, str]] = frozenset()
    tiers: Mapping[str, str] = field(default_factory=dict)
    categorical: frozenset[str] = frozenset()

    @classmethod
    def from_doc(cls, doc: Any) -> KnownGraph:
        """Build from a DAG.json document; hidden nodes are projected out (see module docstring)."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("nodes"), list) or not doc["nodes"]:
            raise GraphError("DAG document needs a non-empty 'nodes' list")
        observed: dict[str, bool] = {}
        tiers: dict[str, str] = {}
        cats: set[str] = set()
        for i, n in enumerate(doc["nodes"]):
            if isinstance(n, str):
                n = {"name": n}
            if not isinstance(n, Mapping) or not isinstance(n.get("name"), str):
                raise GraphError(f"nodes[{i}] needs a string 'name'")
            name = n["name"]
            if name in observed:
                raise GraphError(f"node {name!r} is listed twice")
            observed[name] = bool(n.get("observed", True))
            if "tier" in n:
                tiers[name] = str(n["tier"])
            if n.get("categorical"):
                cats.add(name)
        edges = _pairs(doc.get("edges"), "edges")
        bi = _pairs(doc.get("bidirected"), "bidirected")
        for u, v in edges | bi:
            for x in (u, v):
                if x not in observed:
                    raise GraphError(f"edge {u}->{v} names unknown node {x!r}")
        kids: dict[str, set[str]] = {n: set() for n in observed}
        for u, v in edges:
            kids[u].add(v)
        _check_acyclic(list(observed), edges)

        def observed_below(h: str, seen: set[str]) -> set[str]:
            out: set[str] = set()
            for c in kids[h]:
                if c in seen:
                    continue
                seen.add(c)
                out |= {c} if observed[c] else observed_below(c, seen)
            return out

        obs_edges = {(u, v) for u, v in edges if observed[u] and observed[v]}
        for u, v in edges:  # u -> hidden -> ... -> v collapses to u -> v
            if observed[u] and not observed[v]:
                obs_edges |= {(u, w) for w in observed_below(v, set())}
        conf = {(a, b) for a, b in bi if observed[a] and observed[b]}
        for h in (n for n, o in observed.items() if not o):
            below = sorted(observed_below(h, set()))
            conf |= {(a, b) for i, a in enumerate(below) for b in below[i + 1 :]}
        conf = {tuple(sorted(p)) for p in conf if p[0] != p[1]}  # type: ignore[misc]
        names = tuple(n for n, o in observed.items() if o)
        return cls(
            names,
            frozenset(obs_edges),
            frozenset(conf),
            {k: v for k, v in tiers.items() if observed[k]},
            frozenset(c for c in cats if observed[c]),
        )

    def parents(self, name: str) -> list[str]:
        """Direct causes of ``name`` (sorted)."""
        return sorted(u for u, v in self.edges if v == name)


def _check_acyclic(nodes: list[str], edges: Iterable[tuple[str, str]]) -> None:
    indeg = dict.fromkeys(nodes, 0)
    kids: dict[str, list[str]] = {n: [] for n in nodes}
    for u, v in edges:
        indeg[v] += 1
        kids[u].append(v)
    stack = [n for n, d in indeg.items() if d == 0]
    seen = 0
    while stack:
        n = stack.pop()
        seen += 1
        for c in kids[n]:
            indeg[c] -= 1
            if indeg[c] == 0:
                stack.append(c)
    if seen != len(nodes):
        cyc = sorted(n for n, d in indeg.items() if d > 0)
        raise GraphError(f"graph has a cycle through {', '.join(cyc[:6])}")


@dataclass(frozen=True)
class ProcessKnowledge:
    """Tiers (partial order), discrete variables, required/forbidden edges and symptom tiers."""

    tiers: Mapping[str, str]
    order: tuple[tuple[str, ...], ...] = DEFAULT_ORDER
    categorical: frozenset[str] = frozenset()
    required: frozenset[tuple[str, str]] = frozenset()
    forbidden: frozenset[tuple[str, str]] = frozenset()
    symptoms: frozenset[str] = frozenset({"quality"})

    def __post_init__(self) -> None:
        ranks = {t for grp in self.order for t in grp}
        unknown = sorted({t for t in self.tiers.values() if t not in ranks})
        if unknown:
            raise ConstraintError(f"tier(s) {unknown} are not in the tier order {self._order_text()}", field="order")
        for kind, pairs in (("required", self.required), ("forbidden", self.forbidden)):
            for u, v in pairs:
                for n in (u, v):
                    if n not in self.tiers:
                        raise ConstraintError(f"{kind} edge {u}->{v} names unknown variable {n!r}", field=kind)
        for u, v in self.required:
            if not self.allows(u, v):
                raise ConstraintError(
                    f"required edge {u}->{v} contradicts the tier order or is forbidden", field="required"
                )

    def _order_text(self) -> str:
        return " < ".join("/".join(g) for g in self.order)

    def rank(self, name: str) -> int:
        """Rank of the variable's tier (variables without a tier rank just before the symptoms)."""
        tier = self.tiers.get(name)
        for i, grp in enumerate(self.order):
            if tier in grp:
                return i
        return max(len(self.order) - 2, 0)

    def is_symptom(self, name: str) -> bool:
        """True for an output variable (never a root cause)."""
        return self.tiers.get(name) in self.symptoms

    def allows(self, u: str, v: str) -> bool:
        """True when the edge ``u -> v`` is permitted."""
        if u == v or (u, v) in self.forbidden or (self.is_symptom(u) and not self.is_symptom(v)):
            return False
        return self.rank(u) <= self.rank(v) and v not in self.categorical

    @classmethod
    def from_doc(cls, doc: Any, *, variables: Iterable[str] = ()) -> ProcessKnowledge:
        """Build from a TIERS.json document; ``variables`` without a tier default to ``process``."""
        if not isinstance(doc, Mapping):
            raise ConstraintError("tiers document must be a JSON object", field="")
        raw_order = doc.get("order", [list(g) for g in DEFAULT_ORDER])
        if not isinstance(raw_order, list) or not raw_order:
            raise ConstraintError("'order' must be a non-empty list of tier names or lists of them", field="order")
        order = tuple(tuple(g) if isinstance(g, list) else (str(g),) for g in raw_order)
        tiers_raw = doc.get("variables", {})
        if not isinstance(tiers_raw, Mapping):
            raise ConstraintError("'variables' must map variable names to tiers", field="variables")
        tiers = {str(k): str(v if isinstance(v, str) else v.get("tier", "process")) for k, v in tiers_raw.items()}
        for v in variables:
            tiers.setdefault(v, "process")
        cats = doc.get("categorical", [])
        if not isinstance(cats, list):
            raise ConstraintError("'categorical' must be a list of variable names", field="categorical")
        symptoms = doc.get("symptoms", ["quality"])
        return cls(
            tiers=tiers,
            order=order,
            categorical=frozenset(map(str, cats)),
            required=_pairs(doc.get("required"), "required"),
            forbidden=_pairs(doc.get("forbidden"), "forbidden"),
            symptoms=frozenset(map(str, symptoms)),
        )

    @classmethod
    def from_graph(cls, graph: KnownGraph, *, order: tuple[tuple[str, ...], ...] = DEFAULT_ORDER) -> ProcessKnowledge:
        """Knowledge implied by a known graph's node tiers (nodes without a tier: ``process``)."""
        tiers = {n: graph.tiers.get(n, "process") for n in graph.nodes}
        known = {t for g in order for t in g}
        extra = tuple((t,) for t in sorted(set(tiers.values()) - known))
        return cls(tiers=tiers, order=extra + order if extra else order, categorical=graph.categorical)


def specs_from_doc(doc: Any) -> tuple[dict[str, Spec], dict[str, float]]:
    """SPEC.json -> (specs, nominal values)."""
    if not isinstance(doc, Mapping):
        raise ConstraintError("spec document must be a JSON object of {variable: {lsl, usl, nominal}}", field="")
    specs: dict[str, Spec] = {}
    nominal: dict[str, float] = {}
    for name, d in doc.items():
        if not isinstance(d, Mapping):
            raise ConstraintError(f"spec of {name!r} must be an object", field=str(name))
        try:
            lsl = None if d.get("lsl") is None else float(d["lsl"])
            usl = None if d.get("usl") is None else float(d["usl"])
            if "nominal" in d:
                nominal[str(name)] = float(d["nominal"])
        except (TypeError, ValueError):
            raise ConstraintError(f"spec of {name!r} has a non-numeric limit", field=str(name)) from None
        if lsl is not None and usl is not None and lsl >= usl:
            raise ConstraintError(f"spec of {name!r}: lsl {lsl} >= usl {usl}", field=str(name))
        if lsl is not None or usl is not None:
            specs[str(name)] = Spec(lsl, usl)
    return specs, nominal
