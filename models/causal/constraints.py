"""Expert constraints ("FMEA") on the causal graph: variable tiers, forbidden and required edges.

Every variable is tagged with a :class:`Tier`. Edges may only run from an earlier tier to the same or a
later tier (``material -> environment -> equipment -> process -> quality`` by default); quality
characteristics are terminal unless ``quality_to_quality`` is set, so nothing flows out of a quality
characteristic back into the process. Forbidden edges are removed, required edges are forced.

YAML layout (see ``models/fmea/*.yaml``)::

    name: plasma_deposition
    tier_order: [material, environment, equipment, process, quality]   # optional
    quality_to_quality: false                                          # optional
    variables:
      rf_power:          {tier: process, nominal: 500.0, unit: W}
      breakdown_voltage: {tier: quality, lsl: 180.0, usl: 260.0, unit: V}
    forbidden: [[chamber_humidity, rf_power]]
    required:  [[rf_power, film_density]]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from models.base import sha256_json
from models.causal.errors import ConstraintError
from models.errors import UnknownVariable

__all__ = [
    "DEFAULT_TIER_ORDER",
    "CausalConstraints",
    "Spec",
    "Tier",
    "load_constraints",
]


class Tier(StrEnum):
    """Kind of a variable; the tier order decides which edge directions are allowed."""

    MATERIAL = "material"
    ENVIRONMENT = "environment"
    EQUIPMENT = "equipment"
    PROCESS = "process"
    QUALITY = "quality"


DEFAULT_TIER_ORDER: tuple[Tier, ...] = (
    Tier.MATERIAL,
    Tier.ENVIRONMENT,
    Tier.EQUIPMENT,
    Tier.PROCESS,
    Tier.QUALITY,
)


@dataclass(frozen=True)
class Spec:
    """Specification limits of a quality characteristic (either limit may be open)."""

    lsl: float | None = None
    usl: float | None = None

    def contains(self, value: float) -> bool:
        """True when ``value`` lies inside ``[lsl, usl]``."""
        return (self.lsl is None or value >= self.lsl) and (self.usl is None or value <= self.usl)

    def margin(self, value: float) -> float:
        """Signed distance to the nearest limit, positive inside the spec (in the variable's units)."""
        m = math.inf
        if self.lsl is not None:
            m = min(m, value - self.lsl)
        if self.usl is not None:
            m = min(m, self.usl - value)
        return m


@dataclass(frozen=True)
class CausalConstraints:
    """Tiers, forbidden/required edges and optional nominal values / spec limits for a process model.

    ``allows(u, v)`` answers whether the directed edge ``u -> v`` is permitted.
    """

    name: str
    tiers: Mapping[str, Tier]
    tier_order: tuple[Tier, ...] = DEFAULT_TIER_ORDER
    forbidden: frozenset[tuple[str, str]] = frozenset()
    required: frozenset[tuple[str, str]] = frozenset()
    quality_to_quality: bool = False
    nominal: Mapping[str, float] = field(default_factory=dict)
    specs: Mapping[str, Spec] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [t for t in set(self.tiers.values()) if t not in self.tier_order]
        if missing:
            raise ConstraintError(f"tier(s) {sorted(missing)} are not in tier_order", field="tier_order")
        for kind, edges in (("forbidden", self.forbidden), ("required", self.required)):
            for u, v in edges:
                for n in (u, v):
                    if n not in self.tiers:
                        raise ConstraintError(f"{kind} edge {u}->{v} names unknown variable {n!r}", field=kind)
        for u, v in self.required:
            if not self._allowed_by_tiers(u, v) or (u, v) in self.forbidden:
                raise ConstraintError(
                    f"required edge {u}->{v} is forbidden by tiers or forbidden list", field="required"
                )
        for name in self.specs:
            if name not in self.tiers:
                raise ConstraintError(f"spec given for unknown variable {name!r}", field="variables")

    # --- queries ---------------------------------------------------------------------------------
    @property
    def variables(self) -> list[str]:
        """Variables in tier order, then by name (deterministic)."""
        return sorted(self.tiers, key=lambda n: (self.rank(n), n))

    def rank(self, name: str) -> int:
        """Position of the variable's tier in ``tier_order``."""
        try:
            return self.tier_order.index(self.tiers[name])
        except KeyError:
            raise UnknownVariable(name, known=list(self.tiers)) from None

    def tier(self, name: str) -> Tier:
        """Tier of ``name``; raises UnknownVariable."""
        if name not in self.tiers:
            raise UnknownVariable(name, known=list(self.tiers))
        return self.tiers[name]

    def _allowed_by_tiers(self, u: str, v: str) -> bool:
        ru, rv = self.rank(u), self.rank(v)
        if ru > rv:
            return False
        return not (self.tiers[u] is Tier.QUALITY and not self.quality_to_quality)

    def allows(self, u: str, v: str) -> bool:
        """True when the directed edge ``u -> v`` is permitted by tiers and the forbidden list."""
        return u != v and self._allowed_by_tiers(u, v) and (u, v) not in self.forbidden

    def temporal_order(self, variables: Iterable[str] | None = None) -> list[list[str]]:
        """Variables grouped by tier, earliest first (pgmpy ``ExpertKnowledge.temporal_order``)."""
        names = set(self.tiers if variables is None else variables)
        out = [sorted(n for n in names if self.tiers[n] is t) for t in self.tier_order]
        return [grp for grp in out if grp]

    def subset(self, variables: Iterable[str]) -> CausalConstraints:
        """Constraints restricted to ``variables`` (unknown names raise UnknownVariable)."""
        keep = set(variables)
        for n in keep:
            self.tier(n)
        return CausalConstraints(
            name=self.name,
            tiers={n: t for n, t in self.tiers.items() if n in keep},
            tier_order=self.tier_order,
            forbidden=frozenset(e for e in self.forbidden if set(e) <= keep),
            required=frozenset(e for e in self.required if set(e) <= keep),
            quality_to_quality=self.quality_to_quality,
            nominal={k: v for k, v in self.nominal.items() if k in keep},
            specs={k: v for k, v in self.specs.items() if k in keep},
            units={k: v for k, v in self.units.items() if k in keep},
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able form (sorted, so it hashes deterministically)."""
        variables: dict[str, dict[str, Any]] = {}
        for n in sorted(self.tiers):
            d: dict[str, Any] = {"tier": self.tiers[n].value}
            if n in self.nominal:
                d["nominal"] = self.nominal[n]
            if n in self.specs:
                if self.specs[n].lsl is not None:
                    d["lsl"] = self.specs[n].lsl
                if self.specs[n].usl is not None:
                    d["usl"] = self.specs[n].usl
            if n in self.units:
                d["unit"] = self.units[n]
            variables[n] = d
        return {
            "name": self.name,
            "tier_order": [t.value for t in self.tier_order],
            "quality_to_quality": self.quality_to_quality,
            "variables": variables,
            "forbidden": sorted([list(e) for e in self.forbidden]),
            "required": sorted([list(e) for e in self.required]),
        }

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON form; part of every learned graph's hash."""
        return sha256_json(self.to_dict())

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CausalConstraints:
        """Build from the YAML/JSON document layout described in the module docstring."""
        if not isinstance(doc, Mapping):
            raise ConstraintError("constraints document must be a mapping", field="")
        variables = doc.get("variables")
        if not isinstance(variables, Mapping) or not variables:
            raise ConstraintError("constraints need a non-empty 'variables' mapping", field="variables")
        try:
            order = tuple(Tier(t) for t in doc.get("tier_order", [t.value for t in DEFAULT_TIER_ORDER]))
        except ValueError as exc:
            raise ConstraintError(f"bad tier in tier_order: {exc}", field="tier_order") from exc
        tiers: dict[str, Tier] = {}
        nominal: dict[str, float] = {}
        specs: dict[str, Spec] = {}
        units: dict[str, str] = {}
        for name, spec in variables.items():
            if isinstance(spec, str):
                spec = {"tier": spec}
            if not isinstance(spec, Mapping) or "tier" not in spec:
                raise ConstraintError(f"variable {name!r} needs a 'tier'", field=f"variables.{name}")
            try:
                tiers[str(name)] = Tier(spec["tier"])
            except ValueError:
                raise ConstraintError(
                    f"variable {name!r} has unknown tier {spec['tier']!r} (expected one of {[t.value for t in Tier]})",
                    field=f"variables.{name}.tier",
                ) from None
            if "nominal" in spec:
                nominal[str(name)] = float(spec["nominal"])
            if "lsl" in spec or "usl" in spec:
                lsl = None if spec.get("lsl") is None else float(spec["lsl"])
                usl = None if spec.get("usl") is None else float(spec["usl"])
                if lsl is not None and usl is not None and lsl >= usl:
                    raise ConstraintError(f"variable {name!r}: lsl {lsl} >= usl {usl}", field=f"variables.{name}")
                specs[str(name)] = Spec(lsl, usl)
            if "unit" in spec:
                units[str(name)] = str(spec["unit"])

        def _edges(key: str) -> frozenset[tuple[str, str]]:
            raw = doc.get(key) or []
            out = set()
            for e in raw:
                if not isinstance(e, list | tuple) or len(e) != 2:
                    raise ConstraintError(f"{key} entries must be [from, to] pairs, got {e!r}", field=key)
                out.add((str(e[0]), str(e[1])))
            return frozenset(out)

        return cls(
            name=str(doc.get("name", "unnamed")),
            tiers=tiers,
            tier_order=order,
            forbidden=_edges("forbidden"),
            required=_edges("required"),
            quality_to_quality=bool(doc.get("quality_to_quality", False)),
            nominal=nominal,
            specs=specs,
            units=units,
        )


def load_constraints(path: str | Path) -> CausalConstraints:
    """Load FMEA constraints from a YAML file (layout in the module docstring)."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConstraintError(f"cannot read constraints file {p}: {exc}", field=str(p)) from exc
    except yaml.YAMLError as exc:
        raise ConstraintError(f"constraints file {p} is not valid YAML: {exc}", field=str(p)) from exc
    return CausalConstraints.from_dict(doc)
