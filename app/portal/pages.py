"""Server-rendered portal pages. Thin: read through the gateway services (their visibility rules), render."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from sqlalchemy import select

from app.db import Batch, CaseEvidence, Party, session_scope
from app.errors import AppError, Forbidden, InvalidRequest, NotFound
from app.inputs import attachment
from app.portal import security, work
from app.portal.errors import LoginFailed, TooManyAttempts
from app.portal.models import AuditEntry, PortalUser
from app.portal.web import COOKIE, LANG_COOKIE, OptionalUser, PageUser, Portal, client_ip, render, require_csrf
from app.quality import library_templates
from app.services import agreements as agreement_service
from app.services import analysis as analysis_service
from app.services import batches as batch_service
from app.services import cases as case_service
from app.services.views import batch_public
from app.state import OptionalChainDep

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
_PAGE = 50


def _safe_next(value: str | None) -> str:
    # only local paths: a login link must not bounce the user to another site
    if value and value.startswith("/portal") and not value.startswith("//"):
        return value
    return "/portal/"


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/portal/", status_code=303)


@router.get("/portal/login")
def login_page(portal: OptionalUser, next: str | None = None) -> Response:
    if portal.row is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(portal, "login.html", next=_safe_next(next), error=None)


@router.post("/portal/login")
def login(
    portal: OptionalUser,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=500)],
    next: Annotated[str, Form()] = "/portal/",
) -> Response:
    request = portal.request
    try:
        _user, token = security.login(session=portal.session, email=email, password=password, ip=client_ip(request))
    except (LoginFailed, TooManyAttempts) as exc:
        # the failed attempt must be counted even though we answer with an error
        status = exc.status
        message = (
            portal.lang.gettext("Wrong email or password.")
            if isinstance(exc, LoginFailed)
            else (portal.lang.gettext("Too many failed logins. Try again in 15 minutes."))
        )
        return render(portal, "login.html", status_code=status, next=_safe_next(next), error=message, email=email)
    resp = RedirectResponse(_safe_next(next), status_code=303)
    settings = request.app.state.settings
    resp.set_cookie(
        COOKIE,
        token,
        max_age=int(security.SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=settings.env == "production",
        path="/",
    )
    return resp


@router.post("/portal/logout")
def logout(portal: OptionalUser, csrf_token: Annotated[str, Form()] = "") -> Response:
    if portal.row is not None:
        require_csrf(portal, csrf_token)
        security.end_session(
            session=portal.session, token=portal.request.cookies.get(COOKIE), ip=client_ip(portal.request)
        )
    resp = RedirectResponse("/portal/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.get("/portal/lang/{code}")
def switch_language(code: str, request: Request, next: str | None = None) -> Response:
    """Language switch: a preference cookie only (no server state changes, so a plain link)."""
    target = next if next and (next.startswith("/portal") or next == "/verify") else "/portal/"
    resp = RedirectResponse(target, status_code=303)
    if code in ("en", "zh"):
        resp.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="strict", path="/")
    return resp


# ------------------------------------------------------------------------------------------------ my work
@router.get("/portal/")
def my_work(portal: PageUser) -> Response:
    items = work.work_items(session=portal.session, principal=portal.principal)
    return render(portal, "work.html", items=items, fragment=False)


@router.get("/portal/work")
def my_work_fragment(portal: PageUser) -> Response:
    items = work.work_items(session=portal.session, principal=portal.principal)
    return render(portal, "work_list.html", items=items)


@router.get("/portal/events")
async def events(portal: PageUser, request: Request) -> StreamingResponse:
    """Server-sent events: a batch anchored, an analysis finished, a case changed (for the pages to refresh)."""
    principal = portal.principal
    factory = request.app.state.session_factory
    max_s = float(request.query_params.get("max_s", "3600"))

    def poll(since: datetime) -> tuple[list[dict[str, Any]], datetime]:
        with session_scope(factory) as session:
            return work.changes_since(session=session, principal=principal, since=since)

    async def stream() -> Any:
        since = datetime.now(UTC)
        seen: dict[str, str] = {}
        started = asyncio.get_running_loop().time()
        yield "retry: 2000\n\n"
        while asyncio.get_running_loop().time() - started < max_s:
            if await request.is_disconnected():
                break
            found, since = await to_thread.run_sync(poll, since)
            for ev in found:
                key = f"{ev['type']}:{ev['id']}"
                value = json.dumps(ev, sort_keys=True)
                if seen.get(key) == value:
                    continue
                seen[key] = value
                yield f"event: {ev['type']}\ndata: {value}\n\n"
            await asyncio.sleep(0.5)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------------------------------------ batches
@router.get("/portal/batches")
def batches_page(
    portal: PageUser, chain: OptionalChainDep, page: Annotated[int, Query(ge=0, le=10_000)] = 0
) -> Response:
    rows = batch_service.list_batches(
        session=portal.session, principal=portal.principal, limit=_PAGE + 1, offset=page * _PAGE
    )
    return render(portal, "batches.html", batches=rows[:_PAGE], page=page, more=len(rows) > _PAGE)


def _characteristics(public: Any) -> list[dict[str, Any]]:
    return list((public.assessment or {}).get("characteristics") or [])


@router.get("/portal/batches/{ref}")
def batch_page(ref: str, portal: PageUser, chain: OptionalChainDep) -> Response:
    batch = batch_service.get_batch(session=portal.session, principal=portal.principal, batch_ref=ref)
    public = batch_public(session=portal.session, batch=batch, chain=chain)
    try:
        analysis = analysis_service.get_analysis(session=portal.session, batch=batch)
    except NotFound:  # stored before analysis existed: nothing to show
        analysis = {"status": "none"}
    cases = [
        c
        for c in case_service.list_cases(session=portal.session, principal=portal.principal, limit=500)
        if c.batch_pk == batch.id
    ]
    return render(
        portal,
        "batch.html",
        b=public,
        row=batch,
        characteristics=_characteristics(public),
        analysis=analysis,
        cases=cases,
        chain_id=chain.chain_id if chain else None,
    )


@router.get("/portal/batches/{ref}/status")
def batch_status_fragment(ref: str, portal: PageUser, chain: OptionalChainDep) -> Response:
    batch = batch_service.get_batch(session=portal.session, principal=portal.principal, batch_ref=ref)
    public = batch_public(session=portal.session, batch=batch, chain=chain)
    return render(portal, "batch_status.html", b=public)


@router.get("/portal/batches/{ref}/charts/{characteristic}.svg")
def batch_chart(ref: str, characteristic: str, portal: PageUser) -> Response:
    batch = batch_service.get_batch(session=portal.session, principal=portal.principal, batch_ref=ref)
    settings = portal.request.app.state.settings
    data = analysis_service.spc_chart(
        session=portal.session, settings=settings, batch=batch, characteristic=characteristic, fmt="svg"
    )
    return Response(data, media_type="image/svg+xml")


@router.get("/portal/batches/{ref}/causal-graph.svg")
def batch_graph(ref: str, portal: PageUser) -> Response:
    batch = batch_service.get_batch(session=portal.session, principal=portal.principal, batch_ref=ref)
    settings = portal.request.app.state.settings
    return Response(
        analysis_service.graph_image(session=portal.session, settings=settings, batch=batch), media_type="image/svg+xml"
    )


def _download(doc: dict[str, Any], name: str) -> Response:
    return Response(
        json.dumps(doc, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": attachment(name)},
    )


@router.get("/portal/batches/{ref}/records/{index}/proof.json")
def record_proof(ref: str, index: int, portal: PageUser, chain: OptionalChainDep) -> Response:
    from app.services import proofs
    from app.state import _chain

    batch = batch_service.get_batch(session=portal.session, principal=portal.principal, batch_ref=ref)
    ctx = chain or _chain(portal.request)
    doc = proofs.record_proof(session=portal.session, batch=batch, index=index, chain=ctx)
    return _download(doc, f"proof-{batch.lot_id or batch.id}-record-{index}.json")


@router.get("/portal/batches/{ref}/files/{sha256}/proof.json")
def file_proof(ref: str, sha256: str, portal: PageUser, chain: OptionalChainDep) -> Response:
    from app.services import proofs
    from app.state import _chain

    batch = batch_service.get_batch(session=portal.session, principal=portal.principal, batch_ref=ref)
    ctx = chain or _chain(portal.request)
    doc = proofs.file_proof(session=portal.session, batch=batch, sha256=sha256, chain=ctx)
    return _download(doc, f"proof-{batch.lot_id or batch.id}-file-{sha256[:12]}.json")


@router.get("/portal/upload")
def upload_page(portal: PageUser) -> Response:
    if portal.principal.role != "supplier":
        raise Forbidden("only suppliers upload batches")
    agreements = [
        a
        for a in agreement_service.list_agreements(session=portal.session, principal=portal.principal)
        if a.status == "active"
    ]
    return render(portal, "upload.html", agreements=agreements)


# ------------------------------------------------------------------------------------ templates, agreements
@router.get("/portal/templates")
def templates_page(portal: PageUser) -> Response:
    rows = agreement_service.list_templates(session=portal.session, principal=portal.principal)
    return render(portal, "templates.html", templates=rows, library=sorted(library_templates()))


@router.get("/portal/templates/new")
def template_new(portal: PageUser, start: str | None = None) -> Response:
    """The field-by-field editor of a library template (without ``start``: the library to pick from)."""
    from app.portal.template_editor import editor_state

    if portal.principal.role != "oem":
        raise Forbidden("only OEMs write templates")
    library = library_templates()
    if start is not None and start not in library:
        raise NotFound(f"no library template {start}")
    state = editor_state(library[start].document(), check=False) if start else None
    return render(portal, "template_new.html", library=sorted(library), start=start, s=state)


async def _editor_form(portal: Portal) -> tuple[dict[str, Any], dict[str, str], dict[str, list[str]]]:
    from app.portal.template_editor import merge_form

    if portal.principal.role != "oem":
        raise Forbidden("only OEMs write templates")
    require_csrf(portal, None)
    form = {k: v for k, v in (await portal.request.form()).items() if isinstance(v, str)}
    doc, errors = merge_form(form, portal.lang.gettext)
    return doc, form, errors


@router.post("/portal/templates/validate")
async def template_validate(portal: PageUser) -> Response:
    """htmx: the edited fields checked by the API's template validator, problems next to their fields."""
    from app.portal.template_editor import editor_state

    doc, form, errors = await _editor_form(portal)
    state = await to_thread.run_sync(lambda: editor_state(doc, check=True, form_errors=errors))
    state.values.update({k: form[k] for k in errors if k in form})  # show what was typed, not what was kept
    return render(portal, "template_fields.html", s=state)


