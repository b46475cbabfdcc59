"""Gateway fixtures: the app on SQLite *and* PostgreSQL, wired to a real anvil node with deployed contracts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.chainctx import deploy_contracts
from app.main import create_app
from app.settings import Settings
from app.worker import AnchorWorker

# anvil dev accounts 2..6 stand in for the parties' own wallets
ACCOUNTS = {
    "oem": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "supplier": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "lab": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "supplier2": "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "oem2": "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
}

CSV_OK = (
    "sample_id,characteristic,value,unit,uncertainty\n"
    "S1,thickness,12.31,um,0.05\n"
    "S1,width,4.02,mm,0.01\n"
    "S2,thickness,12.29,um,0.05\n"
    "S2,width,4.01,mm,0.01\n"
)


@dataclass
class Gateway:
    client: TestClient
    settings: Settings
    worker: AnchorWorker
    keys: dict[str, str]
    admin_token: str

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who] if who != 'admin' else self.admin_token}"}

    def upload(self, who: str, content: bytes | str, name: str = "lot.csv", key: str | None = None) -> Any:
        data = content.encode() if isinstance(content, str) else content
        headers = self.auth(who) | ({"Idempotency-Key": key} if key else {})
        return self.client.post("/v1/batches", files=[("files", (name, data, "text/plain"))], headers=headers)

    def anchor_all(self) -> int:
        return self.worker.run_once()


def make_settings(tmp_path: Path, db_url: str, rpc_url: str, **extra: Any) -> Settings:
    return Settings(
        env="test",
        data_dir=tmp_path / "data",
        database_url=db_url,
        rpc_url=rpc_url,
        deployments_dir=tmp_path / "deployments",
        anchor_retry_base_s=0.0,
        reconcile_interval_s=3600,
        **extra,
    )


@pytest.fixture
def gateway(tmp_path: Path, db_url: str, anvil: Any) -> Iterator[Gateway]:
    settings = make_settings(tmp_path, db_url, anvil.url)
    deploy_contracts(settings)
    app = create_app(settings, embedded_worker=False)
    with TestClient(app) as client:
        gw = Gateway(
            client=client,
            settings=settings,
            worker=AnchorWorker(
                settings=settings, session_factory=app.state.session_factory, chain=app.state.chain_holder.get()
            ),
            keys={},
            admin_token=settings.api_admin_token.get_secret_value(),
        )
        for who, kind in [("oem", "oem"), ("supplier", "supplier"), ("supplier2", "supplier")]:
            resp = client.post(
                "/v1/parties",
                json={"name": f"{who} ltd", "kind": kind, "account": ACCOUNTS[who]},
                headers=gw.auth("admin"),
            )
            assert resp.status_code == 201, resp.text
            gw.keys[who] = resp.json()["api_key"]
        yield gw
