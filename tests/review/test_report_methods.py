"""The per-method table and verdict of a study that searched the method (`review/methods.py`),
on hand-made rows: each method's best trial, the winner against the runner-up cost for cost."""

from __future__ import annotations

from io import StringIO

from rich.console import Console
from support import synthetic_report

from advisor.cli.review import render_report
from advisor.review.decision import decide
from advisor.review.methods import method_summaries
from advisor.review.report import ReportRow


def _row(number: int, params: dict, score: float | None, cost: float, state: str = "complete"):
    return ReportRow(
        number,
        state,
        params,
        score=score,
        gain=None if score is None else score - 0.2,
        wall_seconds=cost * 1000,
        cost_usd=cost,
        peak_memory_mb=100.0 * (number + 1),
        device="cpu",
        values=None if score is None else [score],
    )


ROWS = [
    _row(0, {"method": "lora", "r": 8}, 0.62, 0.20),
    _row(1, {"method": "rag", "top_k": 3}, 0.81, 0.01),
    _row(2, {"method": "lora", "r": 4}, 0.55, 0.10),
    _row(3, {"method": "full"}, None, 0.3, state="pruned"),
]


def test_each_method_is_its_best_trial_best_method_first() -> None:
    summaries = method_summaries(ROWS, "maximize")
    assert [(s.method, s.best_trial, s.complete, s.trials) for s in summaries] == [
        ("rag", 1, 1, 1),
        ("lora", 0, 2, 2),
        ("full", None, 0, 1),
    ]
    assert (summaries[1].score, summaries[1].cost_usd, summaries[1].peak_memory_mb) == (
        0.62,
        0.20,
        100.0,
    )
    assert method_summaries([_row(0, {"r": 8}, 0.5, 0.1)], "maximize") == []  # one method


def test_the_decision_names_the_winning_method_and_its_cost() -> None:
    report = synthetic_report(ROWS)
    report.methods = method_summaries(ROWS, "maximize")
    decision = decide(report)
    assert decision.startswith(
        "rag wins on this data: exact_match 0.81 against lora's 0.62, at $0.01 against $0.2; "
        "trial 1 (method=rag, top_k=3): +61 points over the untuned baseline"
    ), decision
    out = StringIO()
    render_report(report, Console(file=out, width=160))
    table = out.getvalue()
    assert "per method (its best trial)" in table
    cells = [line.replace("│", " ").split() for line in table.splitlines()]
    assert [c[:4] for c in cells if c[:1] == ["rag"]] == [["rag", "1/1", "1", "0.810"]]


def test_fixed_settings_name_a_methods_own_value() -> None:
    """Seen on the shipped comparison: full fine-tuning's own learning rate
    (search.per_method) was missing from "fixed settings", which showed LoRA's rate alone."""
    from types import SimpleNamespace

    from advisor.review.build import _study_settings

    spec = {
        "method": "lora",
        "search": {
            "method": ["lora", "full"],
            "r": 16,
            "learning_rate": 5e-3,
            "per_method": {"full": {"learning_rate": 1e-4}},
        },
    }
    recorded = SimpleNamespace(spec=SimpleNamespace(model_dump=lambda mode: spec))
    method, fixed = _study_settings(recorded)
    assert method == "lora, full"
    assert fixed == {"r": 16, "learning_rate": 5e-3, "full.learning_rate": 1e-4}
