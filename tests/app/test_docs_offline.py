"""/docs and /redoc work on an air-gapped network: every asset comes from the gateway itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

_REF = re.compile(rb"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url\s*:\s*['"]([^'"]+)['"]""")


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = Settings(env="test", data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'qcn.db'}")
    return TestClient(create_app(settings, embedded_worker=False))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_the_gateways_own_assets(client: TestClient, page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200
    refs = [a or b for a, b in _REF.findall(html.content)]
    assert refs, "the page references no assets at all"
    external = [r for r in refs if re.match(rb"^(?:[a-z]+:)?//", r)]
    assert not external, f"{page} loads from outside the gateway: {external}"
    assert b"fonts.googleapis" not in html.content and b"cdn.jsdelivr" not in html.content
    for ref in refs:
        asset = client.get(ref.decode())
        assert asset.status_code == 200, (ref, asset.status_code)
        assert len(asset.content) > 0
    if page == "/docs":
        assert b'"validatorUrl": null' in html.content  # no call to the online validator either
        assert any(r.endswith(b"swagger-ui-bundle.js") for r in refs)
        assert any(r.endswith(b"/openapi.json") for r in refs)
