"""The `advisor` command line: thin commands over library functions.

Each command group lives in its own module and registers its commands here. Command modules
import typer, rich and advisor's light modules at module level; the library a command runs is
imported inside the command (each such import says what it keeps off `advisor --help`).
"""

from __future__ import annotations

import typer

from advisor import __version__
from advisor.cli import decide, export, rerun, review, scan, serve, studies, tuning, ui

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
    typer.echo(__version__)


for _module in (decide, studies, scan, tuning, review, rerun, export, ui, serve):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
