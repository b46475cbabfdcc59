"""The web portal: server-rendered pages (Jinja2 + htmx) for OEM, supplier and lab people, in Chinese and
English, signing in the browser with their own keys. :func:`install` mounts it on the gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Mount the portal's pages, its JSON helpers for the browser, the user API and the static files."""
    from app.portal.setup import install_portal

    install_portal(app)
