"""The authorization matrix, generated from the route table: every endpoint x every role, on party A's objects.

Two of each kind: OEM A / supplier A / lab A share agreement A (on chain, with a tracing case open on one of
its batches); OEM B / supplier B / lab B have agreement B, a batch and a case of their own. Every request
targets A's objects, so for the A roles they are their own and for the B roles another party's. Each cell
is the exact status: 401 anonymous, 404 for what the caller may not see (no id oracle), 403 for what it
sees but may not do, and the route's real answer where it is allowed (bodies are chosen so the allowed call
stops at a deterministic check after authorization, e.g. a malformed signed transaction -> 422).

A route missing from ``MATRIX`` fails :func:`test_every_route_has_a_matrix_entry`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select, update

from app.db import (
    AgreementRecord,
    Batch,
    BatchFile,
    CaseRecord,
    ModelRefreshJob,
    RelayTransaction,
    TemplateRecord,
    WebhookSubscription,
)
from app.quality import library_templates
from tests.app.cases_support import Tracing, make_tracing
from tests.indexed_rows import add_agreement, add_case

pytestmark = [pytest.mark.node, pytest.mark.slow]

ROLES = ("anonymous", "admin", "oemA", "oemB", "supA", "supB", "labA", "labB")
WHO = {"oemA": "oem", "oemB": "oem2", "supA": "supplier", "supB": "supplier2", "labA": "lab", "labB": "lab2"}
AGREEMENT_B = "0x" + "bb" * 32


def cells(default: int, **overrides: int) -> dict[str, int]:
    """One row of the matrix: ``default`` for every authenticated role unless overridden; anonymous 401."""
    row = dict.fromkeys(ROLES, default)
    row["anonymous"] = 401
    row.update(overrides)
    return row


# who may see A's batch: admin, OEM A (agreement A), supplier A (its own), lab A (its case)
BATCH_READ = cells(404, admin=200, oemA=200, supA=200, labA=200)
CASE_READ = cells(404, admin=200, oemA=200, supA=200, labA=200)
AGREEMENT_READ = cells(404, admin=200, oemA=200, supA=200, labA=200)
EVERYONE = cells(200)
PUBLIC = dict.fromkeys(ROLES, 200)


def case_action(**allowed: int) -> dict[str, int]:
    """A case action: 404 for who cannot see the case, 403 for its other parties, ``allowed`` for its doers."""
    return cells(404, admin=403, oemA=403, supA=403, labA=403) | allowed


# (method, path) -> expected status per role. Paths are the route templates.
MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/v1/chain"): PUBLIC,
    ("POST", "/v1/parties"): cells(403, admin=422),
    ("GET", "/v1/parties"): EVERYONE,
    ("GET", "/v1/parties/me"): EVERYONE,
    # supplier A's keys: the party itself and the admin; for everyone else the party does not exist
    ("POST", "/v1/parties/{party_id}/keys"): cells(404, admin=201, supA=201),
    ("GET", "/v1/parties/{party_id}/keys"): cells(404, admin=200, supA=200),
    ("DELETE", "/v1/parties/{party_id}/keys/{key_id}"): cells(404, admin=200, supA=200),
    ("POST", "/v1/batches"): cells(403, supA=422, supB=422),
    ("GET", "/v1/batches"): EVERYONE,
    ("GET", "/v1/batches/{batch_ref}"): BATCH_READ,
    ("GET", "/v1/batches/{batch_ref}/records"): BATCH_READ,
    ("GET", "/v1/batches/{batch_ref}/records/{index}/proof"): BATCH_READ,
    ("GET", "/v1/batches/{batch_ref}/files/{sha256}"): BATCH_READ,
    ("GET", "/v1/batches/{batch_ref}/files/{sha256}/proof"): BATCH_READ,
    ("POST", "/v1/verify/proof"): PUBLIC,
    ("POST", "/v1/verify/file"): PUBLIC,
    ("GET", "/v1/verify/file-proof"): PUBLIC,
    ("GET", "/v1/batches/{batch_ref}/analysis"): BATCH_READ,
    # rescoring: the OEM of the batch's agreement or the admin; the supplier and lab see the batch: 403
    ("POST", "/v1/batches/{batch_ref}/analysis"): cells(404, admin=200, oemA=200, supA=403, labA=403),
    ("POST", "/v1/batches/{batch_ref}/counterfactual"): cells(404, admin=422, oemA=422, supA=422, labA=422),
    ("POST", "/v1/batches/{batch_ref}/safe-domain"): cells(404, admin=422, oemA=422, supA=422, labA=422),
    # allowed readers reach the analysis, which has too little history for a chart yet: 409
    ("GET", "/v1/batches/{batch_ref}/charts/{characteristic}.{fmt}"): cells(
        404, admin=409, oemA=409, supA=409, labA=409
    ),
    ("GET", "/v1/batches/{batch_ref}/causal-graph.svg"): cells(404, admin=422, oemA=422, supA=422, labA=422),
    ("POST", "/v1/models/refresh"): cells(403, admin=422),
    ("GET", "/v1/models/refresh/{job_id}"): cells(403, admin=200),
    # a transaction supplier A relayed: its own party and the admin only
    ("GET", "/v1/relay/{relay_id}"): cells(404, admin=200, supA=200),
    ("GET", "/v1/models"): EVERYONE,
    ("GET", "/v1/templates/library"): EVERYONE,
    ("POST", "/v1/templates"): cells(403, oemA=422, oemB=422),
    ("POST", "/v1/templates/{template_pk}/publish"): cells(
        404, admin=403, oemA=409, supA=403, labA=403
    ),  # published already
    ("GET", "/v1/templates"): EVERYONE,
    ("GET", "/v1/templates/{template_pk}"): AGREEMENT_READ,
    ("POST", "/v1/agreements"): cells(403, oemA=404, oemB=404),
    ("GET", "/v1/agreements"): EVERYONE,
    ("GET", "/v1/agreements/{ref}"): AGREEMENT_READ,
    ("POST", "/v1/agreements/{ref}/signatures"): cells(404, admin=403, oemA=409, supA=409, labA=403),
    ("POST", "/v1/agreements/{ref}/deposits/prepare"): cells(404, admin=403, oemA=403, supA=200, labA=403),
    ("POST", "/v1/agreements/{ref}/withdrawals/prepare"): cells(404, admin=403, oemA=403, supA=200, labA=403),
    ("POST", "/v1/agreements/{ref}/claims/prepare"): cells(404, admin=403, oemA=200, supA=403, labA=403),
    ("POST", "/v1/agreements/{ref}/transactions"): cells(403, oemA=422, oemB=404, supA=422, supB=404),
    # the agreement's OEM only (A's batch, anchored under agreement A): the unsigned recordInspection
    ("POST", "/v1/agreements/{ref}/inspections/prepare"): cells(404, admin=403, oemA=200, supA=403, labA=403),
    ("GET", "/v1/agreements/{ref}/inspections"): AGREEMENT_READ,
    ("GET", "/v1/agreements/{ref}/deposits"): AGREEMENT_READ,
    ("GET", "/v1/agreements/{ref}/evaluations"): AGREEMENT_READ,
    ("POST", "/v1/agreements/{ref}/evaluations/{quarter}"): cells(404, admin=409, oemA=409, supA=409, labA=409),
    ("GET", "/v1/cases"): EVERYONE,
    ("GET", "/v1/cases/{case_ref}"): CASE_READ,
    ("GET", "/v1/cases/{case_ref}/timeline"): CASE_READ,
    ("GET", "/v1/cases/{case_ref}/analysis"): CASE_READ,
    ("POST", "/v1/cases/{case_ref}/response/prepare"): case_action(supA=200),
    ("POST", "/v1/cases/{case_ref}/response"): case_action(supA=422),
    ("GET", "/v1/cases/{case_ref}/verdict-typed-data"): case_action(labA=200),
    ("POST", "/v1/cases/{case_ref}/verdict"): case_action(labA=422),
    ("GET", "/v1/cases/{case_ref}/acceptance-typed-data"): case_action(oemA=409, supA=409),  # no verdict yet
    ("POST", "/v1/cases/{case_ref}/acceptance"): case_action(oemA=422, supA=422),
    ("POST", "/v1/cases/{case_ref}/arbitrate"): cells(403, admin=409),
    ("POST", "/v1/cases/{case_ref}/claim/prepare"): case_action(oemA=200),
    ("POST", "/v1/cases/{case_ref}/claim"): case_action(oemA=422),
    ("POST", "/v1/cases/{case_ref}/lab-fee/prepare"): case_action(labA=200),
    ("POST", "/v1/cases/{case_ref}/lab-fee"): case_action(labA=422),
    ("POST", "/v1/webhooks"): cells(201),
    ("GET", "/v1/webhooks"): EVERYONE,
    # supplier A's subscription: its own party and the admin only
    ("DELETE", "/v1/webhooks/{sub_id}"): cells(404, admin=204, supA=204),
    ("GET", "/v1/webhooks/{sub_id}/deliveries"): cells(404, admin=200, supA=200),
    # portal users: the admin creates them (the body's bad role stops the call after authorization); every
    # party lists its own people, the admin everyone
    ("POST", "/v1/users"): cells(403, admin=422),
    ("GET", "/v1/users"): EVERYONE,
}

# the docs pages and the OpenAPI document are public and hold no tenant data
UNGUARDED = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
UNGUARDED_PREFIXES = ("/static-offline-docs",)
# The web portal authenticates people by session cookie (+ CSRF), not by API key: a Bearer key gets no further
# than anonymous there, so these role columns say nothing about it. tests/portal/test_isolation.py holds the
# portal's own matrix (every portal route: what an anonymous caller gets; per page, another party's 404) and
# fails on a portal route it has no entry for. "/" only redirects to the portal, "/verify" is the public page.
PORTAL = {"/", "/verify"}
PORTAL_PREFIX = "/portal"


def route_table(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every API route of the app, as FastAPI registered them."""
    out = set()
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not ctx.path or ctx.path in UNGUARDED or ctx.path.startswith(UNGUARDED_PREFIXES):
            continue
        if ctx.path in PORTAL or ctx.path == PORTAL_PREFIX or ctx.path.startswith(PORTAL_PREFIX + "/"):
            continue
        if isinstance(route, APIRoute):
            out.update((m, ctx.path) for m in route.methods if m != "HEAD")
        else:
            out.add(("?", ctx.path))  # a non-API route needs an explicit decision too
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from tests.conftest import free_port

    tmp = tmp_path_factory.mktemp("matrix")
    from chain.node import LocalNode

    node = LocalNode(tmp / "chain", port=free_port())
    node.start()
    try:
        gen = make_tracing(tmp / "gw", f"sqlite:///{tmp / 'qcn.db'}", node)
        tr: Tracing = next(gen)
        try:
            yield _populate(tr)
        finally:
            gen.close()
    finally:
        node.stop()


