"""The ``qcn`` command line: serve, worker, chain, deploy, verify, parse, demo, db, and the party commands.

Heavy modules (web3, the gateway, the parsers) are imported inside the commands that use them, so
``qcn --help`` and every command start fast.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli_analysis import register as register_analysis_rank
from app.cli_keys import key_cli

# the command groups and shared options, for command modules that register their commands here
from app.cli_party import (  # noqa: F401
    ApiKeyOpt,
    ApiOpt,
    _party,
    agreement_cli,
    analysis_cli,
    case_cli,
    template_cli,
)
from app.cli_party import register as register_party_commands
from app.cli_party import run as _run  # noqa: F401

if TYPE_CHECKING:
    from chain.node import LocalNode

__all__ = ["cli", "main"]

cli = typer.Typer(
    no_args_is_help=True, add_completion=False, rich_markup_mode=None, help="qcn — Quality Contract Network"
)
chain_cli = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="The embedded local chain (anvil, state persisted on disk)."
)
db_cli = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Database schema.")
cli.add_typer(chain_cli, name="chain")
cli.add_typer(db_cli, name="db")
cli.add_typer(key_cli, name="key")


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _local_node(port: int | None = None) -> LocalNode:
    from urllib.parse import urlparse

    from app.settings import get_settings
    from chain.node import LocalNode

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
def chain_status(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (for scripts)")] = False,
) -> None:
    """Is the local chain running: its URL, chain id, process and state file."""
    from app.cli_party import show

    st = _local_node().status()
    status = {
        "running": st.running,
        "pid": st.pid,
        "url": st.url,
        "chain_id": st.chain_id,
        "state_file": str(st.state_file),
        "state_bytes": st.state_bytes,
    }
    show(status, as_json=as_json)


@cli.command()
def deploy(
    force: Annotated[bool, typer.Option(help="deploy again even if the address book has this chain")] = False,
) -> None:
    """Deploy the contracts to QCN_RPC_URL and record them in the address book (deployments/<chainId>.json)."""
    from app.chainctx import deploy_contracts
    from app.settings import get_settings

    book = deploy_contracts(get_settings(), force=force)
    typer.echo(json.dumps(book, indent=2))


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    from app.db import make_engine, upgrade
    from app.settings import get_settings

    settings = get_settings()
    upgrade(make_engine(settings.db_url))
    typer.echo(f"database at head: {settings.db_url.split('@')[-1]}")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
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
    queues: Annotated[
        str | None, typer.Option(help="run only these queues, comma-separated (e.g. analysis); default: all")
    ] = None,
    exclude: Annotated[
        str | None, typer.Option(help="leave these queues to another worker process, comma-separated")
    ] = None,
) -> None:
    """Run the background queues: anchoring (with reconciliation), analysis, cases, indexing, scheduling,
    webhooks and relayed-transaction receipts (--queues / --exclude split them over processes)."""
    from app.chainctx import ChainHolder
    from app.db import make_engine, make_session_factory, upgrade
    from app.settings import get_settings
    from app.worker import AnchorWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = get_settings()
    picked = {k: v for k, v in (("worker_queues", queues), ("worker_exclude_queues", exclude)) if v is not None}
    if picked:
        settings = settings.model_copy(update=picked)
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
    try:
        w.selected_queues()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if once:
        n = w.run_once()
        typer.echo(f"anchored {n} batch(es)")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    from app import heap

    heap.settle()
    w.run_forever(stop)


@cli.command()
def verify(
    path: Annotated[Path, typer.Argument(help="a proof JSON (qcn-proof), or any file together with --batch")],
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC endpoint of the chain (default QCN_RPC_URL)")] = None,
    batch: Annotated[str | None, typer.Option(help="batch id (0x...) the file was uploaded with")] = None,
    proof: Annotated[Path | None, typer.Option(help="proof JSON for the file (instead of asking the gateway)")] = None,
    api: Annotated[str, typer.Option(help="gateway URL to fetch the file's proof from")] = "http://127.0.0.1:8000",
    registry: Annotated[
        str | None,
        typer.Option(help="the chain's anchor registry (default: the address book deployments/<chainId>.json)"),
    ] = None,
) -> None:
    """Verify a record or a file against the chain, trusting only the chain. Exits 1 on any mismatch.

    The anchor registry is never taken from the proof: a proof naming another registry or chain fails.
    """
    from app.settings import get_settings
    from app.verifycli import verify_file, verify_proof_file

    if not path.exists():
        _fail(f"no such file: {path}")
    settings = get_settings()
    rpc_url = rpc or settings.rpc_url
    data = path.read_bytes()
    is_proof = False
    if batch is None:
        try:
            is_proof = json.loads(data).get("format") == "qcn-proof"
        except (ValueError, AttributeError):
            is_proof = False
        if not is_proof:
            _fail(f"{path} is not a qcn proof; to verify a file give its batch: qcn verify FILE --batch 0x...", 2)
        result = verify_proof_file(data, rpc_url=rpc_url, registry=registry, deployments_dir=settings.deployments_dir)
    else:
        result = verify_file(
            data,
            batch_id=batch,
            rpc_url=rpc_url,
            proof_path=proof,
            api_url=api,
            sha256=hashlib.sha256(data).hexdigest(),
            registry=registry,
            deployments_dir=settings.deployments_dir,
        )
    for line in result.lines:
        typer.echo(line)
    if not result.ok:
        _fail(f"NOT VERIFIED: {result.failure}")
    typer.secho("VERIFIED", fg=typer.colors.GREEN)


@cli.command()
def parse(
    file: Annotated[Path, typer.Argument(help="a lab report (PDF, DCC XML) or measurement file", exists=True)],
    verify: Annotated[bool, typer.Option("--verify", help="judge the report's digital signature")] = False,
    trust: Annotated[
        Path | None, typer.Option("--trust", help="trust dir: anchor/intermediate certificates and CRLs")
    ] = None,
) -> None:
    """Parse a lab report or measurement file and print the normalised JSON (for onboarding a lab layout).

    With --verify the signature verdict (valid / tampered / revoked / untrusted / expired-at-signing /
    unsigned / malformed) and its reason are put in the report's signature and printed on stderr.
    A lab report prints as a LabReport (docs/labreport.schema.json). When it needs a person's review (no
    result rows, low confidence, unread pages) the reasons go to stderr and the exit code is 3.
    """
    from parsers import parse as parse_file
    from parsers.errors import ParseError

    try:
        data = file.read_bytes()
        parsed = parse_file(data, filename=file.name)
        if verify and parsed.report is not None:
            from parsers.signatures import attach_signature, load_trust_dir, verify_report_signature

            try:
                store = load_trust_dir(trust) if trust is not None else None
            except (OSError, ValueError) as exc:
                _fail(f"--trust {trust}: {exc}")
            info = verify_report_signature(data, parsed.format, trust=store)
            parsed.report = attach_signature(parsed.report, info)
            typer.echo(f"signature: {info.verdict}: {info.reason}", err=True)
    except ParseError as exc:
        _fail(f"{file}: {exc}")
    except OSError as exc:
        _fail(f"{file}: cannot read: {exc.strerror or exc}")
    if parsed.report is None:
        typer.echo(parsed.model_dump_json(indent=2))
        return
    typer.echo(json.dumps(parsed.report.to_public_dict(), indent=2, ensure_ascii=False))
    review = parsed.report.review
    if review.required:
        for reason in review.reasons:
            typer.secho(f"REVIEW NEEDED: {file.name}: {reason}", fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(3)


@cli.command()
def demo(
    port: Annotated[int, typer.Option(help="gateway port for the demo")] = 8787,
    chain_port: Annotated[int, typer.Option(help="local chain port for the demo")] = 8546,
) -> None:
    """Run the whole story on the embedded default: chain, gateway, parties, upload, anchor, proof, verify."""
    from app.demo import run_demo

    sys.exit(run_demo(gateway_port=port, chain_port=chain_port))


# -- party commands (app/cli_party.py): talk to a gateway with an API key, sign locally with the party's own key
register_party_commands(cli)
register_analysis_rank(analysis_cli)


from app.portal.usercli import user_cli  # noqa: E402 - portal users (issue 13)

cli.add_typer(user_cli, name="user")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
