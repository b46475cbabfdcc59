"""The ``qcn`` command line without a gateway: a clear line when the gateway is down, no key on the command
line, help for every argument, enum choices by name, plain help text."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import click
import pytest
import typer
from typer.testing import CliRunner

from app.cli import cli


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
        else:
            out.append(((*prefix, name), cmd))
    return out


COMMANDS = _commands(typer.main.get_command(cli))  # type: ignore[arg-type]


def test_a_party_command_with_the_gateway_down_prints_one_line_and_exits_3() -> None:
    api = f"http://127.0.0.1:{_closed_port()}"
    # a real process, as a user runs it: stderr is what they see
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "agreement", "show", "0x" + "11" * 32, "--api", api, "--api-key", "k"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"cannot reach the gateway at {api}")
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["template", "list"],
        ["case", "list", "--json"],
        ["party", "register", "ACME", "--kind", "supplier", "--account", "0x" + "90" * 20],
        ["analysis", "refresh", "electrode_coating"],
        ["user", "list"],
        ["user", "create", "--party", "1", "--email", "qa@example.com"],
    ],
)
def test_every_party_command_shares_the_unreachable_gateway_message(args: list[str]) -> None:
    result = CliRunner().invoke(cli, [*args, "--api", f"http://127.0.0.1:{_closed_port()}", "--api-key", "k"])
    assert result.exit_code == 3, result.output
    assert "cannot reach the gateway" in result.output and "Traceback" not in result.output


def test_a_private_key_on_the_command_line_is_refused_with_the_alternatives() -> None:
    result = CliRunner().invoke(cli, ["agreement", "sign", "0x" + "11" * 32, "--key", "0x" + "ab" * 32])
    assert result.exit_code == 2
    assert "visible in ps and shell history" in result.output
    assert "--keystore" in result.output and "QCN_PARTY_KEY" in result.output
    assert "--key" not in CliRunner().invoke(cli, ["agreement", "sign", "--help"]).output.replace("--keystore", "")


def test_every_positional_argument_has_help() -> None:
    missing = [
        (" ".join(path), p.name)
        for path, cmd in COMMANDS
        for p in cmd.params
        if isinstance(p, click.Argument) and not getattr(p, "help", None)
    ]
    assert missing == []


def test_help_texts_have_no_rest_markup() -> None:
    texts = []
    for path, cmd in COMMANDS:
        texts.append((path, cmd.help or ""))
        texts += [(path, getattr(p, "help", None) or "") for p in cmd.params]
    assert [(p, t) for p, t in texts if "``" in t or re.search(r":(func|class|mod):", t)] == []


def test_verdict_choices_are_names_not_numbers() -> None:
    result = CliRunner().invoke(cli, ["case", "verdict", "0x01", "roll_pressure", "--nc-class", "2"])
    assert result.exit_code == 2
    assert "critical" in result.output and "major" in result.output
    helped = CliRunner().invoke(cli, ["case", "arbitrate", "--help"]).output
    assert "supplier" in helped and "critical" in helped
    assert "0 none, 1 supplier" not in helped
