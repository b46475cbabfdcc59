"""Six process models for the root-cause benchmark, each written from published process physics.

Every process has 19-21 observed variables over the tiers material, environment, equipment, process,
intermediate and quality, one or more categorical variables (lot, machine, cavity, operator), at least one
unobserved confounder, non-linear mechanisms with saturations, interactions and thresholds,
heteroscedastic noise and time structure (AR(1) noise, slow wander of roots, a tool-wear saw-tooth), and a
few "harmless" variables with no path to any quality output (where concurrent changes are injected).

- ``thermal_oxidation``: wet oxidation of silicon, Deal-Grove growth law with Arrhenius rate constants
  (Deal & Grove, J. Appl. Phys. 36, 3770 (1965): B/A and B with activation energies 2.05 and 0.78 eV).
- ``cvd_polysilicon``: LPCVD polysilicon; surface-reaction vs mass-transport limited deposition
  (``1/r = 1/k_s + 1/h_g``, ``k_s`` Arrhenius 1.7 eV), crystallisation threshold near 600 degC for grain size.
- ``electrode_calendering``: Li-ion electrode coating, drying and calendering; porosity vs line load
  follows an exponential compaction law (Meyer et al., J. Mater. Process. Technol. 249 (2017) 172-178).
- ``tempering``: quench and temper of a medium-carbon steel; as-quenched hardness from carbon content and
  a hardenability threshold (section vs critical diameter), tempered hardness from the Hollomon-Jaffe
  parameter ``P = T (C + log10 t)`` (Hollomon & Jaffe, Trans. AIME 162 (1945) 223).
- ``injection_moulding``: shrinkage from pack pressure, melt and mould temperature (PVT behaviour) with
  gate freeze-off limiting the effective pack time; splay above a resin-moisture threshold.
- ``machining_finish``: turning; kinematic roughness ``Ra = f^2 / (32 r)``, Taylor tool wear
  (``V T^n = C``), Kienzle cutting force, a chatter stability limit on depth of cut, built-up edge at low
  cutting speed.

**Split, fixed before any tuning**: ``HELDOUT = (injection_moulding, machining_finish)``; the engine was
developed on ``DEV`` only, and the held-out models are scored only in the final benchmark run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

__all__ = ["DEV", "HELDOUT", "PROCESSES", "BenchProcess", "Fault", "Var", "get"]

Ctx = Mapping[str, np.ndarray]
K_B = 8.617e-5  # Boltzmann constant, eV/K


def relu(x: np.ndarray) -> np.ndarray:
    """max(0, x): a threshold mechanism."""
    return np.maximum(x, 0.0)


def sig(x: np.ndarray) -> np.ndarray:
    """Logistic step: a smooth threshold."""
    return 1.0 / (1.0 + np.exp(-x))


def lvl(effects: list[float], code: np.ndarray) -> np.ndarray:
    """Effect of a categorical level; a level never seen (a new lot) gets the last level's effect."""
    return np.asarray(effects, dtype=float)[np.minimum(code.astype(int), len(effects) - 1)]


@dataclass(frozen=True)
class Var:
    """One variable: ``x = f(parents) + sd(parents) * e`` with ``e`` an AR(1) series of unit variance."""

    name: str
    tier: str
    parents: tuple[str, ...] = ()
    f: Callable[[Ctx], np.ndarray] | None = None
    mean: float = 0.0
    sd: float | Callable[[Ctx], np.ndarray] = 1.0
    ar: float = 0.0
    observed: bool = True
    levels: int = 0
    switch: float = 0.0
    resolution: float = 0.0
    harmless: bool = False
    gen: Callable[[int, np.random.Generator], np.ndarray] | None = None

    @property
    def categorical(self) -> bool:
        """True for a discrete variable (machine, lot, cavity, operator)."""
        return self.levels > 0


@dataclass(frozen=True)
class Fault:
    """A change injected into a batch from row ``onset`` on.

    ``kind``: ``mean_shift`` / ``drift`` (ramp to ``magnitude`` at the last row) / ``variance`` (noise times
    ``magnitude``) / ``stuck`` (the sensor repeats its reading at ``onset``) / ``material_lot`` (a lot never
    seen before; its material property shifts by ``magnitude``) / ``mechanism`` (``f`` changes:
    ``f + gain (f - f_ref) + magnitude``) / ``new_level`` (a categorical variable shows a level never seen).
    """

    kind: str
    var: str
    magnitude: float = 0.0
    onset: int = 0
    gain: float = 0.0


