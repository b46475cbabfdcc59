"""Run :func:`parsers.parse` (and a lab report's signature check) in a separate, memory-capped process with a
wall-clock timeout.

``parse`` itself checks sizes, rows, pages, decompressed bytes and (between rows/pages) time, but it cannot
bound the memory a library allocates (pdfminer, openpyxl, lxml) or stop a single call that never returns.
:func:`parse_guarded` adds both bounds by running ``parse`` in a child process:

* memory: the child sets ``RLIMIT_AS`` to its own address-space size at start plus
  ``Limits.max_memory_bytes``, i.e. the limit is what *parsing this one file* may add on top of an idle
  worker. An allocation beyond it raises :class:`MemoryError` in the child (or the kernel kills it); either
  becomes :class:`LimitExceeded` naming ``max_memory_bytes``;
* time: the parent waits ``Limits.max_seconds`` plus a small grace period for the answer, then kills the
  child and raises :class:`LimitExceeded` naming ``max_seconds``.

The child sends back the :class:`ParsedFile` (as its JSON form, rebuilt and re-validated here) or the
``ParseError`` it raised, re-raised in the parent as the same subclass with the same ``code``, ``message``,
``location`` and facts. :func:`verify_signature_guarded` runs a lab report's signature check the same way:
pyHanko, signxml and the XML reader work on the whole file again there, so they get the same bounds.
Children come from a ``forkserver`` whose process has the parser modules (and the shipped DCC schemas) loaded
once, so a guarded parse costs a fork, not an interpreter start; where ``forkserver`` is unavailable, ``spawn``
is used. One child per file, never reused.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from parsers import errors as _errors
from parsers.errors import LimitExceeded, ParseError
from parsers.limits import Limits
from parsers.model import ParsedFile

if TYPE_CHECKING:
    from parsers.signature_model import SignatureInfo
    from parsers.signatures import TrustStore

__all__ = ["GRACE_SECONDS", "parse_guarded", "verify_signature_guarded"]

GRACE_SECONDS = 2.0  # on top of max_seconds: process start-up and pickling the answer
_PRELOAD = ["parsers._preload"]
_PARSING = "parsing"
# how a process that ran out of address space dies when Python cannot raise MemoryError: the kernel's OOM
# killer (SIGKILL), a C library's abort() (SIGABRT) or a failed allocation dereferenced (SIGSEGV)
_MEMORY_SIGNALS = {signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV}
_EXIT_MEMORY = 86  # the child's exit code when even sending "out of memory" failed
_RESERVE_BYTES = 4 * 1024 * 1024
_NEAR_CAP_BYTES = 32 * 1024 * 1024


def _address_space_bytes() -> int | None:
    """Current virtual memory size of this process (Linux ``/proc/self/statm``), or None elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    import resource

    return pages * resource.getpagesize()


def _cap_memory(extra: int) -> int:
    import resource

    base = _address_space_bytes() or 0
    cap = base + extra
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    return cap


def _reached_cap(cap: int | None) -> bool:
    """Whether this process's peak address space came within :data:`_NEAR_CAP_BYTES` of ``cap``: libxml2 (lxml,
    signxml) reports a failed allocation as its own error ("unknown error", a C14N failure), not MemoryError."""
    if cap is None:
        return False
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            peak_kib = next(int(line.split()[1]) for line in fh if line.startswith("VmPeak:"))
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return peak_kib * 1024 >= cap - _NEAR_CAP_BYTES


def _child(conn: Connection, target: Callable[..., BaseModel], data: bytes, kwargs: dict[str, Any]) -> None:
    """Child body: cap memory, run ``target`` (parse or check a signature), send ``("ok", json)`` or
    ``("error", ...)`` / ``("memory", None)``."""
    import os

    limits: Limits = kwargs["limits"]
    reserve: bytearray | None = None
    cap = None
    try:
        cap = _cap_memory(limits.max_memory_bytes)
        reserve = bytearray(_RESERVE_BYTES)  # released on MemoryError so the answer can still be sent
        result = target(data, **kwargs)
        message: tuple[str, Any] = ("ok", result.model_dump(mode="json"))
    except MemoryError:
        message = ("memory", None)
    except LimitExceeded as exc:
        message = ("error", (type(exc).__name__, exc.message, exc.location, dict(exc.facts)))
    except ParseError as exc:  # e.g. "not well-formed: unknown error": libxml2 out of memory
        message = (
            ("memory", None)
            if _reached_cap(cap)
            else ("error", (type(exc).__name__, exc.message, exc.location, dict(exc.facts)))
        )
    except BaseException as exc:  # a library out of memory under the cap, else a bug the parent raises as a crash
        message = ("memory", None) if _reached_cap(cap) else ("crash", f"{type(exc).__name__}: {exc}")
    del reserve
    try:
        conn.send(message)
        conn.close()
    except MemoryError:
        os._exit(_EXIT_MEMORY)


