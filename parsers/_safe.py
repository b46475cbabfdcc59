"""Hardened readers shared by the parsers: XML without entities/network, zip archives without bombs.

XML (:func:`parse_xml`) runs lxml with ``resolve_entities=False``, ``no_network=True``, ``huge_tree=False``
and ``load_dtd=False``; any ``<!ENTITY`` declaration is refused as :class:`HostileInput` *before* libxml2
sees the bytes (and once more on the parsed DTD, for encodings the byte scan cannot read), and the element
depth is checked while parsing against ``Limits.max_xml_depth``.

Zip (:func:`open_zip`) inspects the central directory before anything is decompressed: member count, total
declared uncompressed size against ``Limits.max_uncompressed_bytes`` and the compression ratio against
``Limits.max_compression_ratio``. Python's ``zipfile`` never yields more than a member's declared size, so
checking the declared sizes bounds what a later reader (openpyxl) can inflate.
"""

from __future__ import annotations

import functools
import io
import re
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from parsers.errors import HostileInput, LimitExceeded, MalformedInput
from parsers.limits import Limits

__all__ = [
    "MAX_ZIP_MEMBERS",
    "Deadline",
    "LocalSchemaResolver",
    "XPathIndex",
    "check_size",
    "local_name",
    "open_zip",
    "parse_xml",
    "xpath_of",
]

MAX_ZIP_MEMBERS = 10_000
# Small members legitimately compress very well (e.g. a sheet of repeated zeros); the ratio check only
# applies to members large enough to matter.
_RATIO_MIN_MEMBER_BYTES = 1024 * 1024

_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ROOT_START = re.compile(rb"<[A-Za-z_]")
# libxml2 refuses deeper documents unless XML_PARSE_HUGE is set (we never set it)
_LIBXML2_MAX_DEPTH = 256
_THREAD = threading.local()


class Deadline:
    """Wall-clock budget of one parse (``Limits.max_seconds``), checked cheaply every ``every`` steps.

    Create it when parsing starts; call :meth:`tick` once per row/line/element (a clock read every
    ``every`` calls) and :meth:`check` at phase ends. Exceeding raises :class:`LimitExceeded` naming
    ``max_seconds``, with the ``location`` (row/line) where it was noticed.
    """

    __slots__ = ("_n", "every", "limits", "start", "what")

    def __init__(self, limits: Limits, *, what: str, every: int = 1024, start: float | None = None) -> None:
        self.limits = limits
        self.what = what
        self.every = max(1, every)
        self.start = time.monotonic() if start is None else start
        self._n = 0

    @property
    def due(self) -> bool:
        """True when the next :meth:`tick` reads the clock (lets callers build an expensive location lazily)."""
        return (self._n + 1) % self.every == 0

    def tick(self, location: str | None = None) -> None:
        """Count one step; every ``every`` steps, :meth:`check` the clock."""
        self._n += 1
        if self._n % self.every == 0:
            self.check(location)

    def tick_at(self, template: str, n: int) -> None:
        """:meth:`tick` with location ``template.format(n)``, formatted only when the clock is read.

        For per-row loops where building the location string every row would cost more than the tick.
        """
        self._n += 1
        if self._n % self.every == 0:
            self.check(template.format(n))

    def check(self, location: str | None = None) -> None:
        """Raise :class:`LimitExceeded` (``max_seconds``) if the parse has run longer than allowed."""
        elapsed = time.monotonic() - self.start
        if elapsed > self.limits.max_seconds:
            raise LimitExceeded(
                f"{self.what} parsing took {elapsed:.2f} s, longer than max_seconds={self.limits.max_seconds:g}",
                limit="max_seconds",
                allowed=self.limits.max_seconds,
                actual=round(elapsed, 2),
                location=location,
            )