@dataclass
class BenchProcess:
    """A process model: variables in a causal order, its lot variable and the material property it sets."""

    name: str
    vars: list[Var]
    lot: tuple[str, str]
    reference: str
    by_name: dict[str, Var] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {v.name: v for v in self.vars}
        seen: set[str] = set()
        for v in self.vars:
            missing = [p for p in v.parents if p not in seen]
            if missing:
                raise ValueError(f"{self.name}: {v.name} uses {missing} before they are defined")
            seen.add(v.name)

    # --- structure -----------------------------------------------------------------------------------
    @property
    def observed(self) -> list[str]:
        """Observed variable names, in causal order."""
        return [v.name for v in self.vars if v.observed]

    @property
    def categorical(self) -> list[str]:
        """Observed categorical variables."""
        return [v.name for v in self.vars if v.observed and v.categorical]

    @property
    def quality(self) -> list[str]:
        """Quality outputs (symptoms, never root causes)."""
        return [v.name for v in self.vars if v.tier == "quality"]

    @property
    def harmless(self) -> list[str]:
        """Variables with no path to a quality output."""
        return [v.name for v in self.vars if v.harmless]

    def edges(self) -> list[tuple[str, str]]:
        """All directed edges, including those out of hidden variables."""
        return [(p, v.name) for v in self.vars for p in v.parents]

    def observed_edges(self) -> set[tuple[str, str]]:
        """Directed edges between observed variables (the truth for skeleton F1)."""
        obs = set(self.observed)
        return {(u, v) for u, v in self.edges() if u in obs and v in obs}

    def bidirected(self) -> set[tuple[str, str]]:
        """Pairs of observed variables sharing a hidden parent (latent projection)."""
        out: set[tuple[str, str]] = set()
        for h in (v.name for v in self.vars if not v.observed):
            kids = sorted(c for c, vv in self.by_name.items() if h in vv.parents and vv.observed)
            out |= {(a, b) for i, a in enumerate(kids) for b in kids[i + 1 :]}
        return out

    def dag_doc(self) -> dict[str, Any]:
        """The true graph in the DAG.json format of ``docs/analysis.md``."""
        return {
            "nodes": [
                {"name": v.name, "tier": v.tier, "observed": v.observed, "categorical": v.categorical}
                for v in self.vars
            ],
            "edges": [list(e) for e in self.edges()],
            "bidirected": [list(e) for e in sorted(self.bidirected())],
        }

    def tiers_doc(self) -> dict[str, Any]:
        """Tiers of the observed variables in the TIERS.json format (a partial order)."""
        return {
            "order": [["material", "environment"], "equipment", "process", "intermediate", "quality"],
            "variables": {v.name: v.tier for v in self.vars if v.observed},
            "categorical": self.categorical,
        }

    def reaches_quality(self, name: str) -> bool:
        """True when ``name`` has a directed path to some quality output."""
        kids: dict[str, list[str]] = {}
        for u, v in self.edges():
            kids.setdefault(u, []).append(v)
        stack, seen = [name], {name}
        while stack:
            for c in kids.get(stack.pop(), []):
                if self.by_name[c].tier == "quality":
                    return True
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        return False

    # --- calibration (what a fault's size is measured in) -------------------------------------------
    @cached_property
    def calibration(self) -> dict[str, dict[str, float]]:
        """Per variable: sd of its true value, mean of ``f`` and mean noise sd under normal operation."""
        _, true, parts = self._run(6000, np.random.default_rng(12345), ())
        out = {}
        for v in self.vars:
            f_mean, noise_sd = parts[v.name]
            out[v.name] = {"sd": float(np.std(true[v.name])) or 1.0, "f_mean": f_mean, "noise_sd": noise_sd}
        return out

    def spec(self) -> dict[str, dict[str, float]]:
        """Specification limits of the quality outputs: normal mean +/- 4 sd (SPEC.json format)."""
        _, true, _ = self._run(6000, np.random.default_rng(999), ())
        return {
            q: {"lsl": float(true[q].mean() - 4 * true[q].std()), "usl": float(true[q].mean() + 4 * true[q].std())}
            for q in self.quality
        }

    # --- simulation ------------------------------------------------------------------------------------
    def simulate(self, n: int, rng: np.random.Generator, faults: tuple[Fault, ...] = ()) -> pd.DataFrame:
        """``n`` consecutive rows (time order) of the observed variables as measured."""
        return self._run(n, rng, faults)[0]

    def _run(
        self, n: int, rng: np.random.Generator, faults: tuple[Fault, ...]
    ) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, tuple[float, float]]]:
        by_var: dict[str, list[Fault]] = {}
        for flt in faults:
            by_var.setdefault(flt.var, []).append(flt)
        ctx: dict[str, np.ndarray] = {}
        parts: dict[str, tuple[float, float]] = {}
        t = np.arange(n)
        lot_var, lot_prop = self.lot
        for v in self.vars:
            fl = by_var.get(v.name, [])
            if v.categorical:
                x = _categorical(n, v, rng)
                for flt in fl:
                    if flt.kind in ("material_lot", "new_level"):
                        x[flt.onset :] = v.levels  # a level never seen in normal operation
                ctx[v.name] = x
                parts[v.name] = (0.0, 0.0)
                continue
            if v.gen is not None:
                base = v.gen(n, rng)
            elif v.f is None:
                base = np.full(n, v.mean)
            else:
                base = np.asarray(v.f(ctx), dtype=float) * np.ones(n)
            sd = np.asarray(v.sd(ctx) if callable(v.sd) else v.sd, dtype=float) * np.ones(n)
            e = _ar1(n, v.ar, rng)
            noise = sd * e
            f_val = base.copy()
            on = np.zeros(n, dtype=bool)
            for flt in fl:
                on = t >= flt.onset
                if flt.kind == "variance":
                    noise = np.where(on, noise * flt.magnitude, noise)
                elif flt.kind == "mean_shift":
                    f_val = f_val + np.where(on, flt.magnitude, 0.0)
                elif flt.kind == "drift":
                    ramp = np.clip((t - flt.onset) / max(n - 1 - flt.onset, 1), 0.0, 1.0)
                    f_val = f_val + flt.magnitude * ramp
                elif flt.kind == "mechanism":
                    ref = self.calibration[v.name]["f_mean"]
                    f_val = np.where(on, f_val + flt.gain * (base - ref) + flt.magnitude, f_val)
            if v.name == lot_prop:
                for flt in by_var.get(lot_var, []):
                    if flt.kind == "material_lot":
                        f_val = f_val + np.where(t >= flt.onset, flt.magnitude, 0.0)
            ctx[v.name] = f_val + noise
            parts[v.name] = (float(np.mean(base)), float(np.mean(sd)))
        data: dict[str, Any] = {}
        for v in self.vars:
            if not v.observed:
                continue
            x = ctx[v.name]
            if v.categorical:
                data[v.name] = np.array([f"{v.name[:1].upper()}{int(c) + 1}" for c in x], dtype=object)
                continue
            meas = np.round(x / v.resolution) * v.resolution if v.resolution > 0 else x.copy()
            for flt in by_var.get(v.name, []):
                if flt.kind == "stuck":
                    meas[flt.onset :] = meas[flt.onset]
            data[v.name] = meas
        return pd.DataFrame(data), ctx, parts


