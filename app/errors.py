"""Gateway errors and their one mapping to HTTP.

::

    AppError                     a request cannot be served as asked
    ├── NotFound                 404: the thing does not exist *for this caller*
    ├── Forbidden                403: authenticated, but the role/party may not do this
    ├── Unauthenticated          401: no or unknown API key
    ├── Conflict                 409: e.g. an idempotency key reused with different content
    ├── InvalidRequest           422: well-formed but not acceptable (names the field)
    ├── PayloadTooLarge          413: an upload over the configured limit
    ├── TooManyRequests          429: e.g. locked out after repeated failed authentication (Retry-After)
    └── ServiceUnavailable       503: the chain node or another dependency is down

Errors of the other packages are translated here too: :class:`parsers.errors.ParseError` -> 422/413,
:class:`chain.errors.ChainError` -> 409 for a contract revert (named), 503 node down, 502 otherwise,
:class:`models.errors.ModelError` -> 422, SQLAlchemy's ``OperationalError`` (database unreachable, locked, a
failed commit) -> 503 ``storage_unavailable``. Bodies are always
``{"error": {"code": ..., "message": ..., ...facts}}`` and never carry a raw library traceback.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from chain.errors import ChainError, ContractRevert, NodeUnavailable
from parsers.errors import LimitExceeded, ParseError

__all__ = [
    "AppError",
    "Conflict",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthenticated",
    "install_error_handlers",
]

log = logging.getLogger(__name__)


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.message = message
        self.facts = facts

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.facts}}


class NotFound(AppError):
    status = 404
    code = "not_found"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class Unauthenticated(AppError):
    status = 401
    code = "unauthenticated"


class Conflict(AppError):
    status = 409
    code = "conflict"


class InvalidRequest(AppError):
    status = 422
    code = "invalid_request"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: float, **facts: Any) -> None:
        super().__init__(message, retry_after=retry_after, **facts)
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, **facts: Any) -> None:
        if retry_after is not None:
            facts["retry_after"] = retry_after
        super().__init__(message, **facts)
        self.retry_after = retry_after


def _json(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(status_code=status, content=body)


def install_error_handlers(app: FastAPI) -> None:
    """Map every domain error to its HTTP status in one place."""

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
        if isinstance(exc, TooManyRequests | ServiceUnavailable) and exc.retry_after is not None:
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        resp = _json(exc.status, exc.body())
        if headers:
            resp.headers.update(headers)
        return resp

    @app.exception_handler(ParseError)
    async def _parse_error(_: Request, exc: ParseError) -> JSONResponse:
        status = 413 if isinstance(exc, LimitExceeded) and exc.limit == "max_bytes" else 422
        return _json(status, {"error": exc.to_dict()})

    @app.exception_handler(ChainError)
    async def _chain_error(_: Request, exc: ChainError) -> JSONResponse:
        if isinstance(exc, ContractRevert):
            # the contract said no: a client error naming the custom error and its arguments
            args = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in exc.arguments.items()}
            body = {"code": "contract_revert", "message": str(exc), "revert": exc.name, "arguments": args}
            return _json(409, {"error": body})
        log.warning("chain error while serving a request: %s", exc)
        status = 503 if isinstance(exc, NodeUnavailable) else 502
        return _json(
            status, {"error": {"code": "chain_unavailable" if status == 503 else "chain_error", "message": str(exc)}}
        )

    @app.exception_handler(OperationalError)
    async def _storage_error(_: Request, exc: OperationalError) -> JSONResponse:
        # the database went away, is locked or full: nothing of this request was stored; the client may retry
        log.error("database error while serving a request: %s", exc.orig)
        resp = _json(
            503,
            {
                "error": {
                    "code": "storage_unavailable",
                    "message": "the database did not accept the write; nothing was stored, retry later",
                }
            },
        )
        resp.headers["Retry-After"] = "1"
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return _json(422, {"error": {"code": "invalid_request", "message": message, "problems": problems}})
