"""`advisor tune`'s live table as a log (or `2>&1`) receives it: whole lines, the study's
summary below the table's bottom border, not on it."""

from __future__ import annotations

import io

from rich.console import Console

from advisor.cli.tuning import LiveTable
from advisor.tuning.summary import TrialRow, TuneSummary


def _summary() -> TuneSummary:
    return TuneSummary(
        study="demo",
        metric="json_match",
        directions=["maximize"],
        objectives=["score"],
        stores={},
        parent_run_id=None,
    )


def _render(*, terminal: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=100, color_system=None)
    with LiveTable(console) as view:
        view.study_started(_summary(), max_steps=4, n_new=1)
        row = TrialRow(number=0, state="complete", params={"r": 8}, score=0.75, wall_seconds=3.0)
        view.trial_finished(row, None)
    console.print("1 trials (1 complete, 0 pruned, 0 failed) in 3 s")
    return out.getvalue()


def test_the_summary_starts_below_the_table_in_a_log() -> None:
    text = _render(terminal=False)
    lines = text.splitlines()
    border = max(i for i, line in enumerate(lines) if line.startswith("└"))
    assert lines[border].rstrip().endswith("┘"), lines[border]
    assert lines[border + 1] == "1 trials (1 complete, 0 pruned, 0 failed) in 3 s"
    assert text.endswith("in 3 s\n")


def test_a_terminal_gets_no_blank_line_added() -> None:
    """On a terminal rich ends the line itself; a second newline would leave a gap."""
    text = _render(terminal=True)
    assert "┘\n1 trials" in text.replace("\x1b[?25h", "")
