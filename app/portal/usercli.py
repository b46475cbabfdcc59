"""``qcn user create|list``: the consortium admin manages portal users through the gateway API."""

from __future__ import annotations

from typing import Annotated

import typer

from app import cli_party
from app.cli_party import run

__all__ = ["user_cli"]

user_cli = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Portal users (people of a party who log in to the web portal)."
)

_Api = Annotated[str, typer.Option("--api", envvar="QCN_API", help="gateway URL")]
_Key = Annotated[str, typer.Option("--api-key", envvar="QCN_API_KEY", help="the consortium admin token")]


@user_cli.command("create")
def create(
    party_id: Annotated[int, typer.Option("--party", help="party id (see GET /v1/parties)")],
    email: Annotated[str, typer.Option("--email")],
    api: _Api = "http://127.0.0.1:8000",
    api_key: _Key = "",
    name: Annotated[str, typer.Option("--name", help="display name")] = "",
    role: Annotated[str, typer.Option("--role", help="viewer | operator | signer")] = "signer",
    party_admin: Annotated[bool, typer.Option("--party-admin/--no-party-admin")] = True,
    password: Annotated[
        str | None, typer.Option("--password", envvar="QCN_USER_PASSWORD", help="default: generated, printed once")
    ] = None,
) -> None:
    """Create a portal user of a party; prints the user (and a generated password, once)."""
    body = {"party_id": party_id, "email": email, "display_name": name, "role": role, "party_admin": party_admin}
    if password:
        body["password"] = password
    run(lambda: cli_party._party(api, api_key, None).post("/v1/users", json=body), as_json=True)


@user_cli.command("list")
def list_users(
    api: _Api = "http://127.0.0.1:8000",
    api_key: _Key = "",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Every portal user (admin) or your party's users."""
    run(
        lambda: cli_party._party(api, api_key, None).get("/v1/users"),
        as_json=as_json,
        columns=["id", "party_id", "role", "party_admin", "email"],
        title="portal users",
    )