def _ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    """AR(1) series of unit marginal variance, started from its stationary distribution."""
    u = rng.standard_normal(n)
    if phi <= 0:
        return u
    e0 = rng.standard_normal()
    out, _ = lfilter([np.sqrt(1 - phi * phi)], [1.0, -phi], u, zi=[phi * e0])
    return np.asarray(out)


def _categorical(n: int, v: Var, rng: np.random.Generator) -> np.ndarray:
    """Levels in runs: at each row the level changes with probability ``switch``."""
    change = rng.random(n) < v.switch
    change[0] = True
    seg = np.cumsum(change) - 1
    picks = np.empty(seg[-1] + 1, dtype=int)
    picks[0] = rng.integers(v.levels)
    for i in range(1, len(picks)):
        step = rng.integers(1, v.levels) if v.levels > 1 else 0
        picks[i] = (picks[i - 1] + step) % v.levels
    return picks[seg].astype(float)


def _sawtooth(period: int, per_row: float) -> Callable[[int, np.random.Generator], np.ndarray]:
    def gen(n: int, rng: np.random.Generator) -> np.ndarray:
        phase = int(rng.integers(period))
        return ((np.arange(n) + phase) % period) * per_row

    return gen


# ======================================================================================================
def thermal_oxidation() -> BenchProcess:
    """Wet oxidation of silicon (Deal-Grove)."""

    def growth(c: Ctx) -> np.ndarray:  # linear rate constant B/A in nm/min (Arrhenius 2.05 eV)
        tk = c["furnace_temp"] + 273.15
        p = c["h2o_partial"] * c["chamber_pressure"]
        return 9.7e7 * np.exp(-2.05 / (K_B * tk)) * p / 0.85 * (1 + 0.1 * (c["substrate_doping"] - 1.0)) * 1000 / 60

    def thickness(c: Ctx) -> np.ndarray:  # x^2 + A x = B t  (B parabolic: 0.78 eV)
        tk = c["furnace_temp"] + 273.15
        p = c["h2o_partial"] * c["chamber_pressure"]
        b = 386.0 * np.exp(-0.78 / (K_B * tk)) * p / 0.85 * 1e6 / 60  # nm^2/min
        ba = np.maximum(c["growth_rate"], 0.5)
        a = b / ba
        return a / 2 * (np.sqrt(1 + c["oxidation_time"] / (a * a / (4 * b))) - 1)

    def hp_need(c: Ctx) -> np.ndarray:
        return 42 + 0.08 * (c["temp_setpoint"] - 1000) + 6 * (1 - np.exp(-c["tube_age"] / 400))

    vs = [
        Var("wafer_lot", "material", levels=5, switch=0.015),
        Var(
            "substrate_doping",
            "material",
            ("wafer_lot",),
            lambda c: lvl([1.0, 1.08, 0.93, 1.04, 0.97], c["wafer_lot"]),
            sd=0.03,
            resolution=0.005,
        ),
        Var("ambient_humidity", "environment", mean=45, sd=4, ar=0.995, observed=False),
        Var(
            "cleanroom_temp",
            "environment",
            ("ambient_humidity",),
            lambda c: 21 + 0.04 * (c["ambient_humidity"] - 45),
            sd=0.3,
            ar=0.97,
            resolution=0.05,
        ),
        Var("furnace_id", "equipment", levels=3, switch=0.01),
        Var("tube_age", "equipment", mean=300, sd=60, ar=0.99, resolution=1.0),
        Var("temp_setpoint", "process", mean=1000, sd=0.6, ar=0.9, resolution=0.5),
        Var(
            "heater_power",
            "process",  # the temperature controller's output: it answers the setpoint
            ("temp_setpoint", "tube_age", "cleanroom_temp"),
            lambda c: hp_need(c) - 0.3 * (c["cleanroom_temp"] - 21),
            sd=0.35,
            ar=0.6,
            resolution=0.01,
        ),
        Var(
            "furnace_temp",
            "process",
            ("temp_setpoint", "furnace_id", "heater_power", "tube_age", "cleanroom_temp"),
            lambda c: (
                c["temp_setpoint"]
                + lvl([0, 1.5, -1.2], c["furnace_id"])
                + 3.0 * np.tanh(0.8 * (c["heater_power"] - hp_need(c) + 0.3 * (c["cleanroom_temp"] - 21)))
            ),
            sd=0.5,
            ar=0.7,
            resolution=0.1,
        ),
        Var("o2_flow", "process", mean=5.0, sd=0.06, ar=0.8, resolution=0.005),
        Var(
            "h2o_partial",
            "process",
            ("o2_flow", "ambient_humidity"),
            lambda c: (
                0.85 * (1 - np.exp(-c["o2_flow"] / 2.5)) / (1 - np.exp(-2.0)) + 0.002 * (c["ambient_humidity"] - 45)
            ),
            sd=lambda c: 0.006 * (1 + 4 * np.abs(c["o2_flow"] - 5.0)),
            ar=0.5,
            resolution=0.001,
        ),
        Var("chamber_pressure", "process", mean=1.0, sd=0.004, ar=0.9, resolution=0.0005),
        Var("oxidation_time", "process", mean=60, sd=0.25, resolution=0.1),
        Var(
            "growth_rate",
            "intermediate",
            ("furnace_temp", "h2o_partial", "chamber_pressure", "substrate_doping"),
            growth,
            sd=lambda c: 0.012 * growth(c),
            ar=0.3,
            resolution=0.01,
        ),
        Var(
            "oxide_thickness",
            "quality",
            ("growth_rate", "furnace_temp", "h2o_partial", "chamber_pressure", "oxidation_time"),
            thickness,
            sd=lambda c: 0.003 * thickness(c),
            resolution=0.1,
        ),
        Var(
            "thickness_nonuniformity",
            "quality",
            ("furnace_id", "o2_flow", "tube_age"),
            lambda c: (
                1.0 + lvl([0, 0.3, 0.15], c["furnace_id"]) + 6.0 * relu(4.95 - c["o2_flow"]) + 0.001 * c["tube_age"]
            ),
            sd=0.06,
            ar=0.3,
            resolution=0.01,
        ),
        Var(
            "breakdown_field",
            "quality",
            ("oxide_thickness", "h2o_partial", "substrate_doping"),
            lambda c: (
                11
                - 0.004 * (c["oxide_thickness"] - 400)
                - 20 * relu(c["h2o_partial"] - 0.87)
                - 1.5 * (c["substrate_doping"] - 1.0)
            ),
            sd=lambda c: 0.12 * (1 + 20 * relu(c["h2o_partial"] - 0.86)),
            resolution=0.01,
        ),
        Var(
            "interface_trap_density",
            "quality",
            ("furnace_temp", "h2o_partial"),
            lambda c: 2.0 * np.exp(-(c["furnace_temp"] - 1000) / 40) * (1 + 0.5 * c["h2o_partial"]),
            sd=lambda c: 0.02 * 2.0 * np.exp(-(c["furnace_temp"] - 1000) / 40),
            resolution=0.001,
        ),
        Var("exhaust_fan_speed", "equipment", mean=1450, sd=8, ar=0.95, resolution=1, harmless=True),
        Var("loadlock_pressure", "equipment", mean=5.0, sd=0.3, ar=0.5, resolution=0.01, harmless=True),
        Var("operator_shift", "process", levels=3, switch=0.0125, harmless=True),
    ]
    return BenchProcess("thermal_oxidation", vs, ("wafer_lot", "substrate_doping"), "Deal & Grove 1965")


