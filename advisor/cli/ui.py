"""`advisor ui`: browse the recorded studies in the MLflow UI."""

from __future__ import annotations

import typer
from rich.markup import escape

from advisor.cli._common import console, err_console, user_errors
from advisor.redact import redact_url
from advisor.stores import ui as ui_lib


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command(name="ui")(ui)


@user_errors
def ui(
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Interface to bind. Anything but loopback exposes the UI, which has no "
        "authentication, to other machines.",
    ),
    port: int = typer.Option(5000, "--port", min=1, max=65535, help="Port to listen on."),
    tracking_uri: str | None = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow store to show. Default: the project's sqlite:///<cwd>/mlruns/mlflow.db.",
    ),
) -> None:
    """Serve the MLflow UI over the study records (experiments, trial runs, curves, adapters)
    until Ctrl-C."""
    tracking_uri = tracking_uri or ui_lib.project_tracking_uri()
    ui_lib.check_store(tracking_uri)
    warning = ui_lib.exposure_warning(host, port)
    if warning:
        err_console.print(f"[bold yellow]{escape(warning)}[/]", highlight=False, soft_wrap=True)
    console.print(
        f"starting the MLflow UI over {escape(redact_url(tracking_uri))} ...",
        highlight=False,
        soft_wrap=True,
    )
    with ui_lib.start_ui(tracking_uri, host=host, port=port) as server:
        console.print(f"MLflow UI: {server.url}  (Ctrl-C to stop)", highlight=False)
        pages = ui_lib.study_pages(tracking_uri, server.url)
        if pages:  # MLflow's own links open its GenAI overview; these open the runs table
            console.print("studies (latest first; each link opens its runs table):")
            for study, link in pages:
                console.print(f"  {escape(study)}: {link}", highlight=False, soft_wrap=True)
        try:
            code = server.wait()
        except KeyboardInterrupt:
            console.print("stopping the MLflow UI ...", highlight=False)
            return
    if code:
        err_console.print(f"[bold red]error:[/] the MLflow UI exited with code {code}")
        raise typer.Exit(code=1)
