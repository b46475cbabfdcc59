"""``qcn key create / list / revoke``: a party's API keys, through the gateway with the party's own API key.

A party manages its own keys; with the consortium admin token, ``--party`` names any party.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from app.partyclient import PartyClient

__all__ = ["key_cli"]

key_cli = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="API keys: create (optionally expiring), list, revoke."
)

ApiOpt = Annotated[str, typer.Option("--api", envvar="QCN_API", help="gateway URL")]
ApiKeyOpt = Annotated[str, typer.Option("--api-key", envvar="QCN_API_KEY", help="your API key")]
PartyOpt = Annotated[int | None, typer.Option("--party", help="party id (default: your own party)")]


def _client(api: str, api_key: str) -> PartyClient:
    import httpx  # loaded by the command that talks to the gateway, not by ``qcn --help``

    from app.partyclient import PartyClient

    return PartyClient(httpx.Client(base_url=api, timeout=60), api_key)


def _party_id(client: PartyClient, party: int | None) -> int:
    return party if party is not None else int(client.get("/v1/parties/me")["id"])


def _run(fn: Any) -> None:
    import httpx

    from app.partyclient import ApiError

    try:
        typer.echo(json.dumps(fn(), indent=2))
    except ApiError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except httpx.HTTPError as exc:
        typer.echo(f"error: the gateway is not reachable: {exc}", err=True)
        raise typer.Exit(1) from exc


@key_cli.command("create")
def key_create(
    label: Annotated[str | None, typer.Option(help="what the key is for, e.g. 'ERP upload job'")] = None,
    expires_in_days: Annotated[int | None, typer.Option(min=1, max=1096, help="expire after N days")] = None,
    party: PartyOpt = None,
    api: ApiOpt = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = "",
) -> None:
    """Issue a new API key; it is printed once (store it safely) and never shown again."""
    client = _client(api, api_key)
    body: dict[str, Any] = {"label": label}
    if expires_in_days is not None:
        body["expires_at"] = (datetime.now(UTC) + timedelta(days=expires_in_days)).isoformat()
    _run(lambda: client.post(f"/v1/parties/{_party_id(client, party)}/keys", json=body))


@key_cli.command("list")
def key_list(party: PartyOpt = None, api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "") -> None:
    """The party's keys: id, prefix, label, created, expires, revoked (never the key itself)."""
    client = _client(api, api_key)
    _run(lambda: client.get(f"/v1/parties/{_party_id(client, party)}/keys"))


@key_cli.command("revoke")
def key_revoke(
    key_id: Annotated[int, typer.Argument(help="the key's id (from 'qcn key list')")],
    party: PartyOpt = None,
    api: ApiOpt = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = "",
) -> None:
    """Revoke a key now; every gateway process refuses it from the next request on."""
    client = _client(api, api_key)
    _run(lambda: client.delete(f"/v1/parties/{_party_id(client, party)}/keys/{key_id}"))
