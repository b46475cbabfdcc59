"""An identifier longer than its column (or holding NUL) is a 422 naming the field, on SQLite and PostgreSQL,
and nothing is stored; at the limit it is stored and read back."""

from __future__ import annotations

import pytest

from tests.app.conftest import Gateway

pytestmark = pytest.mark.node


def _csv(sample: str, characteristic: str = "thickness", unit: str = "um") -> str:
    return (
        f"sample_id,characteristic,value,unit\n{sample},{characteristic},12.3,{unit}\nS2,{characteristic},12.4,{unit}\n"
    )


@pytest.mark.parametrize(
    ("content", "field", "allowed"),
    [
        (_csv("S" * 201), "sample_id", 200),
        (_csv("S1", characteristic="c" * 201), "characteristic", 200),
        (_csv("S1", unit="u" * 33), "unit", 32),
    ],
)
def test_over_long_identifiers_are_422_naming_the_field(
    gateway: Gateway, content: str, field: str, allowed: int
) -> None:
    resp = gateway.upload("supplier", content)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["field"] == field and error["allowed"] == allowed and field in error["message"]
    assert gateway.client.get("/v1/batches", headers=gateway.auth("supplier")).json() == []


def test_identifiers_at_the_limit_are_stored(gateway: Gateway) -> None:
    resp = gateway.upload("supplier", _csv("S" * 200, characteristic="c" * 200, unit="u" * 32))
    assert resp.status_code == 201, resp.text
    records = gateway.client.get(f"/v1/batches/{resp.json()['id']}/records", headers=gateway.auth("supplier")).json()
    assert records[0]["record"]["sample"] == "S" * 200 and records[0]["record"]["unit"] == "u" * 32
