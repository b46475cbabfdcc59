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

from typing import TYPE_CHECKING

from models.lazy import lazy_exports

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
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "models.causal.anm": ["AdditiveNoiseModel", "Mechanism"],
        "models.causal.constraints": ["DEFAULT_TIER_ORDER", "CausalConstraints", "Spec", "Tier", "load_constraints"],
        "models.causal.errors": ["ConstraintError", "GraphError"],
        "models.causal.graph": ["CausalGraph", "GraphStore", "data_sha256"],
        "models.causal.interventions": [
            "CounterfactualResult",
            "InterventionResult",
            "SafeDomainResult",
            "counterfactual",
            "do_effect",
            "safe_domain",
        ],
        "models.causal.plot": ["plot_graph"],
        "models.causal.ranking": ["RootCause", "RootCauseReport", "rank_root_causes"],
        "models.causal.structure": [
            "FisherZ",
            "GTest",
            "RefreshResult",
            "StructureLearner",
            "SuffStats",
            "learn_structure",
        ],
    },
)
