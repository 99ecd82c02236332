"""`advisor serve`: recommend, estimate and studies over HTTP (FastAPI + uvicorn).

The service decides and queues; it never trains. A submitted study is validated like `advisor
tune` validates it, written as a self-contained study file and prepared in the shared Optuna and
MLflow stores; `advisor worker` processes run it. `create_app(settings)` builds the ASGI app.
"""

from __future__ import annotations

from typing import Any

from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def create_app(settings: ServeSettings) -> Any:
    """The FastAPI app for `settings` (FastAPI is imported here, not by `import advisor.serve`)."""
    from .app import create_app as build

    return build(settings)
