"""Schemathesis against the gateway's own OpenAPI document: ``python scripts/fuzz_api.py`` (part of ``make bench``).

The CI test (tests/app/test_api_fuzz.py) runs :func:`fuzz_app` bounded; this script runs it longer on a fresh
anvil node and SQLite (``--pg URL``: PostgreSQL) as supplier and as admin, and writes
``bench/results/fuzz_api.json``.

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


def main(argv: list[str] | None = None) -> int:
    """Long run: many examples per operation, as supplier and as admin; exit 1 on any failure."""
    import argparse
    import json
    import sys
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from fastapi.testclient import TestClient

    from app.chainctx import deploy_contracts
    from app.main import create_app
    from app.settings import Settings
    from chain.node import LocalNode
    from tests.conftest import free_port

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=1200.0, help="seconds per role")
    parser.add_argument("--pg", default=None, help="PostgreSQL URL of an empty database (default: SQLite)")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {"max_examples": args.max_examples, "database": "postgresql" if args.pg else "sqlite"}
    with tempfile.TemporaryDirectory() as tmp:
        node = LocalNode(Path(tmp) / "chain", port=free_port())
        node.start()
        try:
            settings = Settings(
                env="test",
                data_dir=Path(tmp) / "data",
                database_url=args.pg or f"sqlite:///{Path(tmp) / 'qcn.db'}",
                rpc_url=node.url,
                deployments_dir=Path(tmp) / "deployments",
                parse_isolated=False,
            )
            deploy_contracts(settings)
            with TestClient(create_app(settings, embedded_worker=False)) as client:
                admin = {"Authorization": f"Bearer {settings.api_admin_token.get_secret_value()}"}
                supplier = client.post(
                    "/v1/parties",
                    json={
                        "name": "fuzz supplier",
                        "kind": "supplier",
                        "account": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
                    },
                    headers=admin,
                ).json()["api_key"]
                for who, headers in (("supplier", {"Authorization": f"Bearer {supplier}"}), ("admin", admin)):
                    report = fuzz_app(client.app, headers, max_examples=args.max_examples, time_limit_s=args.time_limit)
                    out[who] = {
                        "operations": report.operations,
                        "requests": report.requests,
                        "failures": report.failures,
                        "seconds": round(report.seconds, 1),
                    }
                    print(
                        f"{who}: {report.operations} operations, {report.requests} requests, "
                        f"{len(report.failures)} failures, {report.seconds:.0f} s"
                    )
        finally:
            node.stop()
    out["fuzz_api_failures"] = sum(len(out[w]["failures"]) for w in ("supplier", "admin"))
    results = root / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "fuzz_api.json").write_text(json.dumps(out, indent=2) + "\n")
    return 1 if out["fuzz_api_failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
