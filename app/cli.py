"""The ``qcn`` command line: serve, worker, chain, deploy, verify, parse, demo, db."""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from app.partyclient import PartyClient
from app.settings import get_settings
from chain.node import LocalNode

__all__ = ["main"]

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="qcn — Quality Contract Network")
chain_cli = typer.Typer(no_args_is_help=True, help="The embedded local chain (anvil, state persisted on disk).")
db_cli = typer.Typer(no_args_is_help=True, help="Database schema.")
cli.add_typer(chain_cli, name="chain")
cli.add_typer(db_cli, name="db")


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _local_node(port: int | None = None) -> LocalNode:
    from urllib.parse import urlparse

    settings = get_settings()
    url = urlparse(settings.rpc_url)
    return LocalNode(settings.chain_dir, host=url.hostname or "127.0.0.1", port=port or url.port or 8545)


@chain_cli.command("up")
def chain_up(port: Annotated[int | None, typer.Option(help="RPC port (default from QCN_RPC_URL)")] = None) -> None:
    """Start the local chain in the background (reuses a running one); state lives in QCN_DATA_DIR/chain."""
    from chain.errors import ChainError

    try:
        st = _local_node(port).start()
    except ChainError as exc:
        _fail(str(exc))
    typer.echo(f"local chain running: {st.url} (chain id {st.chain_id}, pid {st.pid}, state {st.state_file})")


@chain_cli.command("down")
def chain_down(kill: Annotated[bool, typer.Option("--kill", help="SIGKILL instead of a clean stop")] = False) -> None:
    """Stop the local chain (its state file keeps every anchor)."""
    stopped = _local_node().stop(hard=kill)
    typer.echo("local chain stopped" if stopped else "local chain was not running")


@chain_cli.command("status")
def chain_status() -> None:
    st = _local_node().status()
    typer.echo(
        json.dumps(
            {
                "running": st.running,
                "pid": st.pid,
                "url": st.url,
                "chain_id": st.chain_id,
                "state_file": str(st.state_file),
                "state_bytes": st.state_bytes,
            },
            indent=2,
        )
    )


@cli.command()
def deploy(
    force: Annotated[bool, typer.Option(help="deploy again even if the address book has this chain")] = False,
) -> None:
    """Deploy the contracts to QCN_RPC_URL and record them in the address book (deployments/<chainId>.json)."""
    from app.chainctx import deploy_contracts

    book = deploy_contracts(get_settings(), force=force)
    typer.echo(json.dumps(book, indent=2))


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    from app.db import make_engine, upgrade

    settings = get_settings()
    upgrade(make_engine(settings.db_url))
    typer.echo(f"database at head: {settings.db_url.split('@')[-1]}")


@cli.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(help="gateway processes")] = 1,
    worker: Annotated[bool | None, typer.Option("--worker/--no-worker", help="run the anchoring worker inside")] = None,
) -> None:
    """Run the HTTP gateway (uvicorn)."""
    import os

    import uvicorn

    if worker is not None:
        os.environ["QCN_EMBEDDED_WORKER"] = "1" if worker else "0"
    uvicorn.run("app.main:app_from_env", factory=True, host=host, port=port, workers=workers, log_level="info")


@cli.command("worker")
def run_worker(
    once: Annotated[bool, typer.Option(help="one pass, then exit")] = False,
    health: Annotated[bool, typer.Option(help="exit 0 if the database and chain are reachable")] = False,
) -> None:
    """Run the anchoring worker (outbox -> chain), with reconciliation."""
    from app.chainctx import ChainHolder
    from app.db import make_engine, make_session_factory, upgrade
    from app.worker import AnchorWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = get_settings()
    engine = make_engine(settings.db_url)
    upgrade(engine)
    holder = ChainHolder(settings)
    if health:
        from sqlalchemy import text

        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        holder.get()
        typer.echo("ok")
        return
    w = AnchorWorker(settings=settings, session_factory=make_session_factory(engine), chain=holder.get())
    if once:
        n = w.run_once()
        typer.echo(f"anchored {n} batch(es)")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    w.run_forever(stop)


