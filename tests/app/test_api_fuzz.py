"""Schemathesis in CI, bounded: every operation of the OpenAPI document, with a key, on SQLite and PostgreSQL;
no 5xx and no response that violates its declared schema. The longer run is ``scripts/fuzz_api.py``."""

from __future__ import annotations

import pytest

from scripts.fuzz_api import fuzz_app
from tests.app.conftest import Gateway

pytestmark = [pytest.mark.node, pytest.mark.slow]

MAX_EXAMPLES = 12
TIME_LIMIT_S = 150.0


@pytest.mark.parametrize("who", ["supplier", "admin"])
def test_no_5xx_and_no_schema_violation(gateway: Gateway, who: str) -> None:
    report = fuzz_app(gateway.client.app, gateway.auth(who), max_examples=MAX_EXAMPLES, time_limit_s=TIME_LIMIT_S)
    print(f"schemathesis as {who}: {report.operations} operations, {report.requests} requests, {report.seconds:.1f} s")
    assert report.operations >= 60 and report.requests >= report.operations
    assert not report.failures, "\n\n".join(f"{op}:\n{msg}" for op, msg in report.failures.items())