@router.post("/portal/api/templates/merge")
async def template_merge(portal: PageUser) -> dict[str, Any]:
    """The editor's form as a template document, for the publish flow (which validates it as the API does)."""
    doc, _form, errors = await _editor_form(portal)
    if errors:
        problems = [{"field": k, "message": m} for k, ms in errors.items() for m in ms]
        raise InvalidRequest(problems[0]["message"], field=problems[0]["field"], problems=problems)
    return {"document": doc}


@router.get("/portal/templates/{pk}")
def template_page(pk: int, portal: PageUser) -> Response:
    record = agreement_service.get_template(session=portal.session, principal=portal.principal, template_pk=pk)
    doc = agreement_service.template_of(record).document()
    # the consortium's directory (names and kinds are public in the on-chain party registry anyway)
    parties = list(
        portal.session.scalars(select(Party).where(Party.kind.in_(("supplier", "lab"))).order_by(Party.name))
    )
    return render(
        portal,
        "template.html",
        t=record,
        document=json.dumps(doc, indent=2, ensure_ascii=False),
        doc=doc,
        suppliers=[p for p in parties if p.kind == "supplier"],
        labs=[p for p in parties if p.kind == "lab"],
    )


@router.get("/portal/agreements")
def agreements_page(portal: PageUser) -> Response:
    rows = agreement_service.list_agreements(session=portal.session, principal=portal.principal)
    return render(portal, "agreements.html", agreements=rows)


