"""Errors the user can fix. The CLI turns them into a message and exit code 2."""

from __future__ import annotations

from runners.errors import InputError


class AdvisorInputError(InputError):
    """Bad input: names what is wrong (option, field, file, line) and how to fix it.

    Raised by library code for anything the user can correct; never for bugs. The CLI prints
    `str(error)` and exits with code 2, like typer's own bad-parameter errors.
    """

    exit_code = 2
    fix_format = "\n  fix: {fix}"
