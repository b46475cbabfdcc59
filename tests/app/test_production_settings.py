"""``QCN_ENV=production`` refuses weak, equal and well-known secrets, SQLite, and the admin key in the gateway."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from eth_account import Account

from app.main import create_app
from app.settings import WELL_KNOWN_DEV_KEYS, Settings, entropy_bits

PG = "postgresql+psycopg://qcn:pw@db:5432/qcn"


def _good(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "env": "production",
        "database_url": PG,
        "chain_id": 1337,
        "relayer_key": "0x" + secrets.token_hex(32),
        "registrar_key": "0x" + secrets.token_hex(32),
        "arbiter_key": "0x" + secrets.token_hex(32),
        "api_admin_token": secrets.token_urlsafe(32),
    }
    base.update(changes)
    return base


def _problems(**changes: Any) -> str:
    with pytest.raises(ValueError, match="production settings rejected") as info:
        Settings(**_good(**changes))
    return str(info.value)


def test_a_sound_production_configuration_is_accepted() -> None:
    settings = Settings(**_good())
    assert settings.env == "production"


def test_the_well_known_keys_are_the_development_mnemonic() -> None:
    Account.enable_unaudited_hdwallet_features()
    mnemonic = "test test test test test test test test test test test junk"
    derived = {bytes(Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}").key).hex() for i in range(10)}
    assert derived == WELL_KNOWN_DEV_KEYS


@pytest.mark.parametrize("token", ["a", "x" * 64, "abababababababababababababababababab", "Passw0rd!" * 3])
def test_weak_admin_tokens_are_refused(token: str) -> None:
    assert "QCN_API_ADMIN_TOKEN is weak" in _problems(api_admin_token=token)


def test_entropy_estimate() -> None:
    assert entropy_bits("a") == 0 and entropy_bits("a" * 100) == 0
    assert entropy_bits(secrets.token_urlsafe(32)) > 128
    assert entropy_bits(secrets.token_hex(32)) > 128


def test_development_keys_and_equal_keys_are_refused() -> None:
    for key in sorted(WELL_KNOWN_DEV_KEYS)[:3]:
        assert "well-known development key" in _problems(relayer_key="0x" + key)
        assert "well-known development key" in _problems(admin_key=key)
    same = "0x" + secrets.token_hex(32)
    assert "equals QCN_RELAYER_KEY" in _problems(relayer_key=same, admin_key=same)
    assert "equals a private key" in _problems(relayer_key=same, api_admin_token=same)
    assert "not a 32-byte hex private key" in _problems(relayer_key="0x1234")


@pytest.mark.parametrize("name", ["relayer_key", "registrar_key", "arbiter_key"])
def test_a_missing_operator_key_is_refused(name: str) -> None:
    values = _good()
    del values[name]
    with pytest.raises(ValueError, match=f"QCN_{name.upper()} is missing"):
        Settings(**values)


def test_operator_powers_need_three_different_keys() -> None:
    same = "0x" + secrets.token_hex(32)
    assert "must be three different keys" in _problems(registrar_key=same, arbiter_key=same)
    assert "well-known development key" in _problems(arbiter_key="0x" + sorted(WELL_KNOWN_DEV_KEYS)[0])


def test_sqlite_is_refused_in_production() -> None:
    assert "not SQLite" in _problems(database_url="sqlite:///x.db")
    values = _good()
    del values["database_url"]
    with pytest.raises(ValueError, match="PostgreSQL"):
        Settings(**values)


def test_the_gateway_refuses_to_hold_the_consortium_admin_key() -> None:
    settings = Settings(**_good(admin_key="0x" + secrets.token_hex(32)))  # fine for the deploy job
    with pytest.raises(ValueError, match=r"QCN_ADMIN_KEY is set for the gateway.*timelock/multisig"):
        create_app(settings)


def test_secrets_are_never_echoed() -> None:
    token = "weak-but-secret-" + "z" * 3
    assert token not in _problems(api_admin_token=token)
