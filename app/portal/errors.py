"""Portal errors: all are :class:`app.errors.AppError` subclasses, so the gateway's one handler maps them.

::

    AppError (app.errors)
    ├── LoginFailed        401: wrong email or password (never says which)
    ├── TooManyAttempts    429: login rate limit; ``retry_after`` seconds
    └── CsrfFailed         403: a state-changing request without this session's CSRF token
"""

from __future__ import annotations

from app.errors import AppError, Forbidden, Unauthenticated

__all__ = ["CsrfFailed", "LoginFailed", "TooManyAttempts"]


class LoginFailed(Unauthenticated):
    code = "login_failed"


class TooManyAttempts(AppError):
    status = 429
    code = "too_many_attempts"


class CsrfFailed(Forbidden):
    code = "csrf_failed"