@cli.command()
def verify(
    path: Annotated[Path, typer.Argument(help="a proof JSON (qcn-proof), or any file together with --batch")],
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC endpoint of the chain (default QCN_RPC_URL)")] = None,
    batch: Annotated[str | None, typer.Option(help="batch id (0x...) the file was uploaded with")] = None,
    proof: Annotated[Path | None, typer.Option(help="proof JSON for the file (instead of asking the gateway)")] = None,
    api: Annotated[str, typer.Option(help="gateway URL to fetch the file's proof from")] = "http://127.0.0.1:8000",
) -> None:
    """Verify a record or a file against the chain, trusting only the chain. Exits 1 on any mismatch."""
    from app.verifycli import verify_file, verify_proof_file

    if not path.exists():
        _fail(f"no such file: {path}")
    rpc_url = rpc or get_settings().rpc_url
    data = path.read_bytes()
    is_proof = False
    if batch is None:
        try:
            is_proof = json.loads(data).get("format") == "qcn-proof"
        except (ValueError, AttributeError):
            is_proof = False
        if not is_proof:
            _fail(f"{path} is not a qcn proof; to verify a file give its batch: qcn verify FILE --batch 0x...", 2)
        result = verify_proof_file(data, rpc_url=rpc_url)
    else:
        result = verify_file(
            data,
            batch_id=batch,
            rpc_url=rpc_url,
            proof_path=proof,
            api_url=api,
            sha256=hashlib.sha256(data).hexdigest(),
        )
    for line in result.lines:
        typer.echo(line)
    if not result.ok:
        _fail(f"NOT VERIFIED: {result.failure}")
    typer.secho("VERIFIED", fg=typer.colors.GREEN)


@cli.command()
def parse(file: Path) -> None:
    """Parse a lab report or measurement file and print the normalised JSON (for onboarding a lab layout)."""
    from parsers import parse as parse_file
    from parsers.errors import ParseError

    try:
        parsed = parse_file(file.read_bytes(), filename=file.name)
    except ParseError as exc:
        _fail(f"{file}: {exc}")
    typer.echo(parsed.model_dump_json(indent=2))


@cli.command()
def demo(
    port: Annotated[int, typer.Option(help="gateway port for the demo")] = 8787,
    chain_port: Annotated[int, typer.Option(help="local chain port for the demo")] = 8546,
) -> None:
    """Run the whole story on the embedded default: chain, gateway, parties, upload, anchor, proof, verify."""
    from app.demo import run_demo

    sys.exit(run_demo(gateway_port=port, chain_port=chain_port))


# -- party commands: talk to a gateway with an API key, sign locally with the party's own key ----------------
template_cli = typer.Typer(no_args_is_help=True, help="OEM contract templates.")
agreement_cli = typer.Typer(no_args_is_help=True, help="Agreements, deposits and quarterly evaluations.")
cli.add_typer(template_cli, name="template")
cli.add_typer(agreement_cli, name="agreement")

ApiOpt = Annotated[str, typer.Option("--api", envvar="QCN_API", help="gateway URL")]
ApiKeyOpt = Annotated[str, typer.Option("--api-key", envvar="QCN_API_KEY", help="your API key")]
PartyKeyOpt = Annotated[
    str | None, typer.Option("--key", envvar="QCN_PARTY_KEY", help="your signing key (hex); stays on this machine")
]


def _party(api: str, api_key: str, key: str | None) -> PartyClient:
    import httpx

    return PartyClient(httpx.Client(base_url=api, timeout=60), api_key, key)


def _show(value: object) -> None:
    typer.echo(json.dumps(value, indent=2))


def _run(fn: Callable[[], object]) -> None:
    from app.partyclient import ApiError

    try:
        _show(fn())
    except ApiError as exc:
        _fail(f"{exc} {json.dumps({k: v for k, v in exc.error.items() if k != 'message'})}")


def _relay_prepared(party: PartyClient, ref: str, what: str, body: dict[str, object] | None) -> None:
    """Ask the gateway to prepare ``what`` for agreement ``ref``, sign locally, relay."""
    _run(
        lambda: party.sign_and_relay(
            party.post(f"/v1/agreements/{ref}/{what}/prepare", json=body), f"/v1/agreements/{ref}/transactions"
        )
    )


@template_cli.command("publish")
def template_publish(
    file: Path, api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "", key: PartyKeyOpt = None
) -> None:
    """Validate a template document (JSON) and publish it on chain from your OEM account."""
    party = _party(api, api_key, key)

    def go() -> object:
        draft = party.post("/v1/templates", json={"document": json.loads(file.read_text())})
        return party.post(
            f"/v1/templates/{draft['template']['id']}/publish",
            json={"raw": party.sign_transactions(draft["transactions"])},
        )

    _run(go)


@template_cli.command("list")
def template_list(api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "") -> None:
    """Templates you may see (OEM: yours, every version; supplier/lab: those of your agreements)."""
    _run(lambda: _party(api, api_key, None).get("/v1/templates"))


