"""Bearer-token checks: writes always need the token, reads only with `read_requires_token`.

Compared with `secrets.compare_digest` (constant time). Without a configured token writes are
refused with 403 (nobody can be authorised), and a missing or wrong token is a 401 with
`WWW-Authenticate: Bearer`, as RFC 6750 asks.
"""

from __future__ import annotations

import secrets
from typing import ClassVar

from .errors import ServiceError
from .settings import TOKEN_ENV, ServeSettings


class Unauthorized(ServiceError):
    status = 401
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class Forbidden(ServiceError):
    status = 403


def check_token(settings: ServeSettings, authorization: str | None, *, write: bool) -> None:
    """Raise Unauthorized/Forbidden unless the request may go on."""
    if not write and not settings.read_requires_token:
        return
    if settings.token is None:
        raise Forbidden(
            "writes are disabled: the service has no token configured",
            fix=f"start `advisor serve` with {TOKEN_ENV} set or --token-file FILE, then send "
            "`Authorization: Bearer TOKEN`",
        )
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized(
            "this request needs a bearer token",
            fix="send the header `Authorization: Bearer TOKEN`",
        )
    expected = settings.token.get_secret_value().encode()
    if not secrets.compare_digest(given.strip().encode(), expected):
        raise Unauthorized(
            "the bearer token is wrong",
            fix=f"send the token the service was started with ({TOKEN_ENV} or --token-file)",
        )
