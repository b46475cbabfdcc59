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
    # ... and the fields it names are marked invalid and described by it
    for f in ("lsl", "usl"):
        assert re.search(rf'id="f-c-0-{f}" name="c.0.{f}"[^>]*aria-invalid="true" aria-describedby="err-c-0"', html)
    assert not re.search(r'id="f-c-0-nominal"[^>]*aria-invalid', html)
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


def test_deposit_terms_penalties_and_process_parameters_are_fields_too(world: World) -> None:
    _c, _t, form = _editor(world)
    doc = library_template(START).document()
    deposit, penalties = doc["deposit"], doc["penalties"]
    assert form["deposit.base_amount"] == str(int(deposit["base_amount"]) // 10**18)  # whole tokens
    assert form["deposit.min_ratio_bps"] == str(deposit["min_ratio_bps"])
    assert form["deposit.max_step_bps"] == str(deposit["max_step_bps"])
    assert form["tier.1.min_score"] == str(deposit["tiers"][1]["min_score"])
    assert form[f"tier.{len(deposit['tiers'])}.min_score"] == ""  # the blank row that adds a tier
    assert form["penalties.per_batch.critical"] == str(int(penalties["per_batch"]["critical"]) // 10**18)
    assert form["penalties.target_ppm"] == str(penalties["target_ppm"])
    first = doc["process_parameters"][0]
    assert form["p.0.usl"] == f"{first['usl']:g}" and form["p.0.tier"] == first["tier"]


def test_the_validator_s_deposit_and_penalty_problems_land_on_their_fields(world: World) -> None:
    c, token, form = _editor(world)
    bad = {
        **form,
        "deposit.min_ratio_bps": "16000",  # above the maximum: the curve's own check names the field
        "tier.2.ratio_bps": "abc",
        "penalties.per_batch.major": "-3",
        "penalties.target_ppm": "2000000",
        "p.1.lsl": "30",  # above its usl
    }
    html = c.post("/portal/templates/validate", data=bad, headers={"X-CSRF-Token": token}).text
    assert 'data-valid="false"' in html
    assert re.search(r'id="f-tier-2-ratio-bps" name="tier.2.ratio_bps" value="abc"[^>]*aria-invalid="true"', html)
    assert re.search(r'id="err-tier-2-ratio_bps">[^<]*not a whole number', html)
    assert re.search(r'id="err-penalties-per_batch-major">[^<]*not an amount of tokens', html)
    assert re.search(r'id="err-penalties-target_ppm">[^<]*less than or equal to 1000000', html)
    assert re.search(r'id="err-p-1">[^<]*lsl 30 must be below usl', html)
    # once the tier is a number again, the curve's check speaks (pydantic checks fields before the model)
    html = c.post(
        "/portal/templates/validate",
        data={**bad, "tier.2.ratio_bps": "10000", "penalties.per_batch.major": "1000", "penalties.target_ppm": "5"},
        headers={"X-CSRF-Token": token},
    ).text
    assert re.search(r'id="err-deposit-min_ratio_bps">min_ratio_bps 16000 is above max_ratio_bps 15000', html)
    assert re.search(r'id="f-deposit-min-ratio-bps" name="deposit.min_ratio_bps" value="16000"[^>]*aria-invalid', html)


def test_edited_terms_become_the_document_with_exact_token_amounts(world: World) -> None:
    c, token, form = _editor(world)
    n = len(library_template(START).document()["deposit"]["tiers"])
    edited = {
        **form,
        "deposit.base_amount": "42000.5",
        "deposit.max_step_bps": "2000",
        f"tier.{n}.min_score": "99",  # the blank row: a new tier
        f"tier.{n}.ratio_bps": "5000",
        "tier.1.min_score": "",  # emptied: that tier goes
        "tier.1.ratio_bps": "",
        "penalties.per_batch.minor": "250",
        "penalties.per_ppm_above_target": "0.75",
        "p.0.usl": "15",
        "p.0.tier": "process",
    }
    r = c.post("/portal/templates/validate", data=edited, headers={"X-CSRF-Token": token})
    assert 'data-valid="true"' in r.text, re.findall(r'class="field-error"[^>]*>[^<]*', r.text)
    doc = c.post("/portal/api/templates/merge", data=edited, headers={"X-CSRF-Token": token}).json()["document"]
    assert doc["deposit"]["base_amount"] == "42000500000000000000000" and doc["deposit"]["max_step_bps"] == 2000
    assert [t["min_score"] for t in doc["deposit"]["tiers"]] == [0, 80, 90, 97, 99]
    assert doc["penalties"]["per_batch"]["minor"] == "250000000000000000000"
    assert doc["penalties"]["per_ppm_above_target"] == "750000000000000000"
    assert doc["process_parameters"][0]["usl"] == 15.0 and doc["process_parameters"][0]["tier"] == "process"


def test_form_errors_of_the_new_fields_are_in_chinese_for_a_chinese_reader(world: World) -> None:
    c = world.browser("oem", lang="zh")
    page = c.get(f"/portal/templates/new?start={START}")
    assert "保证金条款" in page.text and "罚金" in page.text and "过程参数" in page.text
    assert '<span class="hint" id="grace-days">= 14.0 天</span>' in page.text  # 1,209,600 s
    form = _form(page.text)
    token = csrf_of(page.text)
    bad = {**form, "deposit.max_step_bps": "x"}
    html = c.post("/portal/templates/validate", data=bad, headers={"X-CSRF-Token": token}).text
    assert re.search(r'id="err-deposit-max_step_bps">[^<]*不是整数', html)
