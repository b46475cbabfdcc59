"""Causal core: constrained structure learning, additive-noise model, root-cause ranking, interventions,
counterfactuals and safe domain.

Typical flow::

    cons = load_constraints("models/fmea/plasma_deposition.yaml")
    graph = learn_structure(history, cons)                  # pgmpy PC + FMEA constraints, hashed
    GraphStore(dir).save("plasma_deposition", graph)        # versioned
    anm = AdditiveNoiseModel().fit(history, graph=graph, specs=cons.specs)
    report = rank_root_causes(anm, anomalous_row, "breakdown_voltage", k=3)
    counterfactual(anm, anomalous_row, {"rf_power": (496.0, 504.0)}, "breakdown_voltage")
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.causal.anm import AdditiveNoiseModel, Mechanism
    from models.causal.constraints import DEFAULT_TIER_ORDER, CausalConstraints, Spec, Tier, load_constraints
    from models.causal.errors import ConstraintError, GraphError
    from models.causal.graph import CausalGraph, GraphStore, data_sha256
    from models.causal.interventions import (
        CounterfactualResult,
        InterventionResult,
        SafeDomainResult,
        counterfactual,
        do_effect,
        safe_domain,
    )
    from models.causal.plot import plot_graph
    from models.causal.ranking import RootCause, RootCauseReport, rank_root_causes
    from models.causal.structure import (
        FisherZ,
        GTest,
        RefreshResult,
        StructureLearner,
        SuffStats,
        learn_structure,
    )

__all__ = [
    "DEFAULT_TIER_ORDER",
    "AdditiveNoiseModel",
    "CausalConstraints",
    "CausalGraph",
    "ConstraintError",
    "CounterfactualResult",
    "FisherZ",
    "GTest",
    "GraphError",
    "GraphStore",
    "InterventionResult",
    "Mechanism",
    "RefreshResult",
    "RootCause",
    "RootCauseReport",
    "SafeDomainResult",
    "Spec",
    "StructureLearner",
    "SuffStats",
    "Tier",
    "counterfactual",
    "data_sha256",
    "do_effect",
    "learn_structure",
    "load_constraints",
    "plot_graph",
    "rank_root_causes",
    "safe_domain",
]


# Names are imported on first use (PEP 562): importing models.causal.constraints must not pull in
# pgmpy, scikit-learn and matplotlib, which take seconds.
_LAZY = {
    "AdditiveNoiseModel": "models.causal.anm",
    "CausalConstraints": "models.causal.constraints",
    "CausalGraph": "models.causal.graph",
    "ConstraintError": "models.causal.errors",
    "CounterfactualResult": "models.causal.interventions",
    "DEFAULT_TIER_ORDER": "models.causal.constraints",
    "FisherZ": "models.causal.structure",
    "GTest": "models.causal.structure",
    "GraphError": "models.causal.errors",
    "GraphStore": "models.causal.graph",
    "InterventionResult": "models.causal.interventions",
    "Mechanism": "models.causal.anm",
    "RefreshResult": "models.causal.structure",
    "RootCause": "models.causal.ranking",
    "RootCauseReport": "models.causal.ranking",
    "SafeDomainResult": "models.causal.interventions",
    "Spec": "models.causal.constraints",
    "StructureLearner": "models.causal.structure",
    "SuffStats": "models.causal.structure",
    "Tier": "models.causal.constraints",
    "counterfactual": "models.causal.interventions",
    "data_sha256": "models.causal.graph",
    "do_effect": "models.causal.interventions",
    "learn_structure": "models.causal.structure",
    "load_constraints": "models.causal.constraints",
    "plot_graph": "models.causal.plot",
    "rank_root_causes": "models.causal.ranking",
    "safe_domain": "models.causal.interventions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
