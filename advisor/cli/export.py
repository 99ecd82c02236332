"""Commands: `advisor export` (a trial's adapter as a loadable directory, or a multi-task
study's adapters as one bundle) and `advisor try` (answer a prompt with a trial's or a task's
adapter). The work is in `advisor.export`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from advisor.cli._common import console, err_console, print_json, user_errors
from advisor.errors import AdvisorInputError
from advisor.export.output import check_out_dir, out_path
from advisor.stores import keys

_STUDY_HELP = "A study name (looked up in ./mlruns) or a study file."
_STORAGE_HELP = "Optuna storage URL (default: sqlite under ./mlruns)."
_TRACKING_HELP = "MLflow tracking URI (default: sqlite under ./mlruns)."


def _open(study: str, storage: str | None, tracking_uri: str | None, *, tasks: bool = False) -> Any:
    """The recorded study, or with `tasks` each task's recorded study by task name."""
    import warnings

    from transformers.utils import logging as hf_logging

    from advisor.stores.records import open_recorded_study, open_task_studies  # lazy: MLflow

    # The spinner says what is happening; weight-loading bars and deprecation notices from
    # transformers/peft would only garble it.
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)

    opener = open_task_studies if tasks else open_recorded_study
    return opener(study, storage=storage, tracking_uri=tracking_uri)


