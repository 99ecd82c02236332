"""The `advisor` command line: thin commands over library functions.

Each command group lives in its own module and registers its commands here. Command modules
import only typer/rich at module level; the work (and torch) is imported inside the command.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="advisor",
    help=(
        "Decide how to adapt an LLM (RAG, full fine-tuning, SFT, LoRA, QLoRA, ...), then tune "
        "r, alpha, target_modules and learning rate with Optuna and track every trial in MLflow."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print advisor's version."""
    from advisor import __version__

    typer.echo(__version__)


def _register() -> None:
    from advisor.cli import decide, export, rerun, review, scan, serve, studies, tuning, ui

    for module in (decide, studies, scan, tuning, review, rerun, export, ui, serve):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
