"""Process profiles: which process a batch comes from, its variables, tiers and spec limits.

A profile is a named FMEA YAML (``models/fmea/<name>.yaml``, directory ``settings.analysis_fmea_dir``):
its variables with tiers and nominal values, its quality characteristics with spec limits, and the
forbidden/required edges the causal model must respect. A batch is linked to a profile when it is
stored, in this order:

1. its part number is a key of ``settings.analysis_profiles`` (part number -> profile name);
2. otherwise the one profile whose quality characteristics include every characteristic the batch
   measured (no match or an ambiguous match -> no profile: the batch is still spec/SPC-checked with the
   limits its file declares, but it gets no model score and no causal analysis).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.settings import Settings
from models.causal.constraints import CausalConstraints, Tier, load_constraints

__all__ = ["Profile", "fmea_dir", "list_profiles", "load_profile", "resolve_profile"]

_DEFAULT_FMEA_DIR = Path(__file__).resolve().parents[2] / "models" / "fmea"


@dataclass(frozen=True)
class Profile:
    """A named process: its FMEA constraints plus convenient views of them."""

    name: str
    constraints: CausalConstraints
    path: Path

    @property
    def characteristics(self) -> list[str]:
        """Quality characteristics, in FMEA order."""
        return [v for v in self.constraints.variables if self.constraints.tier(v) is Tier.QUALITY]

    @property
    def variables(self) -> list[str]:
        """All variables of the profile."""
        return list(self.constraints.variables)

    def spec(self) -> dict[str, dict[str, Any]]:
        """Spec limits per characteristic in ``models.spec.parse_spec`` form."""
        out: dict[str, dict[str, Any]] = {}
        for name, s in self.constraints.specs.items():
            if s.lsl is None and s.usl is None:
                continue
            d: dict[str, Any] = {"lsl": s.lsl, "usl": s.usl}
            nominal = self.constraints.nominal.get(name)
            if nominal is not None and (s.lsl is None or nominal >= s.lsl) and (s.usl is None or nominal <= s.usl):
                d["nominal"] = nominal
            if name in self.constraints.units:
                d["unit"] = self.constraints.units[name]
            out[name] = d
        return out

    @property
    def sha256(self) -> str:
        """Hash of the constraints (tiers, edges, nominal values, specs)."""
        return self.constraints.sha256


def fmea_dir(settings: Settings) -> Path:
    """Directory holding the profiles' FMEA YAML files."""
    return settings.analysis_fmea_dir or _DEFAULT_FMEA_DIR


@lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int) -> CausalConstraints:
    return load_constraints(path)


def load_profile(settings: Settings, name: str) -> Profile | None:
    """The profile ``name`` or None when there is no such FMEA file."""
    if not name or "/" in name or name.startswith("."):
        return None
    path = fmea_dir(settings) / f"{name}.yaml"
    if not path.is_file():
        return None
    return Profile(name, _load(path, path.stat().st_mtime_ns), path)


def list_profiles(settings: Settings) -> list[Profile]:
    """Every profile found in the FMEA directory, sorted by name."""
    d = fmea_dir(settings)
    if not d.is_dir():
        return []
    out = []
    for p in sorted(d.glob("*.yaml")):
        prof = load_profile(settings, p.stem)
        if prof is not None:
            out.append(prof)
    return out


def resolve_profile(settings: Settings, *, part_number: str | None, characteristics: Iterable[str]) -> str | None:
    """Profile name for a batch (see the module docstring for the rule), or None."""
    if part_number and part_number in settings.analysis_profiles:
        return settings.analysis_profiles[part_number]
    chars = set(characteristics)
    if not chars:
        return None
    matches = [p.name for p in list_profiles(settings) if chars <= set(p.characteristics)]
    return matches[0] if len(matches) == 1 else None
