"""``qcn user create|list``: the consortium admin manages portal users through the gateway API."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from app.partyclient import ApiError, PartyClient

__all__ = ["user_cli"]

user_cli = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Portal users (people of a party who log in to the web portal)."
)

_Api = Annotated[str, typer.Option("--api", envvar="QCN_API", help="gateway URL")]
_Key = Annotated[str, typer.Option("--api-key", envvar="QCN_API_KEY", help="the consortium admin token")]


def _client(api: str, key: str) -> PartyClient:
    import httpx  # not needed by ``qcn --help``

    return PartyClient(httpx.Client(base_url=api, timeout=30), key)


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
    try:
        out = _client(api, api_key).post("/v1/users", json=body)
    except ApiError as exc:
        typer.echo(f"error: {exc.error.get('message', exc)}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(out, indent=2))


@user_cli.command("list")
def list_users(api: _Api = "http://127.0.0.1:8000", api_key: _Key = "") -> None:
    """Every portal user (admin) or your party's users."""
    try:
        out = _client(api, api_key).get("/v1/users")
    except ApiError as exc:
        typer.echo(f"error: {exc.error.get('message', exc)}", err=True)
        raise typer.Exit(1) from exc
    for u in out:
        admin = "admin " if u["party_admin"] else "      "
        typer.echo(f"{u['id']:>4}  party {u['party_id']:>3}  {u['role']:9s} {admin}{u['email']}")
