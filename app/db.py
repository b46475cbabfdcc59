"""Database tables (SQLAlchemy 2 typed declarative) and engine/session factories.

Tables are the storage shape only; the API speaks the pydantic schemas in :mod:`app.schemas`.
SQLite is the embedded default (WAL, foreign keys on, busy timeout); PostgreSQL is the production database.
Schema changes go through Alembic (``app/migrations``); :func:`upgrade` brings a database to head.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

__all__ = [
    "RECORDS_PER_CHUNK",
    "AgreementRecord",
    "AnalysisJob",
    "AnalysisResult",
    "ApiKey",
    "AuthFailure",
    "Base",
    "Batch",
    "BatchFile",
    "Blob",
    "CaseEvidence",
    "CaseRecord",
    "CausalModelRecord",
    "ChainCursor",
    "ChainEventRecord",
    "Lease",
    "ModelRefreshJob",
    "ObservationPack",
    "OutboxItem",
    "Party",
    "RateCounter",
    "RecordChunk",
    "RelayTransaction",
    "TemplateRecord",
    "WebhookDelivery",
    "WebhookSubscription",
    "make_engine",
    "make_session_factory",
    "session_scope",
    "upgrade",
    "upsert",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def upsert(session: Session, model: type[Any]) -> Any:
    """``INSERT`` into ``model``'s table in the session's dialect (PostgreSQL or SQLite), so the statement offers
    ``on_conflict_do_nothing`` / ``on_conflict_do_update``: one atomic insert-or-skip/update, also under races."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(model)


class Base(DeclarativeBase):
    pass


@event.listens_for(Base, "load", propagate=True)
def _utc_on_load(instance: Any, _context: Any) -> None:
    """SQLite returns timestamps without a zone; they are stored in UTC, so say so (as PostgreSQL does).

    Written to ``__dict__`` so loading marks nothing dirty; API clients always get RFC 3339 date-times.
    """
    state = instance.__dict__
    keys = _DATETIME_KEYS.get(type(instance))
    if keys is None:  # once per class: iterating every column of every loaded row was a hot spot
        keys = _DATETIME_KEYS[type(instance)] = tuple(
            c.key for c in instance.__table__.columns if isinstance(c.type, DateTime)
        )
    for key in keys:
        value = state.get(key)
        if isinstance(value, datetime) and value.tzinfo is None:
            state[key] = value.replace(tzinfo=UTC)


_DATETIME_KEYS: dict[type, tuple[str, ...]] = {}


@event.listens_for(Base, "refresh", propagate=True)
def _utc_on_refresh(instance: Any, context: Any, _attrs: Any) -> None:
    _utc_on_load(instance, context)


