"""Batch analysis in the gateway: process profiles, observations and history, model cache, the analysis engine.

The service functions the API and the worker call are in :mod:`app.services.analysis`.
"""

from typing import TYPE_CHECKING

from models.lazy import lazy_exports

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
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "app.analysis.engine": ["FORMAT", "AnalysisOutcome", "run_analysis"],
        "app.analysis.errors": ["AnalysisInputError", "AnalysisNotReady", "translate_model_error"],
        "app.analysis.models": ["CausalModel", "ModelCache", "cache_for"],
        "app.analysis.profiles": ["Profile", "list_profiles", "load_profile", "resolve_profile"],
    },
)
