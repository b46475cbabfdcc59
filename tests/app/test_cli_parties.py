"""The party commands of ``qcn`` against the real gateway and node: party register, template publish,
agreement propose/sign, deposit and show, batch upload until anchored — each party signing locally with its
own key, taken from a keystore file, the environment or a prompt."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from typer.testing import CliRunner

import app.cli_party as party_module
from app.cli import cli
from app.partyclient import PartyClient
from app.quality import library_template
from tests.app.conftest import ACCOUNTS, CSV_OK, Gateway
from tests.app.test_agreements_api import KEYS, SAMPLE, _mint, _party_id

pytestmark = pytest.mark.node


@pytest.fixture
def routed(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    # the commands build their own HTTP client from --api; route it to the in-process gateway instead
    monkeypatch.setattr(
        party_module,
        "_party",
        lambda api, api_key, key: PartyClient(gateway.client, api_key, key, poll=gateway.worker.run_once),
    )
    return gateway


def _invoke(gw: Gateway, who: str, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Any:
    api_key = gw.admin_token if who == "admin" else gw.keys[who]
    result = CliRunner().invoke(cli, [*args, "--api-key", api_key], env=env, input=stdin)
    assert result.exit_code == 0, result.output
    return result


def _json(gw: Gateway, who: str, *args: str, sign: bool = False) -> Any:
    env = {"QCN_PARTY_KEY": "0x" + bytes(KEYS[who]).hex()} if sign else None
    return json.loads(_invoke(gw, who, *args, "--json", env=env).stdout)


@pytest.fixture
def anchoring(routed: Gateway) -> Iterator[None]:
    """The anchoring worker running in the background, as in ``qcn serve``."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.1):
            routed.worker.run_once()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)


def test_a_party_runs_the_agreement_from_the_command_line(routed: Gateway, anchoring: None, tmp_path: Path) -> None:
    gw = routed
    registered = _json(
        gw,
        "admin",
        "party",
        "register",
        "Rheinland Test Lab",
        "--kind",
        "lab",
        "--account",
        ACCOUNTS["lab"],
        "--accreditation-id",
        "D-PL-1",
        "--accreditation-expires",
        "2035-01-01T00:00:00Z",
    )
    assert registered["kind"] == "lab" and registered["account"] == ACCOUNTS["lab"]
    gw.keys["lab"] = registered["api_key"]
    assert _json(gw, "lab", "party", "me")["id"] == registered["id"]

    doc = tmp_path / "template.json"
    doc.write_text(json.dumps(library_template("battery_electrode_coating").document()))
    published = _json(gw, "oem", "template", "publish", str(doc), sign=True)
    assert published["status"] == "published"
    listed = _json(gw, "oem", "template", "list")
    assert [t["template_id"] for t in listed] == ["tpl.cathode-coating"]
    table = _invoke(gw, "oem", "template", "list").stdout  # the default: a table for people
    assert "tpl.cathode-coating" in table and "template_id" in table and not table.lstrip().startswith("[")

    supplier_id = str(_party_id(gw, "supplier"))
    proposed = _json(
        gw, "oem", "agreement", "propose", str(published["id"]), supplier_id, "--lab", str(registered["id"])
    )
    ref = proposed["agreement_id"]
    assert _json(gw, "supplier", "agreement", "sign", ref, sign=True)["signed_by_supplier"] is True
    active = _json(gw, "oem", "agreement", "sign", ref, sign=True)
    assert active["status"] == "active"
    required = int(active["on_chain"]["required"])
    _mint(gw, "supplier", required)
    relayed = _json(gw, "supplier", "agreement", "deposit", ref, str(required), sign=True)
    assert [r["function"] for r in relayed] == ["approve", "deposit"]
    shown = _json(gw, "supplier", "agreement", "show", ref)
    assert int(shown["on_chain"]["deposited"]) == required and shown["on_chain"]["shortfall"] == "0"

    # a lot delivered under the agreement; the OEM records its incoming inspection (rejected) from the CLI
    lot = tmp_path / "lot-a.csv"
    lot.write_text(SAMPLE)
    uploaded = _json(gw, "supplier", "batch", "upload", str(lot), "--agreement", ref, "--lot-size", "2000", "--wait")
    assert uploaded["status"] == "anchored"
    inspected = _json(gw, "oem", "agreement", "inspect", ref, uploaded["id"], "--rejected", sign=True)
    assert [(r["function"], r["status"]) for r in inspected] == [("recordInspection", "mined")]
    counters = _json(gw, "supplier", "agreement", "show", ref)["on_chain"]["counters"]
    assert counters["batches"] == 1 and counters["rejected"] == 1


