"""Shipped process models (ground truth for tests and benchmarks) and a large random generator.

- ``plasma_deposition``: PECVD dielectric film; RF power -> film density -> breakdown voltage.
- ``heat_treatment``: carburise, quench and temper; thermocouple -> furnace temperature -> hardness.
- ``reflow_soldering``: paste, oven zones, nitrogen -> voids, joint strength, bridging.
- ``electrode_coating``: battery electrode; coating thickness / bake temperature / roll pressure.

``random_process(n_vars, seed)`` builds a tiered random SCM (used by the 200-variable refresh bench).
"""

from __future__ import annotations

import numpy as np

from models.causal.constraints import Tier
from models.errors import UnknownVariable
from models.simulate.scm import SCM, Node, Term

__all__ = ["PROCESS_MODELS", "get_process", "random_process"]

M, E, Q, P, C = Tier.MATERIAL, Tier.ENVIRONMENT, Tier.EQUIPMENT, Tier.PROCESS, Tier.QUALITY


def _n(
    name: str,
    tier: Tier,
    nominal: float,
    scale: float,
    noise: float = 1.0,
    terms: tuple[tuple, ...] = (),
    unit: str = "",
    spec: float | None = None,
) -> Node:
    return Node(name, tier, nominal, scale, noise, tuple(Term(*t) for t in terms), unit, spec_sigma=spec)


def plasma_deposition() -> SCM:
    """PECVD of a dielectric film; 20 variables, 3 characteristics."""
    nodes = [
        _n("precursor_purity", M, 99.5, 0.1, unit="%"),
        _n("substrate_roughness", M, 2.0, 0.3, unit="nm"),
        _n("gas_lot_moisture", M, 5.0, 1.0, unit="ppm"),
        _n("cleanroom_humidity", E, 40.0, 3.0, unit="%RH"),
        _n("ambient_temp", E, 21.0, 0.8, unit="degC"),
        _n("electrode_wear", Q, 200.0, 40.0, unit="h"),
        _n("pressure_sensor", Q, 800.0, 10.0, unit="mTorr"),
        _n("matching_network_temp", Q, 35.0, 2.0, terms=(("ambient_temp", "lin", 0.5),), noise=0.8, unit="degC"),
        _n("rf_power", P, 500.0, 3.0, unit="W"),
        _n("gas_flow_sih4", P, 120.0, 2.0, unit="sccm"),
        _n("throttle_valve", P, 45.0, 3.0, noise=0.3, terms=(("pressure_sensor", "lin", -0.9),), unit="%"),
        _n(
            "reflected_power",
            P,
            8.0,
            1.0,
            noise=0.5,
            terms=(("rf_power", "lin", 0.4), ("matching_network_temp", "quad", 0.3), ("electrode_wear", "tanh", 0.5)),
            unit="W",
        ),
        _n(
            "substrate_temp",
            P,
            300.0,
            3.0,
            noise=0.6,
            terms=(("ambient_temp", "lin", 0.3), ("rf_power", "lin", 0.6)),
            unit="degC",
        ),
        _n(
            "deposition_rate",
            P,
            10.0,
            0.4,
            noise=0.5,
            terms=(
                ("rf_power", "tanh", 0.7),
                ("gas_flow_sih4", "lin", 0.5),
                ("throttle_valve", "lin", -0.4),
                ("electrode_wear", "lin", -0.3),
                ("reflected_power", "lin", -0.3),
            ),
            unit="nm/s",
        ),
        _n("film_thickness", P, 500.0, 20.0, noise=0.4, terms=(("deposition_rate", "lin", 0.9),), unit="nm"),
        _n(
            "hydrogen_content",
            P,
            8.0,
            0.6,
            noise=0.5,
            terms=(("substrate_temp", "lin", -0.5), ("gas_lot_moisture", "tanh", 0.6), ("rf_power", "lin", -0.3)),
            unit="at%",
        ),
        _n(
            "film_density",
            P,
            2.2,
            0.03,
            noise=0.4,
            terms=(
                ("rf_power", "lin", 0.8),
                ("substrate_temp", "quad", -0.15),
                ("precursor_purity", "lin", 0.4),
                ("reflected_power", "lin", -0.3),
            ),
            unit="g/cm3",
        ),
        _n(
            "breakdown_voltage",
            C,
            220.0,
            8.0,
            noise=0.4,
            terms=(
                ("film_thickness", "lin", 0.5),
                ("film_density", "tanh", 0.9),
                ("hydrogen_content", "lin", -0.4),
                ("substrate_roughness", "lin", -0.3),
                ("cleanroom_humidity", "lin", -0.2),
            ),
            unit="V",
            spec=4.0,
        ),
        _n(
            "refractive_index",
            C,
            1.46,
            0.01,
            noise=0.5,
            terms=(("film_density", "lin", 0.7), ("hydrogen_content", "quad", -0.2)),
            spec=4.0,
        ),
        _n(
            "film_stress",
            C,
            -150.0,
            15.0,
            noise=0.5,
            terms=(
                ("film_density", "lin", -0.6),
                ("substrate_temp", "lin", 0.4),
                ("film_thickness", "inter", 0.2, "film_density"),
            ),
            unit="MPa",
            spec=4.0,
        ),
    ]
    return SCM("plasma_deposition", nodes, forbidden=[("cleanroom_humidity", "rf_power")])


