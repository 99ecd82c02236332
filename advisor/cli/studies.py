"""Commands for study files: `advisor validate FILE` and `advisor schema`.

`validate` runs every check `advisor tune` runs before it records anything, through the same
function (`advisor.study.preflight`): the study file and the files it names (each data file's
layout and rows), the target modules against the model's real layers, the chat template trials
will use (`--no-check-model` skips reading the model), and the personal-data gate on the data. A
study it passes is not refused by `tune` for its inputs (stores are tune's to open: validate
writes nothing; the preflight module's docstring lists what it skips).

Only typer/rich at module level; the study package (pydantic, yaml) is imported inside the
commands so that `advisor --help` stays instant.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from advisor.cli._common import console, print_json, user_errors
from advisor.redact import redact_url


def _format_values(values: Any) -> str:
    if isinstance(values, dict):
        return f"{values['low']} .. {values['high']}{', log' if values.get('log') else ''}"
    return ", ".join(map(str, values))


def study_summary(path: Path, *, check_model: bool) -> dict[str, Any]:
    """Load and validate the study, run `tune`'s checks before training (`preflight`: target
    modules and chat template unless not `check_model`, data layouts) and its data gate
    (personal data), as `tune` does; a JSON-ready summary."""
    from advisor.scan.gate import (  # lazy: the scanners, kept off `advisor --help`
        check_study_data,
        describe_pii,
    )
    from advisor.study import (  # lazy: pydantic, kept off `advisor --help`
        fixed_parameters,
        load_study,
        search_parameters,
        spec_hash,
    )
    from advisor.study.preflight import preflight  # lazy: pydantic, kept off `advisor --help`
    from advisor.study.tasks import expand_tasks  # lazy: pydantic, kept off `advisor --help`

    spec = load_study(path)
    checks = preflight(spec, check_model=check_model)
    data_checks = []
    for view in expand_tasks(spec) or [spec]:  # each task's data, as `tune` scans it
        report = check_study_data(view, tokens=check_model)
        data_checks.append(
            {
                "study": view.name,
                "files": [info.path for info in report.files],
                "rows": report.rows,
                "personal_data": describe_pii(report),  # only when data.allow_pii says so
                "layouts": [
                    {
                        "role": f.role,
                        "path": f.path,
                        "layout": f.layout,
                        "kind": f.kind,
                        "rows": f.rows,
                    }
                    for f in checks.files[view.name]
                ],
            }
        )
    size = spec.space_size()
    searched = {
        p.name: list(p.choices)
        if p.kind == "categorical"
        else {"low": p.low, "high": p.high, "log": p.log}
        for p in search_parameters(spec)
    }
    return {
        "file": str(path),
        "valid": True,
        "name": spec.name,
        "method": spec.method,
        "model": spec.model.source,
        "metric": spec.metric,
        "objectives": spec.objective_names(),
        "directions": spec.directions(),
        "searched": searched,
        "fixed": fixed_parameters(spec),
        "space_size": None if math.isinf(size) else int(size),
        "n_trials": spec.optuna.n_trials,
        "sampler": spec.optuna.sampler,
        "pruner": spec.optuna.pruner,
        "storage": redact_url(spec.storage) or "sqlite:///mlruns/optuna.db (default)",
        "tracking": redact_url(spec.tracking.uri) or "sqlite:///mlruns/mlflow.db (default)",
        "experiment": spec.tracking.experiment,
        "spec_hash": spec_hash(spec),
        "model_modules": checks.modules,
        "chat_template": checks.template,
        "data_checks": data_checks,
    }


def _render(summary: dict[str, Any]) -> None:
    size = summary["space_size"]
    console.print(
        f"[bold green]valid[/] {escape(summary['file'])}: study [bold]{summary['name']}[/], "
        f"method {summary['method']} on {escape(summary['model'])}, metric {summary['metric']}",
        highlight=False,
    )
    table = Table("parameter", "values", "searched")
    for name, values in summary["searched"].items():
        table.add_row(name, escape(_format_values(values)), "yes")
    for name, value in summary["fixed"].items():
        table.add_row(name, escape(str(value)), "fixed")
    console.print(table)
    console.print(
        f"space: {'continuous (infinite)' if size is None else f'{size} configurations'}; "
        f"{summary['n_trials']} trials, sampler {summary['sampler']}, pruner {summary['pruner']}; "
        f"objectives {' + '.join(summary['objectives'])} ({', '.join(summary['directions'])})",
        highlight=False,
        markup=False,
    )
    console.print(
        f"optuna: {summary['storage']}\nmlflow: {summary['tracking']} "
        f"(experiment {summary['experiment']})",
        highlight=False,
        markup=False,
    )
    if summary["model_modules"] is not None:
        console.print(
            f"model modules: {', '.join(summary['model_modules'])}", highlight=False, markup=False
        )
    else:
        console.print("model modules: not checked (--no-check-model)", highlight=False)
    template = summary["chat_template"] or "not checked (--no-check-model)"
    console.print(f"chat template: {template}", highlight=False, markup=False)
    for check in summary["data_checks"]:
        for file in check["layouts"]:
            console.print(
                f"data ({check['study']}): {file['role']} {Path(file['path']).name}: "
                f"{file['layout']} layout ({file['kind']}), {file['rows']} rows",
                highlight=False,
                markup=False,
            )
        names = ", ".join(Path(file).name for file in check["files"])
        found = check["personal_data"]
        verdict = f"{found} (allowed by data.allow_pii)" if found else "no personal data"
        console.print(
            f"data scan ({check['study']}): {check['rows']} rows of {names}: {verdict}",
            highlight=False,
            markup=False,
        )


def register(app: typer.Typer) -> None:
    """Add `validate` and `schema` to the app."""

    @app.command()
    @user_errors
    def validate(
        file: Path = typer.Argument(..., help="Study YAML file, e.g. studies/demo.yaml."),
        check_model: bool = typer.Option(
            True,
            "--check-model/--no-check-model",
            help="Check target_modules against the model's real module names and count data "
            "lengths in its tokens, as `advisor tune` does (reads the model's config and "
            "tokenizer; a few seconds). --no-check-model reads nothing of the model.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Validate a study file as `advisor tune` would, every problem at once (exit 2 when
        invalid): the file, its data (personal data included) and the model's modules."""
        summary = study_summary(file, check_model=check_model)
        if as_json:
            print_json(summary)
        else:
            _render(summary)

    @app.command()
    @user_errors
    def schema(
        out: Path | None = typer.Option(None, "--out", help="Write the schema to this file."),
    ) -> None:
        """Print the JSON Schema of study files (for editors and validators)."""
        from advisor.study import study_json_schema  # lazy: pydantic, kept off `advisor --help`

        text = json.dumps(study_json_schema(), indent=2) + "\n"
        if out is None:
            typer.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
            console.print(f"wrote {out}", highlight=False)