@agreement_cli.command("propose")
def agreement_propose(
    template: int,
    supplier: int,
    lab: Annotated[int | None, typer.Option()] = None,
    api: ApiOpt = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = "",
) -> None:
    """OEM: propose an agreement on a published template with a supplier (and the lab for tracing cases)."""
    body = {"template": template, "supplier_id": supplier, "lab_id": lab}
    _run(lambda: _party(api, api_key, None).post("/v1/agreements", json=body))


@agreement_cli.command("sign")
def agreement_sign(
    ref: str, api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "", key: PartyKeyOpt = None
) -> None:
    """OEM or supplier: sign the agreement's EIP-712 typed data locally and submit the signature."""
    party = _party(api, api_key, key)

    def go() -> object:
        typed = party.get(f"/v1/agreements/{ref}")["typed_data"]
        return party.post(f"/v1/agreements/{ref}/signatures", json={"signature": party.sign_typed_data(typed)})

    _run(go)


@agreement_cli.command("show")
def agreement_show(ref: str, api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "") -> None:
    """State, ratio, deposit balance and this quarter's counters."""
    _run(lambda: _party(api, api_key, None).get(f"/v1/agreements/{ref}"))


@agreement_cli.command("deposit")
def agreement_deposit(
    ref: str, amount: int, api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "", key: PartyKeyOpt = None
) -> None:
    """Supplier: deposit or top up (approve + deposit, signed locally, relayed by the gateway)."""
    _relay_prepared(_party(api, api_key, key), ref, "deposits", {"amount": amount})


@agreement_cli.command("withdraw")
def agreement_withdraw(
    ref: str, amount: int, api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "", key: PartyKeyOpt = None
) -> None:
    """Supplier: withdraw deposit above the required amount."""
    _relay_prepared(_party(api, api_key, key), ref, "withdrawals", {"amount": amount})


@agreement_cli.command("claim")
def agreement_claim(
    ref: str, api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "", key: PartyKeyOpt = None
) -> None:
    """OEM: claim the penalties owed to you."""
    _relay_prepared(_party(api, api_key, key), ref, "claims", None)


@agreement_cli.command("evaluate")
def agreement_evaluate(ref: str, quarter: int, api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "") -> None:
    """Evaluate an ended quarter (once; the gateway's scheduler also does it)."""
    _run(lambda: _party(api, api_key, None).post(f"/v1/agreements/{ref}/evaluations/{quarter}"))


analysis_cli = typer.Typer(no_args_is_help=True, help="Anomaly verdicts, root causes, counterfactuals, models.")
cli.add_typer(analysis_cli, name="analysis")


@analysis_cli.command("show")
def analysis_show(
    batch: str,
    api: ApiOpt = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = "",
    rescore: Annotated[bool, typer.Option(help="score the batch again now")] = False,
) -> None:
    """The batch's anomaly verdict (reasons, model version) and root-cause ranking with evidence."""
    party = _party(api, api_key, None)
    _run(lambda: party.post(f"/v1/batches/{batch}/analysis") if rescore else party.get(f"/v1/batches/{batch}/analysis"))


@analysis_cli.command("counterfactual")
def analysis_counterfactual(
    batch: str,
    variable: str,
    characteristic: str,
    within_pct: Annotated[float | None, typer.Option(help="had VARIABLE stayed within +/- this % of nominal")] = None,
    value: Annotated[float | None, typer.Option(help="had VARIABLE been exactly this")] = None,
    api: ApiOpt = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = "",
) -> None:
    """Would CHARACTERISTIC have stayed in spec had VARIABLE been different? (abduction-action-prediction)"""
    body = {"variable": variable, "characteristic": characteristic, "within_pct": within_pct, "value": value}
    _run(
        lambda: _party(api, api_key, None).post(
            f"/v1/batches/{batch}/counterfactual", json={k: v for k, v in body.items() if v is not None}
        )
    )


@analysis_cli.command("models")
def analysis_models(api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "") -> None:
    """Anomaly model versions (with SHA-256) and causal graph versions (with hash)."""
    _run(lambda: _party(api, api_key, None).get("/v1/models"))


@analysis_cli.command("refresh")
def analysis_refresh(profile: str, api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "") -> None:
    """OEM/admin: re-learn the causal model and retrain the anomaly model of a process profile."""
    _run(lambda: _party(api, api_key, None).post("/v1/models/refresh", json={"profile": profile}))


case_cli = typer.Typer(no_args_is_help=True, help="Tracing cases: OEM, supplier, lab and admin actions.")
cli.add_typer(case_cli, name="case")


