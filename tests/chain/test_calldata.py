"""``chain.tx.calldata`` encodes with web3's ABI codec directly (no normalizer pass): for every function of every
contract we ship it gives the very bytes web3's contract encoder gives, and arguments that encoder would convert
or refuse (a hex string for bytes32, a lower-case address, short bytes) still go through it."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hexbytes import HexBytes
from web3 import Web3

import chain.tx
from chain.tx import calldata

ARTIFACTS = Path(__file__).resolve().parents[2] / "contracts" / "artifacts"
ADDRESS = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def _value(param: dict[str, Any], rnd: random.Random) -> Any:
    kind = param["type"]
    if kind.endswith("]"):
        inner, size = kind[: kind.rindex("[")], kind[kind.rindex("[") + 1 : -1]
        count = int(size) if size else rnd.randint(0, 3)
        return [_value({**param, "type": inner}, rnd) for _ in range(count)]
    if kind == "tuple":
        return tuple(_value(c, rnd) for c in param["components"])
    if kind == "address":
        return Web3.to_checksum_address(rnd.randbytes(20))
    if kind == "bool":
        return rnd.random() < 0.5
    if kind == "string":
        return "lot " + str(rnd.randint(0, 99))
    if kind == "bytes":
        return rnd.randbytes(rnd.randint(0, 40))
    if kind.startswith("bytes"):
        return rnd.randbytes(int(kind[5:]))
    bits = int(kind.lstrip("uint") or 256)
    return rnd.randint(0, 2**bits - 1) if kind.startswith("u") else rnd.randint(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _functions() -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    out = []
    for path in sorted(ARTIFACTS.glob("*.json")):
        abi = json.loads(path.read_text())["abi"]
        out += [(path.stem, item, abi) for item in abi if item["type"] == "function"]
    return out


def test_every_function_of_every_contract_encodes_as_web3_does(monkeypatch: pytest.MonkeyPatch) -> None:
    w3 = Web3()
    rnd = random.Random(5)
    checked = 0
    slow: list[str] = []
    encoder = chain.tx._encoder
    monkeypatch.setattr(chain.tx, "_encoder", lambda call: slow.append(call.fn_name) or encoder(call))
    texts = 0
    for name, fn, abi in _functions():
        contract = w3.eth.contract(address=ADDRESS, abi=abi)
        types = ",".join(p["type"] if p["type"] != "tuple" else "tuple" for p in fn["inputs"])
        for _ in range(3):
            args = [_value(p, rnd) for p in fn["inputs"]]
            call = contract.get_function_by_signature(f"{fn['name']}({_sig(fn['inputs'])})")(*args)
            expected = bytes(HexBytes(contract.encode_abi(call.abi_element_identifier, args=args)))
            assert calldata(call) == expected, (name, fn["name"], types)
            checked += 1
            texts += "string" in types
    assert checked > 300
    assert len(slow) == texts  # only calls with a text argument took web3's contract encoder


def _sig(inputs: list[dict[str, Any]]) -> str:
    parts = []
    for p in inputs:
        kind = p["type"]
        if kind.startswith("tuple"):
            kind = f"({_sig(p['components'])})" + kind[len("tuple") :]
        parts.append(kind)
    return ",".join(parts)


@pytest.mark.parametrize(
    ("batch_id", "supplier"),
    [
        ("0x" + "11" * 32, ADDRESS),  # a hex string for bytes32: web3 converts it
        (b"\x11" * 32, ADDRESS.lower()),  # a lower-case address: web3 refuses it
        (b"\x11" * 31, ADDRESS),  # 31 bytes for bytes32: web3 refuses it
    ],
)
def test_arguments_web3_converts_or_refuses_take_its_encoder(batch_id: Any, supplier: str) -> None:
    abi = json.loads((ARTIFACTS / "ConsortiumRegistry.json").read_text())["abi"]
    contract = Web3().eth.contract(address=ADDRESS, abi=abi)
    args = (supplier, b"\x00" * 32, (batch_id, b"\x22" * 32, b"\x00" * 32, 1000, 1))
    try:
        expected: bytes | type[Exception] = bytes(HexBytes(contract.encode_abi("anchor", args=args)))
    except Exception as exc:  # what web3 raises for it
        expected = type(exc)
    if isinstance(expected, bytes):
        assert calldata(contract.functions.anchor(*args)) == expected
    else:
        with pytest.raises(expected):
            calldata(contract.functions.anchor(*args))
