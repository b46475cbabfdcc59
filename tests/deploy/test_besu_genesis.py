"""Tests for scripts/besu_genesis.py: QBFT extraData, key derivation, genesis fields, first-start init."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import sys
from pathlib import Path
from types import ModuleType

import coincurve
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "besu_genesis.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("besu_genesis", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["besu_genesis"] = module
    spec.loader.exec_module(module)
    return module


bg = _load()

# Besu documentation, "Configure QBFT consensus", genesis for block header validator selection:
# the four validator addresses and the extraData Besu's docs give for them.
DOC_VALIDATORS = [
    "0x64a702e6263b7297a96638cac6ae65e6541f4169",
    "0x3923390ad55e90c237593b3b0e401f3b08a03185",
    "0xaefdb9a738c9f433e5b6b212a6d62f6370c2f692",
    "0xc7eeb9a4e00ce683cf93039b212648e01c6c6b78",
]
DOC_EXTRA_DATA = (
    "0xf87aa00000000000000000000000000000000000000000000000000000000000000000f85494"
    "64a702e6263b7297a96638cac6ae65e6541f416994"
    "3923390ad55e90c237593b3b0e401f3b08a0318594"
    "aefdb9a738c9f433e5b6b212a6d62f6370c2f69294"
    "c7eeb9a4e00ce683cf93039b212648e01c6c6b78c080c0"
)
# Same page, contract validator selection: no validators in the header.
DOC_EXTRA_DATA_CONTRACT = "0xe5a00000000000000000000000000000000000000000000000000000000000000000c0c080c0"

# Besu's documented test accounts (private network "accounts for testing"): key -> address.
BESU_TEST_ACCOUNTS = {
    "8f2a55949038a9610f50fb23b5883af3b4ecb3c3bb792cbcefbd1542c692be63": "0xFE3B557E8Fb62b89F4916B721be55cEb828dBd73",
    "c87509a1c067bbde78beb793e6fa76530b6382a4c0241e5e4a9ec0a0f44dc0d3": "0x627306090abaB3A6e1400e9345bC60c78a8BEf57",
    "ae6ae8e5ccbfb04590405997ee2d52d2b330726137b875053c36d94e974d162f": "0xf17f52151EbEF6C7334FAD080c5704D77216b732",
}

HOSTS = ["172.28.77.11", "172.28.77.12", "172.28.77.13", "172.28.77.14"]
ENODE_RE = re.compile(r"^enode://([0-9a-f]{128})@([0-9.]+):(\d+)$")


# --- extraData ---------------------------------------------------------------------------------


def test_extra_data_matches_besu_documentation_byte_for_byte() -> None:
    assert bg.encode_qbft_extra_data(DOC_VALIDATORS) == DOC_EXTRA_DATA


def test_documented_extra_data_decodes_to_its_validators() -> None:
    decoded = bg.decode_qbft_extra_data(DOC_EXTRA_DATA)
    assert decoded.vanity == b"\x00" * 32
    assert [v.lower() for v in decoded.validators] == DOC_VALIDATORS
    assert decoded.votes == ()
    assert decoded.round == 0
    assert decoded.seals == ()


def test_contract_selection_extra_data_has_no_validators() -> None:
    decoded = bg.decode_qbft_extra_data(DOC_EXTRA_DATA_CONTRACT)
    assert decoded.validators == ()
    assert decoded.round == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=20, max_size=20), min_size=1, max_size=12, unique=True))
def test_extra_data_round_trips_any_validator_set(raw: list[bytes]) -> None:
    addresses = ["0x" + r.hex() for r in raw]
    decoded = bg.decode_qbft_extra_data(bg.encode_qbft_extra_data(addresses))
    assert [v.lower() for v in decoded.validators] == addresses
    assert (decoded.round, decoded.votes, decoded.seals) == (0, (), ())


@pytest.mark.parametrize(
    ("validators", "field"),
    [
        ([], "validators"),
        (["0x1234"], "validator address"),
        ([DOC_VALIDATORS[0], DOC_VALIDATORS[0].upper().replace("0X", "0x")], "validators"),
    ],
)
def test_extra_data_rejects_bad_validator_lists(validators: list[str], field: str) -> None:
    with pytest.raises(bg.InvalidConfigError) as info:
        bg.encode_qbft_extra_data(validators)
    assert info.value.field == field


def test_decode_rejects_non_rlp_extra_data() -> None:
    with pytest.raises(bg.InvalidConfigError, match="extraData"):
        bg.decode_qbft_extra_data("0xzz")


# --- keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("private", "address"), BESU_TEST_ACCOUNTS.items())
def test_address_derived_from_key_matches_besu_test_accounts(private: str, address: str) -> None:
    assert bg.node_key_from_hex(private).address == address
    assert bg.node_key_from_hex("0x" + private + "\n").address == address


def test_public_key_and_enode_agree_with_an_independent_secp256k1_library() -> None:
    key = bg.generate_node_key()
    expected = coincurve.PrivateKey(key.private_key).public_key.format(compressed=False)[1:]
    assert key.public_key == expected
    match = ENODE_RE.match(key.enode("10.0.0.5", 30303))
    assert match is not None
    assert match.groups() == (expected.hex(), "10.0.0.5", "30303")
    assert key.private_hex() == "0x" + key.private_key.hex()


def test_generated_keys_differ() -> None:
    assert len({bg.generate_node_key().address for _ in range(8)}) == 8


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0x1234", "64 hex digits"),
        ("zz" * 32, "not hexadecimal"),
        ("00" * 32, "secp256k1"),
        ("ff" * 32, "secp256k1"),
    ],
)
def test_malformed_keys_are_rejected_without_echoing_them(value: str, reason: str) -> None:
    with pytest.raises(bg.InvalidKeyError) as info:
        bg.node_key_from_hex(value, source="$QCN_ADMIN_KEY")
    assert reason in str(info.value)
    assert "$QCN_ADMIN_KEY" in str(info.value)
    assert value not in str(info.value)


# --- genesis -----------------------------------------------------------------------------------


def test_genesis_has_the_fields_besu_needs_for_a_zero_fee_qbft_chain() -> None:
    genesis = bg.build_genesis(
        chain_id=2026, validators=DOC_VALIDATORS, alloc={BESU_TEST_ACCOUNTS[next(iter(BESU_TEST_ACCOUNTS))]: 5}
    )
    config = genesis["config"]
    assert config["chainId"] == 2026
    assert config["qbft"] == {"blockperiodseconds": 2, "epochlength": 30000, "requesttimeoutseconds": 4}
    assert config["zeroBaseFee"] is True
    assert config["londonBlock"] == 0 and config["berlinBlock"] == 0
    assert config["shanghaiTime"] == 0 and config["cancunTime"] == 0
    # Prague on QBFT needs pre-deployed system contracts; not enabled (see docs/production.md).
    assert "pragueTime" not in config
    assert "petersburgBlock" not in config  # Besu rejects it together with constantinopleFixBlock
    assert genesis["extraData"] == DOC_EXTRA_DATA
    assert genesis["mixHash"] == bg.MIX_HASH_BFT
    assert bytes.fromhex(bg.MIX_HASH_BFT[2:]).endswith(b"byzantine fault tolerance")
    assert genesis["difficulty"] == "0x1"
    assert genesis["baseFeePerGas"] == "0x0"
    assert int(genesis["gasLimit"], 16) == bg.DEFAULT_GAS_LIMIT
    assert genesis["alloc"] == {"fe3b557e8fb62b89f4916b721be55ceb828dbd73": {"balance": "0x5"}}
    json.dumps(genesis)  # JSON-serialisable as written


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"chain_id": 0}, "chain id"),
        ({"block_period_seconds": 0}, "block period"),
        ({"block_period_seconds": 4, "request_timeout_seconds": 4}, "request timeout"),
        ({"gas_limit": 10}, "gas limit"),
        ({"alloc": {"0xnothex": 1}}, "alloc address"),
        ({"alloc": {DOC_VALIDATORS[0]: -1}}, "alloc balance"),
    ],
)
def test_genesis_rejects_values_besu_would_not_run(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"chain_id": 1337, "validators": DOC_VALIDATORS, **kwargs}
    with pytest.raises(bg.InvalidConfigError) as info:
        bg.build_genesis(**args)
    assert info.value.field == field


# --- first-start initialisation ----------------------------------------------------------------


def test_init_network_writes_keys_genesis_and_static_nodes(tmp_path: Path) -> None:
    funded = "0x627306090abaB3A6e1400e9345bC60c78a8BEf57"
    created, network = bg.init_network(tmp_path, chain_id=4242, hosts=HOSTS, fund={funded: 7})
    assert created is True
    genesis = json.loads((tmp_path / "genesis.json").read_text())
    assert genesis["config"]["chainId"] == 4242
    assert genesis["alloc"] == {funded.lower()[2:]: {"balance": "0x7"}}

    key_addresses = []
    enodes = {}
    for index in range(1, 5):
        node_dir = tmp_path / f"node-{index}"
        key = bg.load_node_key(node_dir / "key")
        assert stat.S_IMODE((node_dir / "key").stat().st_mode) == 0o600
        assert (node_dir / "key").read_text().startswith("0x")
        assert (node_dir / "address").read_text() == key.address
        assert (node_dir / "key.pub").read_text() == "0x" + key.public_key.hex()
        key_addresses.append(key.address)
        enodes[index] = key.enode(HOSTS[index - 1], 30303)

    # The validators in the genesis are exactly the addresses of the generated keys.
    assert list(bg.decode_qbft_extra_data(genesis["extraData"]).validators) == key_addresses
    assert [v["address"] for v in network["validators"]] == key_addresses
    assert [v["enode"] for v in network["validators"]] == list(enodes.values())
    assert network["funded"] == [funded]

    for index in range(1, 5):
        peers = json.loads((tmp_path / f"node-{index}" / "static-nodes.json").read_text())
        assert peers == [enode for other, enode in enodes.items() if other != index]


def test_second_run_leaves_the_network_untouched(tmp_path: Path) -> None:
    bg.init_network(tmp_path, chain_id=1337, hosts=HOSTS)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    created, network = bg.init_network(tmp_path, chain_id=1337, hosts=HOSTS)
    assert created is False
    assert network == json.loads((tmp_path / "network.json").read_text())
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_existing_network_of_another_chain_is_refused(tmp_path: Path) -> None:
    bg.init_network(tmp_path, chain_id=1337, hosts=HOSTS)
    with pytest.raises(bg.NetworkExistsError, match="chain id 1337"):
        bg.init_network(tmp_path, chain_id=7, hosts=HOSTS)


def test_interrupted_run_is_not_mixed_with_new_keys(tmp_path: Path) -> None:
    (tmp_path / "node-2").mkdir()
    with pytest.raises(bg.NetworkExistsError) as info:
        bg.init_network(tmp_path, chain_id=1337, hosts=HOSTS)
    assert info.value.path == tmp_path / "node-2"
    assert not (tmp_path / "genesis.json").exists()


@pytest.mark.parametrize(
    ("hosts", "port", "field"),
    [([], 30303, "validator count"), (["bad host!"], 30303, "host"), (HOSTS, 0, "p2p port")],
)
def test_init_network_rejects_bad_topology(tmp_path: Path, hosts: list[str], port: int, field: str) -> None:
    with pytest.raises(bg.InvalidConfigError) as info:
        bg.init_network(tmp_path, chain_id=1337, hosts=hosts, p2p_port=port)
    assert info.value.field == field


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_owner_option_hands_the_files_to_the_besu_user(tmp_path: Path) -> None:
    bg.init_network(tmp_path, chain_id=1337, hosts=HOSTS[:1], owner=(1000, 1000))
    for path in [tmp_path / "genesis.json", tmp_path / "node-1", tmp_path / "node-1" / "key"]:
        assert (path.stat().st_uid, path.stat().st_gid) == (1000, 1000)


# --- command line ------------------------------------------------------------------------------


def test_cli_funds_addresses_of_keys_named_by_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    admin_key, admin_address = next(iter(BESU_TEST_ACCOUNTS.items()))
    monkeypatch.setenv("TEST_ADMIN_KEY", "0x" + admin_key)
    argv = ["--out", str(tmp_path), "--chain-id", "99", "--fund-key-env", "TEST_ADMIN_KEY", "--fund-wei", "12"]
    argv += [arg for host in HOSTS for arg in ("--host", host)]
    assert bg.main(argv) == 0
    genesis = json.loads((tmp_path / "genesis.json").read_text())
    assert genesis["alloc"] == {admin_address.lower()[2:]: {"balance": "0xc"}}
    out = capsys.readouterr().out
    assert "generated chain 99" in out
    assert admin_key not in out
    for node in json.loads((tmp_path / "network.json").read_text())["validators"]:
        assert node["address"] in out

    assert bg.main(argv) == 0
    assert "already initialised" in capsys.readouterr().out


def test_cli_names_a_missing_key_variable_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TEST_MISSING_KEY", raising=False)
    argv = ["--out", str(tmp_path / "net"), "--chain-id", "99", "--host", "10.0.0.1"]
    assert bg.main([*argv, "--fund-key-env", "TEST_MISSING_KEY"]) == 2
    assert "TEST_MISSING_KEY" in capsys.readouterr().err
    assert not (tmp_path / "net").exists()