def cvd_polysilicon() -> BenchProcess:
    """LPCVD polysilicon deposition."""

    def rate(c: Ctx) -> np.ndarray:
        tk = c["wafer_temp"] + 273.15
        ks = 1.88e8 * np.exp(-1.7 / (K_B * tk)) * c["chamber_pressure"]
        hg = 25.0 * (250 / c["chamber_pressure"]) ** 0.5
        return 1 / (1 / ks + 1 / hg) * (1 - 0.02 * (c["silane_impurity"] - 1.0))

    vs = [
        Var("gas_lot", "material", levels=4, switch=0.015),
        Var(
            "silane_impurity",
            "material",
            ("gas_lot",),
            lambda c: lvl([1.0, 1.3, 0.8, 1.1], c["gas_lot"]),
            sd=0.05,
            resolution=0.01,
        ),
        Var("boat_id", "equipment", levels=2, switch=0.02),
        Var("chiller_temp", "environment", mean=18, sd=0.3, ar=0.98, resolution=0.05),
        Var("ambient_pressure", "environment", mean=1013, sd=4, ar=0.99, observed=False),
        Var("pump_hours", "equipment", mean=500, sd=120, ar=0.99, resolution=1),
        Var(
            "base_pressure",
            "equipment",
            ("pump_hours", "ambient_pressure"),
            lambda c: 2 + 0.003 * c["pump_hours"] + 0.01 * (c["ambient_pressure"] - 1013),
            sd=lambda c: 0.08 * (1 + c["pump_hours"] / 1000),
            ar=0.5,
            resolution=0.01,
        ),
        Var("zone_temp_setpoint", "process", mean=620, sd=0.5, ar=0.9, resolution=0.5),
        Var(
            "wafer_temp",
            "process",
            ("zone_temp_setpoint", "boat_id", "chiller_temp"),
            lambda c: c["zone_temp_setpoint"] + lvl([0, -1.5], c["boat_id"]) + 0.4 * (c["chiller_temp"] - 18),
            sd=0.5,
            ar=0.6,
            resolution=0.1,
        ),
        Var(
            "silane_flow",
            "process",
            ("ambient_pressure",),
            lambda c: 100 + 0.05 * (c["ambient_pressure"] - 1013),
            sd=0.8,
            ar=0.8,
            resolution=0.1,
        ),
        Var(
            "chamber_pressure",
            "process",
            ("silane_flow", "base_pressure"),
            lambda c: 250 + 0.8 * (c["silane_flow"] - 100) + 2 * (c["base_pressure"] - 3.5),
            sd=1.2,
            ar=0.5,
            resolution=0.1,
        ),
        Var("dep_time", "process", mean=30, sd=0.1, resolution=0.1),
        Var(
            "dep_rate",
            "intermediate",
            ("wafer_temp", "chamber_pressure", "silane_impurity"),
            rate,
            sd=lambda c: 0.01 * rate(c),
            ar=0.3,
            resolution=0.001,
        ),
        Var(
            "film_thickness",
            "quality",
            ("dep_rate", "dep_time", "boat_id"),
            lambda c: c["dep_rate"] * c["dep_time"] * lvl([1.0, 0.99], c["boat_id"]),
            sd=lambda c: 0.006 * c["dep_rate"] * c["dep_time"],
            resolution=0.1,
        ),
        Var(
            "grain_size",
            "quality",
            ("wafer_temp", "dep_rate"),
            lambda c: 40 + 60 * sig((c["wafer_temp"] - 612) / 4) - 2 * (c["dep_rate"] - 8),
            sd=2.0,
            resolution=0.1,
        ),
        Var(
            "sheet_resistance",
            "quality",
            ("film_thickness", "grain_size", "silane_impurity"),
            lambda c: (
                3e4
                / (c["film_thickness"] * (1 - np.exp(-c["grain_size"] / 30)))
                * (1 + 0.05 * (c["silane_impurity"] - 1))
            ),
            sd=lambda c: 0.015 * 3e4 / (c["film_thickness"] * (1 - np.exp(-c["grain_size"] / 30))),
            resolution=0.01,
        ),
        Var(
            "particle_count",
            "quality",
            ("chamber_pressure", "pump_hours"),
            lambda c: 5 + 0.2 * relu(c["chamber_pressure"] - 252) ** 1.5 + 0.004 * c["pump_hours"],
            sd=lambda c: np.sqrt(5 + 0.2 * relu(c["chamber_pressure"] - 252) ** 1.5 + 0.004 * c["pump_hours"]),
            resolution=1,
        ),
        Var("scrubber_flow", "equipment", mean=50, sd=1, ar=0.9, resolution=0.1, harmless=True),
        Var("cabinet_exhaust", "environment", mean=0.5, sd=0.02, ar=0.95, resolution=0.001, harmless=True),
        Var("operator_id", "process", levels=4, switch=0.01, harmless=True),
    ]
    return BenchProcess("cvd_polysilicon", vs, ("gas_lot", "silane_impurity"), "Jensen & Graves / Kamins")