@case_cli.command("list")
def case_list(api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "") -> None:
    """Cases you are a party to (labs: those assigned to you)."""
    _run(lambda: _party(api, api_key, None).get("/v1/cases"))


@case_cli.command("show")
def case_show(
    case: str,
    api: ApiOpt = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = "",
    timeline: Annotated[bool, typer.Option(help="every step with its tx hash and proof")] = False,
) -> None:
    """A case's state, deadlines and verdict (``--timeline`` for every step on chain)."""
    _run(lambda: _party(api, api_key, None).get(f"/v1/cases/{case}" + ("/timeline" if timeline else "")))


@case_cli.command("respond")
def case_respond(
    case: str,
    evidence: list[Path],
    api: ApiOpt = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = "",
    key: PartyKeyOpt = None,
) -> None:
    """Supplier: answer with evidence files (hashed and anchored with the response), signed locally."""
    party = _party(api, api_key, key)

    def go() -> object:
        files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in evidence]
        prep = party.post(f"/v1/cases/{case}/response/prepare", files=files)
        return party.post(f"/v1/cases/{case}/response", json={"raw": party.sign_transactions(prep["transactions"])[0]})

    _run(go)


@case_cli.command("verdict")
def case_verdict(
    case: str,
    root_cause: str,
    responsible: Annotated[int, typer.Option(help="0 none, 1 supplier, 2 OEM, 3 other")] = 1,
    nc_class: Annotated[int, typer.Option(help="0 none, 1 critical, 2 major, 3 minor")] = 2,
    api: ApiOpt = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = "",
    key: PartyKeyOpt = None,
) -> None:
    """Lab: sign the EIP-712 verdict with your own key and submit it."""
    party = _party(api, api_key, key)

    def go() -> object:
        typed = party.get(
            f"/v1/cases/{case}/verdict-typed-data",
            root_cause=root_cause,
            responsible_party=responsible,
            nc_class=nc_class,
        )["typed_data"]
        return party.post(
            f"/v1/cases/{case}/verdict", json={"message": typed["message"], "signature": party.sign_typed_data(typed)}
        )

    _run(go)


@case_cli.command("accept")
def case_accept(
    case: str,
    dispute: Annotated[bool, typer.Option("--dispute", help="dispute instead")] = False,
    api: ApiOpt = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = "",
    key: PartyKeyOpt = None,
) -> None:
    """OEM or supplier: accept (or ``--dispute``) the lab's verdict, signed with your own key."""
    party = _party(api, api_key, key)

    def go() -> object:
        typed = party.get(f"/v1/cases/{case}/acceptance-typed-data", accept=str(not dispute).lower())["typed_data"]
        return party.post(
            f"/v1/cases/{case}/acceptance",
            json={"message": typed["message"], "signature": party.sign_typed_data(typed)},
        )

    _run(go)


@case_cli.command("claim")
def case_claim(
    case: str, api: ApiOpt = "http://127.0.0.1:8000", api_key: ApiKeyOpt = "", key: PartyKeyOpt = None
) -> None:
    """OEM: claim the settled penalty; lab: claim its fee (the gateway picks by your role)."""
    party = _party(api, api_key, key)

    def go() -> object:
        role = party.get("/v1/parties/me")["kind"]
        path = f"/v1/cases/{case}/lab-fee" if role == "lab" else f"/v1/cases/{case}/claim"
        prep = party.post(f"{path}/prepare")
        return party.post(path, json={"raw": party.sign_transactions(prep["transactions"])[0]})

    _run(go)


@case_cli.command("arbitrate")
def case_arbitrate(
    case: str,
    root_cause: str,
    ruling: Path,
    responsible: Annotated[int, typer.Option(help="0 none, 1 supplier, 2 OEM, 3 other")] = 1,
    nc_class: Annotated[int, typer.Option(help="0 none, 1 critical, 2 major, 3 minor")] = 2,
    api: ApiOpt = "http://127.0.0.1:8000",
    api_key: ApiKeyOpt = "",
) -> None:
    """Consortium admin: rule on a disputed case; the ruling text's SHA-256 goes on chain."""
    body = {
        "responsible_party": responsible,
        "nc_class": nc_class,
        "root_cause": root_cause,
        "ruling": ruling.read_text(),
    }
    _run(lambda: _party(api, api_key, None).post(f"/v1/cases/{case}/arbitrate", json=body))


from app.portal.usercli import user_cli  # noqa: E402 - portal users (issue 13)

cli.add_typer(user_cli, name="user")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
