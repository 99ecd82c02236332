"""Bearer tokens: accepted in the `Authorization` header only, compared in constant time, and
kept out of the access log.

Writes always need the token, reads only with `read_requires_token`. Without a configured token
writes are refused with 403 (nobody can be authorised), and a missing or wrong token is a 401
with `WWW-Authenticate: Bearer`, as RFC 6750 asks.

A credential in the query string (`?token=`, `?access_token=`, `?api_key=`...) is refused with
400 before any route runs, although RFC 6750 allows `access_token` there: a URL ends up in proxy
logs, browser histories and the service's own access log. `QueryCredentials` hides the value in
the request before answering, and `AccessLogRedaction` hides secret parameters in every line of
uvicorn's access log, so the value is written nowhere.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import ClassVar
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Receive, Scope, Send

from advisor.redact import is_secret_name, redact_query, redact_target

from .errors import ServiceError
from .settings import TOKEN_ENV, ServeSettings

ACCESS_LOGGER = "uvicorn.access"


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


def secret_parameters(query: str) -> list[str]:
    """The names of the query's parameters that look like credentials, in order, once each."""
    names = []
    for item in query.replace(";", "&").split("&"):
        name, equals, _ = item.partition("=")
        name = unquote_plus(name)
        if equals and is_secret_name(name) and name not in names:
            names.append(name)
    return names


class QueryCredentials:
    """Answer 400 to a request with a credential in its query string, the value hidden first.

    The outermost middleware: nothing reads the request before it. The scope's query string is
    rewritten in place (`token=***`) because the server logs the request line from that same
    scope when the response starts.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"").decode("latin-1") if scope["type"] == "http" else ""
        names = secret_parameters(query)
        if not names:
            await self.app(scope, receive, send)
            return
        scope["query_string"] = redact_query(query).encode("latin-1")
        listed = ", ".join(repr(name[:40]) for name in names[:5])
        body = json.dumps(
            {
                "message": f"credentials are not accepted in the query string ({listed})",
                "fix": "send the token in the header `Authorization: Bearer TOKEN`, and replace "
                "it: a URL is kept by proxies, browser histories and logs",
                "where": names[0][:40],
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class AccessLogRedaction(logging.Filter):
    """Hide secret query and fragment parameters in uvicorn's access log lines.

    uvicorn logs `(client, method, path?query, http_version, status)` as the record's args;
    any string argument holding a `?` is redacted, whatever the request was answered.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_target(arg) if isinstance(arg, str) and "?" in arg else arg
                for arg in record.args
            )
        return True


def redact_access_log() -> None:
    """Install `AccessLogRedaction` on uvicorn's access logger, once per process.

    On the logger rather than a handler: `logging.config.dictConfig` (which uvicorn runs when it
    starts) replaces the logger's handlers but keeps its filters.
    """
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, AccessLogRedaction) for f in logger.filters):
        logger.addFilter(AccessLogRedaction())
