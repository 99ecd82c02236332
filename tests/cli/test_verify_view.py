"""How `advisor recommend --verify` prints (issue 17, item 3): the measured place (ties share
it), the rule rank, score, trial and time per candidate, the methods not run here and why, and
each disagreement with the rules. Rendered from a made-up verification into a fixed-width
console."""

from __future__ import annotations

import pytest

from advisor.tuning.verify import Measured, disagreements


def test_the_verification_prints_measured_places_rule_ranks_and_disagreements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from io import StringIO

    from rich.console import Console

    from advisor.cli import verify as view

    out = StringIO()
    monkeypatch.setattr(view, "console", Console(file=out, width=120))
    rows = [Measured("rag", 2, 0.81, 1, 4.0), Measured("lora", 1, 0.62, 0, 9.0)]
    rows += [Measured("full", 3, 0.62, 2, 30.0), Measured("dora", 4, None)]
    view.render_verification(
        {
            "study": "verify-smol-0123abcd",
            "metric": "json_match",
            "direction": "maximize",
            "baseline_score": 0.1,
            "methods": [vars(row) for row in rows],
            "skipped": {"qlora": "needs bitsandbytes, which is not installed"},
            "disagreements": disagreements(rows, direction="maximize"),
            "budget": {"max_steps": 20, "batch_size": 4, "train_rows": 80, "eval_rows": 32},
            "elapsed_seconds": 61.0,
        }
    )
    lines = [" ".join(line.replace("│", " ").split()) for line in out.getvalue().splitlines()]
    assert "1 rag 2 0.81 #1 4 s" in lines
    assert "2 lora 1 0.62 #0 9 s" in lines and "2 full 3 0.62 #2 30 s" in lines  # tied: 2nd
    assert "- dora 4 - - -" in lines
    assert "not run here: qlora (needs bitsandbytes, which is not installed)" in lines
    assert "- rules rank lora over rag; measured rag 0.81 vs lora 0.62" in lines
    assert "- dora: no complete trial, so not compared" in lines