def heat_treatment() -> SCM:
    """Carburise, quench and temper; 16 variables, 3 characteristics."""
    nodes = [
        _n("steel_carbon", M, 0.20, 0.01, unit="%"),
        _n("alloy_cr", M, 1.0, 0.05, unit="%"),
        _n("part_mass", M, 2.5, 0.1, unit="kg"),
        _n("ambient_humidity", E, 45.0, 5.0, unit="%RH"),
        _n("thermocouple_reading", Q, 925.0, 2.0, unit="degC"),
        _n("burner_health", Q, 1.0, 0.05),
        _n("quench_oil_age", Q, 500.0, 80.0, unit="h"),
        _n(
            "furnace_temp",
            P,
            925.0,
            4.0,
            noise=0.4,
            terms=(("thermocouple_reading", "lin", -0.8), ("burner_health", "tanh", 0.4)),
            unit="degC",
        ),
        _n("soak_time", P, 240.0, 5.0, unit="min"),
        _n(
            "carbon_potential",
            P,
            0.9,
            0.02,
            noise=0.6,
            terms=(("ambient_humidity", "lin", -0.4), ("furnace_temp", "lin", 0.3)),
            unit="%",
        ),
        _n(
            "quench_oil_temp",
            P,
            60.0,
            3.0,
            noise=0.6,
            terms=(("quench_oil_age", "lin", 0.4), ("ambient_humidity", "lin", 0.2)),
            unit="degC",
        ),
        _n(
            "quench_rate",
            P,
            80.0,
            5.0,
            noise=0.5,
            terms=(("quench_oil_temp", "lin", -0.6), ("part_mass", "lin", -0.4), ("quench_oil_age", "quad", -0.2)),
            unit="K/s",
        ),
        _n("temper_temp", P, 180.0, 3.0, unit="degC"),
        _n(
            "surface_hardness",
            C,
            60.0,
            1.2,
            noise=0.4,
            terms=(
                ("furnace_temp", "lin", 0.3),
                ("carbon_potential", "lin", 0.5),
                ("quench_rate", "tanh", 0.6),
                ("steel_carbon", "lin", 0.3),
                ("temper_temp", "lin", -0.4),
            ),
            unit="HRC",
            spec=4.0,
        ),
        _n(
            "case_depth",
            C,
            1.0,
            0.08,
            noise=0.4,
            terms=(
                ("furnace_temp", "lin", 0.6),
                ("soak_time", "lin", 0.5),
                ("carbon_potential", "lin", 0.4),
                ("alloy_cr", "quad", 0.15),
            ),
            unit="mm",
            spec=4.0,
        ),
        _n(
            "distortion",
            C,
            50.0,
            6.0,
            noise=0.5,
            terms=(("quench_rate", "lin", 0.6), ("part_mass", "inter", 0.3, "quench_rate")),
            unit="um",
            spec=4.0,
        ),
    ]
    return SCM("heat_treatment", nodes, forbidden=[("ambient_humidity", "furnace_temp")])