def check_size(data: bytes, limits: Limits) -> None:
    """Raise :class:`LimitExceeded` (``max_bytes``) when ``data`` is larger than the limit."""
    if len(data) > limits.max_bytes:
        raise LimitExceeded(
            f"file is {len(data)} bytes, larger than max_bytes={limits.max_bytes}",
            limit="max_bytes",
            allowed=limits.max_bytes,
            actual=len(data),
        )


def _prolog(data: bytes) -> bytes:
    """Bytes before the root element (XML declaration, comments, DOCTYPE and its internal subset)."""
    pos = 0
    n = len(data)
    while pos < n:
        lt = data.find(b"<", pos)
        if lt < 0:
            return data
        nxt = data[lt + 1 : lt + 2]
        if nxt == b"?":
            end = data.find(b"?>", lt)
        elif data.startswith(b"<!--", lt):
            end = data.find(b"-->", lt)
        elif nxt == b"!":
            # DOCTYPE with an optional [internal subset]
            bracket = data.find(b"[", lt)
            close = data.find(b">", lt)
            if 0 <= bracket < close:
                end = data.find(b"]", bracket)
                end = data.find(b">", end) if end >= 0 else -1
            else:
                end = close
        elif _ROOT_START.match(data, lt):
            return data[:lt]
        else:
            end = data.find(b">", lt)
        if end < 0:
            return data
        pos = end + 1
    return data


def _xml_parser(blank_text: bool = True) -> etree.XMLParser:
    """This thread's hardened parser (an lxml parser serialises concurrent use, so one per thread).

    ``blank_text=False``: whitespace-only text between elements is dropped while parsing (libxml2's
    ``remove_blank_text``), which makes parsing and schema validation ~15 % cheaper; only for readers that
    never look at such text (the QIF/DCC mappings), never for signature checks (canonical XML keeps it).
    """
    name = "xml_parser" if blank_text else "xml_parser_no_blanks"
    parser: etree.XMLParser | None = getattr(_THREAD, name, None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            huge_tree=False,
            load_dtd=False,
            dtd_validation=False,
            remove_comments=True,
            remove_pis=True,
            remove_blank_text=not blank_text,
        )
        setattr(_THREAD, name, parser)
    return parser


@functools.lru_cache(maxsize=8)
def _deeper_than(max_depth: int) -> etree.XPath:
    """XPath that is true when an element sits deeper than ``max_depth`` (the root is depth 1).

    Evaluated by libxml2 level by level over the parsed tree: linear in the element count, no Python
    per element.
    """
    return etree.XPath("boolean(" + "/*" * (max_depth + 1) + ")")


