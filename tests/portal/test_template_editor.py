"""The OEM's template editor, field by field: values from the library template, server-side validation by the
API's validator with each problem next to its field (htmx partial), and the merged document for publishing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.quality import library_template
from tests.portal.conftest import World, csrf_of

START = "electrode_coating_line"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'portal.db'}"


def _form(html: str) -> dict[str, str]:
    """The editor's fields as the browser would post them (inputs and selected options)."""
    out: dict[str, str] = {}
    for m in re.finditer(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html):
        out[m.group(1)] = m.group(2).replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&")
    for m in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        sel = re.search(r'<option value="([^"]*)" selected', m.group(2))
        out[m.group(1)] = sel.group(1) if sel else ""
    return out


def _editor(world: World) -> tuple[object, str, dict[str, str]]:
    c = world.browser("oem")
    page = c.get(f"/portal/templates/new?start={START}")
    assert page.status_code == 200
    return c, csrf_of(page.text), _form(page.text)


def test_the_editor_shows_each_characteristic_of_the_library_template(world: World) -> None:
    _c, _t, form = _editor(world)
    doc = library_template(START).document()
    first = doc["characteristics"][0]
    assert form["c.0.lsl"] == f"{first['lsl']:g}" and form["c.0.usl"] == f"{first['usl']:g}"
    assert form["c.0.unit"] == first["unit"] and form["c.0.criticality"] == first["criticality"]
    assert form["aql.critical"] == f"{doc['sampling']['aql']['critical']:g}"
    assert form["sampling.inspection_level"] == doc["sampling"]["inspection_level"]
    assert json.loads(form["base"])["template_id"] == doc["template_id"]


def test_problems_appear_next_to_the_fields_they_name(world: World) -> None:
    c, token, form = _editor(world)
    bad = {**form, "c.0.lsl": "5", "c.0.usl": "4", "c.1.nominal": "high", "aql.major": "0.3", "min_cpk.critical": "0"}
    r = c.post("/portal/templates/validate", data=bad, headers={"X-CSRF-Token": token})
    assert r.status_code == 200
    html = r.text
    assert 'data-valid="false"' in html
    # the limits' own check (lsl >= usl) is a problem of the characteristic's row
    assert re.search(r'id="err-c-0">[^<]*lsl 5 must be below usl 4', html), html[:2000]
    # not a number: said at the field, and what was typed stays in it
    assert re.search(r'id="f-c-1-nominal" name="c.1.nominal" value="high"[^>]*aria-invalid="true"', html)
    assert re.search(r'id="err-c-1-nominal">[^<]*not a number', html)
    assert re.search(r'id="err-aql-major">AQL 0.3 for class (&#39;|\')major(&#39;|\') is not a preferred value', html)
    assert 'id="err-min_cpk-critical"' in html


def test_a_valid_edit_passes_and_becomes_the_document_to_publish(world: World) -> None:
    c, token, form = _editor(world)
    edited = {**form, "c.0.nominal": "4.05", "c.0.unit": "mAh/cm²", "min_cpk.critical": "1.67"}
    r = c.post("/portal/templates/validate", data=edited, headers={"X-CSRF-Token": token})
    assert 'data-valid="true"' in r.text and "field-error" not in r.text
    doc = c.post("/portal/api/templates/merge", data=edited, headers={"X-CSRF-Token": token}).json()["document"]
    assert doc["characteristics"][0]["nominal"] == 4.05 and doc["characteristics"][0]["unit"] == "mAh/cm²"
    assert doc["acceptance"]["min_cpk"]["critical"] == 1.67
    # unchanged parts of the template travel as they were
    assert doc["process_parameters"] == library_template(START).document()["process_parameters"]
    # a number that is not one is refused before publishing, naming the field
    r = c.post("/portal/api/templates/merge", data={**edited, "c.2.usl": "x"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 422 and r.json()["error"]["field"] == "c.2.usl"


def test_validation_needs_the_session_csrf_token_and_an_oem(world: World) -> None:
    c, _token, form = _editor(world)
    assert c.post("/portal/templates/validate", data=form).status_code == 403
    supplier = world.browser("supplier")
    token = csrf_of(supplier.get("/portal/").text)
    assert supplier.get(f"/portal/templates/new?start={START}").status_code == 403
    assert supplier.post("/portal/templates/validate", data=form, headers={"X-CSRF-Token": token}).status_code == 403
