"""Helpers every command shares: consoles, JSON output and the user-error boundary.

The boundary (`user_errors`) turns an `InputError` into a message and exit code 2, and a write
that its destination refused (`advisor schema > /dev/full`, a full disk, a closed pipe) into one
line on stderr and exit code 1: the output could not be delivered, which is no fault of the
input. Such an error carries no file name (only opening a file does), so the message names the
cause, not the stream.

Kept free of heavy imports: this module is loaded by `advisor --help`.
"""

from __future__ import annotations

import errno
import functools
import json
import math
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from runners.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])

# Rich falls back to 80 columns when output is not a terminal; logs and CI have room for
# wider tables, which stay readable instead of wrapping every cell.
_LOG_WIDTH = 120
console = Console(width=None if sys.stdout.isatty() else _LOG_WIDTH)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else _LOG_WIDTH)


def user_errors(func: F) -> F:
    """Turn an `InputError` (advisor's or a runner's) into a red message and exit code 2, and a
    write error on standard output into a message and exit code 1 (see the module docstring)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as error:
            # escape: messages quote YAML like `[metric]`, which rich would read as markup.
            message = escape(str(error))
            err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except OSError as error:
            if error.errno not in _OUTPUT_ERRNOS or error.filename is not None:
                raise
            _settle_stdout()
            if error.errno != errno.EPIPE:  # a closed pipe (`| head`) is the reader's choice
                err_console.print(
                    f"[bold red]error:[/] cannot write the output: "
                    f"{escape(error.strerror or str(error))}\n  fix: write it where there is "
                    "room (another file or disk)",
                    highlight=False,
                    soft_wrap=True,
                )
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


_OUTPUT_ERRNOS = frozenset({errno.EPIPE, errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG})
"""Errors of a write that the output's destination, not the command, caused."""


def _settle_stdout() -> None:
    """Flush what standard output holds; if it cannot take it either, point it at /dev/null, so
    that the interpreter's flush at exit does not fail again ('Exception ignored ... OSError')."""
    try:
        sys.stdout.flush()
        return
    except (OSError, ValueError):
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (captured output): nothing to redirect
        pass


def print_json(payload: Any) -> None:
    """One JSON object on stdout, nothing else: for scripts and `jq`.

    Strict JSON, which has no NaN or Infinity (`jq` and most parsers refuse Python's `NaN`):
    a measured value that is not finite (the eval loss of a diverged trial) prints as null.
    Inputs are finite (studies and traits refuse .nan/.inf), so nothing else becomes null.
    """
    text = json.dumps(finite_or_null(payload), indent=2, default=str, allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def finite_or_null(value: Any) -> Any:
    """`value` with every float that is not finite, at any depth, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value
