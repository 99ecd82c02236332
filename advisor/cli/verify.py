"""`advisor recommend --verify`: its options, its run and how it prints.

The work is `advisor.tuning.verify` (the candidates, the budget, the study, the tune) and the
per-method report (`advisor.review.methods`, the table `advisor report` shows); this module joins
them into one `verification` object (the `--json` output's key) and renders it beside the
recommendation. Like every command module it imports only typer and rich at module level: the
options are declared here so that `recommend`'s signature names them in one line each.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from advisor.cli._common import console

PANEL = "Verify on your data"
VERIFY = typer.Option(
    False,
    "--verify",
    help="Measure the top candidates that run here: a small comparison study on a slice of "
    "--train, scored on --eval, recorded in ./mlruns like `advisor tune`; prints the measured "
    "ranking beside the rules' and where they disagree.",
    rich_help_panel=PANEL,
)
BUDGET = typer.Option(
    30.0,
    "--budget-minutes",
    help="Wall time --verify may spend: sets the training steps per trial (costs measured on "
    "CPU, BENCHMARKS.md, scaled by the model's size).",
    rich_help_panel=PANEL,
)


def check_verify(
    *,
    train: Path | None,
    eval_file: Path | None,
    knowledge: Path | None,
    model: str,
    study_model: bool,
    budget: float,
) -> None:
    """Refuse --verify's bad options before anything is read or written."""
    from advisor.tuning.verify import check_options  # lazy: Optuna and MLflow, only with --verify

    check_options(
        train=train,
        eval_file=eval_file,
        knowledge=knowledge,
        model=model,
        model_option="--study-model" if study_model else "--model",
        budget=budget,
    )


def run_verification(
    recommendation: Any,
    *,
    model: str,
    train: Path,
    eval_file: Path,
    knowledge: Path | None,
    budget_minutes: float,
    metric: str | None,
    layout: str | None,
    fields: tuple[str, str],
) -> dict[str, Any]:
    """Tune the comparison study, read its per-method report; the `verification` object.
    `layout` is the data's (None: detected); `fields` the prompt_response layout's."""
    from advisor.review.build import report_study  # lazy: Optuna and MLflow
    from advisor.tuning.verify import (  # lazy: Optuna, MLflow and the tuner
        disagreements,
        measured_rows,
        verify,
    )

    data: dict[str, Any] = {"format": layout} if layout else {}
    if layout in (None, "prompt_response"):
        data.update(prompt_field=fields[0], response_field=fields[1])
    done = verify(
        recommendation,
        model=model,
        train=train,
        eval_file=eval_file,
        knowledge=knowledge,
        budget_minutes=budget_minutes,
        metric=metric,
        data=data,
    )
    report = report_study(done.study, make_plots=False, log_plots=False)
    rows = measured_rows(done.candidates, report.methods)
    return {
        "study": done.study,
        "study_file": done.study_file,
        "metric": report.metric,
        "direction": report.directions[0],
        "baseline_score": report.baseline_score,
        "methods": [asdict(row) for row in rows],
        "rule_ranking": [line.method for line in recommendation.ranking],
        "skipped": done.skipped,
        "disagreements": disagreements(rows, direction=report.directions[0]),
        "budget": asdict(done.budget),
        "elapsed_seconds": round(done.summary.elapsed_seconds, 1) if done.summary else None,
    }


def render_verification(verification: dict[str, Any]) -> None:
    """The measured ranking beside the rules' and the disagreements, for people."""
    from rich.table import Table

    budget = verification["budget"]
    console.print(
        f"\n[bold]Verified on your data[/]: study {verification['study']} "
        f"({budget['max_steps']} steps x batch {budget['batch_size']} on the first "
        f"{budget['train_rows']} training rows, {budget['eval_rows']} eval examples; "
        f"{verification['elapsed_seconds']} s)",
        highlight=False,
    )
    table = Table()
    for column in ("measured", "method", "rules' rank", verification["metric"], "trial", "time"):
        table.add_column(column, justify="left" if column == "method" else "right")
    sign = 1 if verification["direction"] == "maximize" else -1
    scores = [row["score"] for row in verification["methods"] if row["score"] is not None]
    for row in verification["methods"]:
        score, wall = row["score"], row["wall_seconds"]
        place = 1 + sum(sign * other > sign * score for other in scores) if score is not None else 0
        table.add_row(
            str(place) if score is not None else "-",
            row["method"],
            str(row["rule_rank"]),
            "-" if score is None else f"{score:.3g}",
            "-" if row["trial"] is None else f"#{row['trial']}",
            "-" if wall is None else f"{wall:.0f} s",
        )
    console.print(table)
    baseline = verification["baseline_score"]
    if baseline is not None:
        console.print(f"untuned baseline: {verification['metric']} {baseline:.3g}")
    for method, why in verification["skipped"].items():
        console.print(f"not run here: {method} ({why})", highlight=False)
    said = verification["disagreements"]
    if said:
        console.print("[bold]Where the measurement disagrees with the rules[/]:")
        for line in said:
            console.print(f"  - {line}", highlight=False)
    else:
        console.print("The measurement agrees with the rules' order.")
    console.print(
        f"Recorded in ./mlruns like any study: `advisor report {verification['study']}`; the "
        "next `advisor recommend` here learns from it.",
        highlight=False,
    )
