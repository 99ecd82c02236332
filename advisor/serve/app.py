"""The HTTP API (FastAPI): `/v1/recommend`, `/v1/estimate`, `/v1/studies...`, OpenAPI at /docs.

Routes are a few lines each over `advisor.serve.decisions` and `advisor.serve.studies`. Every
error answers JSON with a human `message` and a `fix`: bad input 422 (a study's problems listed
with their YAML path and line; a JSON body nested too deep or holding NaN/Infinity), unknown
study 404, name taken by a different study 409, body too large 413, writes without a token
401/403, a credential in the query string 400. Messages quote at most a short piece of what was
sent, and never a credential.

Importing this module imports neither torch, transformers, MLflow nor Optuna (checked by
tests/test_light_imports.py): recommend and estimate answer without them.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException

from advisor import __version__
from advisor.decide.traits import Traits
from advisor.errors import AdvisorInputError
from runners import jsonsafe

from .auth import QueryCredentials, check_token, redact_access_log
from .decisions import EstimateRequest, estimate_answer, recommend_answer
from .errors import ServiceError, error_body
from .limits import BodySizeLimit, JsonBodyLimit
from .settings import ServeSettings
from .studies import StudyService

API_DESCRIPTION = """Decide how to adapt an LLM, then tune it: the advisor CLI over HTTP.