class Party(Base):
    """An organisation in the consortium (or the consortium admin itself, kind ``admin``)."""

    __tablename__ = "parties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # admin | oem | supplier | lab
    account: Mapped[str | None] = mapped_column(String(42), unique=True)
    accreditation_id: Mapped[str | None] = mapped_column(String(64))
    accreditation_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    chain_tx: Mapped[str | None] = mapped_column(String(66))
    certificate_pem: Mapped[str | None] = mapped_column(Text)  # labs: the certificate their reports are signed with
    certificate_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """An API key bound to one party and role; only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # migration 0006

    party: Mapped[Party] = relationship()


class AuthFailure(Base):
    """Failed authentications per client address, shared by every gateway process (migration 0006)."""

    __tablename__ = "auth_failures"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # within the current window
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lockouts: Mapped[int] = mapped_column(Integer, default=0)  # consecutive lockouts: the backoff doubles
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RateCounter(Base):
    """Requests of one key (e.g. a party's relay submissions) in one fixed window, shared by every gateway
    process (migration 0014); rows of past windows are deleted as new windows start."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # unix seconds
    count: Mapped[int] = mapped_column(Integer, default=0)


class Blob(Base):
    """Raw bytes of an uploaded file, content-addressed by SHA-256, stored with the batch transaction."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("supplier_id", "idempotency_key", name="uq_batch_idempotency"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid
    batch_id: Mapped[str] = mapped_column(String(66), unique=True)  # on-chain bytes32, 0x hex
    supplier_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    content_sha256: Mapped[str] = mapped_column(String(64))
    part_number: Mapped[str | None] = mapped_column(String(100))
    lot_id: Mapped[str | None] = mapped_column(String(100))
    record_count: Mapped[int] = mapped_column(Integer)
    leaf_count: Mapped[int] = mapped_column(Integer)
    root: Mapped[str] = mapped_column(String(66))
    report_hash: Mapped[str] = mapped_column(String(66))
    agreement_id: Mapped[str] = mapped_column(String(66))
    verdict: Mapped[int] = mapped_column(Integer, default=0)
    supersedes: Mapped[str] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | anchored
    anchored_at: Mapped[int | None] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    commitment: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    lot_size: Mapped[int | None] = mapped_column(Integer)
    assessment: Mapped[str | None] = mapped_column(Text)  # JSON of the acceptance check against the agreement
    # why a person must look at this batch's lab reports (no result rows, low confidence); None = fine
    review_reason: Mapped[str | None] = mapped_column(Text)

    supplier: Mapped[Party] = relationship()
    files: Mapped[list[BatchFile]] = relationship(back_populates="batch", order_by="BatchFile.id")


class BatchFile(Base):
    """A file uploaded with a batch; it is a leaf of the batch tree by its SHA-256."""

    __tablename__ = "batch_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_pk: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    filename: Mapped[str | None] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # inspection | report
    size: Mapped[int] = mapped_column(BigInteger)
    salt: Mapped[str] = mapped_column(String(66))
    leaf_hash: Mapped[str] = mapped_column(String(66))
    parsed_json: Mapped[str | None] = mapped_column(Text)
    report_record_idx: Mapped[int | None] = mapped_column(Integer)  # leaf of the parsed report's canonical JSON
    signature_verdict: Mapped[str | None] = mapped_column(String(32))

    batch: Mapped[Batch] = relationship(back_populates="files")


#: records per :class:`RecordChunk` row: a 1,000-record batch is one row; reading one record of a huge batch reads
#: one chunk (about 1 MB), not the whole batch
RECORDS_PER_CHUNK = 4096


class RecordChunk(Base):
    """Consecutive canonical records of a batch (RFC 8785 JSON, what each leaf digests) with their leaf values.

    A chunk holds ``count`` records from index ``first`` on, in leaf order: ``data`` is their canonical texts
    joined by newlines (RFC 8785 escapes every control character, so no record holds one), ``leaves`` their
    ``salt || digest`` values, 64 bytes each. Each row says where it starts, so a later change of
    ``RECORDS_PER_CHUNK`` never shifts stored records. One row per chunk instead of one per record: a record is
    only ever written once, with its batch, and read by index (proofs, the records listing).
    """

    __tablename__ = "record_chunks"

    batch_pk: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True)
    # index of the chunk's first record in the batch
    first: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    data: Mapped[str] = mapped_column(Text)
    leaves: Mapped[bytes] = mapped_column(LargeBinary)


class OutboxItem(Base):
    """Work that must reach the chain; written in the same transaction as the data it is about."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # anchor
    batch_pk: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | done
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(128))  # job lease (app/jobs.py)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Lease(Base):
    """A named, expiring lock row: only the holder may send transactions with the relayer key."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite make the parent directory and set the pragmas we rely on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the driver never opens a transaction by itself; _sqlite_write_begin opens
        # BEGIN IMMEDIATE at a transaction's first write, after taking this process's writer lock
        # (_SingleWriterConnection): writers of one process queue on a lock, not on SQLite's busy handler,
        # which polls with sleeps and lets an unlucky writer starve past its timeout under load
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": 30,
                "isolation_level": None,
                "factory": _SingleWriterConnection,
            },
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "before_cursor_execute", _sqlite_write_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "ALTER", "DROP")


def _sqlite_write_begin(conn: Any, cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
    """SQLite has one writer: take the write lock (waiting on the busy timeout) before a transaction's first
    write or ``SELECT … FOR UPDATE``. Reads before it run on the newest committed data, each on its own."""
    dbapi = cursor.connection
    if dbapi.in_transaction or not conn.in_transaction():
        return
    head = statement.lstrip()[:8].upper()
    compiled = getattr(context, "compiled", None)
    for_update = getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None
    if head.startswith(_WRITES) or for_update:
        dbapi.begin_write(cursor)


_WRITER_LOCKS: dict[str, threading.Lock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()
_WRITER_WAIT_S = 120.0


class _SingleWriterConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions take the process-wide writer lock of its database file
    first (released at commit, rollback or close): one writer at a time per process, waiting in line."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        key = str(database)
        with _WRITER_LOCKS_GUARD:
            self._writer_lock = _WRITER_LOCKS.setdefault(key, threading.Lock())
        self._writing = False

    def begin_write(self, cursor: Any) -> None:
        if not self._writer_lock.acquire(timeout=_WRITER_WAIT_S):
            raise sqlite3.OperationalError(f"database is locked: no write turn within {_WRITER_WAIT_S:.0f} s")
        self._writing = True
        try:
            cursor.execute("BEGIN IMMEDIATE")  # other processes: SQLite's own lock and busy timeout
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self._writing:
            self._writing = False
            self._writer_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def upgrade(engine: Engine) -> None:
    """Bring the database schema to the newest Alembic revision.

    Safe when several gateway/worker processes start at once on an empty database: PostgreSQL serialises them
    with a transaction-scoped advisory lock, SQLite with an exclusive lock on a file beside the database.
    """
    if _at_head(engine):  # the usual restart: no Alembic import, no lock (alembic alone is ~0.4 s of start-up)
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with _sqlite_migration_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


_MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION_LINE = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:"([^"]*)"|'([^']*)'|None)""", re.M)


