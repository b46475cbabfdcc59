"""Hostile PDFs: broken xref offsets, huge declared/real page trees, FlateDecode bombs (plain, chained, ObjStm).

Fixtures live in ``tests/fixtures/reports/hostile/`` and are named after what they break; regenerate them with
``make_hostile_pdfs.py`` in that folder.
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import pytest

from parsers import parse
from parsers.errors import LimitExceeded, MalformedInput
from parsers.limits import Limits
from parsers.pdf import check_pdf_streams, parse_pdf
from parsers.pdf_accuracy import source_of

REPORTS = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
HOSTILE = REPORTS / "hostile"


def _parse(data: bytes, limits: Limits | None = None):
    return parse_pdf(data, source=source_of(data, "pdf"), limits=limits or Limits())


def test_broken_xref_offsets_are_rebuilt_and_give_the_same_report_as_the_intact_file() -> None:
    intact = _parse((REPORTS / "coating_thickness_report.pdf").read_bytes())
    broken = _parse((HOSTILE / "broken_xref_offsets.pdf").read_bytes())
    assert broken.report_id is not None and intact.report_id is not None
    assert broken.report_id.value == intact.report_id.value == "SLN-CT-5521"
    assert [(r.quantity.value, r.value.value) for r in broken.results] == [
        (r.quantity.value, r.value.value) for r in intact.results
    ]
    assert len(broken.results) == 4
    assert any("cross-reference table" in w and "rebuilt" in w for w in broken.warnings)
    assert not any("cross-reference" in w for w in intact.warnings)


def test_broken_xref_without_any_trailer_is_malformed_not_a_hang() -> None:
    data = (HOSTILE / "broken_xref_offsets.pdf").read_bytes()
    no_trailer = data.replace(b"trailer", b"trai1er")
    start = time.monotonic()
    with pytest.raises(MalformedInput):
        _parse(no_trailer)
    assert time.monotonic() - start < 10


def test_declared_page_count_of_one_million_is_refused_naming_max_pages() -> None:
    with pytest.raises(LimitExceeded) as exc:
        _parse((HOSTILE / "page_count_1000000.pdf").read_bytes())
    assert exc.value.limit == "max_pages"
    assert exc.value.allowed == 500
    assert exc.value.actual == 1_000_000


def test_page_tree_with_more_leaves_than_its_count_is_refused_while_walking() -> None:
    data = (HOSTILE / "page_tree_1000_leaves_count_lies.pdf").read_bytes()
    with pytest.raises(LimitExceeded) as exc:
        _parse(data)
    assert exc.value.limit == "max_pages"
    assert exc.value.actual == ">500"
    # the same tree under a limit it fits in parses every page
    rep = _parse(data, Limits(max_pages=1000))
    assert rep.page_count == 1000
    assert rep.report_id is not None and rep.report_id.value == "HOSTILE-1"


@pytest.mark.parametrize("name", ["flate_bomb_content_stream.pdf", "chained_flate_bomb.pdf", "objstm_flate_bomb.pdf"])
def test_flate_bombs_are_refused_naming_max_uncompressed_bytes(name: str) -> None:
    data = (HOSTILE / name).read_bytes()
    assert len(data) < 300_000  # a few hundred KB on disk ...
    with pytest.raises(LimitExceeded) as exc:
        parse(data, filename=name)  # ... 256 MiB inflated, above the 200 MiB default
    assert exc.value.limit == "max_uncompressed_bytes"
    assert exc.value.allowed == Limits().max_uncompressed_bytes


def test_stream_budget_counts_real_content_and_follows_limits() -> None:
    data = (REPORTS / "coating_thickness_report.pdf").read_bytes()
    total = check_pdf_streams(data, Limits())
    assert total > 0
    with pytest.raises(LimitExceeded) as exc:
        check_pdf_streams(data, Limits(max_uncompressed_bytes=total - 1))
    assert exc.value.limit == "max_uncompressed_bytes"
    assert check_pdf_streams(data, Limits(max_uncompressed_bytes=total)) == total


def test_chained_flate_layers_are_counted_after_the_inner_layer() -> None:
    inner = b"q 1 0 0 1 0 0 cm Q\n" * 10_000  # 190,000 bytes
    pdf = (
        b"%PDF-1.5\n1 0 obj\n<< /Filter [/FlateDecode /FlateDecode] >>\nstream\n"
        + zlib.compress(zlib.compress(inner))
        + b"\nendstream\nendobj\n"
    )
    assert check_pdf_streams(pdf, Limits()) == len(inner)


def test_flate_bomb_hidden_behind_ascii85_is_still_counted() -> None:
    import base64

    bomb = zlib.compress(b"\0" * 5_000_000, 9)
    pdf = (
        b"%PDF-1.4\n1 0 obj\n<< /Length 1 /Filter [/ASCII85Decode /FlateDecode] >>\nstream\n"
        + base64.a85encode(bomb)
        + b"~>\nendstream\nendobj\n"
    )
    with pytest.raises(LimitExceeded) as exc:
        check_pdf_streams(pdf, Limits(max_uncompressed_bytes=1_000_000))
    assert exc.value.limit == "max_uncompressed_bytes"
    assert check_pdf_streams(pdf, Limits(max_uncompressed_bytes=5_000_000)) == 5_000_000