def reflow_soldering() -> SCM:
    """Reflow soldering of an SMT assembly; 21 variables, 3 characteristics."""
    nodes = [
        _n("paste_metal_content", M, 88.5, 0.3, unit="%"),
        _n("paste_age", M, 5.0, 1.5, unit="d"),
        _n("pcb_thickness", M, 1.6, 0.04, unit="mm"),
        _n("component_mass", M, 1.0, 0.05, unit="g"),
        _n("ambient_humidity", E, 45.0, 5.0, unit="%RH"),
        _n("ambient_temp", E, 22.0, 1.0, unit="degC"),
        _n("heater_wear", Q, 1000.0, 150.0, unit="h"),
        _n("fan_speed", Q, 2000.0, 40.0, unit="rpm"),
        _n("n2_flow", Q, 30.0, 1.5, unit="m3/h"),
        _n("speed_encoder", Q, 80.0, 1.0, unit="cm/min"),
        _n("conveyor_speed", P, 80.0, 1.5, noise=0.3, terms=(("speed_encoder", "lin", -0.9),), unit="cm/min"),
        _n(
            "preheat_temp",
            P,
            160.0,
            3.0,
            noise=0.5,
            terms=(("heater_wear", "lin", -0.4), ("conveyor_speed", "lin", -0.4), ("pcb_thickness", "lin", -0.3)),
            unit="degC",
        ),
        _n(
            "peak_temp",
            P,
            245.0,
            3.0,
            noise=0.4,
            terms=(
                ("heater_wear", "tanh", -0.5),
                ("fan_speed", "lin", 0.3),
                ("conveyor_speed", "lin", -0.5),
                ("component_mass", "lin", -0.3),
                ("preheat_temp", "lin", 0.3),
            ),
            unit="degC",
        ),
        _n(
            "time_above_liquidus",
            P,
            60.0,
            4.0,
            noise=0.4,
            terms=(("peak_temp", "lin", 0.6), ("conveyor_speed", "lin", -0.5)),
            unit="s",
        ),
        _n("oxygen_ppm", P, 800.0, 80.0, noise=0.5, terms=(("n2_flow", "tanh", -0.8),), unit="ppm"),
        _n(
            "paste_viscosity",
            P,
            180.0,
            10.0,
            noise=0.5,
            terms=(("paste_age", "lin", 0.6), ("ambient_temp", "lin", -0.4), ("ambient_humidity", "lin", 0.2)),
            unit="Pa.s",
        ),
        _n(
            "print_volume",
            P,
            100.0,
            4.0,
            noise=0.5,
            terms=(("paste_viscosity", "lin", -0.6), ("paste_metal_content", "lin", 0.2)),
            unit="%",
        ),
        _n(
            "void_percent",
            C,
            8.0,
            1.5,
            noise=0.4,
            terms=(
                ("peak_temp", "quad", 0.2),
                ("time_above_liquidus", "lin", -0.4),
                ("paste_metal_content", "lin", -0.3),
                ("oxygen_ppm", "lin", 0.5),
            ),
            unit="%",
            spec=4.0,
        ),
        _n(
            "joint_shear_strength",
            C,
            40.0,
            2.0,
            noise=0.4,
            terms=(("time_above_liquidus", "tanh", 0.6), ("print_volume", "lin", 0.5), ("peak_temp", "lin", 0.3)),
            unit="N",
            spec=4.0,
        ),
        _n(
            "bridging_index",
            C,
            0.5,
            0.1,
            noise=0.5,
            terms=(("print_volume", "lin", 0.6), ("paste_viscosity", "lin", -0.4)),
            spec=4.0,
        ),
    ]
    return SCM("reflow_soldering", nodes, forbidden=[("ambient_humidity", "peak_temp")])