`POST /v1/recommend` and `POST /v1/estimate` answer like `advisor recommend --json` and
`advisor estimate --json`. `POST /v1/studies` takes a study file (YAML), validates it, and
prepares it for `advisor worker` processes, which train; the service never trains.
Writes need `Authorization: Bearer TOKEN`; reads too when the service runs with --read-token.
"""

_bearer = HTTPBearer(auto_error=False, description="The service's token (ADVISOR_SERVE_TOKEN).")


def _reader(request: Request, _: Any = Depends(_bearer)) -> None:
    check_token(request.app.state.settings, request.headers.get("authorization"), write=False)


def _writer(request: Request, _: Any = Depends(_bearer)) -> None:
    check_token(request.app.state.settings, request.headers.get("authorization"), write=True)


def create_app(settings: ServeSettings) -> FastAPI:
    """The service for `settings`: routes under /v1, OpenAPI at /docs and /openapi.json.

    Middlewares, outermost first: CORS (when configured), `QueryCredentials`, `BodySizeLimit`,
    `JsonBodyLimit`; and uvicorn's access log redacts secret query parameters.
    """
    settings.check()
    redact_access_log()
    app = FastAPI(
        title="advisor",
        version=__version__,
        description=API_DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.studies = StudyService(settings)
    app.include_router(_decisions_router())
    app.include_router(_studies_router())
    _add_error_handlers(app)
    app.add_middleware(JsonBodyLimit)  # the last added runs first: this one runs last
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(QueryCredentials)
    if settings.cors_origins:  # no CORS middleware at all unless origins are configured
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def _decisions_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["decide"])

    @router.get("/health", summary="Liveness: no token needed")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @router.post("/recommend", dependencies=[Depends(_reader)], summary="advisor recommend")
    def recommend(traits: Traits, request: Request) -> dict[str, Any]:
        """Rank the methods for these traits, with reasons, memory and starting values."""
        return recommend_answer(traits, request.app.state.studies.roots)

    @router.post("/estimate", dependencies=[Depends(_reader)], summary="advisor estimate")
    def estimate(body: EstimateRequest, request: Request) -> dict[str, Any]:
        """Training-memory breakdown of one method on one model."""
        return estimate_answer(body, request.app.state.studies.roots)

    return router


_STUDY_BODY = {
    "requestBody": {
        "required": True,
        "description": 'The study file: YAML text, or JSON {"yaml": "..."}.',
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"yaml": {"type": "string"}},
                    "required": ["yaml"],
                }
            },
        },
    }
}


def _studies_router() -> APIRouter:
    router = APIRouter(prefix="/v1/studies", tags=["studies"])

    @router.get("", dependencies=[Depends(_reader)], summary="List the stored studies")
    def list_studies(request: Request) -> list[dict[str, Any]]:
        return request.app.state.studies.list_studies()

    @router.get("/{name}", dependencies=[Depends(_reader)], summary="One study in detail")
    def describe(name: str, request: Request) -> dict[str, Any]:
        return request.app.state.studies.describe(name)

    @router.post(
        "",
        dependencies=[Depends(_writer)],
        status_code=201,
        openapi_extra=_STUDY_BODY,
        summary="Submit a study file (validated, then run by `advisor worker`)",
    )
    async def submit(request: Request) -> JSONResponse:
        text = _study_text(await request.body(), request.headers.get("content-type", ""))
        created, answer = await run_in_threadpool(request.app.state.studies.submit, text)
        return JSONResponse(answer, status_code=201 if created else 200)

    @router.post("/{name}/stop", dependencies=[Depends(_writer)], summary="Start no new trial")
    def stop(name: str, request: Request) -> dict[str, Any]:
        return request.app.state.studies.stop(name)

    return router


def _study_text(body: bytes, content_type: str) -> str:
    """The YAML text of a submission: the body itself, or the `yaml` field of a JSON body."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError(
            "the request body is not UTF-8 text", fix="send the study file as UTF-8"
        ) from None
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            loaded = jsonsafe.loads(text)
        except jsonsafe.UnsafeJson as error:
            raise ServiceError(
                f"the JSON body is {error}", fix='send {"yaml": "<study file>"}'
            ) from None
        except json.JSONDecodeError as error:
            raise ServiceError(
                f"the JSON body is not valid: {error.msg}", fix='send {"yaml": "<study file>"}'
            ) from None
        text = loaded.get("yaml") if isinstance(loaded, dict) else None
        if not isinstance(text, str):
            raise ServiceError(
                'a JSON body must be an object with a "yaml" string',
                fix='send {"yaml": "<study file>"}, or the YAML itself as application/yaml',
            )
    if not text.strip():
        raise ServiceError("the study file is empty", fix="send the study file's YAML")
    return text


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as JSON with a message and a fix."""

    @app.exception_handler(AdvisorInputError)
    async def input_error(request: Request, error: AdvisorInputError) -> JSONResponse:
        status = getattr(error, "status", 422)
        headers = getattr(error, "headers", None)
        return JSONResponse(error_body(error), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_validation_problem(item) for item in error.errors()]
        body = {
            "message": f"{len(problems)} problem(s) in the request: "
            + "; ".join(f"{p['path']}: {p['message']}" for p in problems),
            "fix": "; ".join(f"{p['path']}: {p['fix']}" for p in problems),
            "errors": problems,
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if isinstance(error.detail, dict):  # ours (limits.BodyTooLarge): message and fix
            body = error.detail
        else:
            body = {"message": str(error.detail), "fix": _HTTP_FIXES.get(error.status_code, "")}
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)


_HTTP_FIXES = {
    400: "send a valid JSON object (see the fields at /docs)",
    404: "see the API's paths at /docs (all under /v1/)",
    405: "see the methods each path accepts at /docs",
}
_VALIDATION_FIXES = {
    "missing": "add the field",
    "extra_forbidden": "remove the field (the API's fields are listed at /docs)",
    "literal_error": "use one of {expected}",
    "greater_than": "use a value greater than {gt}",
    "greater_than_equal": "use a value of at least {ge}",
    "less_than": "use a value less than {lt}",
    "less_than_equal": "use a value of at most {le}",
    "finite_number": "use a finite number",
    "string_too_long": "use at most {max_length} characters",
    "json_invalid": "send a valid JSON object",
}


def _validation_problem(item: dict[str, Any]) -> dict[str, Any]:
    """One pydantic error as {path, message, fix}; `body.` dropped from the path."""
    loc = [str(part) for part in item.get("loc", ()) if part != "body"]
    template = _VALIDATION_FIXES.get(item.get("type", ""), "check the field's type at /docs")
    try:
        fix = template.format(**(item.get("ctx") or {}))
    except (KeyError, IndexError):
        fix = template
    message = str(item.get("msg", "invalid"))
    if "input" in item and item.get("type") not in ("missing", "extra_forbidden"):
        message += f" (got {_shown(item['input'])})"
    return {"path": ".".join(loc) or "(body)", "message": message, "fix": fix}


SHOWN_CHARS = 80
"""Of a refused value, at most this much is quoted back (a body may be 256 KiB of brackets)."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} chars)"