def script_heads() -> set[str]:
    """The head revisions of ``app/migrations/versions``, read from the files' ``revision``/``down_revision`` lines
    (Alembic's ``ScriptDirectory`` gives the same, in ~0.4 s of imports; tests/app/test_migrations.py compares)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in _MIGRATIONS.glob("*.py"):
        for key, double, single in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            value = double or single
            if value:
                (revisions if key == "revision" else parents).add(value)
    return revisions - parents


def _at_head(engine: Engine) -> bool:
    """True if the database records exactly the one head revision (nothing to migrate)."""
    heads = script_heads()
    if len(heads) != 1:
        return False  # several heads (branches not merged yet): let Alembic say so
    try:
        with engine.connect() as conn:
            current = {str(r) for (r,) in conn.execute(text("SELECT version_num FROM alembic_version"))}
    except SQLAlchemyError:
        return False  # an empty database: no version table yet
    return current == heads


_MIGRATION_LOCK_KEY = 0x71636E_0001  # "qcn" + 1: one advisory lock id for schema migrations


@contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    import fcntl

    with open(f"{path}.migrate.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------------------------
# Analysis: observations, one analysis job per batch, analysis results, causal model versions, refresh jobs
# ---------------------------------------------------------------------------------------------------------------
class ObservationPack(Base):
    """Every value linked to one batch, packed column-wise in one row: the measured quality characteristics and
    the process/material/equipment/environment variables, each for one sample or the whole batch (sample id
    null). Written once in the upload transaction and only ever read whole by the analysis (one row instead of
    one per value: a 1,000-record upload writes one row here, not a thousand).

    ``data`` is JSON ``{"sample_id": [...], "variable": [...], "tier": [...], "unit": [...], "value_f64": "..."}``:
    equal-length columns in upload order (measurements first, then process values), the values as base64 of
    little-endian float64s; ``tier`` is ``quality`` for measured characteristics (see
    :func:`app.analysis.observations.pack_columns`)."""

    __tablename__ = "observation_packs"

    batch_pk: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    data: Mapped[str] = mapped_column(Text)


class AnalysisJob(Base):
    """One analysis job per batch, written in the upload transaction; the worker runs it exactly once."""

    __tablename__ = "analysis_jobs"
    __table_args__ = (
        Index("ix_analysis_jobs_due", "status", "next_attempt_at"),
        # the SPC history of a job: the newest earlier clean jobs of its batch's supplier and part number
        Index("ix_analysis_jobs_history", "supplier_id", "part_number", "outcome", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_pk: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), unique=True)
    # copied from the batch (which never changes them), so the history query needs no join (migration 0017)
    supplier_id: Mapped[int | None] = mapped_column(Integer)
    part_number: Mapped[str | None] = mapped_column(String(100))
    profile: Mapped[str | None] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    outcome: Mapped[str | None] = mapped_column(String(16))  # clean | anomalous (of the latest analysis)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(128))  # job lease (app/jobs.py)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AnalysisResult(Base):
    """A stored analysis of a batch (versioned by ``seq``): verdict + root cause, canonical JSON + hashes."""

    __tablename__ = "analyses"
    __table_args__ = (UniqueConstraint("batch_pk", "seq", name="uq_analysis_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_pk: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    profile: Mapped[str | None] = mapped_column(String(100))
    anomalous: Mapped[bool] = mapped_column(Boolean)
    complete: Mapped[bool] = mapped_column(Boolean)
    root_cause_status: Mapped[str] = mapped_column(String(32))  # done | not_anomalous | insufficient_data | ...
    top_cause: Mapped[str | None] = mapped_column(String(200))
    document: Mapped[str] = mapped_column(Text)  # canonical JSON of the whole analysis
    sha256: Mapped[str] = mapped_column(String(64))
    input_sha256: Mapped[str] = mapped_column(String(64))
    graph_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CausalModelRecord(Base):
    """A causal model version of a profile: the stored graph (GraphStore version + hash) and what it saw."""

    __tablename__ = "causal_models"
    __table_args__ = (UniqueConstraint("profile", "graph_version", name="uq_causal_model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile: Mapped[str] = mapped_column(String(100), index=True)
    graph_version: Mapped[int] = mapped_column(Integer)
    graph_sha256: Mapped[str] = mapped_column(String(64))
    anm_sha256: Mapped[str] = mapped_column(String(64))
    n_rows: Mapped[int] = mapped_column(Integer)
    n_batches: Mapped[int] = mapped_column(Integer)
    through_job_id: Mapped[int] = mapped_column(Integer)  # trained on clean batches with job id <= this
    training_sha256: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(32))  # fit | refresh
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelRefreshJob(Base):
    """A model refresh an OEM or the admin asked for: runs in the background, its progress readable."""

    __tablename__ = "model_refresh_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile: Mapped[str] = mapped_column(String(100))
    causal: Mapped[bool] = mapped_column(Boolean)
    anomaly: Mapped[bool] = mapped_column(Boolean)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("parties.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | running | done | failed
    stage: Mapped[str | None] = mapped_column(String(64))  # what runs now, e.g. "causal model"
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    steps_total: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[str | None] = mapped_column(Text)  # JSON: the new model versions
    error: Mapped[str | None] = mapped_column(Text)  # JSON: {code, message, facts} as the API reports errors
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# ------------------------------------------------------------------------------------- templates and agreements
class TemplateRecord(Base):
    """A published OEM template: the full document (canonical JSON), its hash and the on-chain terms."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("template_id", "version", name="uq_template_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    oem_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    chain_template_id: Mapped[str] = mapped_column(String(66))  # bytes32 key on chain
    document: Mapped[str] = mapped_column(Text)  # canonical JSON (RFC 8785) of the template document
    document_hash: Mapped[str] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | published
    chain_tx: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    oem: Mapped[Party] = relationship()


