"""A small structural causal model (SCM) used to simulate manufacturing processes with known faults.

Each node is ``x = nominal + scale * sum_k coef_k * g_k(z_parents) + noise_sd * eps`` with
``z_p = (x_p - nominal_p) / scale_p`` and ``g`` one of ``lin`` (z), ``quad`` (z**2 - 1), ``tanh``
(tanh z), ``inter`` (z_a * z_b). Root nodes are ``nominal + noise_sd * eps``. Everything is vectorised
with numpy and deterministic given the seed.

Faults (applied to one node from row ``onset`` on; each labelled with its true root-cause variable):

- ``mean_shift``: the node's value moves by ``magnitude * scale``.
- ``drift``: the shift grows linearly from 0 to ``magnitude * scale`` over the faulty rows.
- ``variance``: the node's noise is multiplied by ``magnitude``.
- ``stuck_sensor``: the reading freezes at ``nominal + magnitude * scale`` (e.g. saturated at the end of
  its range) and the controller downstream acts on the frozen reading.
- ``material_lot``: a new lot of a material: its mean moves by ``magnitude * scale`` and its
  within-lot spread halves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd

from models.causal.constraints import CausalConstraints, Spec, Tier
from models.errors import InvalidInput, UnknownVariable

__all__ = ["FAULT_KINDS", "SCM", "Fault", "Node", "Term"]

FAULT_KINDS = ("mean_shift", "drift", "variance", "stuck_sensor", "material_lot")
_TERM_KINDS = ("lin", "quad", "tanh", "inter")


@dataclass(frozen=True)
class Term:
    """One additive term of a mechanism: ``coef * g(z_parent[, z_other])``."""

    parent: str
    kind: str
    coef: float
    other: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _TERM_KINDS:
            raise InvalidInput(f"term kind {self.kind!r} not in {_TERM_KINDS}", field="kind")
        if (self.kind == "inter") != (self.other is not None):
            raise InvalidInput("an 'inter' term needs exactly one 'other' parent", field="other")


@dataclass(frozen=True)
class Node:
    """A simulated variable: tier, nominal value, scale (typical spread), noise and mechanism terms."""

    name: str
    tier: Tier
    nominal: float
    scale: float
    noise: float = 1.0
    terms: tuple[Term, ...] = ()
    unit: str = ""
    spec_sigma: float | None = None

    @property
    def parents(self) -> list[str]:
        """Distinct parent names, in term order."""
        out: list[str] = []
        for t in self.terms:
            for p in (t.parent, t.other):
                if p is not None and p not in out:
                    out.append(p)
        return out

    @property
    def noise_sd(self) -> float:
        """Absolute standard deviation of the node's own noise."""
        return self.noise * self.scale


@dataclass(frozen=True)
class Fault:
    """An injected fault on ``variable`` from row ``onset`` on (see module docstring for the kinds)."""

    kind: str
    variable: str
    magnitude: float
    onset: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise InvalidInput(f"fault kind {self.kind!r} not in {FAULT_KINDS}", field="kind")


