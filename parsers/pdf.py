"""ISO/IEC 17025 lab report PDFs -> :class:`parsers.report_model.LabReport`, driven by YAML layout profiles.

Pipeline (one pass, page by page):

1. before pdfminer sees the bytes, every compressed stream (content, object and image streams, chained
   filters too) is inflated into a counter, never kept, so the total is bounded by
   ``max_uncompressed_bytes`` (a FlateDecode bomb -> :class:`LimitExceeded` naming it) -- pdfminer itself
   inflates streams without any bound;
2. open with pdfplumber; ``max_pages`` is checked against the page tree's ``/Count`` and then by walking the
   page tree lazily, stopping at ``max_pages + 1`` (a lying ``/Count`` or a million-leaf page tree is refused
   without building a page object per leaf); pdfminer errors are translated once here (truncated/broken
   file -> :class:`MalformedInput`, recursive structures -> :class:`HostileInput`); a broken xref table is
   recovered by pdfminer's object scan when possible, so the result is either correct or one of these;
3. words are extracted once per page (tuned tolerances, no table finder, images never decoded) and grouped
   into lines; a page without characters is listed in ``needs_ocr_pages`` (every page -> :class:`NeedsOCR`);
   pages whose text is mostly rotated are flagged in ``warnings``;
4. the profile is chosen on page 1 (fingerprint keywords, else ``generic``); each line is matched against
   the profile's field labels/patterns, and results tables are recognised by header synonyms, columns
   being taken from the header words' x positions; a table left open at a page end continues on the next
   page, with or without a repeated header;
5. once every profile field is found and no table is open, the remaining pages are only checked for a text
   layer (fonts present) instead of being parsed ("stop early"); ``max_seconds`` is checked between pages.
"""

from __future__ import annotations

import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from parsers.errors import HostileInput, LimitExceeded, MalformedInput, NeedsOCR, PasswordProtected
from parsers.layouts import FieldSpec, LayoutProfile, load_profiles, select_profile
from parsers.limits import Limits
from parsers.pdf_layout import extract_layout, merge_layout
from parsers.pdf_text import Line, Word, lines_from_words, words_of_page_fast
from parsers.provenance import Provenance, SourceFile
from parsers.report_model import (
    Field,
    LabReport,
    Method,
    Person,
    ReportItem,
    Result,
)

__all__ = ["check_pdf_streams", "normalise_date", "parse_pdf"]

# a value matched by a lab's own layout profile (label wording written for that lab): high, not certain
_PROFILE_CONFIDENCE = 0.95
_RESULT_KEYS = (
    "quantity",
    "value",
    "unit",
    "uncertainty",
    "coverage_factor",
    "coverage_probability",
    "verdict",
    "sample_id",
)
_K_IN_HEADER = re.compile(r"k\s*=\s*(\d+(?:[.,]\d+)?)", re.IGNORECASE)
_DECIMAL_COMMA = re.compile(r"^[-+<>≤≥]?\s*\d+,\d+$")
_MONTHS = {
    m: i
    for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)
}
_RANGE_SPLIT = re.compile(r"\s+(?:to|bis|until|-|–|—|~|至)\s+|\s*(?:至|~)\s*")