class AgreementRecord(Base):
    """An OEM-supplier agreement on a template: the signed terms, both signatures, its state on chain."""

    __tablename__ = "agreements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(66), unique=True)  # bytes32 on chain
    template_pk: Mapped[int] = mapped_column(ForeignKey("templates.id"))
    oem_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    supplier_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    lab_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    terms: Mapped[str] = mapped_column(Text)  # the EIP-712 message both parties sign (JSON)
    oem_signature: Mapped[str | None] = mapped_column(String(140))
    supplier_signature: Mapped[str | None] = mapped_column(String(140))
    status: Mapped[str] = mapped_column(String(16), default="proposed")  # proposed | active | suspended | terminated
    chain_tx: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    template: Mapped[TemplateRecord] = relationship()
    oem: Mapped[Party] = relationship(foreign_keys=[oem_id])
    supplier: Mapped[Party] = relationship(foreign_keys=[supplier_id])
    lab: Mapped[Party | None] = relationship(foreign_keys=[lab_id])


# ---------------------------------------------------------------------------------------------- tracing cases
# Tracing cases in the gateway (migration 0005): cases (also the outbox of the case-opening transaction),
# the chain events the indexer followed, its cursors, evidence files, webhook subscriptions and deliveries.
class CaseRecord(Base):
    """A tracing case: the row is written when an anomalous analysis calls for a case (``open_status``
    pending = the outbox of ``openCase``); every later field is folded from the indexed contract events."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_open_due", "open_status", "next_attempt_at"), Index("ix_cases_state", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str | None] = mapped_column(String(66), unique=True)  # bytes32 on chain (predicted, then real)
    batch_pk: Mapped[str | None] = mapped_column(ForeignKey("batches.id", ondelete="SET NULL"), index=True)
    analysis_pk: Mapped[int | None] = mapped_column(ForeignKey("analyses.id", ondelete="SET NULL"), unique=True)
    batch_id: Mapped[str] = mapped_column(String(66), index=True)
    agreement_id: Mapped[str] = mapped_column(String(66), index=True)
    oem_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), index=True)
    lab_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), index=True)
    lab_account: Mapped[str | None] = mapped_column(String(42))
    analysis_hash: Mapped[str | None] = mapped_column(String(66))
    lab_fee: Mapped[str] = mapped_column(String(80), default="0")  # uint96 as decimal text
    # outbox of the opening transaction
    open_status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    open_tx: Mapped[str | None] = mapped_column(String(66))
    claimed_by: Mapped[str | None] = mapped_column(String(128))  # job lease (app/jobs.py)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # folded from events
    state: Mapped[str] = mapped_column(String(24), default="pending_open")
    deadline: Mapped[int | None] = mapped_column(BigInteger)  # chain time of the current state's deadline
    opened_at: Mapped[int | None] = mapped_column(BigInteger)
    round: Mapped[int] = mapped_column(Integer, default=0)
    verdict_hash: Mapped[str | None] = mapped_column(String(66))
    root_cause_code: Mapped[str | None] = mapped_column(String(66))
    responsible_party: Mapped[int | None] = mapped_column(Integer)
    nc_class: Mapped[int | None] = mapped_column(Integer)
    oem_accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    supplier_accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    lab_deadline_missed: Mapped[bool] = mapped_column(Boolean, default=False)
    penalized: Mapped[bool | None] = mapped_column(Boolean)
    lab_fee_paid: Mapped[str | None] = mapped_column(String(80))
    scheduler_blocked_until: Mapped[int | None] = mapped_column(BigInteger)  # chain time; after a failed action
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class CaseEvidence(Base):
    """An evidence file a party attached to a case (bytes in ``blobs``); the evidence hash goes on chain."""

    __tablename__ = "case_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    evidence_hash: Mapped[str] = mapped_column(String(66), index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    filename: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChainCursor(Base):
    """How far the indexer has read one contract's logs (block and its hash, to notice the chain going back)."""

    __tablename__ = "chain_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ChainEventRecord(Base):
    """One decoded contract event; (block, tx, log index) is unique so an event is processed once."""

    __tablename__ = "chain_events"
    __table_args__ = (
        UniqueConstraint("block_number", "tx_hash", "log_index", name="uq_chain_event"),
        Index("ix_chain_events_case", "case_id", "block_number", "log_index"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    contract: Mapped[str] = mapped_column(String(32))  # TracingCases | AgreementRegistry | Registry
    name: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[str | None] = mapped_column(String(66))
    agreement_id: Mapped[str | None] = mapped_column(String(66), index=True)
    batch_id: Mapped[str | None] = mapped_column(String(66), index=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    block_time: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    args: Mapped[str] = mapped_column(Text)  # JSON, bytes as 0x hex, ints as decimal text when > 2^53
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookSubscription(Base):
    """A party's endpoint for case/evaluation notifications; the secret keys the HMAC of every delivery."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[str | None] = mapped_column(Text)  # JSON list of event types; NULL = all
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(Base):
    """One notification to one subscription (the delivery log): exact body, attempts, last answer."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_key", name="uq_webhook_delivery"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(128))  # job lease (app/jobs.py)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# ---------------------------------------------------------------------------------------------------------------
# Relayed transactions (migration 0007): accepted with 202, their receipt awaited by the ``relay`` job queue
# ---------------------------------------------------------------------------------------------------------------


class RelayTransaction(Base):
    """A transaction a party signed and the gateway relays: the raw bytes are kept so a transaction lost in a
    chain rollback is broadcast again. ``stage`` queued (waits for the one before it in its request) | sent;
    ``status`` pending (the queue's) | mined | reverted | failed."""

    __tablename__ = "relay_transactions"
    __table_args__ = (
        Index("ix_relay_due", "status", "next_attempt_at"),
        Index("ix_relay_party_status", "party_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid
    request_id: Mapped[str] = mapped_column(String(36), index=True)  # one submit call (consecutive nonces)
    seq: Mapped[int] = mapped_column(Integer)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw: Mapped[str] = mapped_column(Text)
    signer: Mapped[str] = mapped_column(String(42))
    to_address: Mapped[str] = mapped_column(String(42))
    function: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[int] = mapped_column(BigInteger)
    follow_up: Mapped[str | None] = mapped_column(String(100))  # what the gateway does once mined
    stage: Mapped[str] = mapped_column(String(16), default="queued")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[str | None] = mapped_column(Text)  # JSON of the follow-up's outcome
    broadcasts: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


from app.portal import models as _portal_models  # noqa: E402, F401 - the portal tables (migration 0013) join Base
