"""`advisor serve`: the decision service (recommend, estimate, studies) over HTTP.

Thin: options become a `ServeSettings`, which refuses unsafe combinations (a public address
without a token) before anything listens; uvicorn serves `advisor.serve.app.create_app`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from advisor.cli._common import err_console, user_errors


def serve_command(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind. Other than loopback only with a token."
    ),
    port: int = typer.Option(8321, "--port", min=0, max=65535, help="TCP port."),
    token_file: Path | None = typer.Option(
        None,
        "--token-file",
        help="File holding the bearer token for writes (not world-readable); default: the "
        "ADVISOR_SERVE_TOKEN environment variable. Without a token, writes answer 403.",
    ),
    data_roots: list[Path] = typer.Option(
        [],
        "--data-root",
        help="Folder that submitted studies may read (repeatable; default: the current "
        "folder). Relative paths in a study start at the first.",
    ),
    studies_dir: Path = typer.Option(
        Path("served-studies"), "--studies-dir", help="Where submitted study files are written."
    ),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Optuna storage for every submitted study (default sqlite:///mlruns/optuna.db); "
        "PostgreSQL for workers on several machines.",
    ),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI (default sqlite:///mlruns/mlflow.db)."
    ),
    read_token: bool = typer.Option(
        False, "--read-token", help="Require the token for reads, recommend and estimate too."
    ),
    cors_origins: list[str] = typer.Option(
        [], "--cors-origin", help="Allow this browser origin (repeatable). Default: no CORS."
    ),
    max_body_kb: int = typer.Option(
        256, "--max-body-kb", min=1, help="Largest request body in KiB (413 above)."
    ),
    mlflow_ui_url: str | None = typer.Option(
        None, "--mlflow-ui-url", help="MLflow UI base URL: run links become full UI URLs."
    ),
) -> None:
    """Serve recommend, estimate and studies over HTTP (OpenAPI docs at /docs).

    Submitted studies are validated, written to --studies-dir and prepared in the stores;
    `advisor worker FILE` processes run them (the answer gives the exact command).
    """
    import uvicorn

    from advisor.serve.app import create_app  # lazy: FastAPI, kept off `advisor --help`
    from advisor.serve.settings import ServeSettings  # lazy: FastAPI, pydantic
    from advisor.serve.settings import read_token as load_token  # lazy: FastAPI, pydantic

    settings = ServeSettings(
        host=host,
        port=port,
        token=load_token(token_file),
        read_requires_token=read_token,
        cors_origins=cors_origins,
        max_body_bytes=max_body_kb * 1024,
        data_roots=[root.resolve() for root in data_roots] or [Path.cwd()],
        studies_dir=studies_dir.resolve(),
        root=Path.cwd(),
        storage=storage,
        tracking_uri=tracking_uri,
        mlflow_ui_url=mlflow_ui_url,
    )
    app = create_app(settings)
    writes = "token required" if settings.token else "disabled (no token configured)"
    err_console.print(f"advisor serve on http://{host}:{port} (docs: /docs) · writes {writes}")
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)


def register(app: typer.Typer) -> None:
    """Add `serve` to the app."""
    app.command("serve")(user_errors(serve_command))