def electrode_calendering() -> BenchProcess:
    """Li-ion electrode coating, drying and calendering."""

    def visc(c: Ctx) -> np.ndarray:
        return (
            5
            * np.exp(0.8 * (c["binder_content"] - 3))
            * (12 / c["particle_d50"]) ** 0.5
            * np.exp(-0.03 * (c["slurry_temp"] - 25))
        )

    def weight(c: Ctx) -> np.ndarray:
        return (
            0.09
            * c["coater_gap"]
            * (1 - 0.08 * np.log(c["slurry_viscosity"] / 5))
            * (1 - 0.01 * (c["line_speed"] - 20))
        )

    def porosity(c: Ctx) -> np.ndarray:
        return (
            0.45
            - 0.17 * (1 - np.exp(-c["line_load"] / 0.9))
            + 0.004 * (c["particle_d50"] - 12)
            + 0.01 * (c["binder_content"] - 3)
            - 0.0005 * (c["roll_temp"] - 80)
        )

    vs = [
        Var("active_lot", "material", levels=5, switch=0.015),
        Var(
            "particle_d50",
            "material",
            ("active_lot",),
            lambda c: lvl([12.0, 12.6, 11.5, 12.3, 11.8], c["active_lot"]),
            sd=0.2,
            resolution=0.01,
        ),
        Var("binder_content", "material", mean=3.0, sd=0.04, ar=0.9, resolution=0.005),
        Var("ambient_temp", "environment", mean=22, sd=1.2, ar=0.995, observed=False),
        Var(
            "slurry_temp",
            "environment",
            ("ambient_temp",),
            lambda c: 25 + 0.6 * (c["ambient_temp"] - 22),
            sd=0.3,
            ar=0.9,
            resolution=0.05,
        ),
        Var(
            "slurry_viscosity",
            "process",
            ("particle_d50", "binder_content", "slurry_temp"),
            visc,
            sd=lambda c: 0.03 * visc(c),
            ar=0.5,
            resolution=0.01,
        ),
        Var("coater_gap", "equipment", mean=200, sd=1.0, ar=0.95, resolution=0.1),
        Var("line_speed", "process", mean=20, sd=0.15, ar=0.8, resolution=0.01),
        Var(
            "coating_weight",
            "intermediate",
            ("coater_gap", "slurry_viscosity", "line_speed"),
            weight,
            sd=lambda c: 0.12 * (1 + 2 * relu(c["line_speed"] - 20.2)),
            ar=0.4,
            resolution=0.01,
        ),
        Var("dryer_temp", "process", mean=110, sd=0.8, ar=0.9, resolution=0.1),
        Var(
            "residual_solvent",
            "intermediate",
            ("dryer_temp", "coating_weight", "line_speed"),
            lambda c: (
                200 * np.exp(-(c["dryer_temp"] - 110) / 12) * (c["coating_weight"] / 18) ** 2 * (c["line_speed"] / 20)
            ),
            sd=lambda c: 0.05 * 200 * np.exp(-(c["dryer_temp"] - 110) / 12),
            resolution=0.1,
        ),
        Var(
            "roll_temp",
            "equipment",
            ("ambient_temp",),
            lambda c: 80 + 0.5 * (c["ambient_temp"] - 22),
            sd=0.4,
            ar=0.95,
            resolution=0.1,
        ),
        Var("roll_gap", "equipment", mean=120, sd=0.5, ar=0.97, resolution=0.1),
        Var(
            "line_load",
            "intermediate",  # the calender's measured force answers the coated web fed into the gap
            ("roll_gap", "coating_weight", "roll_temp"),
            lambda c: (
                1.2 + 0.1 * (c["coating_weight"] - 18) - 0.04 * (c["roll_gap"] - 120) + 0.004 * (c["roll_temp"] - 80)
            ),
            sd=0.02,
            ar=0.3,
            resolution=0.001,
        ),
        Var(
            "porosity",
            "quality",
            ("line_load", "particle_d50", "binder_content", "roll_temp"),
            porosity,
            sd=0.003,
            resolution=0.0005,
        ),
        Var(
            "thickness",
            "quality",
            ("coating_weight", "porosity"),
            lambda c: c["coating_weight"] * 10 / (4.7 * (1 - c["porosity"])) * 10,
            sd=0.3,
            resolution=0.1,
        ),
        Var(
            "adhesion",
            "quality",
            ("binder_content", "residual_solvent", "line_load", "dryer_temp"),
            lambda c: (
                15
                + 4 * (c["binder_content"] - 3)
                - 0.02 * relu(c["residual_solvent"] - 230)
                - 8 * relu(c["line_load"] - 1.3)
                - 0.05 * relu(c["dryer_temp"] - 113) ** 2
            ),
            sd=lambda c: 0.4 * (1 + c["residual_solvent"] / 400),
            resolution=0.01,
        ),
        Var(
            "electrical_resistivity",
            "quality",
            ("porosity", "binder_content"),
            lambda c: 20 * np.exp(3 * (c["porosity"] - 0.3)) * (1 + 0.2 * (c["binder_content"] - 3)),
            sd=lambda c: 0.03 * 20 * np.exp(3 * (c["porosity"] - 0.3)),
            resolution=0.01,
        ),
        Var("unwinder_tension", "equipment", mean=50, sd=1, ar=0.9, resolution=0.1, harmless=True),
        Var("vacuum_pump_current", "environment", mean=3.2, sd=0.05, ar=0.9, resolution=0.01, harmless=True),
        Var("shift_team", "process", levels=3, switch=0.0125, harmless=True),
    ]
    return BenchProcess("electrode_calendering", vs, ("active_lot", "particle_d50"), "Meyer et al. 2017")


