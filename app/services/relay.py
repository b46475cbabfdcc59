"""Non-custodial transactions: the gateway prepares, the party signs with its own key, the gateway relays.

Parties never hand their keys to the gateway. For an action only the party's own account may perform on
chain (a deposit, a withdrawal, a claim, a case response), the API returns the *unsigned* transaction(s)
(:func:`prepare`); the party signs them locally (``qcn`` CLI, a wallet, eth-account) and posts the raw signed
bytes (:func:`submit`). Before broadcasting, the gateway checks that the transaction is signed by the calling
party's registered account, is addressed to one of our contracts (or the settlement token) and calls a
function that party may call — so a relay endpoint cannot be abused to send arbitrary transactions.

Relaying never holds a request thread on the chain (:func:`submit`): the request checks the transactions
(signer, contract, function, chain id, transaction type — no EIP-4844 blobs or EIP-7702 delegations, no legacy
transaction without a chain id — and that the nonces are exactly the account's next ones, so neither a replay
nor a far-future nonce that would never be mined is accepted), simulates and broadcasts the first one, stores
all of them and answers 202 with a status URL. The ``relay`` job queue (:func:`advance`) broadcasts the next
transaction of a request once the previous one is mined, waits for receipts (bounded by
``relay_timeout_s``), broadcasts again from the stored raw bytes a transaction the node no longer knows (a dev
chain restarted from an older state), and runs the request's follow-up (e.g. mark a template published).
Per party: at most ``relay_max_pending_per_party`` transactions in flight and ``relay_rate_per_minute``
submissions in a fixed one-minute window counted in the database (shared by every gateway process): beyond
that 429 with ``Retry-After``.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from eth_utils import function_abi_to_4byte_selector, to_checksum_address
from fastapi.responses import JSONResponse
from hexbytes import HexBytes
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.auth import Principal
from app.chainctx import ChainContext
from app.db import RateCounter, RelayTransaction, upsert, utcnow
from app.errors import Conflict, Forbidden, InvalidRequest, NotFound, TooManyRequests
from app.settings import Settings
from chain.errors import ChainError, NonceRejected
from chain.tx import calldata, decode_signed

__all__ = [
    "PreparedTx",
    "accepted",
    "advance",
    "get_status",
    "prepare",
    "public_status",
    "record_result",
    "submit",
    "take_rate",
]

_GAS = 400_000


@dataclass(frozen=True)
class PreparedTx:
    """An unsigned transaction for ``from_`` to sign (EIP-1559 fields when the chain has a base fee)."""

    description: str
    tx: dict[str, Any]


def prepare(*, chain: ChainContext, principal: Principal, calls: list[tuple[str, Any]]) -> list[PreparedTx]:
    """Unsigned transactions (consecutive nonces) for the caller's account, one per ``(description, call)``."""
    if not principal.account:
        raise InvalidRequest("your party has no on-chain account")
    sender = to_checksum_address(principal.account)
    nonce = chain.rpc.pending_nonce(sender)
    fees = chain.rpc.fees()
    return [
        PreparedTx(
            description,
            {
                "chainId": chain.chain_id,
                "from": sender,
                "to": call.address,
                "data": "0x" + calldata(call).hex(),
                "value": 0,
                "nonce": nonce + i,
                "gas": _GAS,
                **fees,
            },
        )
        for i, (description, call) in enumerate(calls)
    ]


def _selectors(chain: ChainContext, address: str) -> dict[bytes, str]:
    contract = None
    for client in (chain.anchors, chain.agreements, chain.cases):
        if to_checksum_address(client.address) == address:
            contract = client.contract
    if contract is None and address == to_checksum_address(chain.token_address):
        from chain.contracts import contract_at

        contract = contract_at(chain.w3, "TestToken", address)
    if contract is None:
        return {}
    functions: list[Any] = [item for item in contract.abi if item.get("type") == "function"]
    return {bytes(function_abi_to_4byte_selector(item)): str(item["name"]) for item in functions}


_RATE_WINDOW_S = 60


