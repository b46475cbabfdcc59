"""Batch analysis in the gateway: process profiles, observations and history, model cache, the analysis engine.

The service functions the API and the worker call are in :mod:`app.services.analysis`.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.analysis.engine import FORMAT, AnalysisOutcome, run_analysis
    from app.analysis.errors import AnalysisInputError, AnalysisNotReady, translate_model_error
    from app.analysis.models import CausalModel, ModelCache, cache_for
    from app.analysis.profiles import Profile, list_profiles, load_profile, resolve_profile

__all__ = [
    "FORMAT",
    "AnalysisInputError",
    "AnalysisNotReady",
    "AnalysisOutcome",
    "CausalModel",
    "ModelCache",
    "Profile",
    "cache_for",
    "list_profiles",
    "load_profile",
    "resolve_profile",
    "run_analysis",
    "translate_model_error",
]


# Names are imported on first use (PEP 562): the gateway imports app.analysis.profiles and .errors
# at start, the analysis stack only when a batch is analysed.
_LAZY = {
    "AnalysisInputError": "app.analysis.errors",
    "AnalysisNotReady": "app.analysis.errors",
    "AnalysisOutcome": "app.analysis.engine",
    "CausalModel": "app.analysis.models",
    "FORMAT": "app.analysis.engine",
    "ModelCache": "app.analysis.models",
    "Profile": "app.analysis.profiles",
    "cache_for": "app.analysis.models",
    "list_profiles": "app.analysis.profiles",
    "load_profile": "app.analysis.profiles",
    "resolve_profile": "app.analysis.profiles",
    "run_analysis": "app.analysis.engine",
    "translate_model_error": "app.analysis.errors",
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