def electrode_coating() -> SCM:
    """Battery electrode coating; 18 variables, 3 characteristics (thickness / bake temp / roll pressure)."""
    nodes = [
        _n("active_d50", M, 12.0, 0.5, unit="um"),
        _n("binder_content", M, 3.0, 0.1, unit="%"),
        _n("slurry_solids", M, 65.0, 0.8, unit="%"),
        _n("foil_thickness", M, 12.0, 0.2, unit="um"),
        _n("dryroom_dewpoint", E, -40.0, 2.0, unit="degC"),
        _n("ambient_temp", E, 22.0, 1.0, unit="degC"),
        _n("gap_sensor", Q, 200.0, 2.0, unit="um"),
        _n("pump_wear", Q, 300.0, 50.0, unit="h"),
        _n("oven_fan_health", Q, 1.0, 0.05),
        _n("roll_wear", Q, 100.0, 20.0, unit="h"),
        _n(
            "slurry_viscosity",
            P,
            5000.0,
            200.0,
            noise=0.5,
            terms=(("slurry_solids", "lin", 0.6), ("binder_content", "lin", 0.3), ("ambient_temp", "lin", -0.3)),
            unit="mPa.s",
        ),
        _n(
            "coating_thickness",
            P,
            120.0,
            3.0,
            noise=0.4,
            terms=(("slurry_viscosity", "lin", 0.3), ("pump_wear", "tanh", -0.4), ("gap_sensor", "lin", -0.7)),
            unit="um",
        ),
        _n(
            "bake_temperature",
            P,
            130.0,
            2.0,
            noise=0.6,
            terms=(("oven_fan_health", "lin", 0.5), ("ambient_temp", "lin", 0.3)),
            unit="degC",
        ),
        _n("roll_pressure", P, 50.0, 1.5, noise=0.6, terms=(("roll_wear", "lin", -0.5),), unit="MPa"),
        _n(
            "residual_solvent",
            P,
            300.0,
            40.0,
            noise=0.5,
            terms=(
                ("bake_temperature", "lin", -0.6),
                ("coating_thickness", "lin", 0.4),
                ("dryroom_dewpoint", "lin", 0.3),
            ),
            unit="ppm",
        ),
        _n(
            "areal_capacity",
            C,
            4.0,
            0.1,
            noise=0.3,
            terms=(("coating_thickness", "lin", 0.8), ("slurry_solids", "lin", 0.3), ("active_d50", "lin", -0.2)),
            unit="mAh/cm2",
            spec=4.0,
        ),
        _n(
            "adhesion_strength",
            C,
            20.0,
            1.5,
            noise=0.4,
            terms=(
                ("bake_temperature", "quad", -0.3),
                ("bake_temperature", "lin", 0.4),
                ("binder_content", "lin", 0.5),
                ("residual_solvent", "lin", -0.3),
                ("roll_pressure", "lin", 0.4),
                ("coating_thickness", "lin", -0.3),
            ),
            unit="N/m",
            spec=4.0,
        ),
        _n(
            "porosity",
            C,
            30.0,
            1.0,
            noise=0.4,
            terms=(
                ("roll_pressure", "tanh", -0.7),
                ("coating_thickness", "lin", 0.3),
                ("active_d50", "lin", 0.3),
                ("foil_thickness", "lin", 0.1),
            ),
            unit="%",
            spec=4.0,
        ),
    ]
    return SCM("electrode_coating", nodes, forbidden=[("dryroom_dewpoint", "roll_pressure")])


PROCESS_MODELS = {
    "plasma_deposition": plasma_deposition,
    "heat_treatment": heat_treatment,
    "reflow_soldering": reflow_soldering,
    "electrode_coating": electrode_coating,
}


def get_process(name: str) -> SCM:
    """Build the shipped process model ``name`` (one of :data:`PROCESS_MODELS`)."""
    if name not in PROCESS_MODELS:
        raise UnknownVariable(name, f"unknown process model {name!r}", known=list(PROCESS_MODELS))
    return PROCESS_MODELS[name]()


def random_process(n_vars: int = 200, seed: int = 0, max_parents: int = 3) -> SCM:
    """A random tiered SCM with ``n_vars`` nodes (10 % material, 5 % environment, 15 % equipment,
    60 % process, 10 % quality), up to ``max_parents`` parents each from earlier nodes, mixed
    linear/tanh/quadratic mechanisms. Deterministic by ``seed``."""
    rng = np.random.default_rng(seed)
    shares = [(M, 0.10), (E, 0.05), (Q, 0.15), (P, 0.60), (C, 0.10)]
    tiers: list[Tier] = []
    for tier, share in shares:
        tiers += [tier] * max(1, round(share * n_vars))
    tiers = tiers[:n_vars] + [C] * max(0, n_vars - len(tiers))
    names = [f"{t.value[:3]}_{i:03d}" for i, t in enumerate(tiers)]
    nodes: list[Node] = []
    for i, (name, tier) in enumerate(zip(names, tiers, strict=True)):
        terms: list[tuple] = []
        if tier in (P, C) and i > 0:
            # parents from earlier non-quality nodes, favouring recent ones (a production line)
            pool = [j for j in range(i) if tiers[j] is not C]
            k = int(rng.integers(1, max_parents + 1))
            weights = np.exp(-(i - np.array(pool)) / 25.0)
            chosen = rng.choice(pool, size=min(k, len(pool)), replace=False, p=weights / weights.sum())
            for j in sorted(chosen):
                kind = str(rng.choice(["lin", "lin", "tanh", "quad"]))
                sign = 1.0 if rng.random() < 0.5 else -1.0
                coef = sign * float(rng.uniform(0.4, 0.8))
                if kind == "quad":
                    terms.append((names[j], "lin", coef))
                    coef = 0.2 * sign
                terms.append((names[j], kind, coef))
        nodes.append(_n(name, tier, 100.0, 1.0, noise=0.5 if terms else 1.0, terms=tuple(terms)))
    return SCM(f"random_{n_vars}_{seed}", nodes)
