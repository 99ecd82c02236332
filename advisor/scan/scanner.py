"""Run the registered checks over one or more data files and collect one report.

Several files are scanned as one set of rows (each row keeps its file), so that duplicates across
files show: an eval example that is also in the train file is reported as a cross-file cluster.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from advisor.errors import AdvisorInputError
from advisor.scan.core import (
    FileInfo,
    Row,
    ScanContext,
    ScanOptions,
    ScanReport,
    TextCounter,
    read_rows,
)
from advisor.scan.lengths import load_counter
from advisor.scan.registry import CHECKS


def scan_files(
    paths: Sequence[str | Path],
    *,
    options: ScanOptions | None = None,
    model: str | None = None,
    trust_remote_code: bool = False,
    gguf_file: str | None = None,
    counter: TextCounter | None = None,
    checks: Sequence[str] | None = None,
    where: str = "DATA",
) -> ScanReport:
    """Scan `paths` (JSONL, JSON, CSV, Parquet, saved datasets; any layout of
    `runners.layouts`) with every check (or those named in `checks`).

    Lengths are tokens of `model` (a preset, local HF directory or .gguf file) when given, else
    words; pass a ready `counter` to reuse a loaded tokenizer.
    """
    options = options or ScanOptions()
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [name for name in names if name not in CHECKS]
    if unknown:
        raise AdvisorInputError(
            f"unknown check(s) {', '.join(unknown)}", fix=f"use {', '.join(CHECKS)}", where=where
        )
    started = time.perf_counter()
    files: list[FileInfo] = []
    rows: list[Row] = []
    for path in dict.fromkeys(str(p) for p in paths):  # the same file twice is scanned once
        layout, file_rows = read_rows(path, options, where=where)
        files.append(FileInfo(path, len(file_rows), layout.name, layout.kind))
        rows.extend(file_rows)
    if counter is None:
        counter = load_counter(
            model,
            trust_remote_code=trust_remote_code,
            gguf_file=gguf_file,
            chat_template=options.chat_template,
        )
    context = ScanContext(options=options, counter=counter)
    results = {name: CHECKS[name](rows, context) for name in names}
    return ScanReport(
        files=files,
        rows=len(rows),
        options=options,
        results=results,
        seconds=round(time.perf_counter() - started, 2),
    )


def scan_file(path: str | Path, **kwargs: object) -> ScanReport:
    """`scan_files([path], ...)`: one file's report."""
    return scan_files([path], **kwargs)  # type: ignore[arg-type]
