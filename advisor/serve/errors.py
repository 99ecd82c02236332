"""Errors of the HTTP API: each maps to one status code and renders as `{message, fix, ...}`.

They extend `AdvisorInputError`, so library callers (and the CLI) treat them as bad input; the
app (`advisor.serve.app`) turns them into JSON with the status code named here. Every body goes
through `redact_text` on its way out: a store's error may quote its URL, credentials included.
"""

from __future__ import annotations

from typing import Any

from advisor.errors import AdvisorInputError
from advisor.redact import redact_text


class ServiceError(AdvisorInputError):
    """Bad input to the service: 422 unless a subclass says otherwise."""

    status = 422

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        where: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, fix=fix, where=where)
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response: always a message and a fix."""
        body: dict[str, Any] = {"message": self.message, "fix": self.fix or ""}
        if self.where:
            body["where"] = self.where
        if self.errors:
            body["errors"] = self.errors
        return body


class StudyNotFound(ServiceError):
    status = 404


class StudyConflict(ServiceError):
    status = 409


def error_body(error: AdvisorInputError) -> dict[str, Any]:
    """`{message, fix}` of any input error (a library's, not only the service's own), with the
    credentials of any URL it quotes hidden."""
    if isinstance(error, ServiceError):
        return _redacted(error.body())
    body: dict[str, Any] = {"message": error.message, "fix": error.fix or ""}
    if error.where:
        body["where"] = error.where
    return _redacted(body)


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value