def export_command(
    study: str = typer.Argument(..., metavar="STUDY", help=_STUDY_HELP),
    out_dir: Path | None = typer.Argument(
        None, metavar="[OUT_DIR]", help="Directory to write (new); or use --bundle."
    ),
    bundle: Path | None = typer.Option(
        None,
        "--bundle",
        metavar="OUT_DIR",
        help="For a study with tasks: write each task's best adapter over one base model.",
    ),
    trial: str = typer.Option("best", "--trial", help="'best' or a trial number."),
    merge: bool = typer.Option(
        False, "--merge", help="Merge the adapter into the base weights (a plain model)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace OUT_DIR if it is not empty."),
    register_model: bool = typer.Option(
        False, "--register", help="Also register the adapter in the MLflow model registry."
    ),
    storage: str | None = typer.Option(None, "--storage", help=_STORAGE_HELP),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_TRACKING_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Export a trial's adapter so transformers/peft load it offline, with a model card.

    Without --merge: `peft.AutoPeftModelForCausalLM.from_pretrained(OUT_DIR)`. With --merge:
    `transformers.AutoModelForCausalLM.from_pretrained(OUT_DIR)`. With --bundle (a study with
    tasks): `advisor.export.bundle.load_bundle(OUT_DIR).generate(TASK, prompts)`.
    """
    from advisor.export.adapter import export_trial  # lazy: MLflow, torch

    if (out_dir is None) == (bundle is None):
        raise AdvisorInputError(
            "give OUT_DIR (one study's trial) or --bundle OUT_DIR (a study with tasks), not "
            + ("both" if out_dir else "neither"),
            where="OUT_DIR",
            fix="e.g. `advisor export demo out/adapter` or `advisor export multi --bundle out/b`",
        )
    # The destination first: a refusal there needs no store opened, and comes in a second.
    destination, where = (out_dir, "OUT_DIR") if out_dir is not None else (bundle, "--bundle")
    assert destination is not None  # one of the two, checked above
    check_out_dir(out_path(destination), force, where=where)
    if bundle is not None:
        if merge or register_model:
            raise AdvisorInputError(
                "--merge and --register work on one trial, not a bundle",
                where="--bundle",
                fix="export one task's study (`advisor export STUDY.TASK OUT_DIR --merge`)",
            )
        _export_bundle(study, bundle, trial, force, storage, tracking_uri, as_json)
        return
    assert out_dir is not None
    with err_console.status("opening the study") as status:
        recorded = _open(study, storage, tracking_uri)
        result = export_trial(
            recorded,
            trial,
            out_dir,
            merge=merge,
            force=force,
            register=register_model,
            progress=lambda message: status.update(message),
        )
    if as_json:
        print_json(result.to_dict())
        return
    facts = result.facts
    kind = "merged model" if result.merged else "adapter"
    console.print(
        f"[green]exported[/] {kind} of study [bold]{escape(facts.study)}[/] trial {facts.trial} "
        f"to {escape(str(result.out_dir))}"
    )
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("method", facts.method)
    table.add_row("parameters", ", ".join(f"{k}={v}" for k, v in facts.params.items()))
    table.add_row(f"score ({facts.metric})", str(facts.results.get("score", "-")))
    table.add_row("gain over baseline", str(facts.gain_over_baseline))
    table.add_row("base model", escape(facts.base_model_dir))
    table.add_row("MLflow run", facts.run_id)
    table.add_row("files", ", ".join(result.files))
    if result.registered:
        table.add_row("registered", f"{result.registered[0]} version {result.registered[1]}")
    console.print(table)
    loader = "AutoModelForCausalLM" if result.merged else "peft.AutoPeftModelForCausalLM"
    console.print(f"load it with {loader}.from_pretrained({str(result.out_dir)!r})")


def _export_bundle(
    study: str,
    out_dir: Path,
    trial: str,
    force: bool,
    storage: str | None,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    from advisor.export.adapter import export_bundle  # lazy: MLflow, torch

    with err_console.status("opening the study's tasks") as status:
        tasks = _open(study, storage, tracking_uri, tasks=True)
        umbrella = next(iter(tasks.values())).study.user_attrs.get(keys.UMBRELLA, study)
        result = export_bundle(
            tasks,
            out_dir,
            study=umbrella,
            trial=trial,
            force=force,
            progress=lambda message: status.update(message),
        )
    if as_json:
        print_json(result.to_dict())
        return
    console.print(
        f"[green]exported[/] bundle of study [bold]{escape(result.study)}[/] "
        f"({len(result.tasks)} tasks) to {escape(str(result.out_dir))}"
    )
    table = Table("task", "study", "trial", "score", box=None, pad_edge=False)
    for task, facts in result.facts.items():
        score = facts.get("results", {}).get("score", "-")
        table.add_row(
            task, escape(facts["study"]), str(facts["trial"]), f"{facts['metric']} {score}"
        )
    console.print(table)
    console.print(f"base model: {escape(result.base_model_dir)}")
    console.print(f"load it with advisor.export.bundle.load_bundle({str(result.out_dir)!r})")


def try_command(
    study: str = typer.Argument(..., metavar="STUDY", help=_STUDY_HELP),
    prompt: str = typer.Argument(..., help="The user message to answer."),
    trial: str = typer.Option("best", "--trial", help="'best' or a trial number."),
    task: str | None = typer.Option(
        None, "--task", help="For a study with tasks: the task whose adapter answers."
    ),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="Tokens to generate."),
    storage: str | None = typer.Option(None, "--storage", help=_STORAGE_HELP),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_TRACKING_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
) -> None:
    """Answer PROMPT with the base model plus a trial's adapter (greedy, the study's system
    prompt and chat template), without exporting anything. For a study with tasks, --task
    names the task: its best trial's adapter answers, with the task's system prompt."""
    from advisor.export.trying import try_task, try_trial  # lazy: MLflow, torch

    if task is not None:
        with err_console.status("opening the study's tasks") as status:
            tasks = _open(study, storage, tracking_uri, tasks=True)
            number, answer = try_task(
                tasks,
                task,
                prompt,
                trial=trial,
                max_new_tokens=max_new_tokens,
                progress=lambda message: status.update(message),
            )
        if as_json:
            study_name = tasks[task].name
            print_json(
                {
                    "study": study_name,
                    "task": task,
                    "trial": number,
                    "prompt": prompt,
                    "answer": answer,
                }
            )
            return
        console.print(answer, markup=False, highlight=False)
        return
    with err_console.status("opening the study") as status:
        recorded = _open(study, storage, tracking_uri)
        number = recorded.resolve_trial(trial)
        answer = try_trial(
            recorded,
            number,
            prompt,
            max_new_tokens=max_new_tokens,
            progress=lambda message: status.update(message),
        )
    if as_json:
        print_json({"study": recorded.name, "trial": number, "prompt": prompt, "answer": answer})
        return
    console.print(answer, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add `export` and `try` to the app."""
    app.command("export")(user_errors(export_command))
    app.command("try")(user_errors(try_command))