@router.get("/portal/agreements/{ref}")
def agreement_page(ref: str, portal: PageUser, chain: OptionalChainDep) -> Response:
    record = agreement_service.get_agreement(session=portal.session, principal=portal.principal, agreement_ref=ref)
    status = history = evaluations = None
    if chain is not None and record.status != "proposed":
        status = agreement_service.agreement_status(chain=chain, record=record)
        history = agreement_service.history(chain=chain, record=record, names=agreement_service.MONEY_EVENTS)
        evaluations = agreement_service.history(chain=chain, record=record, names=("Evaluated",))
    return render(portal, "agreement.html", a=record, status=status, history=history, evaluations=evaluations)


@router.get("/portal/scorecard")
def scorecard(portal: PageUser, chain: OptionalChainDep) -> Response:
    """Per agreement: quarterly scores, ratio and required deposit, rejection rate and Cpk per characteristic."""
    from app.portal.scorecard import scorecard_rows

    rows = scorecard_rows(session=portal.session, principal=portal.principal, chain=chain, lang=portal.lang)
    return render(portal, "scorecard.html", rows=rows)


# ------------------------------------------------------------------------------------------------ cases
@router.get("/portal/cases")
def cases_page(portal: PageUser, page: Annotated[int, Query(ge=0, le=10_000)] = 0) -> Response:
    rows = case_service.list_cases(
        session=portal.session, principal=portal.principal, limit=_PAGE + 1, offset=page * _PAGE
    )
    return render(portal, "cases.html", cases=rows[:_PAGE], page=page, more=len(rows) > _PAGE)


