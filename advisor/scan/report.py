"""A scan report as text: sections of lines and tables, rendered to Markdown, HTML or the terminal.

The sections are built once (`build_sections`) and every renderer walks them, so the terminal,
the `.md` and the `.html` reports say the same things. JSON is `ScanReport.to_json()` (the
dataclasses as they are). Reports quote rows only through masked previews: no renderer prints a
full e-mail address, phone, ID or card number.
"""

from __future__ import annotations

import contextlib
import html
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.errors import AdvisorInputError
from advisor.scan.core import Location, ScanReport
from advisor.scan.lengths import Distribution

BAR_WIDTH = 30
REPORT_SUFFIXES = (".md", ".html", ".json")


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    title: str | None = None


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    side_by_side: bool = False
    """A hint for the terminal: show the tables next to each other."""


def _pct(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "-"


class _Names:
    """Row names: `12` when one file was scanned, `train.jsonl:12` when several were."""

    def __init__(self, report: ScanReport) -> None:
        self.multi = len(report.files) > 1

    def one(self, file: str, row: int) -> str:
        return f"{Path(file).name}:{row}" if self.multi else str(row)

    def many(self, locations: list[Location], limit: int = 12) -> str:
        names = [self.one(loc.file, loc.row) for loc in locations[:limit]]
        more = len(locations) - limit
        return ", ".join(names) + (f" … (+{more})" if more > 0 else "")


def _limited(rows: list[list[str]], limit: int, headers: list[str]) -> list[list[str]]:
    if len(rows) <= limit:
        return rows
    note = [f"… {len(rows) - limit} more (all in --json)"] + [""] * (len(headers) - 1)
    return [*rows[:limit], note]


# --- sections -------------------------------------------------------------------------------------


def summary_lines(report: ScanReport) -> list[str]:
    """One line per check: the headline a reader (or a log) needs."""
    res = report.results
    n = report.rows
    lines = []
    if "pii" in res:
        pii = res["pii"]
        kinds = ", ".join(f"{k} {v}" for k, v in pii.rows_by_kind.items()) or "none found"
        lines.append(
            f"personal data: {pii.rows_with_pii} rows ({_pct(pii.rows_with_pii, n)}); {kinds}"
        )
    if "duplicates" in res:
        dup = res["duplicates"]
        lines.append(
            f"duplicates: {dup.redundant_rows} redundant rows ({_pct(dup.redundant_rows, n)}); "
            f"{len(dup.exact)} exact clusters, {len(dup.near)} near clusters (Jaccard >= "
            f"{dup.threshold}), {dup.cross_file_clusters} across files"
        )
    if "empty" in res:
        empty = res["empty"]
        count = empty.rows_with_empty
        lines.append(f"empty fields: {count} rows ({_pct(count, n)})")
    if "lengths" in res:
        lengths = res["lengths"]
        lines.append(
            f"truncated: {len(lengths.truncated)} rows ({_pct(len(lengths.truncated), n)}) over "
            f"{lengths.max_seq_length} {lengths.unit}; sequence p50 {lengths.sequence.p50}, "
            f"p95 {lengths.sequence.p95}, max {lengths.sequence.max} {lengths.unit}"
        )
    if "language" in res:
        lang = res["language"]
        total = sum(lang.counts.values())
        mix = ", ".join(f"{k} {_pct(v, total)}" for k, v in list(lang.counts.items())[:6])
        lines.append(f"languages (prompts): {mix or 'no prompts'}")
    if "complexity" in res:
        cx = res["complexity"]
        mix = ", ".join(f"{k} {_pct(v, cx.analysed)}" for k, v in cx.categories.items())
        lines.append(f"asks: {mix}")
    return lines


def _overview(report: ScanReport) -> Section:
    opts = report.options
    files = "; ".join(f"{f.path} ({f.rows} rows)" for f in report.files)
    lines = [
        f"files: {files}",
        f"fields: prompt {opts.prompt_field!r}, response {opts.response_field!r}; "
        f"{report.rows} rows scanned in {report.seconds:.1f} s",
    ]
    return Section("Data scan", lines=lines + [f"- {line}" for line in summary_lines(report)])


def _histogram(title: str, dist: Distribution, cut: int | None) -> Table:
    top = max((b.count for b in dist.histogram), default=0) or 1
    rows = []
    for b in dist.histogram:
        label = f"{b.low}-{b.high}" if b.high > b.low else str(b.low)
        if cut is not None and b.high > cut:
            label += " (cut)"
        bar = "█" * round(BAR_WIDTH * b.count / top) if b.count else ""
        rows.append([label, str(b.count), bar])
    return Table(["length", "rows", ""], rows, title=title)


def _lengths(report: ScanReport, names: _Names, limit: int) -> list[Section]:
    res = report.results["lengths"]
    unit = res.unit
    headers = ["field", "rows", "mean", "min", "p50", "p90", "p95", "p99", "max"]
    stats = []
    for name in ("prompt", "response", "sequence"):
        d: Distribution = getattr(res, name)
        stats.append(
            [
                name,
                str(d.count),
                f"{d.mean:.1f}",
                *(str(getattr(d, k)) for k in ("min", "p50", "p90", "p95", "p99", "max")),
            ]
        )
    how = "through the chat template" if res.templated else "prompt + response"
    lines = [
        f"{unit} counted by {res.source}; sequence = {how}"
        + (" with the system prompt" if report.options.system_prompt else "")
        + f"; cut at {res.max_seq_length} {unit}",
    ]
    summary = Section(f"Lengths ({unit})", lines=lines, tables=[Table(headers, stats)])
    histograms = Section(
        "Length histograms",
        tables=[
            _histogram(f"prompt {unit}", res.prompt, None),
            _histogram(f"response {unit}", res.response, None),
            _histogram(f"sequence {unit}", res.sequence, res.max_seq_length),
        ],
        side_by_side=True,
    )
    cut_rows = [
        [names.one(t.file, t.row), str(t.length), str(t.length - res.max_seq_length)]
        for t in res.truncated
    ]
    truncated = Section(
        f"Truncated at {res.max_seq_length} {unit}",
        lines=[
            f"{len(cut_rows)} rows longer than {res.max_seq_length} {unit}"
            + (": their answers are cut, the end is never learned" if cut_rows else "")
        ],
        tables=[Table(["row", unit, "over by"], _limited(cut_rows, limit, ["", "", ""]))]
        if cut_rows
        else [],
    )
    return [summary, histograms, truncated]


def _language(report: ScanReport, names: _Names) -> Section:
    res = report.results["language"]
    total = sum(res.counts.values())
    rows = [[lang, str(n), _pct(n, total)] for lang, n in res.counts.items()]
    lines = [
        f"language of each prompt (py3langid; candidates: {', '.join(res.candidates)}); "
        "und = not confidently identified"
    ]
    lines += [f"{lang} rows: {names.many(locs)}" for lang, locs in res.rows.items()]
    return Section("Languages", lines=lines, tables=[Table(["language", "prompts", "share"], rows)])


def _complexity(report: ScanReport) -> Section:
    res = report.results["complexity"]
    cats = [[name, str(n), _pct(n, res.analysed)] for name, n in res.categories.items()]
    verbs = [[v.verb, str(v.count), _pct(v.count, res.analysed)] for v in res.verbs]
    pairs = [[f"{p.verb} {p.object or ''}".strip(), str(p.count)] for p in res.pairs]
    return Section(
        "Instruction complexity",
        lines=[
            "leading verb (English lexicon) and its object; simple = list/name/give..., "
            "reasoning = explain/summarise/compare..."
        ],
        tables=[
            Table(["ask", "prompts", "share"], cats, title="asks"),
            Table(["verb", "prompts", "share"], verbs, title="leading verbs"),
            Table(["verb + object", "prompts"], pairs, title="verb + object"),
        ],
        side_by_side=True,
    )


def _duplicates(report: ScanReport, names: _Names, limit: int) -> Section:
    res = report.results["duplicates"]
    lines = [
        f"exact = same text (whitespace collapsed); near = Jaccard similarity of 5-character "
        f"shingles >= {res.threshold} (MinHash LSH, confirmed exactly)",
        f"{res.redundant_rows} rows would go in deduplication ({res.exact_redundant} exact copies)",
    ]
    tables = []
    for kind, clusters in (("exact", res.exact), ("near", res.near)):
        if clusters:
            rows = [
                [names.many(c.rows), str(len(c.rows)), f"{c.similarity:.2f}", c.preview]
                for c in clusters
            ]
            headers = ["rows", "size", "similarity", "text (first row)"]
            tables.append(Table(headers, _limited(rows, limit, headers), title=f"{kind} clusters"))
    return Section("Duplicates", lines=lines, tables=tables)


def _pii(report: ScanReport, names: _Names, limit: int) -> Section:
    res = report.results["pii"]
    lines = [
        f"{res.rows_with_pii} rows hold personal data (values masked; IDs and cards checksum-valid)"
    ]
    tables = []
    if res.findings:
        kinds = [[kind, str(n)] for kind, n in res.rows_by_kind.items()]
        found = [[names.one(f.file, f.row), f.field, f.kind, f.masked] for f in res.findings]
        headers = ["row", "field", "kind", "value (masked)"]
        tables = [Table(["kind", "rows"], kinds), Table(headers, _limited(found, limit, headers))]
    return Section("Personal data", lines=lines, tables=tables)


def _empty(report: ScanReport, names: _Names, limit: int) -> Section:
    res = report.results["empty"]
    rows = [[names.one(f.file, f.row), f.field, f.problem] for f in res.findings]
    headers = ["row", "field", "problem"]
    return Section(
        "Empty fields",
        lines=[f"{res.rows_with_empty} rows with a missing, empty or whitespace-only field"],
        tables=[Table(headers, _limited(rows, limit, headers))] if rows else [],
    )


def build_sections(report: ScanReport, *, limit: int = 20) -> list[Section]:
    """The report's sections, each check's tables cut to `limit` rows (JSON has them all)."""
    names = _Names(report)
    res = report.results
    sections = [_overview(report)]
    if "lengths" in res:
        sections += _lengths(report, names, limit)
    if "language" in res:
        sections.append(_language(report, names))
    if "complexity" in res:
        sections.append(_complexity(report))
    if "duplicates" in res:
        sections.append(_duplicates(report, names, limit))
    if "pii" in res:
        sections.append(_pii(report, names, limit))
    if "empty" in res:
        sections.append(_empty(report, names, limit))
    return sections


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