def _parsed_from_json(doc: dict[str, Any]) -> ParsedFile:
    """Rebuild the child's :class:`ParsedFile` from its JSON form (its ``report`` typed as ``LabReport``)."""
    if doc.get("report") is not None:
        from parsers.report_model import LabReport

        doc = {**doc, "report": LabReport.model_validate(doc["report"])}
    return ParsedFile.model_validate(doc)


def _rebuild(name: str, message: str, location: str | None, facts: dict[str, Any]) -> ParseError:
    cls = getattr(_errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, ParseError)):
        return ParseError(message, location=location, **facts)
    if issubclass(cls, LimitExceeded):
        limit = facts.pop("limit", "unknown")
        allowed = facts.pop("allowed", None)
        actual = facts.pop("actual", None)
        return cls(message, limit=limit, allowed=allowed, actual=actual, location=location, **facts)
    return cls(message, location=location, **facts)


def _memory_error(limits: Limits, detail: str, doing: str = _PARSING) -> LimitExceeded:
    return LimitExceeded(
        f"{doing} needed more memory than max_memory_bytes={limits.max_memory_bytes} ({detail})",
        limit="max_memory_bytes",
        allowed=limits.max_memory_bytes,
    )


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods and sys.platform.startswith("linux"):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def parse_guarded(
    data: bytes,
    *,
    filename: str | None = None,
    declared_format: str | None = None,
    limits: Limits = Limits(),  # noqa: B008
    target: Callable[..., ParsedFile] | None = None,
) -> ParsedFile:
    """Like :func:`parsers.parse`, but in a child process capped by ``max_memory_bytes`` and ``max_seconds``.

    Returns the same :class:`ParsedFile`; raises the same :class:`ParseError` subclasses, plus
    :class:`LimitExceeded` naming ``max_memory_bytes`` (MemoryError or the child killed) or ``max_seconds``
    (no answer within ``max_seconds + GRACE_SECONDS``; the child is killed). ``target`` replaces
    :func:`parsers.parse` (a module-level function, so the child can import it); tests use it to simulate a
    parser that hangs. A non-ParseError exception in the child is a parser bug and raises ``RuntimeError``.
    """
    if target is None:
        from parsers import parse

        target = parse
    kwargs = {"filename": filename, "declared_format": declared_format, "limits": limits}
    return _parsed_from_json(_run_guarded(target, data, kwargs, limits, _PARSING))


def verify_signature_guarded(
    data: bytes,
    fmt: str,
    *,
    trust: TrustStore,
    trusted_signers: dict[str, str],
    limits: Limits = Limits(),  # noqa: B008
) -> SignatureInfo:
    """:func:`parsers.signatures.verify_report_signature` in a child process with the bounds of
    :func:`parse_guarded` (its errors name "checking the signature")."""
    from parsers.signature_model import SignatureInfo
    from parsers.signatures import verify_report_signature_from_der

    kwargs = {"fmt": fmt, "trust_der": trust.to_der(), "trusted_signers": dict(trusted_signers), "limits": limits}
    payload = _run_guarded(verify_report_signature_from_der, data, kwargs, limits, "checking the signature")
    return SignatureInfo.model_validate(payload)


def _run_guarded(
    target: Callable[..., BaseModel], data: bytes, kwargs: dict[str, Any], limits: Limits, doing: str
) -> Any:
    """``target(data, **kwargs)`` in a capped child; its answer as JSON, or its error raised here."""
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, target, data, kwargs), daemon=True)
    proc.start()
    send.close()
    try:
        if not recv.poll(limits.max_seconds + GRACE_SECONDS):
            raise LimitExceeded(
                f"{doing} did not finish within max_seconds={limits.max_seconds:g} "
                f"(+{GRACE_SECONDS:g} s grace); its child process was stopped",
                limit="max_seconds",
                allowed=limits.max_seconds,
            )
        try:
            kind, payload = recv.recv()
        except (EOFError, OSError):
            proc.join(5)
            code = proc.exitcode
            if code is not None and -code in _MEMORY_SIGNALS:
                raise _memory_error(limits, f"its child process was killed by signal {-code}", doing) from None
            if code == _EXIT_MEMORY:
                raise _memory_error(limits, "MemoryError in its child process", doing) from None
            raise RuntimeError(f"{doing}: the child process exited with code {code} before answering") from None
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
    if kind == "ok":
        return payload
    if kind == "memory":
        raise _memory_error(limits, "out of memory in its child process", doing)
    if kind == "error":
        name, message, location, facts = payload
        raise _rebuild(name, message, location, facts)
    raise RuntimeError(f"{doing} crashed in the guarded process: {payload}")
