"""Command: `advisor scan` — look at instruction data before it costs GPU hours.

Only typer/rich at module level; the scan package is imported inside the command, and a
tokenizer (transformers, torch) only when a model is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from advisor.cli._common import console, err_console, print_json, user_errors
from advisor.errors import AdvisorInputError
from runners.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from advisor.scan import Rule, ScanOptions, ScanReport

FAIL_ON_HELP = (
    "Exit 1 when a rule trips, for pipelines: comma-separated measures with optional "
    "thresholds, e.g. 'pii,duplicates>5%,empty>0,truncated>10%,lang!=en'. Measures: pii, "
    "pii:email|phone|cn_id|card|ip, duplicates, exact_duplicates, near_duplicates, empty, "
    "truncated, lang!=CODE[|CODE]."
)


def _options(
    study: Path | None,
    prompt_field: str | None,
    response_field: str | None,
    max_seq_length: int | None,
    near_threshold: float,
    languages: str | None,
    data_format: str | None = None,
    chat_template: str | None = None,
) -> tuple[ScanOptions, list[str], dict[str, object]]:
    """Scan options, the study's data files and the study's model settings (if a study)."""
    from advisor.scan import ScanOptions  # lazy: pydantic, kept off `advisor --help`
    from advisor.scan.gate import study_options  # lazy: pydantic, kept off `advisor --help`

    langs = tuple(code.strip() for code in languages.split(",")) if languages else None
    overrides = {
        "prompt_field": prompt_field,
        "response_field": response_field,
        "max_seq_length": max_seq_length,
        "near_threshold": near_threshold,
        "languages": langs,
        "format": data_format,
        "chat_template": chat_template,
    }
    if study is None:
        return ScanOptions(**{k: v for k, v in overrides.items() if v is not None}), [], {}
    from advisor.study import load_study  # lazy: pydantic, kept off `advisor --help`
    from advisor.study.tasks import expand_tasks  # lazy: pydantic, kept off `advisor --help`

    spec = load_study(study)
    model = {
        "model": spec.model.source,
        "trust_remote_code": spec.model.trust_remote_code,
        "gguf_file": spec.model.gguf_file,
    }
    specs = expand_tasks(spec) if spec.tasks else [spec]  # every task's files, scanned as one
    files = [path for one in specs for path in (one.data.train, one.data.eval)]
    study_defaults = {"format": spec.data.format, "chat_template": spec.model.chat_template}
    overrides = {
        key: value if value is not None else study_defaults.get(key)
        for key, value in overrides.items()
    }
    return study_options(specs[0], **overrides), files, model


_OPTION_OF = {
    "data.prompt_field": "--prompt-field",
    "data.response_field": "--response-field",
    "data.format": "--format",
    "model.chat_template": "--chat-template",
}
"""The study keys the layouts' errors name -> this command's options (without --study)."""


def _in_options(error: InputError, keys: set[str]) -> AdvisorInputError:
    """The layouts' (or templates') error with the study `keys` said as this command's options:
    `set --format`, not `set data.format`, for a setting typed on the command line."""

    def said(text: str) -> str:
        for key, option in _OPTION_OF.items():
            if key in keys:
                text = text.replace(key, option)
        return text

    where = said(error.where) if error.where else None
    return AdvisorInputError(said(error.message), fix=said(error.fix or ""), where=where)


def _fail(report: ScanReport, rules: list[Rule]) -> list[str]:
    from advisor.scan import evaluate_fail_on  # lazy: pydantic, kept off `advisor --help`

    return evaluate_fail_on(report, rules) if rules else []


def register(app: typer.Typer) -> None:
    """Add `scan` to the app."""

    @app.command()
    @user_errors
    def scan(
        data: list[Path] | None = typer.Argument(
            None,
            help="Data files: JSONL, JSON array, CSV, Parquet or a saved dataset's folder, in any "
            "layout (chat messages, ShareGPT, Alpaca, prompt/completion, prompt/response, raw "
            "text); default with --study: its train and eval files. Several files are scanned "
            "together: duplicates across them show.",
        ),
        study: Path | None = typer.Option(
            None,
            "--study",
            help="A study file: its data files, fields, system prompt, model and max_seq_length "
            "are the defaults.",
        ),
        model: str | None = typer.Option(
            None,
            "--model",
            help="Count tokens with this model's tokenizer: a preset (smollm2-135m), a local HF "
            "directory or a .gguf file. Without it (and without --study), lengths are words.",
        ),
        data_format: str | None = typer.Option(
            None,
            "--format",
            help="The data's layout: messages, sharegpt, alpaca, prompt_completion, "
            "prompt_response or text (default: detected from the rows, or the study's "
            "data.format).",
        ),
        chat_template: str | None = typer.Option(
            None,
            "--chat-template",
            help="Measure conversations through this chat template: auto (the tokenizer's own, "
            "else plain), model, chatml, plain or a Jinja file (default: the study's, or auto). "
            "Needs --model or --study.",
        ),
        prompt_field: str | None = typer.Option(
            None,
            "--prompt-field",
            help="The prompt_response layout's request field (default: prompt); other layouts "
            "are detected without it.",
        ),
        response_field: str | None = typer.Option(
            None,
            "--response-field",
            help="The prompt_response layout's answer field (default: response).",
        ),
        max_seq_length: int | None = typer.Option(
            None,
            "--max-seq-length",
            help="Sequences longer than this are reported as truncated (default: 128, or the "
            "study's train.max_seq_length).",
        ),
        near_threshold: float = typer.Option(
            0.8,
            "--near-threshold",
            help="Jaccard similarity (5-character shingles) from which two rows are near "
            "duplicates, between 0 and 1.",
        ),
        languages: str | None = typer.Option(
            None,
            "--languages",
            help="Candidate languages for language ID, comma-separated ISO 639 codes, or 'all' "
            "(default: 29 widely used languages).",
        ),
        fail_on: str | None = typer.Option(None, "--fail-on", help=FAIL_ON_HELP),
        report_file: Path | None = typer.Option(
            None, "--report", help="Also write the report to FILE (.md, .html or .json)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    ) -> None:
        """Scan training data: its layout and turns, token lengths through the chat template and
        truncation, language mix, instruction complexity, exact and near duplicates, personal
        data in every turn, and rows training would refuse."""
        from advisor.scan import (  # lazy: pydantic, kept off `advisor --help`
            parse_fail_on,
            scan_files,
            write_report,
        )
        from advisor.scan.report import (  # lazy: pydantic, kept off `advisor --help`
            check_report_path,
        )
        from advisor.scan.terminal import render  # lazy: pydantic, kept off `advisor --help`

        rules = parse_fail_on(fail_on) if fail_on else []
        options, study_files, study_model = _options(
            study,
            prompt_field,
            response_field,
            max_seq_length,
            near_threshold,
            languages,
            data_format,
            chat_template,
        )
        files = [str(path) for path in data] if data else study_files
        if not files:
            raise AdvisorInputError(
                "no data to scan",
                fix="give one or more data files, e.g. `advisor scan data/train.jsonl`, "
                "or a study with --study",
                where="DATA",
            )
        if report_file is not None:  # before the scan: a bad path is the only output
            check_report_path(report_file, files)
        if model is not None:
            study_model = {"model": model}
        if chat_template is not None and not study_model:
            raise AdvisorInputError(
                "--chat-template renders conversations for a tokenizer, and no model is named: "
                "lengths would be words",
                fix="add --model (a preset, local HF directory or .gguf) or --study",
                where="--chat-template",
            )
        try:
            report = scan_files(files, options=options, **study_model)  # type: ignore[arg-type]
        except InputError as error:
            given = {
                "data.prompt_field": prompt_field,
                "data.response_field": response_field,
                "data.format": data_format,
                "model.chat_template": chat_template,
            }  # a setting the study made keeps its key; one typed here is named as typed
            keys = {key for key, value in given.items() if study is None or value is not None}
            raise _in_options(error, keys) from None
        tripped = _fail(report, rules)
        if as_json:
            payload = report.to_dict()
            payload["fail_on"] = {"rules": fail_on, "tripped": tripped}
            print_json(payload)
        else:
            render(report, console)
        if report_file is not None:
            written = write_report(report, report_file)
            (err_console if as_json else console).print(f"wrote {written}", highlight=False)
        for line in tripped:
            err_console.print(f"[bold red]fail-on:[/] {escape(line)}", highlight=False)
        if tripped:
            raise typer.Exit(code=1)
