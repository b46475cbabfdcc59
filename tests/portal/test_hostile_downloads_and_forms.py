"""Found by an outside review: a Chinese evidence file name gave 500 on download (HTTP headers are latin-1), and
the template editor's ``base`` field (a form field, so the JSON depth check of the middleware does not see it)
gave 500 for a 5,000-digit number or 90,000 nested brackets."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote

import pytest

from app.db import Blob, CaseEvidence, CaseRecord
from app.inputs import safe_filename
from tests.portal.conftest import World, csrf_of


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'portal.db'}"


def test_an_evidence_file_named_in_chinese_downloads_under_its_name(world: World) -> None:
    data = "D4 根本原因：涂布辊压力漂移".encode()
    sha = hashlib.sha256(data).hexdigest()
    with world.session() as s:
        case = s.get(CaseRecord, world.ids["case"])
        assert case is not None
        s.add(Blob(sha256=sha, size=len(data), data=data))
        s.flush()
        s.add(
            CaseEvidence(
                case_pk=case.id,
                party_id=world.ids["supplier"],
                evidence_hash="0x" + "ee" * 32,
                sha256=sha,
                filename=safe_filename('8D-报告 "final".txt'),
                size=len(data),
            )
        )
        case_ref = case.case_id
    r = world.browser("oem").get(f"/portal/cases/{case_ref}/evidence/{sha}")
    assert r.status_code == 200 and r.content == data
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == "8D-报告 _final_.txt"


@pytest.mark.parametrize(
    ("base", "says"),
    [
        ('{"x": ' + "1" * 5000 + "}", "cannot be read"),
        ("[" * 90_000 + "]" * 90_000, "nests deeper"),
        ('{"a":' * 30_000 + "1" + "}" * 30_000, "nests deeper"),
    ],
    ids=["5000-digit-number", "deep-array", "deep-object"],
)
def test_a_hostile_template_document_is_refused_naming_the_field(world: World, base: str, says: str) -> None:
    c = world.browser("oem")
    token = csrf_of(c.get("/portal/templates/new").text)
    for path in ("/portal/api/templates/merge", "/portal/templates/validate"):
        r = c.post(path, data={"base": base}, headers={"X-CSRF-Token": token})
        assert r.status_code == 422, (path, r.status_code, r.text[:200])
        assert says in r.text