def take_rate(*, session: Session, key: str, limit: int, window_s: int = _RATE_WINDOW_S) -> float:
    """Count one request of ``key`` in the current fixed window, shared by every gateway process through the
    database; returns 0 when it is within ``limit``, else the seconds until the window ends.

    One atomic upsert (``INSERT … ON CONFLICT DO UPDATE … RETURNING``) per request, in its own short
    transaction so refused and failed requests count too and no lock is held while the request goes on; the
    first request of a window deletes the rows of past windows. On SQLite, a request whose own transaction
    already holds the write lock counts in that transaction instead (a second writer would wait on it).
    """
    from sqlalchemy import delete

    now = time.time()
    start = int(now // window_s * window_s)
    bind = session.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    table = RateCounter.__table__
    count_one = (
        upsert(session, RateCounter)
        .values(key=key, window_start=start, count=1)
        .on_conflict_do_update(index_elements=["key", "window_start"], set_={"count": table.c.count + 1})
        .returning(table.c.count)
    )

    def count_in(s: Session) -> int:
        count = int(s.execute(count_one).scalar_one())
        if count == 1:
            s.execute(delete(RateCounter).where(RateCounter.window_start < start))
        return count

    raw = session.connection().connection.dbapi_connection if sqlite and session.in_transaction() else None
    if raw is not None and getattr(raw, "in_transaction", False):
        count = count_in(session)
    else:
        with Session(bind) as own, own.begin():
            count = count_in(own)
    if count <= limit:
        return 0.0
    return max(start + window_s - now, 0.001)


_ALLOWED_TYPES = {1: "EIP-2930", 2: "EIP-1559"}


@dataclass(frozen=True)
class _Checked:
    raw: bytes
    tx_hash: str
    signer: str
    to: str
    function: str
    nonce: int
    data: bytes


def _check_one(chain: ChainContext, principal: Principal, raw: str, allowed: set[str]) -> _Checked:
    text = (raw or "").strip()
    if text in ("", "0x", "0X"):
        raise InvalidRequest("raw is empty: send the signed transaction as 0x hex", field="raw")
    try:
        raw_bytes = bytes(HexBytes(text))
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"raw is not hex: {exc}", field="raw") from exc
    if not raw_bytes:
        raise InvalidRequest("raw is empty: send the signed transaction as 0x hex", field="raw")
    if raw_bytes[0] <= 0x7F and raw_bytes[0] not in _ALLOWED_TYPES:
        raise InvalidRequest(
            f"transaction type {raw_bytes[0]} is not relayed (only legacy with a chain id, EIP-2930, EIP-1559)",
            field="raw",
        )
    from eth_account import Account  # loads with the first relayed transaction, not at start

    try:
        decoded = decode_signed(raw_bytes)
        signer = Account.recover_transaction(raw_bytes)
    except Exception as exc:  # eth-account/rlp raise many types for malformed bytes
        raise InvalidRequest(f"not a signed Ethereum transaction: {exc}", field="raw") from exc
    if decoded.get("chainId") is None:
        raise InvalidRequest(
            "a legacy transaction without a chain id (pre-EIP-155) is replayable on any chain; sign with a chain id",
            field="raw",
        )
    if not principal.account or to_checksum_address(signer) != to_checksum_address(principal.account):
        raise Forbidden(f"the transaction is signed by {signer}, not by your registered account {principal.account}")
    to = decoded.get("to")
    if not to:
        raise InvalidRequest("contract creation cannot be relayed", field="raw")
    to = to_checksum_address(to)
    functions = _selectors(chain, to)
    data = bytes(decoded.get("data", b""))
    name = functions.get(data[:4]) if len(data) >= 4 else None
    if name is None:
        raise Forbidden(f"{to} is not a qcn contract or the function is unknown; refusing to relay")
    if name not in allowed:
        raise Forbidden(f"relaying {name} is not allowed here (allowed: {', '.join(sorted(allowed))})")
    if int(decoded["chainId"]) != chain.chain_id:
        raise InvalidRequest(f"the transaction is for chain {decoded.get('chainId')}, not {chain.chain_id}")
    tx_hash = "0x" + bytes(keccak_of(raw_bytes)).hex()
    return _Checked(raw_bytes, tx_hash, to_checksum_address(signer), to, name, int(decoded["nonce"]), data)


def keccak_of(raw: bytes) -> bytes:
    """The transaction hash of raw signed bytes."""
    from eth_utils import keccak

    return bytes(keccak(raw))


