"""Errors for problems the user can fix, shared by runners and advisor.

`InputError` is the one base: it names where the problem is (an option, a YAML field, a file),
what is wrong, and the fix. `runners` must not import `advisor`, so the base lives here and
`advisor.errors.AdvisorInputError` extends it (the CLI maps any `InputError` to exit code 2).
A trial's `TrialResult.error` is a single line, so `TrialInputError` renders the fix inline.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input the user can correct; never a bug."""

    fix_format = " (fix: {fix})"

    def __init__(self, message: str, *, fix: str | None = None, where: str | None = None):
        self.message = message
        self.fix = fix
        self.where = where
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.where}: {self.message}" if self.where else self.message
        return head + self.fix_format.format(fix=self.fix) if self.fix else head


class TrialInputError(InputError):
    """Bad trial input: a missing file, an unknown field, method or module, an unusable device."""
