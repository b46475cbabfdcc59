"""Format detection from content; the file name only breaks ties.

Returned ids: ``pdf``, ``xlsx``, ``dcc``, ``qif``, ``aqdef``, ``json``, ``csv``.
"""

from __future__ import annotations

import io
import re
import zipfile

from parsers.errors import UnsupportedFormat

__all__ = ["FORMATS", "INSPECTION_FORMATS", "REPORT_FORMATS", "detect_format"]

INSPECTION_FORMATS = ("csv", "json", "xlsx", "aqdef", "qif")
REPORT_FORMATS = ("pdf", "dcc")
FORMATS = INSPECTION_FORMATS + REPORT_FORMATS

DCC_NAMESPACE = "https://ptb.de/dcc"
QIF_NAMESPACE_PREFIX = "http://qifstandards.org/xsd/qif"

_EXTENSIONS = {
    "pdf": "pdf",
    "xlsx": "xlsx",
    "xlsm": "xlsx",
    "json": "json",
    "csv": "csv",
    "tsv": "csv",
    "txt": "csv",
    "dfq": "aqdef",
    "dfd": "aqdef",
    "dfx": "aqdef",
    "qif": "qif",
    "xml": None,
}
_AQDEF_LINE = re.compile(rb"^K\d{4}(?:/\d+)?[ \t]", re.MULTILINE)
_XML_ROOT = re.compile(rb"<(?!\?|!)([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)([^>]*)>", re.DOTALL)
_COMMENT = re.compile(rb"<!--.*?-->", re.DOTALL)
_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>", re.DOTALL | re.IGNORECASE)
_HEAD = 64 * 1024
_CMS_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")  # DER OID 1.2.840.113549.1.7.2


def _refuse_cms() -> str:
    raise UnsupportedFormat("CMS signed file (.p7m) whose content is not a DCC; only signed DCCs are read")


def _extension(filename: str | None) -> str | None:
    if not filename or "." not in filename:
        return None
    return _EXTENSIONS.get(filename.rsplit(".", 1)[1].lower())


def _first_zip_member(data: bytes) -> str:
    """Name in the first local file header (readable even when the central directory is cut off)."""
    if len(data) < 30:
        return ""
    n = int.from_bytes(data[26:28], "little")
    return data[30 : 30 + n].decode("utf-8", "replace")


def _strip_bom(head: bytes) -> bytes:
    return head[3:] if head.startswith(b"\xef\xbb\xbf") else head


def _xml_format(head: bytes) -> str:
    m = _XML_ROOT.search(head)
    if m is None or b"<!" in head[: m.end()]:
        # a comment or DOCTYPE before the root's start tag: read the root with those removed (when neither
        # comes before it, removing them changes nothing up to the match: the 64 KiB are not rewritten)
        body = _DOCTYPE.sub(b"", _COMMENT.sub(b"", head))
        m = _XML_ROOT.search(body)
    if m is None:
        raise UnsupportedFormat("XML without a readable root element in the first 64 KiB")
    prefix, local, attrs = m.group(1), m.group(2).decode("ascii", "replace"), m.group(3)
    ns_attr = b"xmlns" + (b":" + prefix[:-1] if prefix else b"")
    ns_match = re.search(re.escape(ns_attr) + rb"\s*=\s*[\"']([^\"']*)[\"']", attrs)
    ns = ns_match.group(1).decode("utf-8", "replace") if ns_match else ""
    if ns.rstrip("/") == DCC_NAMESPACE or local == "digitalCalibrationCertificate":
        return "dcc"
    if ns.startswith(QIF_NAMESPACE_PREFIX) or local == "QIFDocument":
        return "qif"
    raise UnsupportedFormat(
        f"XML root element {local!r} (namespace {ns or 'none'!r}) is neither a DCC "
        f"({DCC_NAMESPACE}) nor a QIF document",
        root=local,
        namespace=ns or None,
    )


def _looks_like_text_table(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    text = head.decode("utf-8", "ignore")
    first = text.lstrip("\ufeff\r\n").split("\n", 1)[0]
    return any(d in first for d in (";", ",", "\t"))


def detect_format(data: bytes, filename: str | None = None) -> str:
    """Return the format id of ``data`` judged by content (magic bytes, XML root, K-fields, JSON, CSV).

    ``filename``'s extension is used only when the content alone is ambiguous. Raises
    :class:`UnsupportedFormat` naming what was seen.
    """
    if not data:
        raise UnsupportedFormat("file is empty")
    head = _strip_bom(data[:_HEAD])
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data[:1] == b"\x30" and _CMS_SIGNED_DATA in data[:32]:
        # CMS signedData (.p7m): a signed DCC when its content is one (read by parsers.dcc)
        return "dcc" if DCC_NAMESPACE.encode() in data[:_HEAD] else _refuse_cms()
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, ValueError, EOFError) as exc:
            if _first_zip_member(data).startswith(("[Content_Types].xml", "xl/", "_rels/", "docProps/")):
                return "xlsx"  # truncated workbook: let the XLSX parser report the damage
            raise UnsupportedFormat(f"zip archive that cannot be read: {exc}") from exc
        if "xl/workbook.xml" in names:
            return "xlsx"
        raise UnsupportedFormat("zip archive without xl/workbook.xml (not an XLSX workbook)", members=names[:10])
    if head.startswith((b"\xd0\xcf\x11\xe0", b"\xff\xfe", b"\xfe\xff")):
        what = "legacy .xls (OLE2) workbook" if head.startswith(b"\xd0\xcf") else "UTF-16 text"
        raise UnsupportedFormat(f"{what} is not supported; save as XLSX or UTF-8 CSV")
    stripped = head.lstrip()
    if stripped.startswith(b"<"):
        return _xml_format(stripped)
    if _AQDEF_LINE.search(head[:4096]) and stripped.startswith(b"K"):
        return "aqdef"
    if stripped.startswith((b"{", b"[")):
        return "json"
    if _looks_like_text_table(head):
        return "csv"
    ext = _extension(filename)
    if ext in ("csv", "aqdef", "json"):
        return ext
    preview = stripped[:16]
    raise UnsupportedFormat(
        f"unrecognised content (starts with {preview!r}); expected PDF, XLSX, DCC/QIF XML, AQDEF, JSON or CSV",
        starts_with=preview.decode("latin-1"),
    )
