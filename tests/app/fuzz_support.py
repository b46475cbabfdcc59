"""Schemathesis against the gateway's own OpenAPI document (no tests here; used by the CI test and the bench).

Every operation gets ``max_examples`` generated requests (valid and boundary values drawn from its schema),
sent through the ASGI app with a key. A request fails when the answer is a 5xx or when the body does not
match the response schema the operation declares for that status (errors: the one ``ErrorBody``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance


@dataclass
class FuzzReport:
    """What a run did: operations, requests sent, failures (operation -> message) and seconds taken."""

    operations: int = 0
    requests: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def fuzz_app(
    app: Any,
    headers: dict[str, str],
    *,
    max_examples: int,
    time_limit_s: float,
    seed: int = 0,
    skip: frozenset[str] = frozenset(),
) -> FuzzReport:
    """Run the bounded fuzz; stops starting new operations once ``time_limit_s`` has passed."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    report = FuzzReport()
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        name = f"{operation.method.upper()} {operation.path}"
        if name in skip:
            continue
        if time.monotonic() - started > time_limit_s:
            report.failures["(time limit)"] = f"stopped before {name}: over {time_limit_s:.0f} s"
            break
        report.operations += 1

        @hypothesis.settings(
            max_examples=max_examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.seed(seed)
        @hypothesis.given(case=operation.as_strategy())
        def run(case: Any) -> None:
            report.requests += 1
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # one failure per operation is enough to report it
            report.failures[name] = str(exc)[:2000]
    report.seconds = time.monotonic() - started
    return report