def _populate(tr: Tracing) -> dict[str, Any]:
    """A's case (open on chain) and B's agreement, batch and case (database rows), webhooks for everyone."""
    case_a = tr.open_case("LOT-A")
    resp = tr.gw.upload("supplier2", "sample_id,characteristic,value,unit\nB1,thickness,1.0,um\n", key="LOT-B")
    assert resp.status_code == 201, resp.text
    batch_b = resp.json()["id"]
    ids = tr.party_ids
    with tr.sessions()() as s, s.begin():
        agreement_b = add_agreement(
            s,
            agreement_id=AGREEMENT_B,
            oem_id=ids["oem2"],
            supplier_id=ids["supplier2"],
            lab_id=ids["lab2"],
            status="active",
            template_id="b-template",
            chain_template_id="0x" + "cc" * 32,
            document_hash="0x" + "dd" * 32,
        )
        s.execute(update(Batch).where(Batch.id == batch_b).values(agreement_id=AGREEMENT_B))
        batch_id_b = s.get(Batch, batch_b).batch_id  # type: ignore[union-attr]
        add_case(s, agreement_b, case_id="0x" + "ee" * 32, batch_id=batch_id_b, batch_pk=batch_b)
        case_row = s.scalars(select(CaseRecord).where(CaseRecord.case_id == case_a)).one()
        batch_a = s.get(Batch, case_row.batch_pk)
        assert batch_a is not None
        file_a = s.scalars(select(BatchFile).where(BatchFile.batch_pk == batch_a.id)).first()
        assert file_a is not None
        agreement_a = s.scalars(select(AgreementRecord).where(AgreementRecord.oem_id == ids["oem"])).one()
        # the tracing set-up mirrors a placeholder document; store a real one so the template reads back
        document = next(iter(library_templates().values())).document()
        s.execute(
            update(TemplateRecord)
            .where(TemplateRecord.id == agreement_a.template_pk)
            .values(document=json.dumps(document))
        )
        # a finished relayed transaction of supplier A and a finished model refresh, for their status routes
        relayed = RelayTransaction(
            id="00000000-0000-4000-8000-00000000000a",
            request_id="00000000-0000-4000-8000-00000000000b",
            seq=0,
            party_id=ids["supplier"],
            tx_hash="0x" + "ab" * 32,
            raw="0x00",
            signer="0x" + "00" * 20,
            to_address="0x" + "00" * 20,
            function="deposit",
            nonce=0,
            stage="done",
            status="failed",
        )
        job = ModelRefreshJob(profile="electrode_coating", causal=True, anomaly=True, status="failed")
        s.add_all([relayed, job])
        s.flush()
        refs = {
            "relay": relayed.id,
            "job": job.id,
            "batch": batch_a.id,
            "batch_chain_id": batch_a.batch_id,
            "sha256": file_a.sha256,
            "case": case_a,
            "agreement": agreement_a.agreement_id,
            "template": agreement_a.template_pk,
            "party": ids["supplier"],
            "batch_b": batch_b,
        }
    spare = tr.client.post(f"/v1/parties/{ids['supplier']}/keys", json={"label": "spare"}, headers=tr.auth("supplier"))
    assert spare.status_code == 201, spare.text
    refs["key"] = spare.json()["id"]  # revoked by the matrix; supplier A keeps its own key
    for who in ("supplier", "supplier2", "oem", "oem2", "lab", "lab2"):
        # loopback's discard port: allowed by the tracing set-up, never delivered anywhere else
        hook = tr.client.post("/v1/webhooks", json={"url": f"http://127.0.0.1:9/{who}"}, headers=tr.auth(who))
        assert hook.status_code == 201, hook.text
        if who == "supplier":
            refs["sub"] = hook.json()["id"]
    return {"tr": tr, "refs": refs}