def test_the_signing_key_comes_from_a_keystore_file_or_a_prompt(routed: Gateway, tmp_path: Path) -> None:
    gw = routed
    doc = tmp_path / "template.json"
    doc.write_text(json.dumps(library_template("battery_electrode_coating").document()))
    keystore = tmp_path / "oem.json"
    keystore.write_text(json.dumps(Account.encrypt(KEYS["oem"], "correct horse")))

    wrong = CliRunner().invoke(
        cli,
        ["template", "publish", str(doc), "--keystore", str(keystore), "--api-key", gw.keys["oem"]],
        env={"QCN_KEYSTORE_PASSWORD": "battery staple"},
    )
    assert wrong.exit_code == 2 and "cannot unlock keystore" in wrong.output

    # the password typed at the prompt (not echoed); the transaction is signed by the OEM's own account
    result = _invoke(
        gw, "oem", "template", "publish", str(doc), "--keystore", str(keystore), "--json", stdin="correct horse\n"
    )
    published = json.loads(result.stdout[result.stdout.index("{") :])
    assert published["status"] == "published"
    assert "correct horse" not in result.output

    # no keystore, no QCN_PARTY_KEY: the key itself is asked for
    doc2 = tmp_path / "template2.json"
    document = library_template("battery_electrode_coating").document()
    document["version"] = 2
    doc2.write_text(json.dumps(document))
    hex_key = "0x" + bytes(KEYS["oem"]).hex()
    prompted = _invoke(gw, "oem", "template", "publish", str(doc2), "--json", stdin=hex_key + "\n")
    assert json.loads(prompted.stdout[prompted.stdout.index("{") :])["version"] == 2
    assert hex_key not in prompted.output


def test_batch_upload_waits_until_anchored(routed: Gateway, anchoring: None, tmp_path: Path) -> None:
    lot = tmp_path / "lot.csv"
    lot.write_text(CSV_OK)
    uploaded = _json(routed, "supplier", "batch", "upload", str(lot), "--idempotency-key", "LOT-7", "--wait")
    assert uploaded["status"] == "anchored"
    assert uploaded["receipt"]["tx_hash"].startswith("0x") and uploaded["receipt"]["block_number"] > 0
    chain = routed.client.app.state.chain_holder.get()  # type: ignore[attr-defined]
    assert chain.w3.eth.get_transaction_receipt(uploaded["receipt"]["tx_hash"])["status"] == 1
    # the same key again: the same batch, shown as a summary table by default
    again = _invoke(routed, "supplier", "batch", "upload", str(lot), "--idempotency-key", "LOT-7").stdout
    assert uploaded["id"] in again and "anchored" in again
    shown = _json(routed, "supplier", "batch", "show", uploaded["id"])
    assert shown["batch_id"] == uploaded["batch_id"]


def test_api_errors_are_a_non_zero_exit_with_the_message(routed: Gateway) -> None:
    result = CliRunner().invoke(cli, ["agreement", "show", "0x" + "11" * 32, "--api-key", routed.keys["supplier"]])
    assert result.exit_code == 1
    assert "not found" in result.output and "Traceback" not in result.output
    denied = CliRunner().invoke(
        cli, ["party", "register", "X", "--kind", "oem", "--account", ACCOUNTS["oem"], "--api-key", routed.keys["oem"]]
    )
    assert denied.exit_code == 1 and "HTTP 403" in denied.output


def test_model_refresh_is_followed_to_its_end(routed: Gateway) -> None:
    # the shared models are the consortium admin's to refresh
    # no clean history yet: the background job runs, fails with the reason, the command says so and exits 1
    result = CliRunner().invoke(cli, ["analysis", "refresh", "electrode_coating", "--api-key", routed.admin_token])
    assert result.exit_code == 1, result.output
    assert "model refresh failed: insufficient data" in result.output
    job = routed.client.get("/v1/models/refresh/1", headers=routed.auth("admin")).json()
    assert job["status"] == "failed" and job["error"]["code"] == "insufficient_data"
    unknown = CliRunner().invoke(cli, ["analysis", "refresh", "nope", "--api-key", routed.admin_token])
    assert unknown.exit_code == 1 and "unknown profile 'nope'" in unknown.output