@dataclass
class SCM:
    """A process model: nodes in any order (sorted topologically on construction)."""

    name: str
    nodes: Sequence[Node]
    forbidden: Sequence[tuple[str, str]] = ()
    specs: dict[str, Spec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_name = {n.name: n for n in self.nodes}
        if len(by_name) != len(self.nodes):
            raise InvalidInput(f"duplicate node names in {self.name}", field="nodes")
        g = nx.DiGraph()
        g.add_nodes_from(by_name)
        for n in self.nodes:
            for p in n.parents:
                if p not in by_name:
                    raise UnknownVariable(p, f"node {n.name!r} has unknown parent {p!r}")
                g.add_edge(p, n.name)
        if not nx.is_directed_acyclic_graph(g):
            raise InvalidInput(f"process model {self.name} is cyclic", field="nodes")
        self.graph = g
        self.order = list(nx.lexicographical_topological_sort(g))
        self.by_name = by_name
        if not self.specs:
            self.specs = self._derive_specs()

    # --- structure -------------------------------------------------------------------------------
    @property
    def variables(self) -> list[str]:
        """Variable names in topological order."""
        return list(self.order)

    @property
    def edges(self) -> list[tuple[str, str]]:
        """True causal edges, sorted."""
        return sorted(self.graph.edges())

    @property
    def characteristics(self) -> list[str]:
        """Quality characteristics (tier ``quality``)."""
        return [n for n in self.order if self.by_name[n].tier is Tier.QUALITY]

    def constraints(self) -> CausalConstraints:
        """Expert constraints matching this model: tiers, forbidden edges, nominal values, spec limits."""
        return CausalConstraints(
            name=self.name,
            tiers={n.name: n.tier for n in self.nodes},
            forbidden=frozenset(self.forbidden),
            nominal={n.name: n.nominal for n in self.nodes},
            specs=dict(self.specs),
            units={n.name: n.unit for n in self.nodes if n.unit},
        )

    # --- sampling --------------------------------------------------------------------------------
    def sample(
        self, n: int, seed: int, fault: Fault | None = None, interventions: Mapping[str, float] | None = None
    ) -> pd.DataFrame:
        """Draw ``n`` rows (deterministic by ``seed``), optionally with a fault or hard interventions."""
        if n < 1:
            raise InvalidInput(f"n must be >= 1, got {n}", field="n")
        if fault is not None and fault.variable not in self.by_name:
            raise UnknownVariable(fault.variable, known=list(self.by_name))
        rng = np.random.default_rng(seed)
        eps = rng.standard_normal((n, len(self.order)))
        values: dict[str, np.ndarray] = {}
        rows = np.arange(n)
        for j, name in enumerate(self.order):
            node = self.by_name[name]
            noise = node.noise_sd * eps[:, j]
            faulty = fault is not None and fault.variable == name
            mask = rows >= (fault.onset if fault is not None else 0)
            if faulty and fault is not None and fault.kind == "variance":
                noise = np.where(mask, noise * fault.magnitude, noise)
            if faulty and fault is not None and fault.kind == "material_lot":
                noise = np.where(mask, noise * 0.5, noise)
            x = node.nominal + self._mechanism(node, values) + noise
            if faulty and fault is not None:
                shift = fault.magnitude * node.scale
                if fault.kind in ("mean_shift", "material_lot"):
                    x = np.where(mask, x + shift, x)
                elif fault.kind == "drift":
                    ramp = np.clip((rows - fault.onset + 1) / max(n - fault.onset, 1), 0.0, 1.0)
                    x = x + shift * ramp
                elif fault.kind == "stuck_sensor":
                    x = np.where(mask, node.nominal + shift, x)
            if interventions and name in interventions:
                x = np.full(n, float(interventions[name]))
            values[name] = x
        return pd.DataFrame({k: values[k] for k in self.order})

    def _mechanism(self, node: Node, values: Mapping[str, np.ndarray]) -> np.ndarray | float:
        if not node.terms:
            return 0.0
        total: np.ndarray | float = 0.0
        for t in node.terms:
            pa = self.by_name[t.parent]
            z = (values[t.parent] - pa.nominal) / pa.scale
            if t.kind == "lin":
                g = z
            elif t.kind == "quad":
                g = z * z - 1.0
            elif t.kind == "tanh":
                g = np.tanh(z)
            else:
                assert t.other is not None
                ot = self.by_name[t.other]
                g = z * (values[t.other] - ot.nominal) / ot.scale
            total = total + t.coef * g
        return node.scale * total

    def _derive_specs(self) -> dict[str, Spec]:
        """Spec limits ``mean +/- spec_sigma * sd`` from a fixed in-control run (rounded, deterministic)."""
        chars = [n for n in self.nodes if n.spec_sigma is not None]
        if not chars:
            return {}
        df = self.sample(4000, seed=12345)
        out = {}
        for n in chars:
            assert n.spec_sigma is not None
            m, s = float(df[n.name].mean()), float(df[n.name].std())
            digits = max(0, 2 - int(np.floor(np.log10(max(s, 1e-12)))))
            out[n.name] = Spec(round(m - n.spec_sigma * s, digits), round(m + n.spec_sigma * s, digits))
        return out