def tempering() -> BenchProcess:
    """Quench and temper of a medium-carbon steel (Hollomon-Jaffe)."""

    def aq(c: Ctx) -> np.ndarray:
        hrc_m = 35 + 50 * c["carbon_content"]
        di = 60 * np.sqrt(c["carbon_content"]) * (1 + 0.5 * (c["alloy_index"] - 1.8))  # critical diameter, mm
        frac = sig((di * (c["quench_severity"] / 0.6) ** 0.5 - c["part_section"]) / 1.5)
        return hrc_m * (0.7 + 0.3 * frac) + 0.02 * (c["austenitize_temp"] - 850)

    def hard(c: Ctx) -> np.ndarray:
        p = (c["temper_temp"] + 273.15) * (20 + np.log10(c["temper_time"])) / 1000
        return c["as_quenched_hardness"] - 8.5 * (p - 14.3) + 2 * (c["alloy_index"] - 1.8) * sig((p - 16.5) / 0.2)

    vs = [
        Var("steel_heat", "material", levels=5, switch=0.015),
        Var(
            "carbon_content",
            "material",
            ("steel_heat",),
            lambda c: lvl([0.42, 0.43, 0.41, 0.425, 0.415], c["steel_heat"]),
            sd=0.004,
            resolution=0.001,
        ),
        Var("alloy_index", "material", mean=1.8, sd=0.03, ar=0.95, resolution=0.005),
        Var("part_section", "material", mean=28, sd=0.25, resolution=0.05),
        Var("furnace_id", "equipment", levels=2, switch=0.01),
        Var("ambient_temp", "environment", mean=22, sd=2, ar=0.995, observed=False),
        Var(
            "austenitize_temp",
            "process",
            ("furnace_id",),
            lambda c: 850 + lvl([0, 3], c["furnace_id"]),
            sd=1.5,
            ar=0.7,
            resolution=0.5,
        ),
        Var(
            "quench_oil_temp",
            "process",
            ("ambient_temp",),
            lambda c: 60 + 0.5 * (c["ambient_temp"] - 22),
            sd=0.8,
            ar=0.95,
            resolution=0.1,
        ),
        Var("oil_agitation", "equipment", mean=0.8, sd=0.02, ar=0.9, resolution=0.005),
        Var(
            "quench_severity",
            "intermediate",
            ("quench_oil_temp", "oil_agitation"),
            lambda c: 0.35 * (1 + 0.8 * c["oil_agitation"]) * (1 - 0.004 * (c["quench_oil_temp"] - 60)),
            sd=0.008,
            ar=0.5,
            resolution=0.001,
        ),
        Var(
            "as_quenched_hardness",
            "intermediate",
            ("carbon_content", "alloy_index", "quench_severity", "part_section", "austenitize_temp"),
            aq,
            sd=0.35,
            resolution=0.1,
        ),
        Var(
            "temper_temp",
            "process",
            ("ambient_temp",),
            lambda c: 550 + 0.1 * (c["ambient_temp"] - 22),
            sd=2.0,
            ar=0.8,
            resolution=0.5,
        ),
        Var("temper_time", "process", mean=2.0, sd=0.03, resolution=0.01),
        Var(
            "hardness",
            "quality",
            ("as_quenched_hardness", "temper_temp", "temper_time", "alloy_index"),
            hard,
            sd=0.35,
            resolution=0.1,
        ),
        Var(
            "tensile_strength",
            "quality",
            ("hardness",),
            lambda c: 1000 + 33 * (c["hardness"] - 32) + 0.8 * (c["hardness"] - 32) ** 2,
            sd=lambda c: 6 * (1 + 0.05 * np.abs(c["hardness"] - 32)),
            resolution=1,
        ),
        Var(
            "impact_toughness",
            "quality",
            ("hardness", "temper_temp", "carbon_content"),
            lambda c: (
                60
                - 2.5 * (c["hardness"] - 32)
                - 20 * sig((540 - c["temper_temp"]) / 4)
                - 100 * (c["carbon_content"] - 0.42)
            ),
            sd=lambda c: 1.5 * (1 + sig((540 - c["temper_temp"]) / 4)),
            resolution=0.5,
        ),
        Var(
            "distortion",
            "quality",
            ("quench_severity", "part_section", "quench_oil_temp"),
            lambda c: (
                0.05 + 0.4 * c["quench_severity"] ** 2 * (c["part_section"] / 28) - 0.001 * (c["quench_oil_temp"] - 60)
            ),
            sd=lambda c: 0.004 * (1 + 2 * c["quench_severity"]),
            resolution=0.001,
        ),
        Var("rack_id", "equipment", levels=4, switch=0.02, harmless=True),
        Var("exhaust_temp", "equipment", mean=300, sd=5, ar=0.95, resolution=0.5, harmless=True),
        Var("cooling_tower_flow", "environment", mean=120, sd=2, ar=0.95, resolution=0.1, harmless=True),
    ]
    return BenchProcess("tempering", vs, ("steel_heat", "carbon_content"), "Hollomon & Jaffe 1945")


