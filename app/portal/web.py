"""The request context of a portal page or browser call: who is logged in, their language, CSRF, rendering."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from app.auth import Principal
from app.errors import Forbidden
from app.portal.errors import CsrfFailed
from app.portal.i18n import LANGS, Lang, pick_lang
from app.portal.models import PortalSession, PortalUser
from app.portal.security import check_csrf, principal_of, resolve_session

__all__ = [
    "COOKIE",
    "LANG_COOKIE",
    "LoginRequired",
    "OptionalUser",
    "PageUser",
    "Portal",
    "client_ip",
    "environment",
    "render",
    "require_csrf",
    "require_level",
]

COOKIE = "qcn_session"
LANG_COOKIE = "qcn_lang"
_LEVEL = {"viewer": 0, "operator": 1, "signer": 2}
_TEMPLATES = Path(__file__).parent / "templates"


class LoginRequired(Exception):
    """A page was asked for without a live session: the handler redirects to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(("html",)), auto_reload=False)
    env.globals["LANGS"] = LANGS
    return env


@dataclass
class Portal:
    """One request as the portal sees it."""

    request: Request
    session: Session
    lang: Lang
    row: PortalSession | None

    @property
    def user(self) -> PortalUser:
        if self.row is None:
            raise LoginRequired(str(self.request.url.path))
        return self.row.user

    @property
    def principal(self) -> Principal:
        return principal_of(self.user)

    @property
    def csrf(self) -> str:
        return self.row.csrf_token if self.row else ""

    @property
    def kind(self) -> str:
        return self.user.party.kind if self.row else ""


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _portal_session(request: Request) -> Iterator[Session]:
    """One session per portal request, committed when the handler returns and *before* the response is sent
    (function scope), so what a page or the browser is told happened is durable."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


PortalDb = Annotated[Session, Depends(_portal_session, scope="function")]


def _portal(request: Request, session: PortalDb) -> Portal:
    row = resolve_session(session=session, token=request.cookies.get(COOKIE))
    lang = Lang(pick_lang(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")))
    return Portal(request=request, session=session, lang=lang, row=row)


def _page_user(portal: Annotated[Portal, Depends(_portal)]) -> Portal:
    if portal.row is None:
        raise LoginRequired(str(portal.request.url.path))
    return portal


OptionalUser = Annotated[Portal, Depends(_portal)]
PageUser = Annotated[Portal, Depends(_page_user)]


def require_csrf(portal: Portal, presented: str | None) -> None:
    """Refuse a state-changing request that does not carry this session's CSRF token."""
    if portal.row is None or not check_csrf(portal.row, presented or portal.request.headers.get("x-csrf-token")):
        raise CsrfFailed("missing or wrong CSRF token: reload the page and try again")


def require_level(portal: Portal, level: str) -> None:
    """viewer < operator (upload, propose, prepare) < signer (sign with the party's key)."""
    have = portal.user.role
    if _LEVEL[have] < _LEVEL[level]:
        raise Forbidden(f"this needs the {level} role in your party; you are {have}", role=have)


def render(portal: Portal, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    env: Environment = portal.request.app.state.portal_env
    lang = portal.lang
    html = env.get_template(name).render(
        _=lang.gettext,
        lang=lang,
        me=portal.row.user if portal.row else None,
        kind=portal.kind if portal.row else "",
        csrf=portal.csrf,
        path=portal.request.url.path,
        settings=portal.request.app.state.settings,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)
