"""A small HTTP client for the service (standard library only): tests, the load benchmark and
scripts that would rather not depend on `requests`.

One `Client` holds one keep-alive connection; use one per thread.
"""

from __future__ import annotations

import http.client
import itertools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Requests to one service (`http://127.0.0.1:8321`), with its token when given."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token, self.timeout_s = token, timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        text: str | bytes | None = None,
        content_type: str = "application/yaml",
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request; a connection the server closed is reopened once."""
        sent = dict(headers or {})
        body: bytes | None = None
        if json_body is not None:
            body, sent["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif text is not None:
            body = text.encode() if isinstance(text, str) else text
            sent["Content-Type"] = content_type
        if self.token is not None:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=sent)
                reply = conn.getresponse()
                data = reply.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if reply.getheader("connection", "").lower() == "close":
                self.close()
            return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, data)
        raise AssertionError("unreachable")

    def get(self, path: str, **options: Any) -> Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> Response:
        return self.request("POST", path, **options)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        return self._conn


SAMPLE_TRAITS = [
    {"goal": goal, "examples": examples, "model": model, "vram_gb": vram, "priority": priority}
    for goal, examples, model, vram, priority in itertools.product(
        ("knowledge", "behaviour", "both"),
        (200, 5000, 200_000),
        ("llama-3-8b", "llama-2-70b", "smollm2-135m"),
        (8, 24, 80),
        ("quality", "cost"),
    )
]
"""162 `POST /v1/recommend` bodies that differ in every trait that drives the answer: the load
test (tests/test_serve.py) and the load benchmark (bench/serve_load.py) send them in turn."""