def parse_xml(data: bytes, *, limits: Limits, what: str = "XML", blank_text: bool = True) -> etree._ElementTree:
    """Parse ``data`` as XML safely and return the lxml tree.

    Raises :class:`HostileInput` for entity declarations (XXE, billion laughs), :class:`LimitExceeded`
    for ``max_bytes``/``max_xml_depth``, :class:`MalformedInput` (with line/column) for broken XML.

    One libxml2 parse, no Python per element: libxml2 itself stops at depth 256 without ``huge_tree``
    (reported here as ``max_xml_depth`` too), and ``Limits.max_xml_depth`` is checked on the tree with
    one XPath. ``blank_text=False`` drops whitespace-only text between elements (see :func:`_xml_parser`).
    """
    check_size(data, limits)
    if _ENTITY_DECL.search(_prolog(data)):
        raise HostileInput(
            f"{what} declares entities (<!ENTITY>); entity declarations are refused "
            "(external-entity and entity-expansion attacks)",
            location="DOCTYPE",
        )
    max_depth = limits.max_xml_depth
    try:
        root = etree.fromstring(data, _xml_parser(blank_text))
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (None, None)
        if "Excessive depth" in (exc.msg or ""):
            cap = "" if max_depth < _LIBXML2_MAX_DEPTH else f" (libxml2 stops at {_LIBXML2_MAX_DEPTH} levels)"
            raise LimitExceeded(
                f"{what} nesting deeper than max_xml_depth={max_depth}{cap}",
                limit="max_xml_depth",
                allowed=max_depth,
                actual=f">{_LIBXML2_MAX_DEPTH}",
                location=f"line {line}, column {col}",
            ) from exc
        raise MalformedInput(f"{what} is not well-formed: {exc.msg}", location=f"line {line}, column {col}") from exc
    if root is None:  # pragma: no cover - libxml2 raises "Document is empty" instead
        raise MalformedInput(f"{what} has no root element")
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.system_url or docinfo.public_id:
        # never loaded (load_dtd=False, no_network=True); refused so that nothing downstream (a validator, a
        # signature canonicaliser) ever meets entity references the external subset would have declared
        raise HostileInput(
            f"{what} has a DOCTYPE with an external subset ({docinfo.system_url or docinfo.public_id!r}); "
            "external DTDs are refused (they are never fetched)",
            location="DOCTYPE",
        )
    dtd = docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise HostileInput(f"{what} declares entities in its DTD; refused", location="DOCTYPE")
    if docinfo.doctype:
        entity = next(root.iter(etree.Entity), None)
        if entity is not None:
            raise HostileInput(
                f"{what} references the undeclared entity {entity.text!r}; refused",
                location=f"line {entity.sourceline}",
            )
    if _deeper_than(max_depth)(root):
        raise LimitExceeded(
            f"{what} nesting deeper than max_xml_depth={max_depth}",
            limit="max_xml_depth",
            allowed=max_depth,
            actual=max_depth + 1,
        )
    return tree


def local_name(el: etree._Element) -> str:
    """Tag of ``el`` without its namespace."""
    tag = el.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else etree.QName(el).localname


def xpath_of(el: etree._Element) -> str:
    """Readable absolute path of ``el``: local names with a 1-based ``[n]`` among same-named siblings.

    Namespace prefixes are omitted (``/QIFDocument/Results/MeasurementResultsSet/MeasurementResults[2]``);
    the document's namespace is implied. For many elements of one document use :class:`XPathIndex`.
    """
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        tag = node.tag
        name = tag.rpartition("}")[2]
        parent = node.getparent()
        if parent is None:
            parts.append(name)
        else:
            before = sum(1 for _ in node.itersiblings(tag, preceding=True))
            if before or next(node.itersiblings(tag), None) is not None:
                parts.append(f"{name}[{before + 1}]")
            else:
                parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))


class XPathIndex:
    """:func:`xpath_of` for many elements of one tree, each parent's children numbered once.

    ``index(el)`` returns exactly ``xpath_of(el)``; the first look-up under a parent numbers all of that
    parent's children in one pass, so paths for every value of a large document cost linear time instead
    of quadratic. Keeps the elements it has seen alive: use one per parse, then drop it.
    """

    __slots__ = ("_paths",)

    def __init__(self) -> None:
        self._paths: dict[etree._Element, str] = {}

    def __call__(self, el: etree._Element) -> str:
        """The path of ``el`` (see :func:`xpath_of`)."""
        paths = self._paths
        path = paths.get(el)
        if path is not None:
            return path
        parent = el.getparent()
        if parent is None:
            path = "/" + el.tag.rpartition("}")[2]
            paths[el] = path
            return path
        base = paths.get(parent)
        if base is None:
            base = self(parent)
        children = list(parent)
        tags = [c.tag for c in children]
        if len(set(tags)) == len(tags):  # no two children share a tag (the usual case): no [n] anywhere
            for child, tag in zip(children, tags, strict=True):
                if isinstance(tag, str):
                    paths[child] = f"{base}/{_local_name(tag)}"
        else:
            totals: dict[Any, int] = {}
            for tag in tags:
                totals[tag] = totals.get(tag, 0) + 1
            seen: dict[str, int] = {}
            for child, tag in zip(children, tags, strict=True):
                if not isinstance(tag, str):
                    continue
                if totals[tag] > 1:
                    n = seen[tag] = seen.get(tag, 0) + 1
                    paths[child] = f"{base}/{_local_name(tag)}[{n}]"
                else:
                    paths[child] = f"{base}/{_local_name(tag)}"
        return paths[el]


