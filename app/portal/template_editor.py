"""The OEM's template editor, field by field: a library template's characteristics (name, unit, nominal,
LSL/USL, criticality), its process parameters (name, unit, nominal, LSL/USL, tier), its sampling plan
(method, inspection level, AQL per class), minimum Cpk per class, deposit terms (base amount, initial,
minimum and maximum ratio, the quarterly score tiers and step limit, top-up grace) and penalties (per
non-conforming batch of each class, per PPM above target) become form fields; the form is merged back into
the document and checked by the API's own validator (:func:`app.services.agreements.validate_template`),
each problem shown next to the field it names.

Form field names: ``c.<i>.<field>`` for characteristic ``i``, ``p.<i>.<field>`` for process parameter ``i``,
``sampling.method``, ``sampling.inspection_level``, ``aql.<class>`` and ``min_cpk.<class>``,
``deposit.<field>`` and ``tier.<i>.<min_score|ratio_bps>`` (a row left empty is dropped, so one blank row adds
a tier), ``penalties.per_batch.<class>``, ``penalties.per_ppm_above_target`` and ``penalties.target_ppm``;
``base`` carries the rest of the document (JSON) unchanged. An empty number field means "absent" (an open
spec limit, no AQL for the class). Token amounts are edited in whole tokens (18 decimals on chain).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from app.bodylimits import json_depth_exceeds
from app.errors import InvalidRequest
from app.services.agreements import validate_template

__all__ = [
    "CHAR_FIELDS",
    "CLASSES",
    "DEPOSIT_INTS",
    "PARAM_FIELDS",
    "TIERS",
    "EditorState",
    "editor_state",
    "merge_form",
]

CHAR_FIELDS = ("name", "unit", "nominal", "lsl", "usl", "criticality")
PARAM_FIELDS = ("name", "unit", "nominal", "lsl", "usl", "tier")
TIERS = ("material", "equipment", "process", "environment")
CLASSES = ("critical", "major", "minor")
DEPOSIT_INTS = ("initial_ratio_bps", "min_ratio_bps", "max_ratio_bps", "max_step_bps", "top_up_grace_seconds")
_NUMBERS = {"nominal", "lsl", "usl"}
_MAX_BASE = 200_000
_MAX_DEPTH = 32  # a template is a few levels deep; form bodies skip the middleware's JSON depth check
_WEI = Decimal(10) ** 18
Gettext = Callable[[str], str]


def _same(message: str) -> str:
    return message


_ROWS = ("aql", "min_cpk", "deposit", "deposit.tiers", "penalties", "penalties.per_batch")


@dataclass
class EditorState:
    """What the editor renders: the document, each field's text, the problems by field and those of no field."""

    doc: dict[str, Any]
    values: dict[str, str]
    errors: dict[str, list[str]]
    general: list[dict[str, str]]
    valid: bool
    base: str
    # fields a row's problem names ("lsl 9 must be below usl 4.36"): field -> the row whose message describes it
    flagged: dict[str, str] = field(default_factory=dict)


def _text(v: Any) -> str:
    return "" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


def _tokens(v: Any) -> str:
    """A token amount (smallest unit, int or decimal string) in whole tokens, without an exponent."""
    if v is None or v == "":
        return ""
    try:
        amount = Decimal(str(v)) / _WEI
    except InvalidOperation:
        return str(v)
    return format(amount.normalize(), "f")


