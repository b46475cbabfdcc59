"""Inputs that used to end in a 500 (on PostgreSQL in particular) get a 4xx naming the problem; file names
are stored as safe base names. Each runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from app.inputs import safe_filename
from tests.app.conftest import CSV_OK, Gateway

pytestmark = pytest.mark.node


def _problem(resp: object) -> str:
    body = resp.json()  # type: ignore[attr-defined]
    return str(body["error"]["message"])


ODD_PATHS = [
    "/v1/cases?offset=22336322977084022456320",
    "/v1/batches?offset=99999999999999999999",
    "/v1/cases/%C2%B3",
    "/v1/batches/%C2%B3",
    "/v1/agreements/%C2%B3",
    "/v1/templates/99999999999",
    "/v1/webhooks/99999999999/deliveries",
    "/v1/batches/" + "a" * 300,
    "/v1/cases?state=%00",
]


def test_out_of_range_and_odd_references_are_422(gateway: Gateway) -> None:
    for path in ODD_PATHS:
        resp = gateway.client.get(path, headers=gateway.auth("admin"))
        assert resp.status_code == 422, (path, resp.text)
        assert resp.json()["error"]["code"] == "invalid_request"


def test_a_long_or_traversing_file_name_is_stored_as_a_safe_base_name(gateway: Gateway) -> None:
    long_name = "x" * 300 + ".csv"
    resp = gateway.upload("supplier", CSV_OK, name=long_name, key="LONG")
    assert resp.status_code == 201, resp.text
    assert resp.json()["files"][0]["filename"] == "x" * 196 + ".csv"
    csv2 = CSV_OK.replace("12.31", "12.32")
    resp = gateway.upload("supplier", csv2, name="../../etc/passwd.csv", key="TRAVERSE")
    assert resp.status_code == 201, resp.text
    assert resp.json()["files"][0]["filename"] == "passwd.csv"
    listed = gateway.client.get(f"/v1/batches/{resp.json()['id']}", headers=gateway.auth("supplier")).json()
    assert listed["files"][0]["filename"] == "passwd.csv"


def test_safe_filename() -> None:
    assert safe_filename("C:\\Users\\x\\report.pdf") == "report.pdf"
    assert safe_filename("../..") is None and safe_filename("") is None and safe_filename(None) is None
    assert safe_filename("a\x00b\nc.csv") == "a_b_c.csv"
    assert safe_filename(".hidden.csv") == "hidden.csv"
    assert len(safe_filename("y" * 1000) or "") == 200


def test_a_lot_id_longer_than_stored_is_422_naming_it(gateway: Gateway) -> None:
    lot = "L" * 150
    csv = f"lot_id,sample_id,characteristic,value,unit\n{lot},S1,thickness,12.3,um\n"
    resp = gateway.upload("supplier", csv, key="LONG-LOT")
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == "lot_id" and "150 characters" in _problem(resp)
    assert gateway.client.get("/v1/batches", headers=gateway.auth("supplier")).json() == []


NUL_BODIES = [
    {"url": "https://example.org/\u0000hook"},
    {"url": "https://example.org/hook", "secret": "abc\u0000defghijklmnopq"},
    {"url": "https://example.org/hook", "events": ["case.opened\u0000"]},
]


def test_nul_in_webhook_fields_is_422(gateway: Gateway) -> None:
    for body in NUL_BODIES:
        resp = gateway.client.post("/v1/webhooks", json=body, headers=gateway.auth("oem"))
        assert resp.status_code == 422, resp.text
        assert "NUL" in _problem(resp)
    assert gateway.client.get("/v1/webhooks", headers=gateway.auth("oem")).json() == []


BOUNDED_BODIES = [
    ("/v1/agreements/1/transactions", {"raw": ["0x"]}, "raw"),
    ("/v1/agreements/1/transactions", {"raw": [""]}, "raw"),
    ("/v1/agreements/1/transactions", {"raw": []}, "raw"),
    ("/v1/cases/1/response", {"raw": "0x"}, "raw"),
    ("/v1/agreements/1/deposits/prepare", {"amount": 2**256}, "amount"),
    ("/v1/agreements/1/deposits/prepare", {"amount": 0}, "amount"),
    ("/v1/agreements", {"template": 2**40, "supplier_id": 1}, "template"),
]


def test_relay_and_amount_bounds(gateway: Gateway) -> None:
    for path, body, field in BOUNDED_BODIES:
        resp = gateway.client.post(path, json=body, headers=gateway.auth("supplier"))
        assert resp.status_code == 422, (path, body, resp.text)
        assert field in _problem(resp)


def test_nan_and_infinity_are_refused_in_counterfactual_queries(gateway: Gateway) -> None:
    batch = gateway.upload("supplier", CSV_OK).json()["id"]
    for body in (
        f'{{"variable": "v", "characteristic": "thickness", "{field}": {literal}}}'
        for literal in ("NaN", "Infinity", "-Infinity")
        for field in ("value", "within_pct")
    ):
        resp = gateway.client.post(
            f"/v1/batches/{batch}/counterfactual",
            content=body,
            headers=gateway.auth("supplier") | {"content-type": "application/json"},
        )
        assert resp.status_code == 422, resp.text
        assert "finite" in _problem(resp)
