"""A benchmark's world, built only the way users build it: through the gateway's HTTP API and the parties' own
wallets. No database row is written or changed behind the gateway's back.

``build_world(base_dir, node)`` deploys the contracts (``qcn deploy``), starts the gateway app (in process,
spoken to over its HTTP API with ``PartyClient``, as ``qcn`` does) with an anchoring worker whose passes the
benchmark runs, registers an OEM, a supplier and a lab (admin API), publishes the electrode-coating-line
template from the OEM's key, has OEM and supplier sign the agreement (EIP-712, own keys), and the supplier
deposit through the relay; the OEM funds its lab-fee pool from its own wallet (there is no gateway endpoint
for that: OEMs do it with their wallet). Tokens come from the dev chain's open-mint test token (the faucet
``qcn demo`` uses). Keys are anvil's public development keys (indices 2-4, as in the demo).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from app.chainctx import ChainContext, deploy_contracts  # noqa: E402
from app.main import create_app  # noqa: E402
from app.partyclient import PartyClient  # noqa: E402
from app.quality import library_template  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.worker import AnchorWorker  # noqa: E402
from chain.contracts import contract_at  # noqa: E402
from chain.node import DEV_MNEMONIC, LocalNode  # noqa: E402
from chain.tx import TxSender  # noqa: E402
from models.simulate.lots import DemoBatch  # noqa: E402

__all__ = ["TEMPLATE", "World", "build_world"]

TEMPLATE = "electrode_coating_line"
LOT_SIZE = 1200  # ISO 2859-1 S-4 -> code G: 32 samples per lot, as the simulated lots carry
_INDEX = {"oem": 2, "supplier": 3, "lab": 4}


@dataclass
class World:
    """The gateway, its worker, the parties' clients (API key + own signing key) and the active agreement."""

    client: TestClient
    settings: Settings
    worker: AnchorWorker
    chain: ChainContext
    parties: dict[str, PartyClient] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    keys: dict[str, bytes] = field(default_factory=dict)
    agreement: str = ""
    deadlines: dict[str, int] = field(default_factory=dict)

    def run(self, passes: int = 1) -> None:
        """Worker passes, as ``qcn worker`` runs them (anchoring, analysis, cases, indexer, scheduler)."""
        for _ in range(passes):
            self.worker.run_once()

    def travel(self, seconds: int) -> None:
        """Dev chain only: move block time forward and mine (the contracts read block time)."""
        self.chain.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def faucet(self, who: str, amount: int) -> None:
        """Dev chain only: mint test settlement tokens to a party's account."""
        token = contract_at(self.chain.w3, "TestToken", self.chain.token_address)
        self.chain.admin.send(token.functions.mint(self.address(who), amount))

    def address(self, who: str) -> str:
        return str(Account.from_key(self.keys[who]).address)

    def upload(self, batch: DemoBatch) -> dict[str, Any]:
        """Supplier: upload a simulated lot under the agreement (validated against the template)."""
        files = [(f, (name, data, "application/octet-stream")) for f, (name, data, _t) in batch.files()]
        out: dict[str, Any] = self.parties["supplier"].post(
            "/v1/batches",
            files=files,
            data={"agreement_id": self.agreement, "lot_size": str(LOT_SIZE)},
            headers={"Idempotency-Key": batch.lot_id},
        )
        return out

    def case_of(self, batch_pk: str) -> dict[str, Any] | None:
        """The batch's tracing case as the OEM sees it (``GET /v1/cases``), or None."""
        for case in self.parties["oem"].get("/v1/cases", limit=500):
            if case["batch"] == batch_pk:
                return dict(case)
        return None

    def deposit(self, amount: int) -> None:
        """Supplier: approve + deposit, prepared by the gateway, signed with its own key, relayed."""
        supplier = self.parties["supplier"]
        prepared = supplier.post(f"/v1/agreements/{self.agreement}/deposits/prepare", json={"amount": amount})
        supplier.sign_and_relay(prepared, f"/v1/agreements/{self.agreement}/transactions")

    def fund_lab_fees(self, amount: int) -> None:
        """OEM, from its own wallet: approve the tracing contract and fund its lab-fee pool."""
        oem = TxSender(self.chain.w3, self.keys["oem"], poll_interval=0.005)
        token = contract_at(self.chain.w3, "TestToken", self.chain.token_address)
        oem.send(token.functions.approve(self.chain.cases.address, amount))
        self.chain.cases.with_sender(oem).fund_lab_fees(self.address("oem"), amount)


def _register(world: World, admin: PartyClient) -> None:
    Account.enable_unaudited_hdwallet_features()
    now_plus_year = "2031-01-01T00:00:00Z"
    for who, index in _INDEX.items():
        world.keys[who] = bytes(Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key)
        body: dict[str, Any] = {"name": f"bench {who}", "kind": who, "account": world.address(who)}
        if who == "lab":
            body |= {"accreditation_id": "D-PL-00004-01-00", "accreditation_expires": now_plus_year}
        party = admin.post("/v1/parties", json=body)
        world.parties[who] = PartyClient(world.client, party["api_key"], world.keys[who])
        world.ids[who] = int(party["id"])


def _agree(world: World) -> None:
    oem, supplier = world.parties["oem"], world.parties["supplier"]
    template = library_template(TEMPLATE)
    document = template.document()
    world.deadlines = {k: int(v) for k, v in document["deadlines"].items()}
    draft = oem.post("/v1/templates", json={"document": document})
    published = oem.post(
        f"/v1/templates/{draft['template']['id']}/publish", json={"raw": oem.sign_transactions(draft["transactions"])}
    )
    proposed = oem.post(
        "/v1/agreements",
        json={"template": published["id"], "supplier_id": world.ids["supplier"], "lab_id": world.ids["lab"]},
    )
    world.agreement = proposed["agreement_id"]
    ref = world.agreement
    supplier.post(
        f"/v1/agreements/{ref}/signatures", json={"signature": supplier.sign_typed_data(proposed["typed_data"])}
    )
    active = oem.post(
        f"/v1/agreements/{ref}/signatures", json={"signature": oem.sign_typed_data(proposed["typed_data"])}
    )
    if active["status"] != "active":
        raise RuntimeError(f"agreement not active: {active['status']}")
    required = int(active["on_chain"]["required"])
    world.faucet("supplier", required)
    world.deposit(required)


@contextmanager
def build_world(base: Path, node: LocalNode, **settings: Any) -> Iterator[World]:
    """The world of the module docstring on ``node``, its database and files under ``base``."""
    config = Settings(
        env="test",
        data_dir=base / "data",
        database_url=f"sqlite:///{base / 'qcn.db'}",
        rpc_url=node.url,
        deployments_dir=base / "deployments",
        anchor_retry_base_s=0.0,
        reconcile_interval_s=3600,
        **settings,
    )
    deploy_contracts(config)
    app = create_app(config, embedded_worker=False)
    with TestClient(app) as client:
        chain = app.state.chain_holder.get()
        worker = AnchorWorker(settings=config, session_factory=app.state.session_factory, chain=chain)
        world = World(client=client, settings=config, worker=worker, chain=chain)
        _register(world, PartyClient(client, config.api_admin_token.get_secret_value()))
        _agree(world)
        yield world
