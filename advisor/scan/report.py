"""A scan report as text: sections of lines and tables, rendered to Markdown, HTML or the terminal.

The sections are built once (`sections.build_sections`) and every renderer walks them, so the
terminal, the `.md` and the `.html` reports say the same things. JSON is `ScanReport.to_json()` (the
dataclasses as they are). Reports quote rows only through masked previews: no renderer prints a
full e-mail address, phone, ID or card number.
"""

from __future__ import annotations

import contextlib
import html
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from advisor.errors import AdvisorInputError
from advisor.scan.core import ScanReport
from advisor.scan.sections import build_sections

REPORT_SUFFIXES = (".md", ".html", ".json")


# --- renderers ------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: ScanReport, *, limit: int = 200) -> str:
    out = []
    for index, section in enumerate(build_sections(report, limit=limit)):
        out.append(f"{'#' if index == 0 else '##'} {section.title}\n")
        for line, previous in zip(section.lines, ["", *section.lines], strict=False):
            if line.startswith("- ") and not previous.startswith("- "):
                out.append("")  # a list needs a blank line before it
            out.append(line if line.startswith("- ") else f"{line}  ")
        for table in section.tables:
            out.append("")
            if table.title:
                out.append(f"**{table.title}**\n")
            out.append("| " + " | ".join(map(_md_cell, table.headers)) + " |")
            out.append("|" + "---|" * len(table.headers))
            out += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows]
        out.append("")
    return "\n".join(out)


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse;margin:.5em 1em 1em 0;display:inline-table;vertical-align:top}"
    "th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left}"
    "caption{font-weight:bold;text-align:left}"
)


def to_html(report: ScanReport, *, limit: int = 200) -> str:
    e = html.escape
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Data scan</title>"
        f"<style>{_CSS}</style></head><body>"
    ]
    for index, section in enumerate(build_sections(report, limit=limit)):
        tag = "h1" if index == 0 else "h2"
        out.append(f"<{tag}>{e(section.title)}</{tag}>")
        out += [f"<p>{e(line)}</p>" for line in section.lines]
        for table in section.tables:
            caption = f"<caption>{e(table.title)}</caption>" if table.title else ""
            head = "".join(f"<th>{e(h)}</th>" for h in table.headers)
            body = "".join(
                "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table.rows
            )
            out.append(f"<table>{caption}<tr>{head}</tr>{body}</table>")
    out.append("</body></html>\n")
    return "\n".join(out)


def check_report_path(path: str | Path, data: Iterable[str | Path] = ()) -> Path:
    """The `--report` file, refused (exit 2) unless a report can be written there: a known
    suffix, not a folder or a device, not one of the `data` files being scanned, and a
    writable folder to go in. Called before the scan, so a bad path costs no scan time and
    the refusal is the only output."""
    path = Path(path)
    suffix = path.suffix.lower()
    why, fix = None, "give a new file name, e.g. --report scan.md"
    folder = next(p for p in path.absolute().parents if p.exists())
    if path.is_dir():
        example = path / f"scan{suffix if suffix in REPORT_SUFFIXES else '.md'}"
        why, fix = "it is a folder", f"name a file in it, e.g. --report {example}"
    elif suffix not in REPORT_SUFFIXES:
        why, fix = "cannot tell its format", f"end the file name in {', '.join(REPORT_SUFFIXES)}"
    elif path.exists() and not path.is_file():
        why = "it exists and is not a regular file (a device, a fifo or a socket)"
    elif any(path.resolve() == Path(file).resolve() for file in data):
        why = "it is one of the data files being scanned"
    elif not folder.is_dir():
        why = f"{folder} is not a folder"
    elif not os.access(folder, os.W_OK | os.X_OK):
        why = f"{folder} is not writable"
    if why is not None:
        raise AdvisorInputError(
            f"cannot write the report to {path}: {why}", where="--report", fix=fix
        )
    return path


def write_report(report: ScanReport, path: str | Path) -> Path:
    """Write the report as Markdown, HTML or JSON, chosen by the file's suffix.

    The text goes to a temporary sibling renamed over `path` when complete: a failure (a full
    disk) leaves no truncated report, no earlier one destroyed, no folder made for it."""
    path = check_report_path(path)
    render = {".md": to_markdown, ".html": to_html}.get(path.suffix.lower(), ScanReport.to_json)
    text = render(report)
    made = [folder for folder in path.absolute().parents if not folder.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open("x", encoding="utf-8") as out:  # "x": the umask's mode, not 0600
            out.write(text)
        temporary.replace(path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        for folder in made:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(error, OSError):  # a full disk, a read-only or pseudo file system
            raise AdvisorInputError(
                f"cannot write the report to {path}: {error.strerror or error}",
                where="--report",
                fix="give a file on a writable disk with room, e.g. --report scan.md",
            ) from None
        raise
    return path


def write_report_files(
    report: ScanReport, folder: str | Path, stem: str = "data_scan"
) -> list[Path]:
    """`data_scan.json`, `.md` and `.html` in `folder`: the artifacts logged with a study."""
    return [write_report(report, Path(folder) / f"{stem}{suffix}") for suffix in REPORT_SUFFIXES]


def scan_metrics(report: ScanReport) -> dict[str, float]:
    """Flat numbers for a tracking system: rows, and each measure as a count and a share."""
    metrics: dict[str, float] = {"scan.rows": float(report.rows)}
    for result in report.results.values():
        measures: dict[str, Any] = result.measures()
        for name, count in measures.items():
            key = name.replace(":", "_").replace("=", "_")
            metrics[f"scan.{key}"] = float(count)
            metrics[f"scan.{key}_share"] = round(report.share(count), 4)
    return metrics