def injection_moulding() -> BenchProcess:
    """Injection moulding of a thermoplastic part."""

    def t_freeze(c: Ctx) -> np.ndarray:
        return 5.7 + 0.05 * (c["mould_temp"] - 60) + 0.01 * (c["melt_temp"] - 240)

    def shrink(c: Ctx) -> np.ndarray:
        return (
            1.8
            - 0.0015 * (c["cavity_pressure_peak"] - 380)
            + 0.004 * (c["melt_temp"] - 240)
            + 0.01 * (c["mould_temp"] - 60)
            + 0.3 * relu(t_freeze(c) - c["pack_time"])
        )

    def inj(c: Ctx) -> np.ndarray:
        return (
            900
            * (20 / c["melt_flow_index"]) ** 0.7
            * np.exp(-0.01 * (c["melt_temp"] - 240))
            * (1 - 2 * (c["resin_moisture"] - 0.05))
        )

    vs = [
        Var("resin_lot", "material", levels=5, switch=0.015),
        Var(
            "melt_flow_index",
            "material",
            ("resin_lot",),
            lambda c: lvl([20, 21.5, 19, 20.8, 19.5], c["resin_lot"]),
            sd=0.35,
            resolution=0.1,
        ),
        Var("ambient_humidity", "environment", mean=50, sd=6, ar=0.995, observed=False),
        Var(
            "resin_moisture",
            "material",
            ("ambient_humidity",),
            lambda c: 0.05 + 0.0008 * (c["ambient_humidity"] - 50),
            sd=0.006,
            ar=0.95,
            resolution=0.001,
        ),
        Var("machine_id", "equipment", levels=3, switch=0.006),
        Var("cavity", "equipment", levels=4, switch=0.9),
        Var(
            "coolant_temp",
            "environment",
            ("ambient_humidity",),
            lambda c: 15 + 0.05 * (c["ambient_humidity"] - 50),
            sd=0.3,
            ar=0.97,
            resolution=0.05,
        ),
        Var("barrel_temp_setpoint", "process", mean=240, sd=0.4, ar=0.9, resolution=0.5),
        Var("screw_rpm", "process", mean=100, sd=1.5, ar=0.7, resolution=0.5),
        Var(
            "melt_temp",
            "process",
            ("barrel_temp_setpoint", "machine_id", "screw_rpm"),
            lambda c: (
                c["barrel_temp_setpoint"]
                + lvl([0, 2, -1.5], c["machine_id"])
                + 0.05 * (c["screw_rpm"] - 100)
                + 0.002 * (c["screw_rpm"] - 100) ** 2
            ),
            sd=0.7,
            ar=0.6,
            resolution=0.1,
        ),
        Var(
            "mould_temp",
            "process",
            ("coolant_temp",),
            lambda c: 60 + 1.5 * (c["coolant_temp"] - 15),
            sd=0.45,
            ar=0.9,
            resolution=0.1,
        ),
        Var(
            "injection_pressure",
            "process",
            ("melt_temp", "melt_flow_index", "resin_moisture"),
            inj,
            sd=lambda c: 0.01 * inj(c),
            ar=0.4,
            resolution=1,
        ),
        Var("pack_pressure", "process", mean=600, sd=4, ar=0.6, resolution=1),
        Var("pack_time", "process", mean=6.0, sd=0.05, resolution=0.01),
        Var(
            "cavity_pressure_peak",
            "intermediate",
            ("pack_pressure", "injection_pressure", "cavity", "melt_temp"),
            lambda c: (
                420 * np.tanh((0.6 * c["pack_pressure"] + 0.1 * c["injection_pressure"]) / 420)
                + lvl([0, -6, 4, -2], c["cavity"])
                + 0.5 * (c["melt_temp"] - 240)
            ),
            sd=3.5,
            resolution=0.5,
        ),
        Var(
            "shrinkage",
            "quality",
            ("cavity_pressure_peak", "melt_temp", "mould_temp", "pack_time"),
            shrink,
            sd=lambda c: 0.02 * (1 + 3 * relu(t_freeze(c) - c["pack_time"])),
            resolution=0.001,
        ),
        Var(
            "part_weight",
            "quality",
            ("cavity_pressure_peak", "melt_flow_index", "pack_time"),
            lambda c: (
                25
                + 0.004 * (c["cavity_pressure_peak"] - 380)
                + 0.3 * np.minimum(c["pack_time"], 6.05)
                + 0.02 * (c["melt_flow_index"] - 20)
            ),
            sd=0.03,
            resolution=0.01,
        ),
        Var(
            "warpage",
            "quality",
            ("shrinkage", "mould_temp", "cavity"),
            lambda c: (
                0.3
                + 2 * (c["shrinkage"] - 1.75) ** 2
                + 0.02 * np.abs(c["mould_temp"] - 60)
                + lvl([0, 0.02, 0.05, 0.0], c["cavity"])
            ),
            sd=lambda c: 0.015 * (1 + 5 * np.abs(c["shrinkage"] - 1.8)),
            resolution=0.001,
        ),
        Var(
            "splay_defects",
            "quality",
            ("resin_moisture", "melt_temp"),
            lambda c: 0.5 + 80 * relu(c["resin_moisture"] - 0.06) + 0.1 * relu(c["melt_temp"] - 243),
            sd=lambda c: 0.2 * np.sqrt(0.5 + 80 * relu(c["resin_moisture"] - 0.06)),
            resolution=0.01,
        ),
        Var("hopper_level", "equipment", mean=60, sd=5, ar=0.98, resolution=0.5, harmless=True),
        Var("hydraulic_oil_temp", "equipment", mean=45, sd=0.5, ar=0.98, resolution=0.1, harmless=True),
        Var("robot_cycle_time", "process", mean=3.5, sd=0.05, resolution=0.01, harmless=True),
    ]
    return BenchProcess("injection_moulding", vs, ("resin_lot", "melt_flow_index"), "PVT / gate freeze-off")