def normalise_date(text: str) -> str | None:
    """``20.09.2017``, ``2017-09-20``, ``2017/09/20``, ``2017年9月20日``, ``20 Sep 2017`` -> ``2017-09-20``."""
    t = text.strip()
    patterns: list[tuple[str, tuple[str, str, str]]] = [
        (r"^(\d{4})-(\d{1,2})-(\d{1,2})$", ("y", "m", "d")),
        (r"^(\d{4})/(\d{1,2})/(\d{1,2})$", ("y", "m", "d")),
        (r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日$", ("y", "m", "d")),
        (r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$", ("d", "m", "y")),
    ]
    for pat, order in patterns:
        m = re.match(pat, t)
        if m:
            parts = dict(zip(order, m.groups(), strict=True))
            return _iso(parts["y"], parts["m"], parts["d"])
    m = re.match(r"^(\d{1,2})\s+([A-Za-z]{3})[a-z]*\.?\s+(\d{4})$", t)
    if m and m.group(2).lower() in _MONTHS:
        return _iso(m.group(3), str(_MONTHS[m.group(2).lower()]), m.group(1))
    return None


def _iso(y: str, m: str, d: str) -> str | None:
    yi, mi, di = int(y), int(m), int(d)
    if not (1 <= mi <= 12 and 1 <= di <= 31):
        return None
    return f"{yi:04d}-{mi:02d}-{di:02d}"


@dataclass
class _Column:
    key: str
    x0: float
    header: str


@dataclass
class _Table:
    columns: list[_Column]
    coverage_factor: Field[str] | None = None
    rows: int = 0


@dataclass
class _State:
    profile: LayoutProfile
    source: SourceFile
    found: dict[str, Any] = field(default_factory=dict)  # path -> Field or list[Field]
    results: list[Result] = field(default_factory=list)
    table: _Table | None = None
    pending_label: tuple[str, FieldSpec] | None = None
    warnings: list[str] = field(default_factory=list)


class _Compiled:
    """Regexes of a profile, compiled once per parse."""

    def __init__(self, profile: LayoutProfile) -> None:
        self.fields: list[tuple[str, FieldSpec, list[re.Pattern[str]]]] = []
        for path, spec in profile.fields.items():
            regs: list[re.Pattern[str]] = []
            labels = sorted(spec.labels, key=len, reverse=True)
            if labels:
                alt = "|".join(_label_regex(lb) for lb in labels)
                regs.append(re.compile(rf"^\s*(?:{alt})\s*[:：]\s*(?P<value>.*)$", re.IGNORECASE))
            regs.extend(re.compile(p, re.IGNORECASE) for p in spec.patterns)
            self.fields.append((path, spec, regs))
        self.columns = {
            key: [[t.lower() for t in syn.split()] for syn in syns] for key, syns in profile.results.columns.items()
        }
        self.value_re = re.compile(profile.results.value_pattern, re.IGNORECASE)


def _label_regex(label: str) -> str:
    return r"\s+".join(re.escape(tok) for tok in label.split())


# ">> stream<EOL>": the start of a stream's data (the dictionary ends right before the keyword)
_STREAM_START = re.compile(rb">>\s*stream(?:\r\n|\n|\r)")
_FILTER = re.compile(rb"/Filter\s*(\[[^\]]*\]|/[A-Za-z0-9]+)")
_FILTER_NAME = re.compile(rb"/([A-Za-z0-9]+)")
_FILTER_ALIASES = {
    b"Fl": b"FlateDecode",
    b"A85": b"ASCII85Decode",
    b"AHx": b"ASCIIHexDecode",
    b"LZW": b"LZWDecode",
    b"RL": b"RunLengthDecode",
}
_INFLATE_CHUNK = 64 * 1024


def _looks_like_zlib(head: bytes) -> bool:
    return len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


class _Budget:
    """Bytes the streams of one file may still inflate to; raises ``max_uncompressed_bytes`` when spent."""

    def __init__(self, limits: Limits, start: float) -> None:
        self.allowed = limits.max_uncompressed_bytes
        self.max_seconds = limits.max_seconds
        self.start = start
        self.total = 0
        self.where = 0

    @property
    def left(self) -> int:
        return self.allowed - self.total

    def spend(self, n: int) -> None:
        if self.total + n > self.allowed:
            raise LimitExceeded(
                f"PDF streams inflate to more than max_uncompressed_bytes={self.allowed} "
                f"(stream at byte {self.where}): refused as a decompression bomb",
                limit="max_uncompressed_bytes",
                allowed=self.allowed,
                actual=f">{self.allowed}",
                location=f"byte {self.where}",
            )
        self.total += n
        if time.monotonic() - self.start > self.max_seconds:
            raise LimitExceeded(
                f"PDF stream check exceeded max_seconds={self.max_seconds}",
                limit="max_seconds",
                allowed=self.max_seconds,
                actual=round(time.monotonic() - self.start, 2),
            )


def _inflate(data: bytes, budget: _Budget, keep: bool) -> bytes:
    """Inflate ``data`` chunk by chunk (``max_length``), charging the budget; a bomb never materialises."""
    d = zlib.decompressobj()
    kept: list[bytes] = []
    pos = 0
    pending = b""
    try:
        while not d.eof:
            if pending:
                chunk, pending = pending, b""
            elif pos < len(data):
                chunk = data[pos : pos + _INFLATE_CHUNK]
                pos += len(chunk)
            else:
                break
            out = d.decompress(chunk, min(_INFLATE_CHUNK, budget.left + 1))
            pending = d.unconsumed_tail
            budget.spend(len(out))
            if keep:
                kept.append(out)
    except zlib.error:
        pass  # pdfminer stops at the same point; what was inflated so far is counted
    return b"".join(kept)


def _lzw(data: bytes, budget: _Budget, keep: bool) -> bytes:
    import io

    from pdfminer.lzw import LZWDecoder

    kept: list[bytes] = []
    for out in LZWDecoder(io.BytesIO(data)).run():
        budget.spend(len(out))
        if keep:
            kept.append(out)
    return b"".join(kept)


def _run_length(data: bytes, budget: _Budget, keep: bool) -> bytes:
    kept = bytearray()
    i = 0
    while i < len(data):
        n = data[i]
        if n == 128:
            break
        if n < 128:
            chunk, i = data[i + 1 : i + 2 + n], i + 2 + n
        else:
            chunk, i = data[i + 1 : i + 2] * (257 - n), i + 2
        budget.spend(len(chunk))
        if keep:
            kept += chunk
    return bytes(kept)


def _decode_layer(name: bytes, data: bytes, budget: _Budget, keep: bool) -> bytes | None:
    """Apply one filter while charging the budget; ``None`` for filters we do not decode (images)."""
    import base64
    import binascii

    name = _FILTER_ALIASES.get(name, name)
    if name == b"FlateDecode":
        return _inflate(data, budget, keep)
    if name == b"LZWDecode":
        return _lzw(data, budget, keep)
    if name == b"RunLengthDecode":
        return _run_length(data, budget, keep)
    if name == b"ASCII85Decode":
        body = data.strip()
        body = body[2:] if body.startswith(b"<~") else body
        body = body.split(b"~>", 1)[0]
        try:
            out = base64.a85decode(body, ignorechars=b" \t\r\n\x0b\x0c")
        except ValueError:
            return b""
        return out
    if name == b"ASCIIHexDecode":
        body = re.sub(rb"\s", b"", data.split(b">", 1)[0])
        try:
            return binascii.unhexlify(body + (b"0" if len(body) % 2 else b""))
        except (binascii.Error, ValueError):
            return b""
    return None


def check_pdf_streams(data: bytes, limits: Limits) -> int:
    """Decode every compressed stream of ``data`` into a counter; return the total decoded size.

    Follows each stream's ``/Filter`` chain (FlateDecode, LZWDecode, RunLengthDecode, with ASCII85/ASCIIHex
    wrappers) and raises :class:`LimitExceeded` (``max_uncompressed_bytes``) once the streams together would
    decode to more than the limit -- checked while inflating, so a bomb costs at most the limit in CPU and one
    64 KiB chunk in memory (a middle layer of a chained filter is held, also within the limit). A stream
    whose ``/Filter`` cannot be read here (e.g. an indirect reference) is inflated if it looks like zlib.
    Image codecs (DCT, JPX, CCITT, JBIG2) are not decoded by the parser and count as zero.
    """
    import bisect

    budget = _Budget(limits, time.monotonic())
    headers = [m.start() for m in _OBJ_HEADER.finditer(data)]
    for m in _STREAM_START.finditer(data):
        start = m.end()
        i = bisect.bisect_right(headers, m.start()) - 1
        dict_bytes = data[headers[i] if i >= 0 else 0 : m.start() + 2]
        # the stream dictionary's own /Filter is the last one before "stream"
        filters = _FILTER.findall(dict_bytes)
        fm = filters[-1] if filters else None
        end = data.find(b"endstream", start)
        body = data[start : end if end >= 0 else len(data)]
        budget.where = start
        if fm is not None:
            names = _FILTER_NAME.findall(fm)
        elif _looks_like_zlib(body[:2]):
            names = [b"FlateDecode"]
        else:
            continue
        layer: bytes | None = body
        for depth, name in enumerate(names):
            if layer is None:
                break
            last = depth == len(names) - 1
            before = budget.total
            layer = _decode_layer(name, layer, budget, keep=not last)
            if layer is not None and _FILTER_ALIASES.get(name, name) in (b"ASCII85Decode", b"ASCIIHexDecode"):
                if last:
                    budget.spend(len(layer))
            elif layer is not None and not last:
                # the intermediate layer was charged while decoding; only the final output counts
                budget.total = before
    return budget.total


def _count_pages_bounded(doc: Any, limits: Limits, start: float) -> int:
    """Walk the page tree lazily and stop as soon as it has more than ``max_pages`` leaves."""
    from pdfminer.pdfpage import PDFPage

    count = 0
    for _page in PDFPage.create_pages(doc):
        count += 1
        if count > limits.max_pages:
            raise LimitExceeded(
                f"PDF page tree has more than max_pages={limits.max_pages} pages",
                limit="max_pages",
                allowed=limits.max_pages,
                actual=f">{limits.max_pages}",
            )
        if count % 256 == 0 and time.monotonic() - start > limits.max_seconds:
            raise LimitExceeded(
                f"PDF page tree walk exceeded max_seconds={limits.max_seconds}",
                limit="max_seconds",
                allowed=limits.max_seconds,
                actual=round(time.monotonic() - start, 2),
            )
    return count


def _translate_open_error(exc: BaseException) -> Exception:
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    cause: BaseException | None = exc
    while cause is not None:  # pdfplumber wraps pdfminer's error (PdfminerException(PDFPasswordIncorrect()))
        if isinstance(cause, PDFPasswordIncorrect | PDFEncryptionError) or any(
            isinstance(a, PDFPasswordIncorrect | PDFEncryptionError) for a in cause.args
        ):
            return PasswordProtected(
                "this PDF is password-protected: it cannot be read without its password; "
                "send the report without a user password (or its DCC/XML twin)"
            )
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, RecursionError):
        return HostileInput("PDF object structure is recursive (e.g. a cyclic page tree or xref); refused")
    return MalformedInput(f"PDF is truncated or malformed: {type(exc).__name__}: {exc}")


def _xref_is_consistent(doc: Any, data: bytes) -> bool:
    """True when every classic xref entry points at ``N G obj`` (a shifted/garbled table does not)."""
    for xref in getattr(doc, "xrefs", []):
        offsets = getattr(xref, "offsets", None)
        if not isinstance(offsets, dict):
            continue  # xref streams: positions are checked by pdfminer when objects are read
        for objid, (stream_id, pos, gen) in offsets.items():
            if stream_id is not None or objid == 0:
                continue
            if not re.match(rb"\s*%d\s+%d\s+obj\b" % (objid, gen), data[pos : pos + 48]):
                return False
    return True


_OBJ_HEADER = re.compile(rb"(?:(?<=[\r\n])|^)(\d{1,10})[ \t]+(\d{1,5})[ \t]+obj\b")
_PREV = re.compile(rb"/Prev\s+\d+")


def _rebuild_xref(data: bytes) -> bytes | None:
    """Append a fresh xref table built by scanning ``N G obj`` headers; ``None`` when no trailer is found.

    Appending (like an incremental update) leaves every original byte in place; the new trailer copies the
    last original trailer dictionary without ``/Prev``, so pdfminer reads only the rebuilt table.
    """
    t = data.rfind(b"trailer")
    if t < 0:
        return None
    end = data.find(b"startxref", t)
    trailer = data[t + len(b"trailer") : end if end >= 0 else len(data)].strip()
    if not (trailer.startswith(b"<<") and trailer.endswith(b">>")):
        return None
    positions: dict[int, tuple[int, int]] = {}
    for m in _OBJ_HEADER.finditer(data):
        positions[int(m.group(1))] = (m.start(1), int(m.group(2)))  # a later definition wins (updates)
    if not positions:
        return None
    size = max(positions) + 1
    out = bytearray(data)
    if not out.endswith(b"\n"):
        out += b"\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % size
    for objid in range(size):
        if objid in positions:
            pos, gen = positions[objid]
            out += b"%010d %05d n \n" % (pos, gen)
        else:
            out += b"0000000000 65535 f \n"
    out += b"trailer\n" + _PREV.sub(b"", trailer) + b"\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def _open(data: bytes) -> Any:
    import io

    import pdfplumber

    try:
        return pdfplumber.open(io.BytesIO(data))
    except Exception as exc:  # pdfminer raises many unrelated types; translated once, here
        raise _translate_open_error(exc) from exc


def parse_pdf(data: bytes, *, source: SourceFile, limits: Limits) -> LabReport:
    """Parse a lab report PDF into a :class:`LabReport` with page+bbox provenance.

    Raises :class:`LimitExceeded` (``max_bytes``, ``max_uncompressed_bytes``, ``max_pages``, ``max_seconds``),
    :class:`NeedsOCR` when no page has a text layer, :class:`MalformedInput` / :class:`HostileInput` for broken
    or hostile files. A cross-reference table whose offsets do not point at their objects is rebuilt by
    scanning the file (pdfminer's fallback); the report then carries a warning saying so.
    """
    from pdfminer.pdftypes import resolve1

    start = time.monotonic()
    if len(data) > limits.max_bytes:
        raise LimitExceeded(
            f"PDF is {len(data)} bytes, larger than max_bytes={limits.max_bytes}",
            limit="max_bytes",
            allowed=limits.max_bytes,
            actual=len(data),
        )
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise MalformedInput("not a PDF: the file does not start with %PDF")
    check_pdf_streams(data, limits)
    warnings: list[str] = []
    pdf = _open(data)
    try:
        consistent = _xref_is_consistent(pdf.doc, data)
    except Exception:  # a table too broken to inspect: let the rebuild decide
        consistent = False
    if not consistent:
        rebuilt = _rebuild_xref(data)
        if rebuilt is None:
            pdf.close()
            raise MalformedInput(
                "PDF cross-reference table does not match the file and no trailer was found to rebuild it"
            )
        pdf.close()
        pdf = _open(rebuilt)
        warnings.append(
            "PDF cross-reference table does not match the file; it was rebuilt by scanning the file for objects"
        )
    try:
        try:
            pages_node = resolve1(pdf.doc.catalog.get("Pages"))
            declared = int(resolve1(pages_node.get("Count"))) if isinstance(pages_node, dict) else None
        except Exception as exc:
            raise _translate_open_error(exc) from exc
        if declared is not None and declared > limits.max_pages:
            raise LimitExceeded(
                f"PDF declares {declared} pages, more than max_pages={limits.max_pages}",
                limit="max_pages",
                allowed=limits.max_pages,
                actual=declared,
            )
        try:
            _count_pages_bounded(pdf.doc, limits, start)
            pages = pdf.pages
        except LimitExceeded:
            raise
        except Exception as exc:
            raise _translate_open_error(exc) from exc
        if not pages:
            raise MalformedInput(
                "PDF has no pages: its page tree is empty or cannot be reached "
                "(broken catalog, page tree or cross-reference table)"
            )
        if len(pages) > limits.max_pages:
            raise LimitExceeded(
                f"PDF has {len(pages)} pages, more than max_pages={limits.max_pages}",
                limit="max_pages",
                allowed=limits.max_pages,
                actual=len(pages),
            )
        from pdfminer.pdfinterp import PDFResourceManager

        rsrcmgr = PDFResourceManager(caching=True)
        report = _parse_pages(pages, source=source, limits=limits, start=start, rsrcmgr=rsrcmgr, data=data)
        report.warnings[:0] = warnings
        return report
    finally:
        pdf.close()


def _page_has_fonts(page: Any) -> bool:
    from pdfminer.pdftypes import resolve1

    try:
        res = resolve1(page.page_obj.resources) or {}
        return bool(resolve1(res.get("Font")))
    except Exception:  # a broken resource dict: treat as "no text layer known"
        return False


def _ocr_words(data: bytes, index: int, limits: Limits, start: float) -> tuple[list[Word], float] | None:
    """OCR one page without a text layer; ``None`` when Tesseract is not installed or the page cannot render."""
    from parsers.ocr import ocr_available, ocr_image

    if not ocr_available():
        return None
    left = limits.max_seconds - (time.monotonic() - start)
    if left <= 1:
        raise LimitExceeded(
            f"PDF parsing exceeded max_seconds={limits.max_seconds} before OCR of page {index}",
            limit="max_seconds",
            allowed=limits.max_seconds,
            actual=round(time.monotonic() - start, 2),
            page=index,
        )
    try:
        import pypdfium2

        doc = pypdfium2.PdfDocument(data)
        try:
            pg = doc[index - 1]
            width, height = pg.get_size()
            image = pg.render(scale=300 / 72).to_pil()
        finally:
            doc.close()
    except Exception:  # pdfium cannot render it: the page stays unread and is reported
        return None
    try:
        page = ocr_image(image, page_width=width, page_height=height, timeout=min(120.0, left))
    except RuntimeError:
        return None
    return page.words, page.confidence


def _parse_pages(
    pages: list[Any], *, source: SourceFile, limits: Limits, start: float, rsrcmgr: Any, data: bytes
) -> LabReport:
    needs_ocr: list[int] = []
    state: _State | None = None
    compiled: _Compiled | None = None
    profiles = load_profiles()
    stopped_at: int | None = None
    all_lines: list[list[Line]] = []
    ocr_conf: dict[int, float] = {}
    ocr_pages: list[int] = []
    for index, page in enumerate(pages, start=1):
        elapsed = time.monotonic() - start
        if elapsed > limits.max_seconds:
            raise LimitExceeded(
                f"PDF parsing exceeded max_seconds={limits.max_seconds} before page {index}",
                limit="max_seconds",
                allowed=limits.max_seconds,
                actual=round(elapsed, 2),
                page=index,
            )
        if stopped_at is not None:
            if not _page_has_fonts(page):
                needs_ocr.append(index)
            continue
        try:
            words = words_of_page_fast(page, rsrcmgr)
        except RecursionError as exc:
            raise HostileInput(f"PDF page {index} content is recursive; refused", page=index) from exc
        except Exception as exc:
            raise MalformedInput(
                f"PDF page {index} cannot be read: {type(exc).__name__}: {exc}", location=f"page {index}", page=index
            ) from exc
        finally:
            page.close()
        if not words:
            ocr_words = _ocr_words(data, index, limits, start)
            if ocr_words is None:
                needs_ocr.append(index)
                continue
            words = ocr_words[0]
            ocr_conf[index] = ocr_words[1]
            ocr_pages.append(index)
            if not words:
                needs_ocr.append(index)  # OCR ran but found nothing legible: still an unread page
                continue
        lines = lines_from_words(words, index)
        all_lines.append(lines)
        if state is None:
            profile = select_profile("\n".join(ln.text for ln in lines), profiles)
            state = _State(profile=profile, source=source)
            compiled = _Compiled(profile)
        assert compiled is not None
        rotated = sum(1 for w in words if not w.upright)
        if rotated * 2 > len(words):
            state.warnings.append(f"page {index}: most text is rotated (non-upright); fields on it may be missed")
        for line in lines:
            _consume(line, state, compiled)
        # stop early only for a lab profile that found everything; the layout-free pass needs every page
        if state.profile.id != "generic" and _complete(state, compiled) and index < len(pages):
            stopped_at = index
    if state is None:
        raise NeedsOCR(
            f"none of the {len(pages)} page(s) has a text layer (scanned/image-only PDF); OCR is required",
            pages=needs_ocr,
        )
    if stopped_at is not None:
        state.warnings.append(f"all profile fields found by page {stopped_at}; later pages not parsed")
    report = _build(state, pages=len(pages), needs_ocr=needs_ocr)
    report.ocr_pages = ocr_pages
    if ocr_pages:
        report.warnings.append(f"pages read by OCR (Tesseract), lower confidence: {ocr_pages}")
    found = extract_layout(all_lines, sha256=source.sha256, page_conf=ocr_conf)
    return merge_layout(report, found, prefer_layout=state.profile.id == "generic")


def _complete(state: _State, compiled: _Compiled) -> bool:
    if state.table is not None:
        return False
    if state.profile.results.enabled and state.profile.results.columns and not state.results:
        return False
    return all("[]" in path or path in state.found for path, _spec, _regs in compiled.fields)


def _prov(state: _State, line: Line, s: int = 0, e: int | None = None) -> Provenance:
    return Provenance(file_sha256=state.source.sha256, kind="pdf", page=line.page, bbox=line.bbox(s, e))


def _consume(line: Line, state: _State, compiled: _Compiled) -> None:
    if any(r.search(line.text) for r in state.profile.ignore_res):
        return
    if state.pending_label is not None:
        path, spec = state.pending_label
        state.pending_label = None
        if not _try_header(line, state, compiled):
            _store(state, path, spec, line.text, _prov(state, line))
            return
        return
    if state.table is not None:
        if _try_row(line, state, compiled):
            return
        if _try_header(line, state, compiled):  # repeated header on a continuation page
            return
        if state.table.rows == 0:
            return  # second header line (e.g. bilingual headers, units) before the first row
        state.table = None
    if _try_header(line, state, compiled):
        return
    _try_fields(line, state, compiled)


def _try_fields(line: Line, state: _State, compiled: _Compiled) -> None:
    for path, spec, regs in compiled.fields:
        if path in state.found and "[]" not in path:
            continue
        if spec.pages is not None and line.page not in spec.pages:
            continue
        for reg in regs:
            m = reg.search(line.text)
            if not m:
                continue
            value = " ".join(m.group("value").split())
            if not value:
                if spec.next_line:
                    state.pending_label = (path, spec)
                    return
                continue
            _store(state, path, spec, value, _prov(state, line, m.start("value"), m.end("value")))
            return


def _store(state: _State, path: str, spec: FieldSpec, value: str, prov: Provenance) -> None:
    value = " ".join(value.split())
    if spec.type == "date":
        iso = normalise_date(value)
        if iso is None:
            state.warnings.append(f"{path}: {value!r} is not a recognised date; kept as printed")
        value = iso or value
    if spec.type == "date_range":
        parts = [p for p in _RANGE_SPLIT.split(value, maxsplit=1) if p]
        first = normalise_date(parts[0]) or parts[0]
        last = normalise_date(parts[-1]) or parts[-1]
        base = path.removesuffix("_range")
        state.found[f"{base}_start"] = Field[str](value=first, provenance=prov, confidence=_PROFILE_CONFIDENCE)
        state.found[f"{base}_end"] = Field[str](value=last, provenance=prov, confidence=_PROFILE_CONFIDENCE)
        state.found[path] = True
        return
    fld = Field[str](value=value, provenance=prov, confidence=_PROFILE_CONFIDENCE)
    if "[]" in path:
        state.found.setdefault(path, []).append(fld)
    else:
        state.found[path] = fld


def _match_columns(line: Line, compiled: _Compiled) -> list[_Column]:
    lowered = [w.text.lower().rstrip(":：") for w in line.words]
    taken: set[int] = set()
    cols: list[_Column] = []
    for key, synonyms in compiled.columns.items():
        best: tuple[int, int] | None = None  # (start index, length)
        for toks in sorted(synonyms, key=len, reverse=True):
            n = len(toks)
            for i in range(len(lowered) - n + 1):
                if any(j in taken for j in range(i, i + n)):
                    continue
                if lowered[i : i + n] == toks:
                    best = (i, n)
                    break
            if best:
                break
        if best:
            i, n = best
            taken.update(range(i, i + n))
            cols.append(_Column(key=key, x0=line.words[i].x0, header=" ".join(w.text for w in line.words[i : i + n])))
    return sorted(cols, key=lambda c: c.x0)


def _try_header(line: Line, state: _State, compiled: _Compiled) -> bool:
    spec = state.profile.results
    if not spec.enabled or not compiled.columns:
        return False
    cols = _match_columns(line, compiled)
    keys = {c.key for c in cols}
    if len(cols) < spec.min_header_columns or "value" not in keys or "quantity" not in keys:
        return False
    coverage: Field[str] | None = None
    for col in cols:
        if col.key == "uncertainty":
            mk = _K_IN_HEADER.search(line.text[line.text.find(col.header) :])
            if mk:
                coverage = Field[str](
                    value=mk.group(1).replace(",", "."), provenance=_prov(state, line), confidence=_PROFILE_CONFIDENCE
                )
    if state.table is not None and state.table.rows:
        state.table.columns = cols  # repeated header on a continuation page: same table, fresh anchors
        state.table.coverage_factor = coverage or state.table.coverage_factor
    else:
        state.table = _Table(columns=cols, coverage_factor=coverage)
    return True


def _cells(line: Line, columns: list[_Column]) -> dict[str, tuple[str, int, int]]:
    """Assign words to columns by x position: a word belongs to the last column starting left of it."""
    cells: dict[str, list[int]] = {}
    for wi, w in enumerate(line.words):
        col = columns[0]
        for c in columns:
            if w.x0 >= c.x0 - 4.0:
                col = c
        cells.setdefault(col.key, []).append(wi)
    out: dict[str, tuple[str, int, int]] = {}
    for key, idxs in cells.items():
        s = line.spans[idxs[0]][0]
        e = line.spans[idxs[-1]][1]
        out[key] = (" ".join(line.words[i].text for i in idxs), s, e)
    return out


def _try_row(line: Line, state: _State, compiled: _Compiled) -> bool:
    table = state.table
    assert table is not None
    cells = _cells(line, table.columns)
    value = cells.get("value")
    quantity = cells.get("quantity")
    if value is None or quantity is None or not compiled.value_re.search(value[0]):
        return False
    if any(w.text.endswith((":", "：")) for w in line.words):
        return False  # a "label: value" line right after a table is not a row
    marker = state.profile.results.external_marker
    fields: dict[str, Field[str]] = {}
    external = False
    for key in _RESULT_KEYS:
        cell = cells.get(key)
        if cell is None:
            continue
        text, s, e = cell
        if key == "quantity" and marker and text.endswith(marker):
            external = True
            text = text[: -len(marker)].rstrip()
        if key in {"value", "uncertainty"} and _DECIMAL_COMMA.match(text):
            text = text.replace(",", ".")
        fields[key] = Field[str](value=text, provenance=_prov(state, line, s, e), confidence=_PROFILE_CONFIDENCE)
    if "coverage_factor" not in fields and table.coverage_factor is not None and "uncertainty" in fields:
        fields["coverage_factor"] = table.coverage_factor
    state.results.append(Result(external_provider=external, **fields))
    table.rows += 1
    return True


def _build(state: _State, *, pages: int, needs_ocr: list[int]) -> LabReport:
    f = state.found

    def one(path: str) -> Field[str] | None:
        v = f.get(path)
        return v if isinstance(v, Field) else None

    def many(path: str) -> list[Field[str]]:
        v = f.get(path)
        return list(v) if isinstance(v, list) else []

    methods = [Method(standard=s) for s in many("methods[].standard")]
    for i, name in enumerate(many("methods[].name")):
        if i < len(methods):
            methods[i] = methods[i].model_copy(update={"name": name})
        else:
            methods.append(Method(name=name))
    item = ReportItem(
        id=one("items[0].id"), description=one("items[0].description"), condition=one("items[0].condition")
    )
    persons: list[Person] = []
    roles = many("authorised_by[].role")
    for i, name in enumerate(many("authorised_by[].name")):
        m = re.match(r"^(?P<name>.+?)\s*\((?P<role>[^()]+)\)$", name.value)
        if m:
            persons.append(
                Person(
                    name=Field[str](value=m.group("name"), provenance=name.provenance, confidence=name.confidence),
                    role=Field[str](value=m.group("role"), provenance=name.provenance, confidence=name.confidence),
                )
            )
        else:
            persons.append(Person(name=name, role=roles[i] if i < len(roles) else None))
    external = many("external_providers[]")
    report = LabReport(
        source=state.source,
        format="pdf",
        layout_profile=state.profile.id,
        title=one("title"),
        report_id=one("report_id"),
        location=one("location"),
        methods=methods,
        items=[item] if any((item.id, item.description, item.condition)) else [],
        sampling_plan=one("sampling_plan"),
        results=state.results,
        conformity_statement=one("conformity_statement"),
        decision_rule=one("decision_rule"),
        deviations=many("deviations[]"),
        authorised_by=persons,
        external_providers=external,
        amends_report_id=one("amends_report_id"),
        needs_ocr_pages=needs_ocr,
        page_count=pages,
        warnings=state.warnings,
    )
    report.lab.name, report.lab.address = one("lab.name"), one("lab.address")
    report.customer.name, report.customer.address = one("customer.name"), one("customer.address")
    d = report.dates
    d.receipt, d.sampling, d.issue = one("dates.receipt"), one("dates.sampling"), one("dates.issue")
    d.performance_start = one("dates.performance_start")
    d.performance_end = one("dates.performance_end")
    if needs_ocr:
        report.warnings.append(f"pages without a text layer (need OCR): {needs_ocr}")
    return report
