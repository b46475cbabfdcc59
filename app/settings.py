"""One validated settings object, read from ``QCN_*`` environment variables (and an optional ``.env``).

``QCN_ENV=dev`` (the default) runs the embedded stack: SQLite under ``.qcn/``, the local anvil chain and its
well-known development keys. ``QCN_ENV=production`` refuses to start with a missing or development secret.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEV_ADMIN_KEY",
    "DEV_ARBITER_KEY",
    "DEV_REGISTRAR_KEY",
    "DEV_RELAYER_KEY",
    "WELL_KNOWN_DEV_KEYS",
    "Settings",
    "entropy_bits",
    "gateway_production_problems",
    "get_settings",
    "production_problems",
]

# anvil's first two development accounts (mnemonic "test test ... junk"): public knowledge, dev chains only.
DEV_ADMIN_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_RELAYER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
# anvil's development accounts 8 and 9: the registrar and arbiter keys of dev chains (separate from the admin)
DEV_REGISTRAR_KEY = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"
DEV_ARBITER_KEY = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"
_DEV_API_TOKEN = "qcn_dev_admin_token_not_for_production"  # noqa: S105 - dev default, refused in production
# the first ten accounts of the public development mnemonic "test test ... junk" that anvil and hardhat fund
# (tests/app/test_production_settings.py derives them again): anyone can sign with them
WELL_KNOWN_DEV_KEYS = frozenset(
    {
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
        "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
        "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
        "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
        "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
        "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
        "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
        "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
    }
)
_DEV_SECRETS = {DEV_ADMIN_KEY, DEV_RELAYER_KEY, DEV_REGISTRAR_KEY, DEV_ARBITER_KEY, _DEV_API_TOKEN}
MIN_TOKEN_LENGTH = 32
MIN_TOKEN_ENTROPY_BITS = 128.0


def entropy_bits(secret: str) -> float:
    """Estimated entropy: length x Shannon entropy of its character distribution (``"a" * 64`` -> 0)."""
    if not secret:
        return 0.0
    counts = [secret.count(c) for c in set(secret)]
    per_char = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts)
    return per_char * len(secret)


def _private_key_problem(name: str, value: str) -> str | None:
    raw = value.lower().removeprefix("0x")
    if len(raw) != 64 or any(c not in "0123456789abcdef" for c in raw):
        return f"{name} is not a 32-byte hex private key"
    if raw in WELL_KNOWN_DEV_KEYS:
        return f"{name} is a well-known development key (anvil/hardhat mnemonic): anyone can sign with it"
    if entropy_bits(raw) < MIN_TOKEN_ENTROPY_BITS:
        return f"{name} has too little entropy to be a generated private key"
    return None


def production_problems(settings: Settings) -> list[str]:
    """Every reason ``settings`` are unfit for production (empty list: fine). Values are never echoed."""
    problems = []
    token = settings.api_admin_token.get_secret_value()
    relayer = settings.relayer_key.get_secret_value()
    admin = settings.admin_key.get_secret_value()
    if not token or token in _DEV_SECRETS:
        problems.append("QCN_API_ADMIN_TOKEN is missing or a development default")
    elif len(token) < MIN_TOKEN_LENGTH or entropy_bits(token) < MIN_TOKEN_ENTROPY_BITS:
        problems.append(
            f"QCN_API_ADMIN_TOKEN is weak: use at least {MIN_TOKEN_LENGTH} random characters "
            f"(~{MIN_TOKEN_ENTROPY_BITS:.0f} bits; e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    operator_keys = {}
    for name in ("relayer_key", "registrar_key", "arbiter_key"):
        env = f"QCN_{name.upper()}"
        if name not in settings.model_fields_set:
            problems.append(f"{env} is missing (the default is a development key)")
        elif problem := _private_key_problem(env, getattr(settings, name).get_secret_value()):
            problems.append(problem)
        operator_keys[env] = getattr(settings, name).get_secret_value().lower().removeprefix("0x")
    if len(set(operator_keys.values())) < len(operator_keys):
        problems.append(f"{', '.join(operator_keys)} must be three different keys: operator powers are split")
    if "admin_key" in settings.model_fields_set:
        if problem := _private_key_problem("QCN_ADMIN_KEY", admin):
            problems.append(problem)
        if admin.lower().removeprefix("0x") == relayer.lower().removeprefix("0x"):
            problems.append("QCN_ADMIN_KEY equals QCN_RELAYER_KEY: the relayer must not hold the admin role")
    if token and token.lower().removeprefix("0x") in {
        relayer.lower().removeprefix("0x"),
        admin.lower().removeprefix("0x"),
    }:
        problems.append("QCN_API_ADMIN_TOKEN equals a private key")
    if settings.database_url is None or settings.database_url.startswith("sqlite"):
        problems.append("QCN_DATABASE_URL must point at the production database (PostgreSQL), not SQLite")
    if settings.chain_id is None:
        problems.append("QCN_CHAIN_ID must be set so the gateway refuses a wrong chain")
    return problems


def gateway_production_problems(settings: Settings) -> list[str]:
    """What the *gateway* process refuses on top of :func:`production_problems`.

    The consortium admin role lives in a timelock/multisig in production: the gateway must not hold its
    key. ``qcn deploy`` (a one-shot job) may still be given ``QCN_ADMIN_KEY``.
    """
    if settings.env == "production" and "admin_key" in settings.model_fields_set:
        return [
            "QCN_ADMIN_KEY is set for the gateway: in production the consortium admin role is held by a "
            "timelock/multisig, never by the gateway; unset QCN_ADMIN_KEY for the gateway and worker "
            "(only the one-shot deploy job may use it)"
        ]
    return []


#: The worker's queues (app/worker.py), in the order it starts them: what ``worker_queues`` selects from.
WORKER_QUEUES = ("anchoring", "analysis", "cases", "indexing", "scheduling", "webhooks", "relay", "reconcile")


class Settings(BaseSettings):
    # hide_input_in_errors: a rejected configuration must not print the secrets it was given
    model_config = SettingsConfigDict(env_prefix="QCN_", env_file=".env", extra="ignore", hide_input_in_errors=True)

    env: Literal["dev", "test", "production"] = "dev"
    data_dir: Path = Path(".qcn")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")

    rpc_url: str = "http://127.0.0.1:8545"
    chain_id: int | None = Field(default=None, description="expected chain id; read from the node when unset")
    deployments_dir: Path = Path("deployments")
    admin_key: SecretStr = Field(
        default=SecretStr(DEV_ADMIN_KEY), description="consortium admin key: the deploy step only, never the gateway"
    )
    relayer_key: SecretStr = SecretStr(DEV_RELAYER_KEY)
    registrar_key: SecretStr = Field(
        default=SecretStr(DEV_REGISTRAR_KEY), description="REGISTRAR_ROLE key the gateway registers parties with"
    )
    arbiter_key: SecretStr = Field(
        default=SecretStr(DEV_ARBITER_KEY), description="ARBITER_ROLE key the gateway relays rulings with"
    )
    api_admin_token: SecretStr = SecretStr(_DEV_API_TOKEN)
    settlement_token: str | None = Field(
        default=None, description="ERC-20 for deposits and penalties; unset on dev chains: a test token is deployed"
    )

    auth_lockout_failures: int = Field(default=10, ge=1, description="failed authentications before a lockout")
    auth_lockout_window_s: float = Field(default=60.0, gt=0, description="window counting failed authentications")
    auth_lockout_base_s: float = Field(default=30.0, gt=0, description="first lockout; doubles with each further one")
    auth_lockout_max_s: float = Field(default=3600.0, gt=0)

    max_upload_bytes: int = 50 * 1024 * 1024
    max_json_bytes: int = Field(default=1024 * 1024, description="bodies of non-upload routes (checked before parsing)")
    max_json_depth: int = Field(default=64, description="nesting of JSON bodies (checked before parsing)")
    trust_dir: Path | None = Field(
        default=None, description="consortium trust anchors (+ intermediates, CRLs) for lab-report signatures"
    )
    parse_max_pages: int = 500
    parse_max_rows: int = 1_000_000
    parse_max_seconds: float = 60.0
    parse_max_memory_bytes: int = 1024 * 1024 * 1024
    parse_isolated: bool = Field(
        default=True, description="parse each upload in a child process with memory and time limits (recommended)"
    )
    parse_inline_max_bytes: int = Field(
        default=256 * 1024,
        ge=0,
        description="CSV/AQDEF files up to this size (~6,000 rows) parse in the gateway process even when "
        "parse_isolated (row-by-row parsers with a time check per row; memory in proportion to the file, kept "
        "small because concurrent uploads add up); 0: every file isolated",
    )

    parse_max_children: int = Field(
        default=0,
        ge=0,
        description="child-process parses and signature checks at once per gateway process (0: the CPU count); "
        "one party holds at most half of them",
    )
    parse_slot_wait_s: float = Field(
        default=30.0, gt=0, le=600, description="how long an upload waits for a parser slot before a 503"
    )

    anchor_max_batches_per_tx: int = 50
    anchor_poll_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="fallback poll of the idle anchoring and analysis queues, and the sleep of the relay and "
        "tracing-case queues while nothing is pending: a commit of new work wakes them at once (in the process; "
        "across processes on PostgreSQL via LISTEN/NOTIFY), so this only bounds retries and new work from "
        "another process on SQLite",
    )
    anchor_coalesce_s: float = Field(
        default=0.2,
        ge=0,
        le=10,
        description="under load (batches stored while an anchoring transaction was being sent), wait this long "
        "before the next one so that it carries more batches: fewer transactions, less gas and CPU per batch. "
        "An idle gateway anchors a new batch at once; 0 sends as soon as the previous transaction is confirmed",
    )
    anchor_confirmations: int = 0
    anchor_retry_base_s: float = 0.5
    anchor_retry_max_s: float = 60.0
    reconcile_interval_s: float = 30.0
    tx_receipt_timeout_s: float = 30.0
    chain_durable_state: Path | None = Field(
        default=None, description="embedded anvil node: persist its state here before a write counts as confirmed"
    )

    # --- analysis (app/analysis) ---
    analysis_profiles: dict[str, str] = Field(
        default_factory=lambda: {"EC-LINE-1": "electrode_coating"},
        description="part number -> process profile (FMEA YAML name); unmapped parts are matched by characteristics",
    )
    analysis_fmea_dir: Path | None = Field(default=None, description="FMEA YAML directory; default models/fmea")
    analysis_min_history: int = Field(default=20, description="SPC baseline points needed per characteristic")
    analysis_history_batches: int = Field(default=200, description="earlier clean batches used as SPC history")
    analysis_spc_rules: list[int] = Field(
        default_factory=lambda: [1],
        description="Nelson rules that make a batch anomalous (all 8: ~33 % false alarms per 10-sample batch)",
    )
    analysis_model_threshold_quantile: float = 0.001
    analysis_lot_alpha: float | None = Field(
        default=3e-4,
        description="false-alarm rate per clean lot of the anomaly verdict (opens a case); None: per-point rules",
    )
    analysis_model_min_rows: int = Field(default=200, description="in-control samples before a model is trained")
    analysis_causal_min_rows: int = Field(default=120, description="per-sample rows before a causal model is learned")
    analysis_causal_refresh_every: int = Field(default=5, description="refresh the causal model every N clean batches")
    analysis_top_k: int = 5
    analysis_cf_within_pct: float = Field(default=0.8, description="counterfactual window: +/- pct of nominal")
    analysis_max_per_pass: int = 20
    analysis_max_attempts: int = 5
    analysis_retry_base_s: float = 1.0

    @model_validator(mode="after")
    def _worker_queues_are_known(self) -> Settings:
        self.selected_worker_queues  # noqa: B018 - raises ValueError naming a wrong selection
        return self

    @property
    def selected_worker_queues(self) -> tuple[str, ...]:
        """The queues a worker process runs: ``worker_queues`` (empty: all) less ``worker_exclude_queues``, in
        :data:`WORKER_QUEUES` order. A name that is no queue, or a selection that leaves none, is a ValueError."""
        wanted, excluded = (
            {n.strip() for n in text.split(",") if n.strip()}
            for text in (self.worker_queues, self.worker_exclude_queues)
        )
        if unknown := sorted((wanted | excluded) - set(WORKER_QUEUES)):
            raise ValueError(f"unknown worker queue(s) {', '.join(unknown)}: the queues are {', '.join(WORKER_QUEUES)}")
        chosen = tuple(n for n in WORKER_QUEUES if (not wanted or n in wanted) and n not in excluded)
        if not chosen:
            raise ValueError("the worker queue selection leaves no queue to run")
        return chosen

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.env != "production":
            return self
        problems = production_problems(self)
        if problems:
            raise ValueError("production settings rejected: " + "; ".join(problems))
        return self

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qcn.db').resolve()}"

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"

    @property
    def durable_state_file(self) -> Path | None:
        """Where confirmed writes persist the embedded node's state: ``QCN_CHAIN_DURABLE_STATE``, or in dev the
        embedded chain's directory when its node keeps a state file there; None for any other chain."""
        if self.chain_durable_state is not None:
            return self.chain_durable_state
        if self.env == "dev" and (self.chain_dir / "anvil-state.json").exists():
            return self.chain_dir / "anvil-state.confirmed.json"
        return None

    # --- tracing cases (app/services/cases.py, indexer.py, scheduler.py, webhooks.py) ---
    cases_auto_open: bool = Field(default=True, description="an anomalous analysis opens a tracing case on chain")
    cases_lab_fee: int = Field(default=0, ge=0, description="lab fee per case, reserved from the OEM's fee pool")
    cases_open_max_attempts: int = 8
    cases_retry_base_s: float = 1.0
    cases_signature_validity_s: int = Field(default=7 * 86_400, description="default deadline of typed data")
    indexer_confirmations: int = Field(default=0, description="blocks behind the head the indexer stays")
    indexer_reorg_depth: int = Field(default=64, description="blocks re-read when the chain went back")
    indexer_max_blocks: int = Field(default=2_000, description="block range of one eth_getLogs call")
    scheduler_evaluate_interval_s: float = Field(default=60.0, description="how often quarter ends are checked")
    webhook_timeout_s: float = Field(default=3.0, description="read timeout of one delivery (connect: 2 s)")
    webhook_max_attempts: int = 8
    webhook_retry_base_s: float = 2.0
    webhook_retry_max_s: float = 3600.0
    webhook_allow: str = Field(
        default="", description="CIDRs and host names webhooks may reach although not public (comma-separated)"
    )
    webhook_secret_key: SecretStr | None = Field(default=None, description="encrypts stored webhook secrets")
    webhook_max_subscriptions_per_party: int = Field(default=10, ge=1)
    webhook_max_concurrent_per_party: int = Field(default=2, ge=1, description="deliveries in flight per party")
    webhook_concurrency: int = Field(default=4, ge=1, description="delivery threads per worker process")

    # --- relayed transactions (app/services/relay.py): accepted with 202, awaited by the relay queue ---
    relay_rate_per_minute: float = Field(default=120.0, gt=0, description="relay submissions per party per minute")
    relay_max_pending_per_party: int = Field(default=16, ge=1, description="relayed transactions in flight")
    relay_timeout_s: float = Field(default=120.0, description="a relayed transaction without receipt then fails")
    relay_poll_s: float = Field(default=0.05, description="receipt poll interval of the relay queue")

    # --- background job queues (app/jobs.py): threads per process and time limits ---
    worker_queues: str = Field(
        default="", description="queues this worker process runs, comma-separated (empty: all of them)"
    )
    worker_exclude_queues: str = Field(
        default="", description="queues this worker process leaves to another process (comma-separated)"
    )
    analysis_concurrency: int = Field(default=1, ge=1)
    analysis_time_limit_s: float = 600.0
    analysis_claim_s: float = Field(
        default=60.0,
        gt=0,
        description="how long analysis jobs claimed together stay reserved for their worker before it starts each "
        "(it then has analysis_time_limit_s): a killed worker's unstarted jobs are free again after this",
    )
    cases_time_limit_s: float = 120.0
    indexer_interval_s: float = 0.1
    indexer_min_gap_s: float = Field(
        default=1.0,
        ge=0,
        description="pause after an indexing pass that stored events: under load one pass reads several blocks "
        "(one eth_getLogs range per contract) instead of one pass per anchoring block. Events are indexed at most "
        "this much later under load; an idle indexer still sees a new block within indexer_interval_s",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import time)."""
    return Settings()
