"""Errors the user can fix. The CLI turns them into a message and exit code 2."""

from __future__ import annotations


class AdvisorInputError(ValueError):
    """Bad input: names what is wrong (option, field, file, line) and how to fix it.

    Raised by library code for anything the user can correct; never for bugs. The CLI prints
    `str(error)` and exits with code 2, like typer's own bad-parameter errors.
    """

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None, where: str | None = None):
        self.message = message
        self.fix = fix
        self.where = where
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.where}: {self.message}" if self.where else self.message
        return f"{head}\n  fix: {self.fix}" if self.fix else head
