"""The party commands of ``qcn``: talk to a gateway with an API key, sign locally with the party's own key.

Every command runs through :func:`run`, which prints a human-readable table (or, with ``--json``, the
gateway's JSON answer) and turns every failure into one line on stderr and a non-zero exit:

* 1: the gateway answered with an error (the message and its facts are printed);
* 3: the gateway cannot be reached (nothing listens at ``--api``, a timeout, a TLS error);
* 4: ``--wait`` gave up waiting (the batch is still anchoring, the job still running).

The signing key never appears on the command line (``ps`` and shell history would show it): it comes from a
keystore file (``--keystore``, Web3 Secret Storage JSON, password from ``QCN_KEYSTORE_PASSWORD`` or a
prompt), from ``QCN_PARTY_KEY``, or from a hidden prompt.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from app.partyclient import PartyClient

__all__ = [
    "DEFAULT_API",
    "EXIT_API_ERROR",
    "EXIT_TIMEOUT",
    "EXIT_UNREACHABLE",
    "ApiKeyOpt",
    "ApiOpt",
    "JsonOpt",
    "KeystoreOpt",
    "NcClass",
    "PartyKindName",
    "Responsible",
    "agreement_cli",
    "analysis_cli",
    "batch_cli",
    "case_cli",
    "party_cli",
    "register",
    "run",
    "show",
    "signing_key",
    "template_cli",
]

EXIT_API_ERROR = 1
EXIT_UNREACHABLE = 3
EXIT_TIMEOUT = 4  # --wait gave up; the batch or job goes on
DEFAULT_API = "http://127.0.0.1:8000"

template_cli = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="OEM contract templates.")
agreement_cli = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Agreements, deposits and quarterly evaluations."
)
analysis_cli = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Anomaly verdicts, root causes, counterfactuals, models."
)
case_cli = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Tracing cases: OEM, supplier, lab and admin actions."
)
batch_cli = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Deliver batches (measurements and lab reports) and follow them."
)
party_cli = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Consortium parties: register (admin), who am I."
)

ApiOpt = Annotated[str, typer.Option("--api", envvar="QCN_API", help="gateway URL")]
ApiKeyOpt = Annotated[str, typer.Option("--api-key", envvar="QCN_API_KEY", help="your API key")]
KeystoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--keystore",
        envvar="QCN_KEYSTORE",
        help="your signing key as a keystore file (Web3 Secret Storage JSON); password from "
        "QCN_KEYSTORE_PASSWORD or a prompt. Without it: QCN_PARTY_KEY, else a hidden prompt.",
    ),
]
# Accepted only to explain why it is refused: a key given as an argument is visible in ps and shell history.
RefusedKeyOpt = Annotated[str | None, typer.Option("--key", hidden=True)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the gateway's JSON answer (for scripts)")]


class Responsible(StrEnum):
    """Who caused the non-conformity (the verdict's responsible party)."""

    none = "none"
    supplier = "supplier"
    oem = "oem"
    other = "other"


class NcClass(StrEnum):
    """Non-conformity class of a verdict."""

    none = "none"
    critical = "critical"
    major = "major"
    minor = "minor"


class PartyKindName(StrEnum):
    """What a party is in the consortium."""

    oem = "oem"
    supplier = "supplier"
    lab = "lab"


# the numbers the contracts use (chain.cases.ResponsibleParty and NcCode)
_RESPONSIBLE = {Responsible.none: 0, Responsible.supplier: 1, Responsible.oem: 2, Responsible.other: 3}
_NC_CLASS = {NcClass.none: 0, NcClass.critical: 1, NcClass.major: 2, NcClass.minor: 3}


# --- plumbing ------------------------------------------------------------------------------------------------
def _fail(message: str, code: int) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def signing_key(keystore: Path | None, refused: str | None = None) -> bytes:
    """The party's private key from a keystore file, ``QCN_PARTY_KEY`` or a hidden prompt (in that order)."""
    from eth_account import Account

    if refused is not None:
        _fail(
            "--key is not accepted: a key on the command line is visible in ps and shell history. "
            "Use --keystore FILE, the QCN_PARTY_KEY environment variable or the prompt.",
            2,
        )
    if keystore is not None:
        try:
            encrypted = json.loads(keystore.read_text())
        except (OSError, ValueError) as exc:
            _fail(f"cannot read keystore {keystore}: {exc}", 2)
        password = os.environ.get("QCN_KEYSTORE_PASSWORD")
        if password is None:
            password = typer.prompt(f"Password for {keystore.name}", hide_input=True)
        try:
            return bytes(Account.decrypt(encrypted, password))
        except (ValueError, KeyError, TypeError) as exc:
            _fail(f"cannot unlock keystore {keystore}: {exc}", 2)
    value = os.environ.get("QCN_PARTY_KEY") or typer.prompt("Signing key (hex, not echoed)", hide_input=True)
    try:
        return bytes(Account.from_key(value.strip()).key)
    except (ValueError, TypeError) as exc:
        _fail(f"not a private key: {type(exc).__name__}", 2)
    raise AssertionError("unreachable")


def _party(api: str, api_key: str, key: bytes | None) -> PartyClient:
    """The client of one command (tests replace this to talk to an in-process gateway)."""
    import httpx

    from app.partyclient import PartyClient

    return PartyClient(httpx.Client(base_url=api, timeout=60), api_key, key)


def _signer(api: str, api_key: str, keystore: Path | None, refused: str | None) -> PartyClient:
    return _party(api, api_key, signing_key(keystore, refused))


def _gateway_of(exc: Exception) -> str:
    try:
        url = exc.request.url  # type: ignore[attr-defined]
        return f"{url.scheme}://{url.netloc.decode()}"
    except (AttributeError, RuntimeError):
        return "the gateway"


def run(
    fn: Callable[[], Any],
    *,
    as_json: bool = False,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    quiet: bool = False,
) -> Any:
    """Run one command's calls: print the answer (a table, or JSON with ``as_json``) or one line and exit.

    Returns the answer (``quiet``: without printing it, for commands that present it themselves).

    Every party command goes through here, so every failure has the same shape: the gateway's error message
    (exit 1) or "cannot reach the gateway" (exit 3), never a traceback.
    """
    import httpx

    from app.partyclient import ApiError

    try:
        value = fn()
    except ApiError as exc:
        facts = {k: v for k, v in exc.error.items() if k not in ("message", "code")}
        _fail(f"{exc}" + (f" {json.dumps(facts, default=str)}" if facts else ""), EXIT_API_ERROR)
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        _fail(
            f"cannot reach the gateway at {_gateway_of(exc)}: {reason} (is it running? set --api or QCN_API)",
            EXIT_UNREACHABLE,
        )
    if not quiet:
        show(value, as_json=as_json, columns=columns, title=title)
    return value


def _show_get(
    api: str,
    api_key: str,
    path: str,
    *,
    as_json: bool,
    columns: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """``GET path`` with the caller's API key, shown like every command's answer (:func:`run`)."""
    return run(lambda: _party(api, api_key, None).get(path), as_json=as_json, columns=columns, title=title)


def _list_command(cli: typer.Typer, path: str, columns: list[str], title: str, doc: str) -> None:
    """Register ``list`` on ``cli``: ``GET path`` shown as a table of ``columns`` (``--json`` for scripts)."""

    def command(api: ApiOpt = DEFAULT_API, api_key: ApiKeyOpt = "", as_json: JsonOpt = False) -> None:
        _show_get(api, api_key, path, as_json=as_json, columns=columns, title=title)

    command.__doc__ = doc
    cli.command("list")(command)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping | list):
        text = json.dumps(value, default=str, separators=(",", ":"))
        return text if len(text) <= 80 else text[:77] + "..."
    return str(value)


def show(value: Any, *, as_json: bool = False, columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print ``value``: JSON with ``as_json``; otherwise a table (lists of objects) or key/value rows."""
    if as_json:
        typer.echo(json.dumps(value, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        cols = list(columns or [])
        if not cols:
            for row in value:
                cols += [k for k, v in row.items() if k not in cols and not isinstance(v, Mapping | list)]
        table = Table(title=title, show_lines=False)
        for c in cols:
            table.add_column(c)
        for row in value:
            table.add_row(*(_cell(row.get(c)) for c in cols))
        console.print(table if value else f"{title or 'nothing'}: none")
        return
    if isinstance(value, Mapping):
        table = Table(title=title, show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for k, v in value.items():
            if isinstance(v, Mapping) and v and len(v) <= 12:
                for k2, v2 in v.items():
                    table.add_row(f"{k}.{k2}", _cell(v2))
            else:
                table.add_row(str(k), _cell(v))
        console.print(table)
        return
    typer.echo(str(value))


def _progress(disable: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=disable,
    )


def _relay_prepared(party: PartyClient, ref: str, what: str, body: dict[str, Any] | None, as_json: bool) -> None:
    """Ask the gateway to prepare ``what`` for agreement ``ref``, sign locally, relay."""
    run(
        lambda: party.sign_and_relay(
            party.post(f"/v1/agreements/{ref}/{what}/prepare", json=body), f"/v1/agreements/{ref}/transactions"
        ),
        as_json=as_json,
        columns=["function", "tx_hash", "block_number", "status"],
    )


# --- templates -----------------------------------------------------------------------------------------------
@template_cli.command("publish")
def template_publish(
    file: Annotated[Path, typer.Argument(help="the template document (JSON)", exists=True, dir_okay=False)],
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    keystore: KeystoreOpt = None,
    key: RefusedKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a template document (JSON) and publish it on chain from your OEM account."""
    party = _signer(api, api_key, keystore, key)

    def go() -> Any:
        draft = party.post("/v1/templates", json={"document": json.loads(file.read_text())})
        return party.post(
            f"/v1/templates/{draft['template']['id']}/publish",
            json={"raw": party.sign_transactions(draft["transactions"])},
        )

    run(go, as_json=as_json)


_list_command(
    template_cli,
    "/v1/templates",
    ["id", "template_id", "version", "status", "document_hash"],
    "templates",
    "Templates you may see (OEM: yours, every version; supplier/lab: those of your agreements).",
)


# --- agreements ----------------------------------------------------------------------------------------------
RefArg = Annotated[str, typer.Argument(help="agreement id (0x..., from 'qcn agreement propose')")]


@agreement_cli.command("propose")
def agreement_propose(
    template: Annotated[int, typer.Argument(help="published template (its id in 'qcn template list')")],
    supplier: Annotated[int, typer.Argument(help="the supplier's party id")],
    lab: Annotated[int | None, typer.Option(help="the lab's party id (needed for tracing cases)")] = None,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """OEM: propose an agreement on a published template with a supplier (and the lab for tracing cases)."""
    body = {"template": template, "supplier_id": supplier, "lab_id": lab}
    run(lambda: _party(api, api_key, None).post("/v1/agreements", json=body), as_json=as_json)


@agreement_cli.command("sign")
def agreement_sign(
    ref: RefArg,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    keystore: KeystoreOpt = None,
    key: RefusedKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """OEM or supplier: sign the agreement's EIP-712 typed data locally and submit the signature."""
    party = _signer(api, api_key, keystore, key)

    def go() -> Any:
        typed = party.get(f"/v1/agreements/{ref}")["typed_data"]
        return party.post(f"/v1/agreements/{ref}/signatures", json={"signature": party.sign_typed_data(typed)})

    run(go, as_json=as_json)


@agreement_cli.command("show")
def agreement_show(ref: RefArg, api: ApiOpt = DEFAULT_API, api_key: ApiKeyOpt = "", as_json: JsonOpt = False) -> None:
    """State, ratio, deposit balance and this quarter's counters."""
    _show_get(api, api_key, f"/v1/agreements/{ref}", as_json=as_json)


AmountArg = Annotated[int, typer.Argument(help="amount in the settlement token's smallest unit")]


def _amount_command(name: str, resource: str, doc: str) -> None:
    """Register ``agreement NAME REF AMOUNT``: the supplier's signed ``resource`` transactions, relayed."""

    def command(
        ref: RefArg,
        amount: AmountArg,
        api: ApiOpt = DEFAULT_API,
        api_key: ApiKeyOpt = "",
        keystore: KeystoreOpt = None,
        key: RefusedKeyOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        _relay_prepared(_signer(api, api_key, keystore, key), ref, resource, {"amount": amount}, as_json)

    command.__doc__ = doc
    agreement_cli.command(name)(command)


_amount_command(
    "deposit", "deposits", "Supplier: deposit or top up (approve + deposit, signed locally, relayed by the gateway)."
)
_amount_command("withdraw", "withdrawals", "Supplier: withdraw deposit above the required amount.")


@agreement_cli.command("claim")
def agreement_claim(
    ref: RefArg,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    keystore: KeystoreOpt = None,
    key: RefusedKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """OEM: claim the penalties owed to you."""
    _relay_prepared(_signer(api, api_key, keystore, key), ref, "claims", None, as_json)


@agreement_cli.command("inspect")
def agreement_inspect(
    ref: RefArg,
    batch: Annotated[str, typer.Argument(help="the delivered batch (its uuid or on-chain 0x id)")],
    accepted: Annotated[
        bool, typer.Option("--accepted/--rejected", help="your incoming-inspection result for the batch")
    ],
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    keystore: KeystoreOpt = None,
    key: RefusedKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """OEM: record your incoming inspection of a delivered batch on chain (signed locally, relayed by the
    gateway; one result per batch). These results are the batch counts of the supplier's quality score."""
    body = {"batch": batch, "accepted": accepted}
    _relay_prepared(_signer(api, api_key, keystore, key), ref, "inspections", body, as_json)


@agreement_cli.command("evaluate")
def agreement_evaluate(
    ref: RefArg,
    quarter: Annotated[int, typer.Argument(help="quarter number (0 = the agreement's first quarter)")],
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Evaluate an ended quarter (once; the gateway's scheduler also does it)."""
    run(lambda: _party(api, api_key, None).post(f"/v1/agreements/{ref}/evaluations/{quarter}"), as_json=as_json)


# --- batches -------------------------------------------------------------------------------------------------
BatchArg = Annotated[str, typer.Argument(help="batch id (the uuid 'qcn batch upload' printed)")]
_BATCH_COLUMNS = ["id", "batch_id", "lot_id", "record_count", "status", "verdict"]


def _batch_summary(batch: Mapping[str, Any]) -> dict[str, Any]:
    receipt = batch.get("receipt") or {}
    return {
        "id": batch["id"],
        "batch_id": batch["batch_id"],
        "lot_id": batch.get("lot_id"),
        "part_number": batch.get("part_number"),
        "records": batch.get("record_count"),
        "files": ", ".join(f"{f.get('filename')} ({f.get('format')})" for f in batch.get("files", [])),
        "agreement": batch.get("agreement_id"),
        "verdict": batch.get("verdict"),
        "status": batch.get("status"),
        "tx_hash": receipt.get("tx_hash"),
        "block": receipt.get("block_number"),
        "anchor_error": batch.get("anchor_error"),
        "new": batch.get("created", True),
    }


@batch_cli.command("upload")
def batch_upload(
    files: Annotated[
        list[Path],
        typer.Argument(help="the batch's files: one measurement file plus lab reports", exists=True, dir_okay=False),
    ],
    agreement: Annotated[str | None, typer.Option(help="deliver under this agreement (0x id): validated")] = None,
    lot_size: Annotated[int | None, typer.Option(help="lot size, for the ISO 2859-1 sampling plan")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="same key = same batch when you retry (default: the content decides)")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="wait until the batch is anchored on chain")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the anchor")] = 300.0,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Supplier: upload one batch; with --wait, follow it until its anchoring transaction is mined."""
    party = _party(api, api_key, None)

    def go() -> Any:
        form: dict[str, str] = {}
        if agreement:
            form["agreement_id"] = agreement
        if lot_size is not None:
            form["lot_size"] = str(lot_size)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        size = sum(p.stat().st_size for p in files)
        with _progress(disable=as_json) as progress:
            task = progress.add_task(f"uploading {len(files)} file(s), {size / 1024:,.0f} KiB", total=2)
            multipart = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in files]
            batch = party.post("/v1/batches", data=form, files=multipart, headers=headers)
            progress.update(task, completed=1, description=f"batch {batch['id']}: stored, waiting for the anchor")
            if not wait:
                progress.update(task, visible=False)
                return batch
            deadline = time.monotonic() + timeout
            while batch["status"] != "anchored":
                if time.monotonic() > deadline:
                    progress.stop()
                    late = f"batch {batch['id']} is not anchored after {timeout:.0f} s (status {batch['status']})"
                    _fail(late, EXIT_TIMEOUT)
                time.sleep(0.5)
                batch = party.get(f"/v1/batches/{batch['id']}")
                if batch.get("anchor_error"):
                    progress.update(task, description=f"batch {batch['id']}: retrying ({batch['anchor_error']})")
            progress.update(task, completed=2, description=f"batch {batch['id']}: anchored")
        return batch

    if as_json:
        run(go, as_json=True)
    else:
        run(lambda: _batch_summary(go()))


@batch_cli.command("show")
def batch_show(batch: BatchArg, api: ApiOpt = DEFAULT_API, api_key: ApiKeyOpt = "", as_json: JsonOpt = False) -> None:
    """A batch: its records, files, verdict against the template and anchoring receipt."""
    party = _party(api, api_key, None)
    if as_json:
        run(lambda: party.get(f"/v1/batches/{batch}"), as_json=True)
    else:
        run(lambda: _batch_summary(party.get(f"/v1/batches/{batch}")))


# --- parties -------------------------------------------------------------------------------------------------
@party_cli.command("register")
def party_register(
    name: Annotated[str, typer.Argument(help="the organisation's name")],
    kind: Annotated[PartyKindName, typer.Option(help="what the party is", case_sensitive=False)],
    account: Annotated[str, typer.Option(help="the party's own on-chain account (0x address)")],
    accreditation_id: Annotated[str | None, typer.Option(help="labs: accreditation, e.g. 'D-PL-12345-01-00'")] = None,
    accreditation_expires: Annotated[
        str | None, typer.Option(help="labs: when the accreditation expires (ISO 8601 date)")
    ] = None,
    certificate: Annotated[
        Path | None, typer.Option(help="labs: PEM certificate their signed reports carry", exists=True, dir_okay=False)
    ] = None,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Consortium admin: register an OEM, supplier or lab (on chain and in the gateway); prints its API key once."""
    body: dict[str, Any] = {"name": name, "kind": kind.value, "account": account}
    if accreditation_id:
        body["accreditation_id"] = accreditation_id
    if accreditation_expires:
        body["accreditation_expires"] = accreditation_expires
    if certificate is not None:
        body["certificate_pem"] = certificate.read_text()
    run(lambda: _party(api, api_key, None).post("/v1/parties", json=body), as_json=as_json)


@party_cli.command("me")
def party_me(api: ApiOpt = DEFAULT_API, api_key: ApiKeyOpt = "", as_json: JsonOpt = False) -> None:
    """The party your API key belongs to."""
    _show_get(api, api_key, "/v1/parties/me", as_json=as_json)


_list_command(
    party_cli,
    "/v1/parties",
    ["id", "name", "kind", "account", "accreditation_id"],
    "parties",
    "Every party (admin); others see only themselves.",
)


# --- analysis ------------------------------------------------------------------------------------------------
@analysis_cli.command("show")
def analysis_show(
    batch: BatchArg,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    rescore: Annotated[bool, typer.Option(help="score the batch again now")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The batch's anomaly verdict (reasons, model version) and root-cause ranking with evidence."""
    party = _party(api, api_key, None)
    run(
        lambda: party.post(f"/v1/batches/{batch}/analysis") if rescore else party.get(f"/v1/batches/{batch}/analysis"),
        as_json=as_json,
    )


@analysis_cli.command("counterfactual")
def analysis_counterfactual(
    batch: BatchArg,
    variable: Annotated[str, typer.Argument(help="process variable to change, e.g. roll_pressure")],
    characteristic: Annotated[str, typer.Argument(help="quality characteristic to check, e.g. adhesion_strength")],
    within_pct: Annotated[float | None, typer.Option(help="had VARIABLE stayed within +/- this % of nominal")] = None,
    value: Annotated[float | None, typer.Option(help="had VARIABLE been exactly this")] = None,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Would CHARACTERISTIC have stayed in spec had VARIABLE been different? (abduction-action-prediction)"""
    body = {"variable": variable, "characteristic": characteristic, "within_pct": within_pct, "value": value}
    run(
        lambda: _party(api, api_key, None).post(
            f"/v1/batches/{batch}/counterfactual", json={k: v for k, v in body.items() if v is not None}
        ),
        as_json=as_json,
    )


@analysis_cli.command("models")
def analysis_models(api: ApiOpt = DEFAULT_API, api_key: ApiKeyOpt = "", as_json: JsonOpt = False) -> None:
    """Anomaly model versions (with SHA-256) and causal graph versions (with hash)."""
    if as_json:
        _show_get(api, api_key, "/v1/models", as_json=True)
        return
    models = run(lambda: _party(api, api_key, None).get("/v1/models"), columns=[], title="models", quiet=True)
    show(models["anomaly_models"], columns=["name", "version", "sha256", "n_training_rows"], title="anomaly models")
    show(models["causal_models"], columns=["profile", "graph_version", "graph_sha256", "rows"], title="causal models")


@analysis_cli.command("refresh")
def analysis_refresh(
    profile: Annotated[str, typer.Argument(help="process profile, e.g. electrode_coating")],
    causal: Annotated[bool, typer.Option("--causal/--no-causal", help="re-learn the causal model")] = True,
    anomaly: Annotated[bool, typer.Option("--anomaly/--no-anomaly", help="train a new anomaly model")] = True,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the job until it ends")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to follow the job (it keeps running after)")] = 1800.0,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """OEM/admin: re-learn the causal model and retrain the anomaly model of a process profile (a background job)."""
    party = _party(api, api_key, None)

    def go() -> Any:
        job = party.post("/v1/models/refresh", json={"profile": profile, "causal": causal, "anomaly": anomaly})
        if not wait:
            return job
        deadline = time.monotonic() + timeout
        with _progress(disable=as_json) as progress:
            task = progress.add_task(f"refresh {profile}: queued", total=job["steps_total"])
            while job["status"] in ("pending", "running"):
                if time.monotonic() > deadline:
                    progress.stop()
                    late = f"model refresh job {job['job_id']} still {job['status']} after {timeout:.0f} s"
                    _fail(late, EXIT_TIMEOUT)
                time.sleep(0.3)
                job = party.get(f"/v1/models/refresh/{job['job_id']}")
                stage = job["stage"] or job["status"]
                progress.update(task, completed=job["steps_done"], description=f"refresh {profile}: {stage}")
        return job

    job = run(go, as_json=as_json)
    if job["status"] == "failed":
        _fail(f"model refresh failed: {(job.get('error') or {}).get('message')}", EXIT_API_ERROR)


# --- tracing cases -------------------------------------------------------------------------------------------
CaseArg = Annotated[str, typer.Argument(help="case id (0x..., from 'qcn case list')")]
RootCauseArg = Annotated[str, typer.Argument(help="root cause as a short code, e.g. roll_pressure")]
ResponsibleOpt = Annotated[Responsible, typer.Option(help="who caused the non-conformity", case_sensitive=False)]
NcClassOpt = Annotated[NcClass, typer.Option("--nc-class", help="non-conformity class", case_sensitive=False)]


_list_command(
    case_cli,
    "/v1/cases",
    ["case_id", "state", "batch_id", "agreement_id", "opened_at"],
    "tracing cases",
    "Cases you are a party to (labs: those assigned to you).",
)


@case_cli.command("show")
def case_show(
    case: CaseArg,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    timeline: Annotated[bool, typer.Option(help="every step with its transaction hash and proof")] = False,
    as_json: JsonOpt = False,
) -> None:
    """A case's state, deadlines and verdict (--timeline for every step on chain)."""
    _show_get(api, api_key, f"/v1/cases/{case}" + ("/timeline" if timeline else ""), as_json=as_json)


@case_cli.command("respond")
def case_respond(
    case: CaseArg,
    evidence: Annotated[list[Path], typer.Argument(help="evidence files, e.g. the 8D report", exists=True)],
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    keystore: KeystoreOpt = None,
    key: RefusedKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Supplier: answer with evidence files (hashed and anchored with the response), signed locally."""
    party = _signer(api, api_key, keystore, key)

    def go() -> Any:
        files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in evidence]
        prep = party.post(f"/v1/cases/{case}/response/prepare", files=files)
        return party.post(f"/v1/cases/{case}/response", json={"raw": party.sign_transactions(prep["transactions"])[0]})

    run(go, as_json=as_json)


@case_cli.command("verdict")
def case_verdict(
    case: CaseArg,
    root_cause: RootCauseArg,
    responsible: ResponsibleOpt = Responsible.supplier,
    nc_class: NcClassOpt = NcClass.major,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    keystore: KeystoreOpt = None,
    key: RefusedKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lab: sign the EIP-712 verdict with your own key and submit it."""
    party = _signer(api, api_key, keystore, key)

    def go() -> Any:
        typed = party.get(
            f"/v1/cases/{case}/verdict-typed-data",
            root_cause=root_cause,
            responsible_party=_RESPONSIBLE[responsible],
            nc_class=_NC_CLASS[nc_class],
        )["typed_data"]
        return party.post(
            f"/v1/cases/{case}/verdict", json={"message": typed["message"], "signature": party.sign_typed_data(typed)}
        )

    run(go, as_json=as_json)


@case_cli.command("accept")
def case_accept(
    case: CaseArg,
    dispute: Annotated[bool, typer.Option("--dispute", help="dispute the verdict instead")] = False,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    keystore: KeystoreOpt = None,
    key: RefusedKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """OEM or supplier: accept (or --dispute) the lab's verdict, signed with your own key."""
    party = _signer(api, api_key, keystore, key)

    def go() -> Any:
        typed = party.get(f"/v1/cases/{case}/acceptance-typed-data", accept=str(not dispute).lower())["typed_data"]
        return party.post(
            f"/v1/cases/{case}/acceptance",
            json={"message": typed["message"], "signature": party.sign_typed_data(typed)},
        )

    run(go, as_json=as_json)


@case_cli.command("claim")
def case_claim(
    case: CaseArg,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    keystore: KeystoreOpt = None,
    key: RefusedKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """OEM: claim the settled penalty; lab: claim its fee (the gateway picks by your role)."""
    party = _signer(api, api_key, keystore, key)

    def go() -> Any:
        role = party.get("/v1/parties/me")["kind"]
        path = f"/v1/cases/{case}/lab-fee" if role == "lab" else f"/v1/cases/{case}/claim"
        prep = party.post(f"{path}/prepare")
        return party.post(path, json={"raw": party.sign_transactions(prep["transactions"])[0]})

    run(go, as_json=as_json)


@case_cli.command("arbitrate")
def case_arbitrate(
    case: CaseArg,
    root_cause: RootCauseArg,
    ruling: Annotated[Path, typer.Argument(help="the ruling as a text file (its SHA-256 goes on chain)", exists=True)],
    responsible: ResponsibleOpt = Responsible.supplier,
    nc_class: NcClassOpt = NcClass.major,
    api: ApiOpt = DEFAULT_API,
    api_key: ApiKeyOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Consortium admin: rule on a disputed case; the ruling text's SHA-256 goes on chain."""
    body = {
        "responsible_party": _RESPONSIBLE[responsible],
        "nc_class": _NC_CLASS[nc_class],
        "root_cause": root_cause,
        "ruling": ruling.read_text(),
    }
    run(lambda: _party(api, api_key, None).post(f"/v1/cases/{case}/arbitrate", json=body), as_json=as_json)


def register(cli: typer.Typer) -> None:
    """Add the party command groups to the ``qcn`` command."""
    for name, group in (
        ("party", party_cli),
        ("template", template_cli),
        ("agreement", agreement_cli),
        ("batch", batch_cli),
        ("analysis", analysis_cli),
        ("case", case_cli),
    ):
        cli.add_typer(group, name=name)
