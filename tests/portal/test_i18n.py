"""Every string the portal shows has a Chinese translation, and dates/numbers follow the reader's locale."""

from __future__ import annotations

from datetime import UTC, datetime

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from app.portal.i18n import Lang, pick_lang
from tests.conftest import ROOT

_METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]


def test_every_portal_string_has_a_chinese_translation() -> None:
    found = {
        msg
        for _file, _line, msg, _comments, _ctx in extract_from_dir(
            ROOT / "app" / "portal", _METHODS, keywords={"_": None, "gettext": None, "N_": None}
        )
        if msg
    }
    assert len(found) > 200
    with (ROOT / "app/portal/locale/zh/LC_MESSAGES/messages.po").open("rb") as fh:
        catalog = read_po(fh)
    translated = {m.id for m in catalog if m.id and m.string}
    assert sorted(found - translated) == []  # run pybabel extract + web/zh_translations.py (web/README.md)


def test_dates_numbers_and_deadlines_per_locale() -> None:
    en, zh = Lang("en"), Lang("zh")
    moment = datetime(2026, 12, 5, 18, 30, tzinfo=UTC)
    assert en.datetime(moment) == "5 Dec 2026, 18:30:00 UTC"
    assert zh.datetime(moment) == "2026年12月5日 18:30:00 UTC"
    assert en.number(1234567.891, 2) == "1,234,567.89" and zh.number(1234567.891, 2) == "1,234,567.89"
    assert en.tokens(str(1250 * 10**18)) == "1,250.00"
    now = moment.timestamp()
    assert en.remaining(int(now) + 3 * 86400, now=now) == "in 3 days"
    assert zh.remaining(int(now) + 3 * 86400, now=now) == "3天后"
    assert en.remaining(int(now) - 7200, now=now) == "2 hours ago"
    assert zh.gettext("My work") == "我的待办" and en.gettext("My work") == "My work"


def test_language_choice_cookie_then_browser_then_english() -> None:
    assert pick_lang("zh", "en-GB") == "zh"
    assert pick_lang(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert pick_lang("xx", "fr-FR, de") == "en"
