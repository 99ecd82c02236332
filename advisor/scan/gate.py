"""The data check before tuning: scan the study's files, refuse personal data unless allowed.

A study trains on its data for hours and logs what the model learnt; personal data in it ends up
in adapters, generations and logs. So `advisor tune` scans first and stops (exit 2) on any
e-mail address, phone, resident ID, card number or IP address, naming the rows, unless the study
sets `data.allow_pii: true` (e.g. synthetic values: say so in its description). The full report
is returned either way, for the study's MLflow run. `advisor validate` runs the same gate, so a
study it passes is not refused here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from advisor.errors import AdvisorInputError
from advisor.scan.core import ScanOptions, ScanReport
from advisor.scan.pii import PiiFinding
from advisor.scan.scanner import scan_files
from advisor.study.spec import StudySpec

ROWS_NAMED = 10
FIX = "remove or mask them, or set data.allow_pii: true in the study (and say why in description)"


def check_study_data(spec: StudySpec, *, tokens: bool = True) -> ScanReport:
    """Scan `spec.data.train` and `spec.data.eval` with the study's model, fields and length.

    Raises AdvisorInputError when they hold personal data and the study does not allow it.
    `tokens=False` counts lengths in words and loads no tokenizer (`advisor validate
    --no-check-model` reads nothing of the model); the refusal is the same either way.
    """
    report = scan_files(
        [spec.data.train, spec.data.eval],
        options=study_options(spec),
        model=spec.model.source if tokens else None,
        trust_remote_code=spec.model.trust_remote_code,
        gguf_file=spec.model.gguf_file,
        where="data",
    )
    problem = describe_pii(report)
    if problem is not None and not spec.data.allow_pii:
        raise AdvisorInputError(problem, fix=FIX, where="data")
    return report


def study_options(spec: StudySpec, **overrides: Any) -> ScanOptions:
    """Scan settings as the study trains: its fields, system prompt and sequence length."""
    settings: dict[str, Any] = {
        "prompt_field": spec.data.prompt_field,
        "response_field": spec.data.response_field,
        "max_seq_length": spec.train.max_seq_length,
        "system_prompt": spec.data.system_prompt,
        "format": spec.data.format,
        "chat_template": spec.model.chat_template,
    }
    settings.update({key: value for key, value in overrides.items() if value is not None})
    return ScanOptions(**settings)


def describe_pii(report: ScanReport) -> str | None:
    """`personal data in train.jsonl rows 3, 7 (email, phone); ...`, or None when there is none.

    The refusal's message, and the warning to print when a study allows personal data.
    """
    findings: list[PiiFinding] = report.results["pii"].findings
    if not findings:
        return None
    parts = [
        _describe_file(path, [f for f in findings if f.file == path])
        for path in dict.fromkeys(f.file for f in findings)
    ]
    return "personal data in " + "; ".join(parts)


def _describe_file(path: str, findings: Iterable[PiiFinding]) -> str:
    findings = list(findings)
    rows = sorted({f.row for f in findings})
    kinds = sorted({f.kind for f in findings})
    shown = ", ".join(map(str, rows[:ROWS_NAMED])) + (
        f" and {len(rows) - ROWS_NAMED} more" if len(rows) > ROWS_NAMED else ""
    )
    label = "row" if len(rows) == 1 else "rows"
    return f"{Path(path).name} {label} {shown} ({', '.join(kinds)})"
