"""Request bodies bounded before anything parses them: a pure ASGI middleware.

It runs outside FastAPI, so a body is checked before the route's body is decoded and before any dependency
(authentication included) does work:

- size: ``Content-Length`` over the route's limit is refused at once (413, nothing read); a body without one
  (chunked) is counted while it streams and refused (413) as soon as it passes the limit. Routes taking
  multipart uploads get ``max_upload_bytes``; every other route ``max_json_bytes``.
- NUL (``\\u0000`` in a JSON body, ``%00`` in the URL) is refused with 422: PostgreSQL text cannot hold it.
- JSON nesting depth: non-form bodies (at most ``max_json_bytes``, so buffering them is cheap) are scanned
  without recursion; more than ``max_json_depth`` levels of ``[``/``{`` is refused with 422. Python's JSON
  decoder recurses per level in C, and web3's ``py_ecc`` raises the recursion limit to 100,000 at import, so
  a 200 KB body of brackets would otherwise overflow the C stack and kill the process.

Both answers use the gateway's one error shape ``{"error": {"code", "message", ...}}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyLimitMiddleware", "json_depth_exceeds"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_FORM_TYPES = (b"multipart/form-data", b"application/x-www-form-urlencoded")
_MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers on top of the file bytes


def json_depth_exceeds(body: bytes, max_depth: int) -> bool:
    """True when ``body`` nests arrays/objects deeper than ``max_depth`` (brackets inside strings ignored)."""
    depth = 0
    in_string = False
    escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


class BodyLimitMiddleware:
    """Bound request bodies by size (per route) and JSON nesting depth before the app sees them."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        upload_paths: Callable[[], list[re.Pattern[str]]],
        max_upload_bytes: int,
        max_json_bytes: int,
        max_json_depth: int,
    ) -> None:
        self.app = app
        self._upload_paths = upload_paths
        self.max_upload_bytes = max_upload_bytes
        self.max_json_bytes = max_json_bytes
        self.max_json_depth = max_json_depth

    def _is_upload_route(self, scope: Scope) -> bool:
        path = scope.get("path", "")
        return any(p.match(path) for p in self._upload_paths())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await _error(send, 422, "invalid_request", "NUL characters are not accepted in the URL")
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        content_type = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
        is_form = content_type in _FORM_TYPES
        upload = is_form and self._is_upload_route(scope)
        limit = self.max_upload_bytes + _MULTIPART_OVERHEAD if upload else self.max_json_bytes
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _error(send, 400, "bad_request", "Content-Length is not a number")
                return
            if size > limit:
                await _too_large(send, size, limit, upload)
                return
        if upload or is_form:
            await self._stream_counted(scope, receive, send, limit, upload)
            return
        await self._buffered_json(scope, receive, send, limit)

    async def _buffered_json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Read the whole (small) body, check its size and depth, then replay it to the app."""
        chunks: list[bytes] = []
        total = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                await _too_large(send, None, limit, False)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if b"\\u0000" in body or b"\x00" in body:
            # PostgreSQL text cannot hold NUL and no field needs it: refuse it once, here, for every route
            await _error(send, 422, "invalid_request", "NUL characters are not accepted in the request body")
            return
        if json_depth_exceeds(body, self.max_json_depth):
            await _error(
                send,
                422,
                "invalid_request",
                f"JSON body nests deeper than {self.max_json_depth} levels",
                limit="max_json_depth",
                allowed=self.max_json_depth,
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _stream_counted(self, scope: Scope, receive: Receive, send: Send, limit: int, upload: bool) -> None:
        """Pass a large (form) body through while counting; past the limit answer 413 and cut the app off."""
        total = 0
        started = False
        refused = False

        async def counted() -> Message:
            nonlocal total, refused
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > limit:
                    if not started and not refused:
                        refused = True
                        await _too_large(send, None, limit, upload)
                    # the app sees a client that went away and stops reading
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted, guarded_send)


async def _too_large(send: Send, size: int | None, limit: int, upload: bool) -> None:
    name = "max_upload_bytes" if upload else "max_json_bytes"
    allowed = limit - _MULTIPART_OVERHEAD if upload else limit
    what = f"request body of {size} bytes" if size is not None else "request body"
    await _error(
        send, 413, "payload_too_large", f"{what} exceeds the limit of {allowed} bytes", limit=name, allowed=allowed
    )


async def _error(send: Send, status: int, code: str, message: str, **facts: Any) -> None:
    body = json.dumps({"error": {"code": code, "message": message, **facts}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