@router.get("/portal/cases/{ref}")
def case_page(ref: str, portal: PageUser) -> Response:
    case = case_service.get_case(session=portal.session, principal=portal.principal, case_ref=ref)
    timeline = case_service.timeline(session=portal.session, case=case)
    try:
        analysis = case_service.case_analysis(session=portal.session, case=case)
    except NotFound:
        analysis = None
    evidence = list(portal.session.query(CaseEvidence).filter(CaseEvidence.case_pk == case.id))
    me = portal.principal.party_id
    side = "oem" if case.oem_id == me else "supplier" if case.supplier_id == me else "lab" if case.lab_id == me else ""
    settings = portal.request.app.state.settings
    return render(
        portal,
        "case.html",
        c=case,
        timeline=timeline,
        analysis=analysis,
        evidence=evidence,
        side=side,
        cf_choices=_cf_choices(analysis),
        cf_pct=settings.analysis_cf_within_pct,
    )


def _cf_choices(analysis: dict[str, Any] | None) -> dict[str, list[str]]:
    """Variables and characteristics a counterfactual can be asked about: the ranked causes, the explained ones."""
    rc = ((analysis or {}).get("document") or {}).get("root_cause") or {}
    primary = rc.get("primary") or {}
    variables = [primary.get("variable")] + [c["variable"] for r in rc.get("reports") or [] for c in r["candidates"]]
    chars = [primary.get("characteristic")] + [r.get("characteristic") for r in rc.get("reports") or []]
    return {
        "variables": [v for v in dict.fromkeys(variables) if v],
        "characteristics": [c for c in dict.fromkeys(chars) if c],
    }


def _case_batch(portal: Portal, ref: str) -> Batch:
    """The batch a case is about, for the case's parties (a lab reads it through its case only)."""
    case = case_service.get_case(session=portal.session, principal=portal.principal, case_ref=ref)
    batch = portal.session.get(Batch, case.batch_pk) if case.batch_pk else None
    if batch is None:
        raise NotFound(f"the batch of case {case.case_id} is not stored in this gateway")
    return batch


@router.get("/portal/cases/{ref}/causal-graph.svg")
def case_graph(ref: str, portal: PageUser) -> Response:
    """The causal graph of the case's batch with its root-cause path highlighted."""
    batch = _case_batch(portal, ref)
    settings = portal.request.app.state.settings
    return Response(
        analysis_service.graph_image(session=portal.session, settings=settings, batch=batch), media_type="image/svg+xml"
    )


@router.post("/portal/cases/{ref}/counterfactual")
def case_counterfactual(
    ref: str,
    portal: PageUser,
    variable: Annotated[str, Form(min_length=1, max_length=200)],
    characteristic: Annotated[str, Form(min_length=1, max_length=200)],
    within_pct: Annotated[float | None, Form(gt=0, le=100, allow_inf_nan=False)] = None,
) -> Response:
    """htmx: "had ``variable`` stayed within +/-pct % of nominal, would ``characteristic`` have been in spec?",
    answered by the API's counterfactual query on the case's batch (its worst sample)."""
    require_csrf(portal, None)
    batch = _case_batch(portal, ref)
    settings = portal.request.app.state.settings
    pct = within_pct if within_pct is not None else settings.analysis_cf_within_pct
    try:
        result = analysis_service.counterfactual_query(
            session=portal.session,
            settings=settings,
            batch=batch,
            variable=variable,
            characteristic=characteristic,
            within_pct=pct,
        )
    except AppError as exc:  # shown in the page's result area (htmx swaps 200s only)
        return render(portal, "case_counterfactual.html", r=None, error=exc.message, pct=pct)
    return render(portal, "case_counterfactual.html", r=result, error=None, pct=pct)


