"""Step 4 in the gateway: process profiles, observations and history, model cache, the analysis engine.

The service functions the API and the worker call are in :mod:`app.services.analysis`.
"""

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
