"""A proof is checked against the chain's real anchor registry, never against one the proof names.

The attack (found by an outside review): deploy a 41-byte contract whose ``commitmentOf`` returns the hash of an
invented header, and hand out a proof that names it as its registry. Before, ``qcn verify`` printed VERIFIED.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from web3 import Web3

from app.cli import cli
from app.verifycli import verify_proof_file
from chain.canonical import record_digest
from chain.merkle import leaf_hash
from chain.proof import BatchHeader, ProofDocument, ProofLeaf, header_commitment
from tests.app.conftest import ACCOUNTS, CSV_OK, Gateway

pytestmark = pytest.mark.node


def _forged_proof(rpc_url: str) -> bytes:
    """A proof of an invented record 'anchored' for a victim supplier by a look-alike registry."""
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    record = {"lot": "L-001", "characteristic": "thickness", "value": 12.0, "result": "pass"}
    salt, digest = bytes(32), record_digest(record)
    header = BatchHeader(
        root=leaf_hash(salt, digest),
        report_hash=bytes(32),
        agreement_id=b"\x11" * 32,
        supplier=ACCOUNTS["supplier"],
        record_count=1,
        verdict=1,
        anchored_at=int(time.time()),
        supersedes=bytes(32),
    )
    # runtime: PUSH32 commitment, MSTORE at 0, RETURN 32 bytes: every call answers the forged commitment
    runtime = b"\x7f" + header_commitment(header) + bytes.fromhex("60005260206000f3")
    init = bytes.fromhex(f"60{len(runtime):02x}600c60003960{len(runtime):02x}6000f3") + runtime
    tx = w3.eth.send_transaction({"from": w3.eth.accounts[7], "data": "0x" + init.hex()})
    fake = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    doc = ProofDocument(
        chain_id=int(w3.eth.chain_id),
        registry=fake,
        batch_id=b"\x22" * 32,
        header=header,
        leaf=ProofLeaf(kind="record", record=record, sha256=digest, salt=salt),
        siblings=[],
    )
    return doc.to_json().encode()


def _genuine_proof(gateway: Gateway) -> dict[str, Any]:
    batch = gateway.upload("supplier", CSV_OK, key="LOT-TRUST").json()
    gateway.anchor_all()
    proof: dict[str, Any] = gateway.client.get(
        f"/v1/batches/{batch['id']}/records/0/proof", headers=gateway.auth("supplier")
    ).json()
    return proof


def test_cli_refuses_a_proof_from_a_look_alike_registry(gateway: Gateway, tmp_path: Path) -> None:
    rpc_url, book = gateway.settings.rpc_url, gateway.settings.deployments_dir
    genuine = _genuine_proof(gateway)
    assert verify_proof_file(json.dumps(genuine).encode(), rpc_url=rpc_url, deployments_dir=book).ok

    forged = verify_proof_file(_forged_proof(rpc_url), rpc_url=rpc_url, deployments_dir=book)
    assert not forged.ok
    assert forged.failure is not None and forged.failure.startswith("wrong_deployment")
    assert genuine["registry"].lower() in forged.failure.lower()  # names the real registry

    # without an address book the verifier cannot tell the registry from a look-alike: it says what to pass
    unknown = verify_proof_file(json.dumps(genuine).encode(), rpc_url=rpc_url, deployments_dir=tmp_path / "none")
    assert not unknown.ok and unknown.failure is not None and "--registry" in unknown.failure

    # the command line: exit 1 for the forgery even when --registry is the real one, 0 for the genuine proof
    forged_path, genuine_path = tmp_path / "forged.json", tmp_path / "genuine.json"
    forged_path.write_bytes(_forged_proof(rpc_url))
    genuine_path.write_text(json.dumps(genuine))
    args = ["--rpc", rpc_url, "--registry", genuine["registry"]]
    bad = CliRunner().invoke(cli, ["verify", str(forged_path), *args])
    assert bad.exit_code == 1 and "NOT VERIFIED: wrong_deployment" in bad.output
    good = CliRunner().invoke(cli, ["verify", str(genuine_path), *args])
    assert good.exit_code == 0 and "VERIFIED" in good.output


def test_api_refuses_a_proof_naming_another_chain_or_registry(gateway: Gateway) -> None:
    genuine = _genuine_proof(gateway)
    assert gateway.client.post("/v1/verify/proof", json=genuine).json()["ok"] is True
    for field, value in [("chainId", 1), ("registry", "0x000000000000000000000000000000000000dEaD")]:
        edited = genuine | {field: value}
        answer = gateway.client.post("/v1/verify/proof", json=edited).json()
        assert answer["ok"] is False and answer["failure"].startswith("wrong_deployment"), (field, answer)
    forged = json.loads(_forged_proof(gateway.settings.rpc_url))
    answer = gateway.client.post("/v1/verify/proof", json=forged).json()
    assert answer["ok"] is False and answer["failure"].startswith("wrong_deployment")