@router.get("/portal/cases/{ref}/evidence/{sha256}")
def case_evidence(ref: str, sha256: str, portal: PageUser) -> Response:
    from app.db import Blob

    case = case_service.get_case(session=portal.session, principal=portal.principal, case_ref=ref)
    row = (
        portal.session.query(CaseEvidence)
        .filter(CaseEvidence.case_pk == case.id, CaseEvidence.sha256 == sha256)
        .first()
    )
    if row is None:
        raise NotFound(f"no evidence file {sha256} in this case")
    blob = portal.session.get(Blob, row.sha256)
    assert blob is not None
    name = row.filename or row.sha256
    return Response(
        blob.data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": attachment(name)},
    )


# ------------------------------------------------------------------------------------------------ lab
@router.get("/portal/lab/reports")
def lab_reports_page(portal: PageUser) -> Response:
    """Lab: the reports it issued (signed with its registered certificate) and its accreditation data."""
    from app.portal.lab import lab_reports

    return render(portal, "lab_reports.html", **lab_reports(session=portal.session, principal=portal.principal))


# ------------------------------------------------------------------------------------------ people, keys
@router.get("/portal/key")
def key_page(portal: PageUser) -> Response:
    return render(portal, "key.html")


@router.get("/portal/users")
def users_page(portal: PageUser) -> Response:
    me = portal.user
    users = portal.session.query(PortalUser).filter(PortalUser.party_id == me.party_id).order_by(PortalUser.id).all()
    audit = (
        portal.session.query(AuditEntry)
        .filter(AuditEntry.party_id == me.party_id)
        .order_by(AuditEntry.id.desc())
        .limit(50)
        .all()
        if me.party_admin
        else []
    )
    return render(portal, "users.html", users=users, audit=audit, invite_link=None)


@router.post("/portal/users/invite")
def invite(
    portal: PageUser,
    email: Annotated[str, Form(max_length=254)],
    role: Annotated[str, Form(max_length=16)],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    require_csrf(portal, csrf_token)
    token = security.invite(
        session=portal.session, by=portal.user, email=email, role=role, ip=client_ip(portal.request)
    )
    portal.session.flush()
    me = portal.user
    users = portal.session.query(PortalUser).filter(PortalUser.party_id == me.party_id).order_by(PortalUser.id).all()
    link = str(portal.request.base_url).rstrip("/") + f"/portal/invite/{token}"
    return render(portal, "users.html", users=users, audit=[], invite_link=link)


@router.get("/portal/invite/{token}")
def invite_page(token: str, portal: OptionalUser) -> Response:
    row = security.pending_invite(session=portal.session, token=token)
    return render(portal, "invite.html", invite=row, token=token, error=None)


@router.post("/portal/invite/{token}")
def accept_invite(
    token: str,
    portal: OptionalUser,
    display_name: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=500)],
) -> Response:
    # the invitation token itself is the unguessable capability here (no session yet, so no CSRF token)
    try:
        security.accept_invite(
            session=portal.session,
            token=token,
            display_name=display_name,
            password=password,
            ip=client_ip(portal.request),
        )
    except InvalidRequest as exc:
        row = security.pending_invite(session=portal.session, token=token)
        return render(portal, "invite.html", status_code=422, invite=row, token=token, error=exc.message)
    return RedirectResponse("/portal/login", status_code=303)


# ------------------------------------------------------------------------------------------- public verify
@router.get("/verify")
def verify_page(portal: OptionalUser, chain: OptionalChainDep) -> HTMLResponse:
    """Public: check a proof in the browser against the chain's RPC (no login, no trust in this server).

    The anchor registry is pre-filled from this gateway's deployment, shown for the reader to compare with the
    address the consortium publishes, and never taken from the proof.
    """
    settings = portal.request.app.state.settings
    registry = chain.anchor_registry_address if chain is not None else ""
    return render(portal, "verify.html", rpc_url=settings.rpc_url, registry=registry, public=True)
