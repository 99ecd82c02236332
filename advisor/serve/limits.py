"""Request-body limit: 413 when Content-Length, or the body as it streams in, exceeds it.

A plain ASGI middleware (no BaseHTTPMiddleware: it would buffer the body first). A declared
Content-Length over the limit is refused before the body is read; a chunked body is counted as
it arrives and the request ends at the first byte over the limit, so a client cannot make the
service hold more than `max_bytes` of one request in memory.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_body(limit: int) -> dict[str, str]:
    return {
        "message": f"the request body is larger than the service's limit of {limit} bytes",
        "fix": "send a smaller body (a study file is a few KiB), or start `advisor serve` with "
        "a larger --max-body-kb",
    }


class BodyTooLarge(HTTPException):
    """Raised while reading a body over the limit; the app renders it as 413 JSON."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=too_large_body(limit))


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await _send_413(send, self.max_bytes)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps(too_large_body(limit)).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