@functools.lru_cache(maxsize=4096)
def _local_name(tag: str) -> str:
    """Local part of a Clark-notation tag (memoised: a document uses a few dozen distinct tags)."""
    return tag.rpartition("}")[2]


def open_zip(data: bytes, *, limits: Limits, what: str = "zip archive") -> zipfile.ZipFile:
    """Open ``data`` as a zip after checking it cannot be a decompression bomb.

    Raises :class:`LimitExceeded` naming ``max_bytes``, ``max_uncompressed_bytes`` or ``max_zip_members``,
    :class:`HostileInput` naming ``max_compression_ratio`` (or for absolute/parent paths), and
    :class:`MalformedInput` for a truncated/corrupt archive.
    """
    check_size(data, limits)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise MalformedInput(f"{what} is truncated or corrupt: {exc}") from exc
    if len(infos) > MAX_ZIP_MEMBERS:
        raise LimitExceeded(
            f"{what} has {len(infos)} members, more than max_zip_members={MAX_ZIP_MEMBERS}",
            limit="max_zip_members",
            allowed=MAX_ZIP_MEMBERS,
            actual=len(infos),
        )
    total = 0
    total_compressed = 0
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
            raise HostileInput(f"{what} member has an unsafe path {name!r}", location=name)
        total += info.file_size
        total_compressed += info.compress_size
        if info.file_size >= _RATIO_MIN_MEMBER_BYTES:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_compression_ratio:
                raise HostileInput(
                    f"{what} member {name!r} expands {ratio:.0f}x ({info.compress_size} -> {info.file_size} "
                    f"bytes), above max_compression_ratio={limits.max_compression_ratio:g}: "
                    "refused as a decompression bomb",
                    location=name,
                    limit="max_compression_ratio",
                    allowed=limits.max_compression_ratio,
                    actual=round(ratio, 1),
                )
    if total > limits.max_uncompressed_bytes:
        raise LimitExceeded(
            f"{what} would expand to {total} bytes, more than max_uncompressed_bytes={limits.max_uncompressed_bytes}",
            limit="max_uncompressed_bytes",
            allowed=limits.max_uncompressed_bytes,
            actual=total,
        )
    if total >= _RATIO_MIN_MEMBER_BYTES:
        ratio = total / max(total_compressed, 1)
        if ratio > limits.max_compression_ratio:
            raise HostileInput(
                f"{what} expands {ratio:.0f}x overall, above "
                f"max_compression_ratio={limits.max_compression_ratio:g}: refused as a decompression bomb",
                limit="max_compression_ratio",
                allowed=limits.max_compression_ratio,
                actual=round(ratio, 1),
            )
    return zf


class LocalSchemaResolver(etree.Resolver):
    """Lets libxml2 read XSDs below ``root`` only; any other URL (http, a file elsewhere) is refused.

    ``transform`` (optional) rewrites a schema file before libxml2 sees it (``parsers.qif`` drops identity
    constraints); refused URLs are listed in ``refused`` for the error message.
    """

    def __init__(self, root: Path, transform: Callable[[Path], bytes] | None = None) -> None:
        super().__init__()
        self.root = root.resolve()
        self.transform = transform
        self.refused: list[str] = []

    def resolve(self, system_url: str | None, public_id: str | None, context: Any) -> Any:
        path = Path(system_url.removeprefix("file://")) if system_url else None
        if path is not None and path.is_absolute():
            path = path.resolve()
            if path.is_relative_to(self.root) and path.is_file():
                if self.transform is not None:
                    return self.resolve_string(self.transform(path), context, base_url=str(path))
                return self.resolve_filename(str(path), context)
        self.refused.append(str(system_url))
        return self.resolve_string("", context)  # an empty document: the import fails, nothing is fetched
