"""Request bodies within bounds: their size (413), and the nesting and numbers of JSON (422).

Plain ASGI middlewares (no BaseHTTPMiddleware: it would buffer the body first). `BodySizeLimit`
refuses a declared Content-Length over the limit before the body is read; a chunked body is
counted as it arrives and the request ends at the first byte over the limit, so a client cannot
make the service hold more than `max_bytes` of one request in memory.

`JsonBodyLimit`, inside it, reads a JSON body (which the size limit has bounded) through
`runners.jsonsafe` before FastAPI parses it: Python's `json` recurses once per nesting level, so
a body nested 100,000 deep would end in a RecursionError (FastAPI answers it with a 400 saying
nothing), and it reads `1e400` as infinity and `NaN` as a number, which validate as "greater
than 0" and leave the service answering about infinite memory. Refused with 422 naming the field.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runners import jsonsafe


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
    # Closed after the answer: the rest of the body was never read.
    await _send_json(send, 413, too_large_body(limit), close=True)


class JsonBodyLimit:
    """422 for a JSON body nested deeper than `jsonsafe.MAX_DEPTH` or holding a number that is
    not finite; any other body goes to the app unchanged (malformed JSON included: FastAPI
    names its position)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before sending it all
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problems = json_problems(body)
        if problems:
            await _send_json(send, 422, _problems_body(problems))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for a disconnect, as usual
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def json_problems(body: bytes) -> list[dict[str, str]]:
    """What makes `body` unsafe JSON, each as {path, message, fix}; [] when it is safe or is
    no JSON at all (the app reports that)."""
    try:
        text = body.decode("utf-8")
        jsonsafe.loads(text)
    except jsonsafe.UnsafeJson as error:
        if jsonsafe.nesting_depth(text) > jsonsafe.MAX_DEPTH:
            return [
                {
                    "path": "(body)",
                    "message": f"the JSON body is {error}",
                    "fix": "send a flat JSON object (no request of this API nests more than a "
                    "few levels)",
                }
            ]
        return [
            {
                "path": path,
                "message": f"{number} is not a number JSON allows"
                if number in _CONSTANTS
                else f"the number {number[:40]} is out of a float's range",
                "fix": "send a finite number in the field's range (see /docs)",
            }
            for path, number in _non_finite(
                json.loads(text, parse_float=_Number, parse_constant=_Number)
            )
        ]
    except ValueError:  # not UTF-8, not JSON: the route's own parsing says so
        return []
    return []


_CONSTANTS = ("NaN", "Infinity", "-Infinity")
"""What Python's `json` reads as non-finite floats although JSON has no such values."""


class _Number(str):
    """A number's text as written, kept so that a non-finite one can be found with its path."""


def _non_finite(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, text) of each non-finite number in a parsed body; the depth is already bounded."""
    if isinstance(value, _Number):
        return [] if math.isfinite(float(value)) else [(path or "(body)", str(value))]
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    found = []
    for key, item in items:
        found += _non_finite(item, f"{path}.{key}" if path else str(key))
    return found


def _problems_body(problems: list[dict[str, str]]) -> dict[str, Any]:
    """The same shape as the app's answer to a request pydantic refuses."""
    return {
        "message": f"{len(problems)} problem(s) in the request: "
        + "; ".join(f"{p['path']}: {p['message']}" for p in problems),
        "fix": "; ".join(f"{p['path']}: {p['fix']}" for p in problems),
        "errors": problems,
    }


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI would parse the body as JSON: no (or an empty) content type, or
    application/json or application/*+json."""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            kind = value.decode("latin-1").split(";")[0].strip().lower()
            return kind in ("", "application/json") or (
                kind.startswith("application/") and kind.endswith("+json")
            )
    return True


async def _send_json(
    send: Send, status: int, payload: dict[str, Any], *, close: bool = False
) -> None:
    body = json.dumps(payload).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
