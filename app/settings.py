"""One validated settings object, read from ``QCN_*`` environment variables (and an optional ``.env``).

``QCN_ENV=dev`` (the default) runs the embedded stack: SQLite under ``.qcn/``, the local anvil chain and its
well-known development keys. ``QCN_ENV=production`` refuses to start with a missing or development secret.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEV_ADMIN_KEY", "DEV_ARBITER_KEY", "DEV_REGISTRAR_KEY", "DEV_RELAYER_KEY", "Settings", "get_settings"]

# anvil's first two development accounts (mnemonic "test test ... junk"): public knowledge, dev chains only.
DEV_ADMIN_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_RELAYER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
# anvil's development accounts 8 and 9: the registrar and arbiter keys of dev chains (separate from the admin)
DEV_REGISTRAR_KEY = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"
DEV_ARBITER_KEY = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"
_DEV_API_TOKEN = "qcn_dev_admin_token_not_for_production"  # noqa: S105 - dev default, refused in production
_DEV_SECRETS = {DEV_ADMIN_KEY, DEV_RELAYER_KEY, DEV_REGISTRAR_KEY, DEV_ARBITER_KEY, _DEV_API_TOKEN}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QCN_", env_file=".env", extra="ignore")

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

    max_upload_bytes: int = 50 * 1024 * 1024
    parse_max_pages: int = 500
    parse_max_rows: int = 1_000_000
    parse_max_seconds: float = 60.0
    parse_max_memory_bytes: int = 1024 * 1024 * 1024
    parse_isolated: bool = Field(
        default=True, description="parse each upload in a child process with memory and time limits (recommended)"
    )

    anchor_max_batches_per_tx: int = 50
    anchor_poll_interval_s: float = 0.05
    anchor_confirmations: int = 0
    anchor_retry_base_s: float = 0.5
    anchor_retry_max_s: float = 60.0
    reconcile_interval_s: float = 30.0
    tx_receipt_timeout_s: float = 30.0

    # --- Step 4 analysis (app/analysis) ---
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
    analysis_model_min_rows: int = Field(default=200, description="in-control samples before a model is trained")
    analysis_causal_min_rows: int = Field(default=120, description="per-sample rows before a causal model is learned")
    analysis_causal_alpha: float = Field(default=0.05, description="PC significance level (small histories: lenient)")
    analysis_causal_min_effect: float = Field(default=0.0, description="smallest partial correlation kept as an edge")
    analysis_causal_refresh_every: int = Field(default=5, description="refresh the causal model every N clean batches")
    analysis_top_k: int = 5
    analysis_cf_within_pct: float = Field(default=0.8, description="counterfactual window: +/- pct of nominal")
    analysis_max_per_pass: int = 20
    analysis_max_attempts: int = 5
    analysis_retry_base_s: float = 1.0

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        for name in ("relayer_key", "registrar_key", "arbiter_key", "api_admin_token"):
            value = getattr(self, name).get_secret_value()
            if not value or value in _DEV_SECRETS:
                problems.append(f"QCN_{name.upper()} is missing or a development default")
        if self.database_url is None or self.database_url.startswith("sqlite"):
            problems.append("QCN_DATABASE_URL must point at the production database (PostgreSQL)")
        if self.chain_id is None:
            problems.append("QCN_CHAIN_ID must be set so the gateway refuses a wrong chain")
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

    # --- Step 5 tracing cases (app/services/cases.py, indexer.py, scheduler.py, webhooks.py) ---
    cases_auto_open: bool = Field(default=True, description="an anomalous analysis opens a tracing case on chain")
    cases_lab_fee: int = Field(default=0, ge=0, description="lab fee per case, reserved from the OEM's fee pool")
    cases_open_max_attempts: int = 8
    cases_retry_base_s: float = 1.0
    cases_signature_validity_s: int = Field(default=7 * 86_400, description="default deadline of typed data")
    indexer_confirmations: int = Field(default=0, description="blocks behind the head the indexer stays")
    indexer_reorg_depth: int = Field(default=64, description="blocks re-read when the chain went back")
    indexer_max_blocks: int = Field(default=2_000, description="block range of one eth_getLogs call")
    scheduler_evaluate_interval_s: float = Field(default=60.0, description="how often quarter ends are checked")
    webhook_timeout_s: float = 5.0
    webhook_max_attempts: int = 8
    webhook_retry_base_s: float = 2.0
    webhook_retry_max_s: float = 3600.0
    webhook_max_per_pass: int = 50


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import time)."""
    return Settings()
