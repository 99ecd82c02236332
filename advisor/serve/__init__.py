"""`advisor serve`: recommend, estimate and studies over HTTP (FastAPI + uvicorn).

The service decides and queues; it never trains. A submitted study is validated like `advisor
tune` validates it, written as a self-contained study file and prepared in the shared Optuna and
MLflow stores; `advisor worker` processes run it. `create_app(settings)` builds the ASGI app.
Importing the package imports FastAPI, never Optuna, MLflow or torch.
"""

from __future__ import annotations

from .app import create_app
from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
