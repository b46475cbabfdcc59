"""Portal fixtures without a chain: the gateway on SQLite and PostgreSQL, parties and people as rows."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import Party, session_scope
from app.main import create_app
from app.portal.models import PortalUser
from app.portal.security import hash_password
from app.settings import Settings
from tests.indexed_rows import add_agreement, add_case

PASSWORD = "correct horse battery"
CSV = "sample_id,characteristic,value,unit\nS1,thickness,12.31,um\nS2,thickness,12.29,um\n"


@dataclass
class World:
    client: TestClient
    app: Any
    settings: Settings
    ids: dict[str, int]

    def session(self) -> Any:
        return session_scope(self.app.state.session_factory)

    def browser(self, who: str | None = None, lang: str | None = None) -> TestClient:
        """A separate cookie jar (one person's browser), logged in as ``who``."""
        c = TestClient(self.app, base_url="http://testserver")
        if lang:
            c.cookies.set("qcn_lang", lang)
        if who:
            r = c.post("/portal/login", data={"email": f"{who}@example.com", "password": PASSWORD})
            assert r.status_code == 200, r.text[:300]
        return c

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_admin_token.get_secret_value()}"}


def csrf_of(html: str) -> str:
    m = re.search(r'name="qcn-csrf" content="([0-9a-f]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


_PARTIES = {
    "oem": ("oem", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
    "supplier": ("supplier", "0x90F79bf6EB2c4f870365E785982E1f101E93b906"),
    "lab": ("lab", "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"),
    "supplier2": ("supplier", "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"),
    "oem2": ("oem", "0x976EA74026E726554dB657fA54763abd0C3a0aa9"),
    "lab2": ("lab", "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"),
}


@functools.cache
def _hash() -> str:
    return hash_password(PASSWORD)  # argon2id is slow by design: hash once for all fixture users


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    settings = Settings(
        env="test",
        data_dir=tmp_path / "data",
        database_url=db_url,
        rpc_url="http://127.0.0.1:9",  # no chain: pages that need it say so, the rest work
        deployments_dir=tmp_path / "deployments",
    )
    app = create_app(settings, embedded_worker=False)
    ids: dict[str, int] = {}
    with TestClient(app) as client:
        with session_scope(app.state.session_factory) as s:
            for name, (kind, account) in _PARTIES.items():
                p = Party(name=name.upper(), kind=kind, account=account)
                s.add(p)
                s.flush()
                ids[name] = p.id
                s.add(
                    PortalUser(
                        party_id=p.id,
                        email=f"{name}@example.com",
                        display_name=name,
                        role="signer",
                        party_admin=True,
                        password_hash=_hash(),
                    )
                )
            # one agreement oem/supplier/lab and one case on it, as the chain indexer would have stored them
            a = add_agreement(
                s,
                agreement_id="0x" + "aa" * 32,
                oem_id=ids["oem"],
                supplier_id=ids["supplier"],
                lab_id=ids["lab"],
                status="proposed",
                template_id="tpl.x",
                chain_template_id="0x" + "11" * 32,
                document_hash="0x" + "22" * 32,
            )
            ids["agreement"] = a.id
            ids["template"] = a.template_pk
            c = add_case(s, a, case_id="0x" + "cc" * 32, batch_id="0x" + "bb" * 32, deadline=4_000_000_000)
            ids["case"] = c.id
        yield World(client=client, app=app, settings=settings, ids=ids)