def submit(
    *,
    session: Session,
    chain: ChainContext,
    principal: Principal,
    settings: Settings,
    raws: list[str],
    allowed: set[str],
    follow_up: str | None = None,
) -> list[RelayTransaction]:
    """Check transactions the caller signed, broadcast the first and queue the rest; returns the stored rows
    (status pending). ``allowed`` names the contract functions this caller may relay here."""
    if not raws:
        raise InvalidRequest("no transaction to relay", field="raw")
    # shared by all gateway processes on this database: N processes do not give a party N times the limit
    wait = take_rate(
        session=session, key=f"relay:{principal.party_id}", limit=max(1, int(settings.relay_rate_per_minute))
    )
    if wait:
        raise TooManyRequests(f"relay rate limit of your party reached; retry in {wait:.1f} s", retry_after=wait)
    in_flight = session.scalar(
        select(func.count())
        .select_from(RelayTransaction)
        .where(RelayTransaction.party_id == principal.party_id, RelayTransaction.status == "pending")
    )
    if (in_flight or 0) + len(raws) > settings.relay_max_pending_per_party:
        raise TooManyRequests(
            f"your party has {in_flight} relayed transaction(s) in flight; at most "
            f"{settings.relay_max_pending_per_party}: wait for them (GET their status URL)",
            retry_after=1.0,
        )
    checked = [_check_one(chain, principal, raw, allowed) for raw in raws]
    signer = checked[0].signer
    next_nonce = chain.rpc.pending_nonce(signer)
    for i, c in enumerate(checked):
        expected = next_nonce + i
        if c.nonce < expected:
            raise Conflict(
                f"nonce {c.nonce} of {signer} is already used (next: {expected}): a replayed or superseded "
                "transaction; ask for a freshly prepared one",
                field="raw",
                nonce=c.nonce,
                next_nonce=expected,
            )
        if c.nonce > expected:
            raise InvalidRequest(
                f"nonce {c.nonce} is ahead of {signer}'s next nonce {expected}: it would wait in the pool "
                "indefinitely; sign consecutive nonces from the next one",
                field="raw",
                nonce=c.nonce,
                next_nonce=expected,
            )
    first = checked[0]
    if session.scalar(select(RelayTransaction.id).where(RelayTransaction.tx_hash.in_([c.tx_hash for c in checked]))):
        raise Conflict("this signed transaction was relayed before", field="raw")
    _simulate_and_send(chain, first, settings)
    request_id = str(uuid.uuid4())
    rows = []
    for i, c in enumerate(checked):
        row = RelayTransaction(
            id=str(uuid.uuid4()),
            request_id=request_id,
            seq=i,
            party_id=principal.party_id,
            tx_hash=c.tx_hash,
            raw="0x" + c.raw.hex(),
            signer=c.signer,
            to_address=c.to,
            function=c.function,
            nonce=c.nonce,
            follow_up=follow_up if i == len(checked) - 1 else None,
            stage="sent" if i == 0 else "queued",
            broadcasts=1 if i == 0 else 0,
            status="pending",
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def _simulate_and_send(chain: ChainContext, c: _Checked, settings: Settings) -> None:
    """Simulate (a revert comes back decoded and nothing is broadcast), then broadcast without waiting."""
    chain.rpc.simulate({"from": c.signer, "to": c.to, "data": HexBytes(c.data)})
    try:
        chain.rpc.send_raw(c.raw)
    except NonceRejected as exc:
        if exc.too_high:
            raise InvalidRequest(f"the node refused the nonce: {exc.reason}", field="raw") from None
        raise Conflict(f"the node refused the transaction as a replay: {exc.reason}", field="raw") from None


# ------------------------------------------------------------------------------------------------ status
def accepted(session: Session, rows: list[RelayTransaction], *, many: bool = False) -> JSONResponse:
    """The 202 answer of a relay endpoint (``many``: the endpoint relays a list and answers with a list once
    done). Commits first: the status URL must exist once the client has it."""
    session.commit()
    url = f"/v1/relay/{rows[-1].id}"
    body: dict[str, Any] = {
        "status": "pending",
        "status_url": url,
        "many": many,
        "transactions": [public_status(r) for r in rows],
    }
    return JSONResponse(status_code=202, content=body, headers={"Location": url})


def public_status(row: RelayTransaction) -> dict[str, Any]:
    """A relayed transaction as the API shows it."""
    return {
        "id": row.id,
        "tx_hash": row.tx_hash,
        "function": row.function,
        "status": row.status,
        "block_number": row.block_number,
        "gas_used": row.gas_used,
        "error": row.last_error if row.status in ("reverted", "failed") else None,
        "result": json.loads(row.result) if row.result else None,
        "status_url": f"/v1/relay/{row.id}",
    }


def get_status(*, session: Session, principal: Principal, relay_id: str) -> RelayTransaction:
    """A relayed transaction of the caller's party (admin: any)."""
    row = session.get(RelayTransaction, relay_id)
    if row is None or (row.party_id != principal.party_id and not principal.is_admin):
        raise NotFound(f"relayed transaction {relay_id} not found")
    return row


# ------------------------------------------------------------------------------------------- the queue
class _Later(Exception):
    pass


def advance(
    *, sessions: sessionmaker[Session], chain: ChainContext, settings: Settings, relay_id: str
) -> RelayTransaction | None:
    """One step of one relayed transaction (the ``relay`` queue): broadcast it when its predecessor is mined,
    record its receipt, or broadcast it again when the node lost it. Returns the row when it is mined and has
    a follow-up to run (then :func:`record_result` marks it mined); raises :class:`app.jobs.Retry` to wait."""
    from app.jobs import Retry

    with sessions() as s:
        row = s.get(RelayTransaction, relay_id)
        if row is None or row.status != "pending":
            return None
        prev = (
            s.scalars(
                select(RelayTransaction).where(
                    RelayTransaction.request_id == row.request_id, RelayTransaction.seq == row.seq - 1
                )
            ).first()
            if row.seq
            else None
        )
    age = (utcnow() - _aware(row.created_at)).total_seconds()
    if age > settings.relay_timeout_s:
        _finish(sessions, relay_id, "failed", error=f"no receipt within {settings.relay_timeout_s:.0f} s")
        return None
    if row.stage == "queued":
        if prev is not None and prev.status in ("reverted", "failed"):
            _finish(sessions, relay_id, "failed", error=f"not sent: the transaction before it {prev.status}")
            return None
        if prev is not None and prev.status != "mined":
            raise Retry("waiting for the previous transaction", delay_s=settings.relay_poll_s, count=False)
        checked = _Checked(bytes(HexBytes(row.raw)), row.tx_hash, row.signer, row.to_address, row.function,
                           row.nonce, b"")  # fmt: skip
        data = bytes(decode_signed(checked.raw).get("data", b""))
        try:
            _simulate_and_send(chain, _Checked(**{**checked.__dict__, "data": data}), settings)
        except ChainError as exc:
            _finish(sessions, relay_id, "reverted", error=str(exc))
            return None
        except Exception as exc:  # a refused broadcast (replay): final
            _finish(sessions, relay_id, "failed", error=str(exc))
            return None
        _update(sessions, relay_id, stage="sent", broadcasts=1)
        raise Retry("sent; waiting for the receipt", delay_s=settings.relay_poll_s, count=False)
    receipt = chain.rpc.receipt(row.tx_hash)
    if receipt is None:
        _rebroadcast_if_lost(sessions, chain, row)
        raise Retry("waiting for the receipt", delay_s=settings.relay_poll_s, count=False)
    ok = int(receipt["status"]) == 1
    chain.persist(int(receipt["blockNumber"]))  # embedded node: confirmed only once its state is on disk
    block, gas = int(receipt["blockNumber"]), int(receipt["gasUsed"])
    if ok and row.follow_up:
        # stays pending until the follow-up's outcome is recorded (record_result): a client that sees
        # "mined" sees the result too, and a crash in between runs the (idempotent) follow-up again
        _update(sessions, relay_id, block_number=block, gas_used=gas)
        with sessions() as s:
            return s.get(RelayTransaction, relay_id)
    _finish(
        sessions,
        relay_id,
        "mined" if ok else "reverted",
        error=None if ok else f"{row.function} reverted on chain",
        block_number=block,
        gas_used=gas,
    )
    return None


def _rebroadcast_if_lost(sessions: sessionmaker[Session], chain: ChainContext, row: RelayTransaction) -> None:
    """A sent transaction the node no longer knows (it restarted from an older state) is broadcast again
    from its stored raw bytes; its hash is the same, so the API's status URL stays valid."""
    if chain.rpc.knows_transaction(row.tx_hash):
        return
    try:
        chain.rpc.send_raw(bytes(HexBytes(row.raw)))
    except ChainError as exc:  # the nonce was taken meanwhile: the receipt check will tell
        _update(sessions, row.id, last_error=f"rebroadcast refused: {exc}"[:2000])
        return
    _update(sessions, row.id, broadcasts=row.broadcasts + 1)


def _aware(value: Any) -> Any:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _update(sessions: sessionmaker[Session], relay_id: str, **values: Any) -> None:
    with sessions() as s, s.begin():
        row = s.get(RelayTransaction, relay_id)
        if row is not None:
            for k, v in values.items():
                setattr(row, k, v)


def _finish(sessions: sessionmaker[Session], relay_id: str, status: str, *, error: str | None, **values: Any) -> None:
    _update(sessions, relay_id, status=status, last_error=error, **values)


def record_result(*, sessions: sessionmaker[Session], relay_id: str, result: Any) -> None:
    """Keep the follow-up's outcome (shown in the status) and mark the transaction mined."""
    _update(sessions, relay_id, result=json.dumps(result, default=str), status="mined", last_error=None)
