"""The OEM's template editor, field by field: a library template's characteristics (name, unit, nominal,
LSL/USL, criticality), its sampling plan (method, inspection level, AQL per class) and minimum Cpk per class
become form fields; the form is merged back into the document and checked by the API's own validator
(:func:`app.services.agreements.validate_template`), each problem shown next to the field it names.

Form field names: ``c.<i>.<field>`` for characteristic ``i``, ``sampling.method``,
``sampling.inspection_level``, ``aql.<class>`` and ``min_cpk.<class>``; ``base`` carries the rest of the
document (JSON) unchanged. An empty number field means "absent" (an open spec limit, no AQL for the class).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.bodylimits import json_depth_exceeds
from app.errors import InvalidRequest
from app.services.agreements import validate_template

__all__ = ["CHAR_FIELDS", "CLASSES", "EditorState", "editor_state", "merge_form"]

CHAR_FIELDS = ("name", "unit", "nominal", "lsl", "usl", "criticality")
CLASSES = ("critical", "major", "minor")
_NUMBERS = {"nominal", "lsl", "usl"}
_MAX_BASE = 200_000
_MAX_DEPTH = 32  # a template is a few levels deep; form bodies skip the middleware's JSON depth check


@dataclass
class EditorState:
    """What the editor renders: the document, each field's text, the problems by field and those of no field."""

    doc: dict[str, Any]
    values: dict[str, str]
    errors: dict[str, list[str]]
    general: list[dict[str, str]]
    valid: bool
    base: str


def _text(v: Any) -> str:
    return "" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


def _values(doc: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, c in enumerate(doc.get("characteristics") or []):
        for f in CHAR_FIELDS:
            out[f"c.{i}.{f}"] = _text(c.get(f))
    sampling = doc.get("sampling") or {}
    out["sampling.method"] = _text(sampling.get("method"))
    out["sampling.inspection_level"] = _text(sampling.get("inspection_level"))
    for k in CLASSES:
        out[f"aql.{k}"] = _text((sampling.get("aql") or {}).get(k))
        out[f"min_cpk.{k}"] = _text(((doc.get("acceptance") or {}).get("min_cpk") or {}).get(k))
    return out


def _key(path: str) -> str:
    """A validator problem's field path -> the form field (or row) it belongs to."""
    m = re.fullmatch(r"characteristics\[(\d+)\](?:\.(\w+))?", path)
    if m:
        return f"c.{m.group(1)}" + (f".{m.group(2)}" if m.group(2) in CHAR_FIELDS else "")
    m = re.fullmatch(r"sampling\.aql\.(\w+)", path)
    if m:
        return f"aql.{m.group(1)}" if m.group(1) in CLASSES else "aql"
    m = re.fullmatch(r"acceptance\.min_cpk\.(\w+)", path)
    if m:
        return f"min_cpk.{m.group(1)}" if m.group(1) in CLASSES else "min_cpk"
    if path in ("sampling.method", "sampling.inspection_level", "sampling.aql"):
        return path.replace("sampling.aql", "aql")
    return path


def _number(text: str, key: str, errors: dict[str, list[str]]) -> float | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        errors.setdefault(key, []).append(f"{text!r} is not a number")
        return None
    if value != value or value in (float("inf"), float("-inf")):
        errors.setdefault(key, []).append(f"{text!r} is not a finite number")
        return None
    return value


def merge_form(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The document the form describes (its ``base`` with the edited fields), and the fields that are not
    even numbers (the validator never sees those)."""
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
    doc = copy.deepcopy(base)
    errors: dict[str, list[str]] = {}
    chars: list[Any] = doc["characteristics"] if isinstance(doc.get("characteristics"), list) else []
    for i, c in enumerate(chars):
        if not isinstance(c, dict):
            continue
        for f in CHAR_FIELDS:
            key = f"c.{i}.{f}"
            if key not in form:
                continue
            if f in _NUMBERS:
                value = _number(form[key], key, errors)
                if value is None:
                    c.pop(f, None)
                else:
                    c[f] = value
            else:
                c[f] = form[key].strip()
    sampling = doc.setdefault("sampling", {}) if isinstance(doc.get("sampling", {}), dict) else {}
    for f in ("method", "inspection_level"):
        if f"sampling.{f}" in form:
            text = form[f"sampling.{f}"].strip()
            if text:
                sampling[f] = text
            else:
                sampling.pop(f, None)
    if any(f"aql.{k}" in form for k in CLASSES):
        aql = {k: v for k in CLASSES if (v := _number(form.get(f"aql.{k}", ""), f"aql.{k}", errors)) is not None}
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
                if (v := _number(form.get(f"min_cpk.{k}", ""), f"min_cpk.{k}", errors)) is not None
            }
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
                key = _key(p["field"])
                named = re.search(r"for class '(\w+)'", p["message"])
                if key == "aql" and named and named.group(1) in CLASSES:  # the AQL validator names the class
                    key = f"aql.{named.group(1)}"
                if key in values or key in ("aql", "min_cpk") or re.fullmatch(r"c\.\d+", key):
                    errors.setdefault(key, []).append(p["message"])
                else:
                    general.append(p)
    return EditorState(
        doc=doc,
        values=_values(doc),
        errors=errors,
        general=general,
        valid=check and not errors and not general,
        base=json.dumps(doc, ensure_ascii=False),
    )
