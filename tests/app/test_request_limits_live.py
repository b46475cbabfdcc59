"""A real uvicorn gateway process under hostile bodies, and durable-before-acknowledged uploads.

No chain is needed: uploads are stored with the node down and anchor later. The supplier and its key are put
into the database before the process starts.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from app.auth import issue_key
from app.db import Party, make_engine, upgrade
from tests.app.conftest import ACCOUNTS
from tests.conftest import ROOT, free_port


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the gateway process exited during start-up"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp_path = tmp_path_factory.mktemp("live")
    db_url = f"sqlite:///{tmp_path / 'qcn.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    with Session(engine) as s, s.begin():
        party = Party(name="supplier ltd", kind="supplier", account=ACCOUNTS["supplier"])
        s.add(party)
        s.flush()
        key = issue_key(session=s, party=party)
    engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "QCN_ENV": "test",
        "QCN_DATA_DIR": str(tmp_path / "data"),
        "QCN_DATABASE_URL": db_url,
        "QCN_RPC_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: the chain is down
        "QCN_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
        "QCN_EMBEDDED_WORKER": "0",
    }
    log = (tmp_path / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app_from_env", "--factory", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/health", proc)
        yield {"base": base, "port": port, "key": key, "proc": proc}
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_deeply_nested_json_is_refused_and_the_process_lives_on(live: dict[str, Any]) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    for path in ("/v1/webhooks", "/v1/verify/proof", "/v1/parties"):
        resp = httpx.post(live["base"] + path, content=body, headers={"content-type": "application/json"}, timeout=30)
        assert resp.status_code == 422, (path, resp.status_code, resp.text[:200])
        assert resp.json()["error"]["limit"] == "max_json_depth"
    assert live["proc"].poll() is None
    assert httpx.get(live["base"] + "/health", timeout=5).json() == {"status": "ok"}


def test_a_body_within_the_depth_limit_still_reaches_the_route(live: dict[str, Any]) -> None:
    # 60 levels is allowed: the request gets past the guard and fails authentication as usual
    body = b'{"url": "https://example.org/hook", "events": ' + b"[" * 60 + b"]" * 60 + b"}"
    resp = httpx.post(live["base"] + "/v1/webhooks", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 401


def test_oversized_bodies_are_413_before_authentication(live: dict[str, Any]) -> None:
    big = b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    resp = httpx.post(live["base"] + "/v1/webhooks", content=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["error"] == {
        "code": "payload_too_large",
        "message": f"request body of {len(big)} bytes exceeds the limit of 1048576 bytes",
        "limit": "max_json_bytes",
        "allowed": 1048576,
    }

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        yield b'{"x": "'
        for _ in range(64):
            yield b"a" * 65536
        yield b'"}'

    resp = httpx.post(live["base"] + "/v1/webhooks", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"]["limit"] == "max_json_bytes"
    assert httpx.get(live["base"] + "/health").status_code == 200


def test_a_declared_300_mb_body_is_refused_without_reading_it(live: dict[str, Any]) -> None:
    with socket.create_connection(("127.0.0.1", live["port"]), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 314572800\r\n\r\n{"
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")


def test_an_upload_route_takes_a_file_larger_than_the_json_limit(live: dict[str, Any]) -> None:
    rows = "".join(f"S{i},thickness,{12 + (i % 7) / 100:.2f},um,0.05\n" for i in range(40_000))
    csv = "sample_id,characteristic,value,unit,uncertainty\n" + rows
    assert len(csv) > 1024 * 1024
    resp = httpx.post(
        live["base"] + "/v1/batches",
        files=[("files", ("big.csv", csv.encode(), "text/csv"))],
        headers={"Authorization": f"Bearer {live['key']}"},
        timeout=120,
    )
    assert resp.status_code == 201, resp.text


def test_201_then_an_immediate_get_finds_the_batch(live: dict[str, Any]) -> None:
    auth = {"Authorization": f"Bearer {live['key']}"}
    with httpx.Client(base_url=live["base"], headers=auth, timeout=30) as client:
        for i in range(15):
            csv = f"sample_id,characteristic,value,unit,uncertainty\nS{i},thickness,12.{i:02d},um,0.05\n"
            resp = client.post("/v1/batches", files=[("files", (f"lot{i}.csv", csv.encode(), "text/csv"))])
            assert resp.status_code == 201, resp.text
            batch = resp.json()["id"]
            got = client.get(f"/v1/batches/{batch}")
            assert got.status_code == 200, f"upload {i}: 201 then {got.status_code}"
            assert got.json()["root"] == resp.json()["root"]


def test_the_gateway_caps_request_heads_and_survives_garbage(live: dict[str, Any]) -> None:
    """uvicorn serves with h11, which caps a request's head (16 KB), and uvloop: an endless header block is cut
    off instead of growing the gateway's memory (httptools, uvicorn's other parser, has no such cap and is
    not installed); broken requests get a 400 and the process serves on."""
    import importlib.util

    from uvicorn.loops.auto import auto_loop_factory
    from uvicorn.protocols.http.auto import AutoHTTPProtocol
    from uvicorn.protocols.http.h11_impl import H11Protocol

    assert importlib.util.find_spec("httptools") is None and AutoHTTPProtocol is H11Protocol
    loop = auto_loop_factory()()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
    sent = 0
    with socket.create_connection(("127.0.0.1", live["port"]), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(OSError):
            while sent < 16 * 1024 * 1024:
                sock.sendall(b"X-B: " + b"b" * 8187 + b"\r\n")
                sent += 8194
    assert sent < 4 * 1024 * 1024, f"{sent} bytes of headers were taken"
    for garbage in (b"\x00\xff GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                    b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"):  # fmt: skip
        with socket.create_connection(("127.0.0.1", live["port"]), timeout=10) as sock:
            sock.sendall(garbage)
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400"), (garbage, answer[:80])
    assert live["proc"].poll() is None
    assert httpx.get(live["base"] + "/health", timeout=5).json() == {"status": "ok"}