def machining_finish() -> BenchProcess:
    """Turning: surface roughness, tool wear, chatter."""

    def wear(c: Ctx) -> np.ndarray:
        return 0.02 + 0.0012 * c["tool_cut_time"] * (c["cutting_speed"] / 200) ** 4 * (
            c["material_hardness"] / 200
        ) ** 2 * (1 - 0.05 * (c["coolant_concentration"] - 6))

    def force(c: Ctx) -> np.ndarray:
        return (
            1800 * (c["material_hardness"] / 200) * c["depth_of_cut"] * c["feed"] ** 0.75 * (1 + 1.5 * c["tool_wear"])
        )

    def ra(c: Ctx) -> np.ndarray:
        return (
            1000 * c["feed"] ** 2 / (32 * c["nose_radius"]) * (1 + 2 * c["tool_wear"])
            + 0.3 * c["vibration_rms"]
            + 0.4 * sig((160 - c["cutting_speed"]) / 8)
        )

    vs = [
        Var("bar_lot", "material", levels=4, switch=0.015),
        Var(
            "material_hardness",
            "material",
            ("bar_lot",),
            lambda c: lvl([200, 206, 195, 203], c["bar_lot"]),
            sd=2.5,
            resolution=1,
        ),
        Var("bar_diameter", "material", mean=50, sd=0.02, resolution=0.005),
        Var("machine_id", "equipment", levels=2, switch=0.008),
        Var("shop_temp", "environment", mean=22, sd=1.5, ar=0.99, observed=False),
        Var(
            "coolant_temp",
            "environment",
            ("shop_temp",),
            lambda c: 20 + 0.7 * (c["shop_temp"] - 22),
            sd=0.2,
            ar=0.95,
            resolution=0.05,
        ),
        Var("coolant_concentration", "environment", mean=6.0, sd=0.15, ar=0.99, resolution=0.05),
        Var("tool_cut_time", "equipment", sd=0.0, gen=_sawtooth(150, 0.8), resolution=0.1),
        Var("nose_radius", "equipment", mean=0.8, sd=0.004, ar=0.99, resolution=0.001),
        Var("cutting_speed", "process", mean=200, sd=1.0, ar=0.5, resolution=0.5),
        Var("feed", "process", mean=0.15, sd=0.0015, resolution=0.0005),
        Var(
            "depth_of_cut",
            "process",
            ("bar_diameter",),
            lambda c: 1.0 + 0.5 * (c["bar_diameter"] - 50),
            sd=0.01,
            resolution=0.005,
        ),
        Var(
            "tool_wear",
            "intermediate",
            ("tool_cut_time", "cutting_speed", "material_hardness", "coolant_concentration"),
            wear,
            sd=lambda c: 0.004 * (1 + wear(c) / 0.1),
            ar=0.6,
            resolution=0.001,
        ),
        Var(
            "cutting_force",
            "intermediate",
            ("feed", "depth_of_cut", "material_hardness", "tool_wear"),
            force,
            sd=lambda c: 0.015 * force(c),
            ar=0.3,
            resolution=0.5,
        ),
        Var(
            "spindle_power",
            "intermediate",  # P = F_c v_c: a consequence of the cut, not a machine setting
            ("cutting_force", "cutting_speed"),
            lambda c: c["cutting_force"] * c["cutting_speed"] / 60000 + 0.8,
            sd=0.03,
            resolution=0.01,
        ),
        Var(
            "vibration_rms",
            "intermediate",
            ("depth_of_cut", "cutting_speed", "machine_id", "tool_wear", "shop_temp"),
            lambda c: (
                0.5
                + lvl([0, 0.15], c["machine_id"])
                + 3 * relu(c["depth_of_cut"] - (1.12 - 0.5 * c["tool_wear"]))
                + 0.5 * c["tool_wear"]
                + 0.002 * (c["cutting_speed"] - 200)
                + 0.01 * (c["shop_temp"] - 22)
            ),
            sd=lambda c: 0.04 * (1 + 2 * c["tool_wear"]),
            ar=0.3,
            resolution=0.005,
        ),
        Var(
            "surface_roughness_ra",
            "quality",
            ("feed", "nose_radius", "tool_wear", "vibration_rms", "cutting_speed"),
            ra,
            sd=lambda c: 0.03 * ra(c),
            resolution=0.001,
        ),
        Var(
            "diameter_error",
            "quality",
            ("coolant_temp", "cutting_force", "tool_wear", "machine_id"),
            lambda c: (
                0.575 * (c["coolant_temp"] - 20)
                + 0.01 * (c["cutting_force"] - 450)
                + 100 * c["tool_wear"]
                + lvl([0, 1.0], c["machine_id"])
            ),
            sd=0.8,
            resolution=0.1,
        ),
        Var(
            "roundness",
            "quality",
            ("vibration_rms",),
            lambda c: 2 + 3 * c["vibration_rms"],
            sd=lambda c: 0.15 * (1 + c["vibration_rms"]),
            resolution=0.01,
        ),
        Var("chip_conveyor_speed", "equipment", mean=2.0, sd=0.05, ar=0.9, resolution=0.01, harmless=True),
        Var("mist_extractor_current", "environment", mean=4.0, sd=0.08, ar=0.9, resolution=0.01, harmless=True),
        Var("operator_id", "process", levels=3, switch=0.0125, harmless=True),
    ]
    return BenchProcess("machining_finish", vs, ("bar_lot", "material_hardness"), "Ra = f^2/32r, Taylor")


_BUILDERS: dict[str, Callable[[], BenchProcess]] = {
    "thermal_oxidation": thermal_oxidation,
    "cvd_polysilicon": cvd_polysilicon,
    "electrode_calendering": electrode_calendering,
    "tempering": tempering,
    "injection_moulding": injection_moulding,
    "machining_finish": machining_finish,
}
PROCESSES: tuple[str, ...] = tuple(_BUILDERS)
HELDOUT: tuple[str, ...] = ("injection_moulding", "machining_finish")
DEV: tuple[str, ...] = tuple(p for p in PROCESSES if p not in HELDOUT)
_CACHE: dict[str, BenchProcess] = {}


def get(name: str) -> BenchProcess:
    """The process model ``name`` (built once)."""
    if name not in _CACHE:
        if name not in _BUILDERS:
            raise KeyError(f"unknown benchmark process {name!r}; known: {', '.join(PROCESSES)}")
        _CACHE[name] = _BUILDERS[name]()
    return _CACHE[name]
