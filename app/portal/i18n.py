"""Chinese and English: gettext catalogues (Babel ``.po`` files under ``locale/``), compiled in memory when the
gateway starts, and locale-aware dates and numbers.

Templates call ``_("...")``; ``pybabel extract -F babel.cfg`` collects the strings (see ``web/README.md``).
The language comes from the ``qcn_lang`` cookie (the switch in the page header), else the browser's
``Accept-Language``; English is the source language.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

__all__ = ["LANGS", "Lang", "pick_lang"]

LANGS = {"en": "English", "zh": "中文"}
_BABEL_LOCALE = {"en": "en_GB", "zh": "zh_Hans_CN"}
_DIR = Path(__file__).parent / "locale"


@cache
def _translations(lang: str) -> gettext.NullTranslations:
    po = _DIR / lang / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def pick_lang(cookie: str | None, accept_language: str | None) -> str:
    """The page language: the cookie if valid, else the first supported language the browser asks for."""
    if cookie in LANGS:
        return str(cookie)
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag[:2] in LANGS:
            return tag[:2]
    return "en"


class Lang:
    """Everything a page needs for one language: gettext and locale-aware formatting."""

    def __init__(self, code: str) -> None:
        self.code = code if code in LANGS else "en"
        self.locale = Locale.parse(_BABEL_LOCALE[self.code])
        self._t = _translations(self.code)
        self.html_lang = "zh-Hans" if self.code == "zh" else "en"

    @property
    def gettext(self) -> Callable[[str], str]:
        return self._t.gettext

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._t.ngettext(singular, plural, n)

    def datetime(self, value: datetime | int | float | None) -> str:
        """A moment, in the reader's locale (UTC, said so)."""
        if value is None:
            return "—"
        if isinstance(value, int | float):
            value = datetime.fromtimestamp(value, tz=UTC)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return format_datetime(value, format="medium", tzinfo=UTC, locale=self.locale) + " UTC"

    def short_datetime(self, value: int | float) -> str:
        """A moment in the locale's short form, for a chart axis ("06/12/2026, 00:19" / "2026/12/6 00:19"), UTC."""
        return format_datetime(datetime.fromtimestamp(value, tz=UTC), format="short", tzinfo=UTC, locale=self.locale)

    def number(self, value: float | int | None, digits: int = 2) -> str:
        if value is None:
            return "—"
        return format_decimal(value, format=f"#,##0.{'0' * digits}" if digits else "#,##0", locale=self.locale)

    def remaining(self, deadline: int | None, now: float | None = None) -> str:
        """Time left until a chain-time deadline ("in 3 days" / "2 hours ago")."""
        if deadline is None:
            return "—"
        seconds = deadline - (now if now is not None else datetime.now(UTC).timestamp())
        return format_timedelta(timedelta(seconds=seconds), add_direction=True, threshold=1.0, locale=self.locale)

    def tokens(self, wei: str | int | None) -> str:
        """A settlement-token amount (18 decimals) for reading."""
        if wei is None:
            return "—"
        return self.number(int(wei) / 1e18, 2)


def N_(message: str) -> str:  # the gettext convention: mark for extraction only
    return message


# words the pages translate from data (states of cases, agreements, templates); listed so extraction sees them
STATE_WORDS = (
    N_("pending_open"),
    N_("opened"),
    N_("supplier_responded"),
    N_("supplier_defaulted"),
    N_("verdict_submitted"),
    N_("accepted"),
    N_("disputed"),
    N_("arbitrated"),
    N_("settled"),
    N_("proposed"),
    N_("active"),
    N_("suspended"),
    N_("terminated"),
    N_("draft"),
    N_("published"),
    # signature verdicts of lab reports
    N_("valid"),
    N_("untrusted"),
    N_("expired-at-signing"),
    N_("unsigned"),
    N_("malformed"),
    # tiers of process parameters (template editor)
    N_("material"),
    N_("equipment"),
    N_("process"),
    N_("environment"),
)