def _dict(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = doc.get(key)
    return v if isinstance(v, Mapping) else {}


def _values(doc: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, c in enumerate(doc.get("characteristics") or []):
        for f in CHAR_FIELDS:
            out[f"c.{i}.{f}"] = _text(c.get(f))
    for i, p in enumerate(doc.get("process_parameters") or []):
        if isinstance(p, Mapping):
            for f in PARAM_FIELDS:
                out[f"p.{i}.{f}"] = _text(p.get(f))
    deposit = _dict(doc, "deposit")
    out["deposit.base_amount"] = _tokens(deposit.get("base_amount"))
    for f in DEPOSIT_INTS:
        out[f"deposit.{f}"] = _text(deposit.get(f))
    raw_tiers = deposit.get("tiers")
    tiers: list[Any] = list(raw_tiers) if isinstance(raw_tiers, list) else []
    for i, tier in enumerate([*tiers, {}]):  # one blank row: fill it to add a tier
        row: Mapping[str, Any] = tier if isinstance(tier, Mapping) else {}
        out[f"tier.{i}.min_score"] = _text(row.get("min_score"))
        out[f"tier.{i}.ratio_bps"] = _text(row.get("ratio_bps"))
    penalties = _dict(doc, "penalties")
    for k in CLASSES:
        out[f"penalties.per_batch.{k}"] = _tokens(_dict(penalties, "per_batch").get(k))
    out["penalties.per_ppm_above_target"] = _tokens(penalties.get("per_ppm_above_target"))
    out["penalties.target_ppm"] = _text(penalties.get("target_ppm"))
    sampling = doc.get("sampling") or {}
    out["sampling.method"] = _text(sampling.get("method"))
    out["sampling.inspection_level"] = _text(sampling.get("inspection_level"))
    for k in CLASSES:
        out[f"aql.{k}"] = _text((sampling.get("aql") or {}).get(k))
        out[f"min_cpk.{k}"] = _text(((doc.get("acceptance") or {}).get("min_cpk") or {}).get(k))
    return out


def _key(path: str, message: str = "") -> str:
    """A validator problem's field path -> the form field (or row) it belongs to."""
    m = re.fullmatch(r"characteristics\[(\d+)\](?:\.(\w+))?", path)
    if m:
        return f"c.{m.group(1)}" + (f".{m.group(2)}" if m.group(2) in CHAR_FIELDS else "")
    m = re.fullmatch(r"process_parameters\[(\d+)\](?:\.(\w+))?", path)
    if m:
        return f"p.{m.group(1)}" + (f".{m.group(2)}" if m.group(2) in PARAM_FIELDS else "")
    m = re.fullmatch(r"deposit\.tiers\[(\d+)\](?:\.(\w+))?", path)
    if m:
        return f"tier.{m.group(1)}" + (f".{m.group(2)}" if m.group(2) in ("min_score", "ratio_bps") else "")
    if path == "deposit":  # the curve's own checks name the field in their message
        m = re.search(r"tiers\[(\d+)\]\.(min_score|ratio_bps)", message)
        if m:
            return f"tier.{m.group(1)}.{m.group(2)}"
        m = re.match(r"(\w+)", message)
        if m and m.group(1) in DEPOSIT_INTS:
            return f"deposit.{m.group(1)}"
        return "deposit"
    if path == "deposit.tiers":
        return "deposit.tiers"
    m = re.fullmatch(r"sampling\.aql\.(\w+)", path)
    if m:
        return f"aql.{m.group(1)}" if m.group(1) in CLASSES else "aql"
    m = re.fullmatch(r"acceptance\.min_cpk\.(\w+)", path)
    if m:
        return f"min_cpk.{m.group(1)}" if m.group(1) in CLASSES else "min_cpk"
    if path in ("sampling.method", "sampling.inspection_level", "sampling.aql"):
        return path.replace("sampling.aql", "aql")
    return path


def _number(text: str, key: str, errors: dict[str, list[str]], _: Gettext = _same) -> float | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        errors.setdefault(key, []).append(_("%(text)s is not a number") % {"text": repr(text)})
        return None
    if value != value or value in (float("inf"), float("-inf")):
        errors.setdefault(key, []).append(_("%(text)s is not a finite number") % {"text": repr(text)})
        return None
    return value


def _integer(text: str, key: str, errors: dict[str, list[str]], _: Gettext) -> int | None:
    text = text.strip().replace(" ", "").replace("_", "")
    if not text:
        return None
    if not re.fullmatch(r"-?[0-9]{1,30}", text):
        errors.setdefault(key, []).append(_("%(text)s is not a whole number") % {"text": repr(text)})
        return None
    return int(text)


def _amount(text: str, key: str, errors: dict[str, list[str]], _: Gettext) -> str | None:
    """Whole tokens (up to 18 decimals; spaces, underscores and thousands commas ignored) -> smallest unit."""
    text = text.strip().replace(" ", "").replace("_", "").replace(",", "")
    if not text:
        return None
    if not re.fullmatch(r"[0-9]{1,60}(\.[0-9]{1,18})?", text):
        errors.setdefault(key, []).append(
            _("%(text)s is not an amount of tokens (a number ≥ 0, at most 18 decimals)") % {"text": repr(text)}
        )
        return None
    return str(int(Decimal(text) * _WEI))


def _set(target: dict[str, Any], field: str, value: Any) -> None:
    if value is None:
        target.pop(field, None)
    else:
        target[field] = value


def _merge_rows(
    doc: dict[str, Any],
    section: str,
    prefix: str,
    fields: tuple[str, ...],
    form: Mapping[str, str],
    errors: dict[str, list[str]],
    _: Gettext,
) -> None:
    """Edited fields ``<prefix>.<row>.<field>`` into the rows of ``doc[section]`` (characteristics, parameters)."""
    rows: list[Any] = doc[section] if isinstance(doc.get(section), list) else []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        for f in fields:
            key = f"{prefix}.{i}.{f}"
            if key not in form:
                continue
            if f in _NUMBERS:
                _set(row, f, _number(form[key], key, errors, _))
            else:
                row[f] = form[key].strip()


def _merge_deposit(doc: dict[str, Any], form: Mapping[str, str], errors: dict[str, list[str]], _: Gettext) -> None:
    if not any(k.startswith(("deposit.", "tier.")) for k in form) or not isinstance(doc.get("deposit"), dict):
        return
    deposit: dict[str, Any] = doc["deposit"]
    if "deposit.base_amount" in form:
        _set(deposit, "base_amount", _amount(form["deposit.base_amount"], "deposit.base_amount", errors, _))
    for f in DEPOSIT_INTS:
        if f"deposit.{f}" in form:
            _set(deposit, f, _integer(form[f"deposit.{f}"], f"deposit.{f}", errors, _))
    rows = sorted({int(m.group(1)) for k in form if (m := re.fullmatch(r"tier\.(\d+)\.\w+", k))})
    if rows:
        tiers = []
        for i in rows:
            texts = {f: form.get(f"tier.{i}.{f}", "").strip() for f in ("min_score", "ratio_bps")}
            if not any(texts.values()):
                continue  # an empty row: no tier (the blank row at the end adds one when filled)
            tier: dict[str, Any] = {}
            for f, text in texts.items():
                _set(tier, f, _integer(text, f"tier.{i}.{f}", errors, _))
            tiers.append(tier)
        deposit["tiers"] = tiers


def _merge_penalties(doc: dict[str, Any], form: Mapping[str, str], errors: dict[str, list[str]], _: Gettext) -> None:
    if not any(k.startswith("penalties.") for k in form) or not isinstance(doc.get("penalties"), dict):
        return
    penalties: dict[str, Any] = doc["penalties"]
    per_batch = penalties.setdefault("per_batch", {})
    for k in CLASSES:
        key = f"penalties.per_batch.{k}"
        if key in form and isinstance(per_batch, dict):
            _set(per_batch, k, _amount(form[key], key, errors, _))
    key = "penalties.per_ppm_above_target"
    if key in form:
        _set(penalties, "per_ppm_above_target", _amount(form[key], key, errors, _))
    if "penalties.target_ppm" in form:
        _set(penalties, "target_ppm", _integer(form["penalties.target_ppm"], "penalties.target_ppm", errors, _))


def merge_form(form: Mapping[str, str], _: Gettext = _same) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The document the form describes (its ``base`` with the edited fields), and the fields that are not
    even numbers (the validator never sees those); ``_`` translates those messages."""
    raw = form.get("base") or "{}"
    if len(raw) > _MAX_BASE:
        raise InvalidRequest("the template document is too large", field="base")
    if json_depth_exceeds(raw.encode(), _MAX_DEPTH):
        raise InvalidRequest(f"the template document nests deeper than {_MAX_DEPTH} levels", field="base")
    try:
        base = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the template document is not JSON: {exc.msg}", field="base") from exc
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise InvalidRequest(f"the template document cannot be read: {exc}", field="base") from None
    if not isinstance(base, dict):
        raise InvalidRequest("the template document must be a JSON object", field="base")
    doc: dict[str, Any] = base  # freshly decoded: edited in place
    errors: dict[str, list[str]] = {}
    _merge_rows(doc, "characteristics", "c", CHAR_FIELDS, form, errors, _)
    sampling = doc.setdefault("sampling", {}) if isinstance(doc.get("sampling", {}), dict) else {}
    for f in ("method", "inspection_level"):
        if f"sampling.{f}" in form:
            text = form[f"sampling.{f}"].strip()
            if text:
                sampling[f] = text
            else:
                sampling.pop(f, None)
    if any(f"aql.{k}" in form for k in CLASSES):
        aql = {k: v for k in CLASSES if (v := _number(form.get(f"aql.{k}", ""), f"aql.{k}", errors, _)) is not None}
        if aql:
            sampling["aql"] = aql
        else:
            sampling.pop("aql", None)
    if any(f"min_cpk.{k}" in form for k in CLASSES):
        acceptance = doc.setdefault("acceptance", {})
        if isinstance(acceptance, dict):
            acceptance["min_cpk"] = {
                k: v
                for k in CLASSES
                if (v := _number(form.get(f"min_cpk.{k}", ""), f"min_cpk.{k}", errors, _)) is not None
            }
    _merge_rows(doc, "process_parameters", "p", PARAM_FIELDS, form, errors, _)
    _merge_deposit(doc, form, errors, _)
    _merge_penalties(doc, form, errors, _)
    return doc, errors


def editor_state(doc: dict[str, Any], *, check: bool, form_errors: dict[str, list[str]] | None = None) -> EditorState:
    """Render state of ``doc``; with ``check``, run the API's validator and place each problem by field."""
    errors: dict[str, list[str]] = {k: list(v) for k, v in (form_errors or {}).items()}
    general: list[dict[str, str]] = []
    if check:
        try:
            validate_template(doc)
        except InvalidRequest as exc:
            values = _values(doc)
            for p in exc.facts.get("problems") or []:
                key = _key(p["field"], p["message"])
                if key in errors and key in (form_errors or {}):
                    continue  # not even a number: the validator's "missing" says nothing more
                named = re.search(r"for class '(\w+)'", p["message"])
                if key == "aql" and named and named.group(1) in CLASSES:  # the AQL validator names the class
                    key = f"aql.{named.group(1)}"
                if key in values or key in _ROWS or re.fullmatch(r"[cp]\.\d+|tier\.\d+", key):
                    errors.setdefault(key, []).append(p["message"])
                else:
                    general.append(p)
    flagged = {
        f"{row}.{f}": row
        for row, messages in errors.items()
        if re.fullmatch(r"[cp]\.\d+", row)
        for f in sorted(_NUMBERS)
        if any(re.search(rf"\b{f}\b", m) for m in messages)
    }
    return EditorState(
        doc=doc,
        values=_values(doc),
        errors=errors,
        general=general,
        valid=check and not errors and not general,
        base=json.dumps(doc, ensure_ascii=False),
        flagged=flagged,
    )
