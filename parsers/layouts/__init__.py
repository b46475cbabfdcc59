"""Declarative PDF layout profiles (one YAML file per lab layout) and their loader.

A profile says how to read one family of reports; a new lab means a new YAML file here, not code::

    id: cnas_bilingual                      # unique id, reported as LabReport.layout_profile
    extends: generic                        # optional: inherit fields/columns/ignore lines, then override
    fingerprint:                            # auto-selection on the text of page 1 (case-insensitive)
      all: ["CNAS"]                         #   every keyword must occur
      any: ["检测报告", "Test Report"]       #   score = number of these that occur (ties: more `all`)
    fields:                                 # target path in LabReport -> how to find it
      report_id:
        labels: ["报告编号 Report No.", "Report No."]   # "<label>[:：] value" at the start of a line
        next_line: true                     # value may sit on the following line when empty
      dates.issue:
        labels: ["Date of issue"]
        type: date                          # normalised to YYYY-MM-DD
      dates.performance:                    # range: fills performance_start and performance_end
        labels: ["Date of calibration"]
        type: date_range
      title:
        patterns: ["^(?P<value>Test Report)$"]   # regexes over a whole line, group "value"
      deviations[]:                         # "[]" = list field: every match is appended
        labels: ["Deviation"]
    results:                                # results tables, found by header synonyms
      columns:
        quantity: ["Characteristic", "Test item"]
        value: ["Result", "Measured value"]
        unit: ["Unit"]
        uncertainty: ["U (k=2)", "Uncertainty"]
        verdict: ["Verdict", "Conformity"]
      min_header_columns: 3
      value_pattern: '^[<>≤≥]?\\s*[-+]?\\d'   # a row's value cell must match (else the table ends)
      external_marker: "*"                  # a quantity ending with this marks an external-provider result
    ignore_lines: ["^Page \\d+ of \\d+"]    # page headers/footers skipped everywhere (tables continue)

Field paths: ``title``, ``report_id``, ``lab.name``, ``lab.address``, ``location``, ``customer.name``,
``customer.address``, ``methods[].standard``, ``methods[].name``, ``items[0].id``, ``items[0].description``,
``items[0].condition``, ``dates.receipt|sampling|performance_start|performance_end|issue``,
``dates.performance`` (range), ``sampling_plan``, ``conformity_statement``, ``decision_rule``,
``deviations[]``, ``authorised_by[].name``, ``authorised_by[].role``, ``external_providers[]``,
``amends_report_id``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FieldSpec", "LayoutProfile", "ResultsSpec", "load_profiles", "select_profile"]

_DIR = Path(__file__).parent
GENERIC_ID = "generic"


class FieldSpec(BaseModel):
    """How to find one field: line-start labels and/or whole-line regexes."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    type: str = "text"  # text | date | date_range
    next_line: bool = False
    pages: list[int] | None = None  # restrict to these 1-based pages


class ResultsSpec(BaseModel):
    """Results-table recognition: header synonyms per column plus row rules."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, list[str]] = Field(default_factory=dict)
    min_header_columns: int = 3
    value_pattern: str = r"^[<>≤≥]?\s*[-+]?\d|^(ND|N\.D\.|n\.d\.|未检出)$"
    external_marker: str | None = None
    enabled: bool = True


class LayoutProfile(BaseModel):
    """One lab layout (see the module docstring for the YAML format)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    description: str = ""
    extends: str | None = None
    fingerprint: dict[str, list[str]] = Field(default_factory=dict)
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    results: ResultsSpec = Field(default_factory=ResultsSpec)
    ignore_lines: list[str] = Field(default_factory=list)

    def score(self, first_page_text: str) -> int | None:
        """Fingerprint score on page-1 text; ``None`` when a required keyword is missing."""
        text = first_page_text.lower()
        required = self.fingerprint.get("all", [])
        if not required and not self.fingerprint.get("any"):
            return None
        if any(k.lower() not in text for k in required):
            return None
        return len(required) * 100 + sum(1 for k in self.fingerprint.get("any", []) if k.lower() in text)

    @functools.cached_property
    def ignore_res(self) -> list[re.Pattern[str]]:
        """Compiled ``ignore_lines`` regexes."""
        return [re.compile(p, re.IGNORECASE) for p in self.ignore_lines]


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, val in child.items():
        if key in {"fields"} and isinstance(val, dict):
            out[key] = {**base.get(key, {}), **val}
        elif key == "results" and isinstance(val, dict):
            merged = {**base.get(key, {}), **val}
            if "columns" in val and "columns" in base.get(key, {}):
                merged["columns"] = {**base[key]["columns"], **val["columns"]}
            out[key] = merged
        elif key == "ignore_lines":
            out[key] = list(base.get(key, [])) + list(val)
        else:
            out[key] = val
    out.pop("extends", None)
    return out


@functools.lru_cache(maxsize=8)
def load_profiles(directory: str | None = None) -> tuple[LayoutProfile, ...]:
    """Load every ``*.yaml`` profile (resolving ``extends``); cached per directory."""
    folder = Path(directory) if directory else _DIR
    raw: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw[data["id"]] = data

    def resolve(pid: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        if pid in seen:
            raise ValueError(f"layout profile inheritance cycle: {' -> '.join((*seen, pid))}")
        data = raw[pid]
        parent = data.get("extends")
        return _merge(resolve(parent, (*seen, pid)), data) if parent else data

    return tuple(LayoutProfile.model_validate(resolve(pid)) for pid in raw)


def select_profile(first_page_text: str, profiles: tuple[LayoutProfile, ...] | None = None) -> LayoutProfile:
    """Best-scoring profile for the page-1 text, else the ``generic`` fallback."""
    profiles = profiles if profiles is not None else load_profiles()
    best: tuple[int, LayoutProfile] | None = None
    generic: LayoutProfile | None = None
    for prof in profiles:
        if prof.id == GENERIC_ID:
            generic = prof
            continue
        score = prof.score(first_page_text)
        if score is not None and (best is None or score > best[0]):
            best = (score, prof)
    if best is not None:
        return best[1]
    if generic is None:
        raise ValueError("no 'generic' layout profile found")
    return generic