def _headers(tr: Tracing, role: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    if role == "admin":
        return tr.auth("admin")
    return tr.auth(WHO[role])


def _request(world: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The concrete URL (A's objects) and request options for one route."""
    refs = world["refs"]
    url = path.format(
        party_id=refs["party"],
        batch_ref=refs["batch"],
        index=0,
        sha256=refs["sha256"],
        characteristic="thickness",
        fmt="svg",
        template_pk=refs["template"],
        ref=refs["agreement"],
        quarter=10_000,
        case_ref=refs["case"],
        sub_id=refs["sub"],
        key_id=refs["key"],
        relay_id=refs["relay"],
        job_id=refs["job"],
    )
    raw_tx = {"raw": "0x00"}
    signed = {"message": {"caseId": refs["case"]}, "signature": "0x" + "11" * 65}
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/v1/parties"): {"json": {"name": "x", "kind": "lab", "account": "0x" + "12" * 20}},
        ("POST", "/v1/batches"): {"files": [("files", ("empty.csv", b"", "text/csv"))]},
        ("POST", "/v1/verify/proof"): {"json": {"format": "not-a-proof"}},
        ("POST", "/v1/verify/file"): {
            "files": [("file", ("x.csv", b"not in the batch", "text/csv"))],
            "data": {"batch_id": refs["batch_chain_id"]},
        },
        ("GET", "/v1/verify/file-proof"): {"params": {"batch_id": refs["batch_chain_id"], "sha256": refs["sha256"]}},
        ("POST", "/v1/batches/{batch_ref}/counterfactual"): {
            "json": {"variable": "roll_pressure", "characteristic": "thickness", "value": 1.0}
        },
        ("POST", "/v1/batches/{batch_ref}/safe-domain"): {
            "json": {"variables": ["roll_pressure", "line_speed"], "characteristic": "thickness"}
        },
        ("POST", "/v1/models/refresh"): {"json": {"profile": "no-such-profile"}},
        ("POST", "/v1/templates"): {"json": {"document": {"schema": "nope"}}},
        ("POST", "/v1/templates/{template_pk}/publish"): {"json": {"raw": ["0x00"]}},
        ("POST", "/v1/agreements"): {"json": {"template": 999_999, "supplier_id": refs["party"]}},
        ("POST", "/v1/agreements/{ref}/signatures"): {"json": {"signature": "0x" + "11" * 65}},
        ("POST", "/v1/agreements/{ref}/deposits/prepare"): {"json": {"amount": 1}},
        ("POST", "/v1/agreements/{ref}/withdrawals/prepare"): {"json": {"amount": 1}},
        ("POST", "/v1/agreements/{ref}/transactions"): {"json": {"raw": ["0x00"]}},
        ("POST", "/v1/agreements/{ref}/inspections/prepare"): {
            "json": {"batch": refs["batch_chain_id"], "accepted": False}
        },
        ("POST", "/v1/cases/{case_ref}/response/prepare"): {
            "files": [("files", ("8d.txt", b"8D report", "text/plain"))]
        },
        ("POST", "/v1/cases/{case_ref}/response"): {"json": raw_tx},
        ("POST", "/v1/cases/{case_ref}/verdict"): {"json": signed},
        ("POST", "/v1/cases/{case_ref}/acceptance"): {"json": signed},
        ("POST", "/v1/cases/{case_ref}/arbitrate"): {
            "json": {"responsible_party": 1, "nc_class": 2, "root_cause": "roll_pressure", "ruling": "the supplier"}
        },
        ("POST", "/v1/cases/{case_ref}/claim"): {"json": raw_tx},
        ("POST", "/v1/cases/{case_ref}/lab-fee"): {"json": raw_tx},
        ("POST", "/v1/webhooks"): {"json": {"url": "http://127.0.0.1:9/matrix"}},
        ("POST", "/v1/users"): {"json": {"party_id": refs["party"], "email": "m@example.com", "role": "root"}},
    }
    return url, bodies.get((method, path), {})


def test_every_route_has_a_matrix_entry(world: dict[str, Any]) -> None:
    routes = route_table(world["tr"].client.app)
    missing = sorted(routes - set(MATRIX))
    assert not missing, f"routes without an authorization matrix entry: {missing}"
    stale = sorted(set(MATRIX) - routes)
    assert not stale, f"matrix entries for routes that no longer exist: {stale}"


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
def test_authorization_matrix(world: dict[str, Any], route: tuple[str, str]) -> None:
    tr: Tracing = world["tr"]
    method, path = route
    url, options = _request(world, method, path)
    got = {}
    for role in ROLES:
        resp = tr.client.request(method, url, headers=_headers(tr, role), **options)
        got[role] = resp.status_code
    assert got == MATRIX[route], f"{method} {url}: {json.dumps(got)}"


LISTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "/v1/batches": lambda r: r["batch"],
    "/v1/cases": lambda r: r["case"],
}


@pytest.mark.parametrize("path", sorted(LISTS))
def test_lists_hold_only_what_the_caller_may_see(world: dict[str, Any], path: str) -> None:
    tr: Tracing = world["tr"]
    key = "id" if path == "/v1/batches" else "case_id"
    mine = LISTS[path](world["refs"])
    seen = {role: {x[key] for x in tr.client.get(path, headers=_headers(tr, role)).json()} for role in WHO}
    assert {r for r, ids in seen.items() if mine in ids} == {"oemA", "supA", "labA"}
    if path == "/v1/batches":
        # OEM B sees supplier B's batch (its agreement) but nothing of supplier A
        assert seen["oemB"] == {world["refs"]["batch_b"]} and seen["labB"] == {world["refs"]["batch_b"]}


def test_webhook_list_is_per_party(world: dict[str, Any]) -> None:
    tr: Tracing = world["tr"]
    for role, who in WHO.items():
        urls = {h["url"] for h in tr.client.get("/v1/webhooks", headers=_headers(tr, role)).json()}
        assert f"http://127.0.0.1:9/{who}" in urls
        assert all(u.endswith((f"/{who}", "/matrix")) for u in urls), (role, urls)
    with tr.sessions()() as s:
        assert s.scalars(select(WebhookSubscription)).all()
