"""Mount the portal on the gateway: routers, static files, HTML error pages, security headers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from app.portal.i18n import Lang, pick_lang
from app.portal.web import LANG_COOKIE, LoginRequired, environment

__all__ = ["install_portal", "localized_error"]

log = logging.getLogger("qcn.portal")
_STATIC = Path(__file__).parent / "static"
# no inline scripts or styles, nothing from another origin except the chain RPC the verify page talks to
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _is_portal(path: str) -> bool:
    return path.startswith("/portal") or path == "/verify" or path == "/"


def localized_error(lang: Lang, code: str, message: str, revert: str | None = None) -> str:
    """An API error for a person: a translated sentence for the error code, then the gateway's own words."""
    _ = lang.gettext
    lead = {
        "not_found": _("Not found, or not visible to your party."),
        "forbidden": _("You may not do this."),
        "unauthenticated": _("Please log in."),
        "conflict": _("This conflicts with the current state."),
        "invalid_request": _("The request is not valid."),
        "payload_too_large": _("The upload is too large."),
        "service_unavailable": _("A service the gateway needs is not reachable."),
        "contract_revert": _("The contract refused the transaction."),
        "chain_unavailable": _("The chain node is not reachable."),
        "csrf_failed": _("Your session token is missing or stale: reload the page."),
        "too_many_attempts": _("Too many attempts: wait and try again."),
        "login_failed": _("Wrong email or password."),
        "parse_error": _("A file could not be read."),
    }.get(code, _("The request failed."))
    return f"{lead} {revert + ': ' if revert else ''}{message}"


def _audit_refusal(request: Request, status: int, code: str) -> None:
    """A refused or failed action is audited too (its own transaction: the action's was rolled back)."""
    from app.db import session_scope
    from app.portal.security import audit, resolve_session
    from app.portal.web import COOKIE, client_ip

    try:
        with session_scope(request.app.state.session_factory) as session:
            row = resolve_session(session=session, token=request.cookies.get(COOKIE))
            audit(
                session=session,
                actor=row.user.email if row else "anonymous",
                action=request.url.path.removeprefix("/portal/api/")[:64],
                user=row.user if row else None,
                outcome="denied" if status in (401, 403, 404) else "failed",
                ip=client_ip(request),
                detail={"status": status, "code": code},
            )
    except Exception:
        log.warning("could not audit a refused portal request to %s", request.url.path, exc_info=True)


def install_portal(app: FastAPI) -> None:
    from app.portal import api, pages, users_api

    app.state.portal_env = environment()
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(users_api.router)
    app.mount("/portal/static", StaticFiles(directory=_STATIC), name="portal-static")

    json_handlers: dict[Any, Any] = dict(app.exception_handlers)

    def _lang(request: Request) -> Lang:
        return Lang(pick_lang(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")))

    async def _portal_error(request: Request, exc: Exception) -> Response:
        handler = next((json_handlers[t] for t in type(exc).__mro__ if t in json_handlers), None)
        resp: Response = (
            await handler(request, exc)
            if handler
            else JSONResponse({"error": {"code": "error", "message": "error"}}, 500)
        )
        path = request.url.path
        if not _is_portal(path):
            return resp
        import json

        body = json.loads(bytes(resp.body)) if isinstance(resp, JSONResponse) else {}
        err = body.get("error") or {}
        lang = _lang(request)
        text = localized_error(lang, str(err.get("code", "")), str(err.get("message", "")), err.get("revert"))
        if path.startswith("/portal/api/"):
            if request.method == "POST":
                await to_thread.run_sync(_audit_refusal, request, resp.status_code, str(err.get("code", "")))
            err["localized"] = text
            return JSONResponse({"error": err}, status_code=resp.status_code)
        env = app.state.portal_env
        html = env.get_template("error.html").render(
            _=lang.gettext, lang=lang, me=None, kind="", csrf="", path=path, status=resp.status_code, message=text
        )
        from fastapi.responses import HTMLResponse

        return HTMLResponse(html, status_code=resp.status_code)

    for exc_type in list(json_handlers):
        if isinstance(exc_type, type) and "WebSocket" not in exc_type.__name__:
            app.add_exception_handler(exc_type, _portal_error)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.startswith("/portal/api/") or request.url.path == "/portal/events":
            lang = _lang(request)
            text = localized_error(lang, "unauthenticated", "log in first")
            return JSONResponse(
                {"error": {"code": "unauthenticated", "message": "log in first", "localized": text}}, 401
            )
        return RedirectResponse(f"/portal/login?next={quote(exc.next_url)}", status_code=303)

    app.add_middleware(_SecurityHeaders)


class _SecurityHeaders:
    """Portal responses get the CSP, nosniff, referrer and (except static files) no-store headers unless set.

    A plain ASGI middleware that only looks at ``http.response.start``: the API's responses and upload bodies
    pass through untouched (Starlette's ``BaseHTTPMiddleware`` would stream every request and response through
    an extra task).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not _is_portal(path):
            await self.app(scope, receive, send)
            return
        defaults = [
            (b"content-security-policy", _CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]
        if not path.startswith("/portal/static"):
            defaults.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in defaults if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
