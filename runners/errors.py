"""Errors a trial raises for problems the user can fix.

`runners` must not import `advisor`, so it has its own error type. It is a `ValueError` like
`advisor.errors.AdvisorInputError`; the orchestrator can map one onto the other. The message names
the field or file at fault and says how to fix it, so a failed trial is actionable from its
`TrialResult.error` alone.
"""

from __future__ import annotations


class TrialInputError(ValueError):
    """Bad trial input: a missing file, an unknown field, method or module, an unusable device."""

    def __init__(self, message: str, *, fix: str | None = None, where: str | None = None):
        self.message = message
        self.fix = fix
        self.where = where
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.where}: {self.message}" if self.where else self.message
        return f"{head} (fix: {self.fix})" if self.fix else head
