"""The party commands of ``qcn`` against the real gateway and node: template publish, agreement propose/sign,
deposit and show — each party signing locally with its own key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import app.cli as cli_module
from app.partyclient import PartyClient
from app.quality import library_template
from tests.app.conftest import Gateway
from tests.app.test_agreements_api import KEYS, _lab, _mint, _party_id

pytestmark = pytest.mark.node


def _run(gw: Gateway, monkeypatch: pytest.MonkeyPatch, who: str, *args: str, sign: bool = False) -> Any:
    # the commands build their own HTTP client from --api; route it to the in-process app instead
    monkeypatch.setattr(
        cli_module, "_party", lambda api, api_key, key: PartyClient(gw.client, api_key, key, poll=gw.worker.run_once)
    )
    key = ["--key", "0x" + bytes(KEYS[who]).hex()] if sign else []
    result = CliRunner().invoke(cli_module.cli, [*args, "--api-key", gw.keys[who], *key])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_party_runs_the_agreement_from_the_command_line(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab_id = _lab(gateway)
    doc = tmp_path / "template.json"
    doc.write_text(json.dumps(library_template("battery_electrode_coating").document()))
    published = _run(gateway, monkeypatch, "oem", "template", "publish", str(doc), sign=True)
    assert published["status"] == "published"
    listed = _run(gateway, monkeypatch, "oem", "template", "list")
    assert [t["template_id"] for t in listed] == ["tpl.cathode-coating"]

    proposed = _run(
        gateway,
        monkeypatch,
        "oem",
        "agreement",
        "propose",
        str(published["id"]),
        str(_party_id(gateway, "supplier")),
        "--lab",
        str(lab_id),
    )
    ref = proposed["agreement_id"]
    assert _run(gateway, monkeypatch, "supplier", "agreement", "sign", ref, sign=True)["signed_by_supplier"] is True
    active = _run(gateway, monkeypatch, "oem", "agreement", "sign", ref, sign=True)
    assert active["status"] == "active"
    required = int(active["on_chain"]["required"])
    _mint(gateway, "supplier", required)
    relayed = _run(gateway, monkeypatch, "supplier", "agreement", "deposit", ref, str(required), sign=True)
    assert [r["function"] for r in relayed] == ["approve", "deposit"]
    shown = _run(gateway, monkeypatch, "supplier", "agreement", "show", ref)
    assert int(shown["on_chain"]["deposited"]) == required and shown["on_chain"]["shortfall"] == "0"


def test_api_errors_are_a_non_zero_exit_with_the_message(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        cli_module,
        "_party",
        lambda api, api_key, key: PartyClient(gateway.client, api_key, key, poll=gateway.worker.run_once),
    )
    result = CliRunner().invoke(
        cli_module.cli, ["agreement", "show", "0x" + "11" * 32, "--api-key", gateway.keys["supplier"]]
    )
    assert result.exit_code == 1
    assert "not found" in result.output
