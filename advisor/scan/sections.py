"""A scan report's sections: lines and tables that every renderer walks (see `report.py`).

Built once per report, so the terminal, the `.md` and the `.html` reports say the same things.
Rows are quoted only through masked previews: no section holds a full e-mail address, phone, ID
or card number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.scan.core import Location, ScanReport
from advisor.scan.lengths import Distribution

BAR_WIDTH = 30


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
        lines.append(
            f"rows training refuses (empty turns, missing fields): {count} ({_pct(count, n)})"
        )
    if "turns" in res:
        lines.append(turn_line(res["turns"]))
    if "lengths" in res:
        lengths = res["lengths"]
        lines.append(
            f"truncated: {len(lengths.truncated)} rows ({_pct(len(lengths.truncated), n)}) over "
            f"{lengths.max_seq_length} {lengths.unit}, {lengths.cut_in_context} cut in the "
            f"context; sequence p50 {lengths.sequence.p50}, p95 {lengths.sequence.p95}, max "
            f"{lengths.sequence.max} {lengths.unit}"
        )
    if "language" in res:
        lang = res["language"]
        total = sum(lang.counts.values())
        mix = ", ".join(f"{k} {_pct(v, total)}" for k, v in list(lang.counts.items())[:6])
        lines.append(f"languages (system and user turns, documents): {mix or 'no text'}")
    if "complexity" in res:
        cx = res["complexity"]
        mix = ", ".join(f"{k} {_pct(v, cx.analysed)}" for k, v in cx.categories.items())
        lines.append(f"asks: {mix}")
    return lines


def turn_line(turns: Any) -> str:
    """`conversations: 40, turns per conversation mean 4.2 (min 2, median 4, max 9); ...`."""
    if not turns.conversations:
        return f"documents: {turns.documents} (raw text, no turns)"
    dist = turns.turns
    roles = ", ".join(f"{role} {count}" for role, count in turns.roles.items())
    return (
        f"conversations: {turns.conversations}; turns per conversation mean {dist.mean:g} "
        f"(min {dist.min}, median {dist.p50}, max {dist.max}); turns by role: {roles}; "
        f"{turns.with_system} with a system prompt, {turns.multi_turn} with several answers"
    )


def _layouts(report: ScanReport) -> str:
    opts = report.options
    named = []
    for f in report.files:
        layout = f.layout
        if layout == "prompt_response":
            layout += f" (fields {opts.prompt_field!r}, {opts.response_field!r})"
        named.append(f"{f.path} ({f.rows} rows, {layout})")
    return "; ".join(named)


def _overview(report: ScanReport) -> Section:
    how = "named by --format" if report.options.format else "detected"
    lines = [
        f"files: {_layouts(report)}",
        f"layout {how}; {report.rows} rows scanned in {report.seconds:.1f} s",
    ]
    return Section("Data scan", lines=lines + [f"- {line}" for line in summary_lines(report)])


def _turns(report: ScanReport) -> Section:
    res = report.results["turns"]
    lines = [turn_line(res)]
    tables = []
    if res.conversations:
        tables.append(_histogram("turns per conversation", res.turns, None, "turns"))
        total = sum(res.roles.values())
        roles = [[role, str(n), _pct(n, total)] for role, n in res.roles.items()]
        tables.append(Table(["role", "turns", "share"], roles, title="turns by role"))
    return Section("Conversations", lines=lines, tables=tables, side_by_side=True)


def _histogram(title: str, dist: Distribution, cut: int | None, label: str = "length") -> Table:
    top = max((b.count for b in dist.histogram), default=0) or 1
    rows = []
    for b in dist.histogram:
        label = f"{b.low}-{b.high}" if b.high > b.low else str(b.low)
        if cut is not None and b.high > cut:
            label += " (cut)"
        bar = "█" * round(BAR_WIDTH * b.count / top) if b.count else ""
        rows.append([label, str(b.count), bar])
    return Table([label, "rows", ""], rows, title=title)


def _lengths(report: ScanReport, names: _Names, limit: int) -> list[Section]:
    res = report.results["lengths"]
    unit = res.unit
    headers = ["part", "rows", "mean", "min", "p50", "p90", "p95", "p99", "max"]
    stats = []
    for name in ("context", "completion", "sequence"):
        d: Distribution = getattr(res, name)
        stats.append(
            [
                name,
                str(d.count),
                f"{d.mean:.1f}",
                *(str(getattr(d, k)) for k in ("min", "p50", "p90", "p95", "p99", "max")),
            ]
        )
    how = (
        f"the conversation through the {res.template!r} chat template"
        if res.template
        else "every turn's words"
        if res.unit == "words"
        else "the document's tokens"
    )
    lines = [
        f"{unit} counted by {res.source}; context = system and user turns, completion = "
        f"assistant turns, sequence = {how}"
        + (" with the study's system prompt" if report.options.system_prompt else "")
        + f" (a document: its text); cut at {res.max_seq_length} {unit}",
    ]
    summary = Section(f"Lengths ({unit})", lines=lines, tables=[Table(headers, stats)])
    histograms = Section(
        "Length histograms",
        tables=[
            _histogram(f"context {unit}", res.context, None),
            _histogram(f"completion {unit}", res.completion, None),
            _histogram(f"sequence {unit}", res.sequence, res.max_seq_length),
        ],
        side_by_side=True,
    )
    cut_rows = [
        [
            names.one(t.file, t.row),
            str(t.length),
            str(t.length - res.max_seq_length),
            str(t.turns_cut),
            t.cut_in,
        ]
        for t in res.truncated
    ]
    headers = ["row", unit, "over by", "turns cut", "cut in"]
    truncated = Section(
        f"Truncated at {res.max_seq_length} {unit}",
        lines=[
            f"{len(cut_rows)} rows longer than {res.max_seq_length} {unit}"
            + (
                f"; {res.cut_in_context} cut in the context (a system or user turn: the "
                "answers after it are never learned), the others in an assistant turn (its "
                "end is never learned)"
                if cut_rows
                else ""
            )
        ],
        tables=[Table(headers, _limited(cut_rows, limit, headers))] if cut_rows else [],
    )
    return [summary, histograms, truncated]


def _language(report: ScanReport, names: _Names) -> Section:
    res = report.results["language"]
    total = sum(res.counts.values())
    rows = [[lang, str(n), _pct(n, total)] for lang, n in res.counts.items()]
    lines = [
        "language of each system and user turn and document (py3langid; candidates: "
        f"{', '.join(res.candidates)}); und = not confidently identified"
    ]
    lines += [f"{lang} rows: {names.many(locs)}" for lang, locs in res.rows.items()]
    return Section("Languages", lines=lines, tables=[Table(["language", "turns", "share"], rows)])


def _complexity(report: ScanReport) -> Section:
    res = report.results["complexity"]
    cats = [[name, str(n), _pct(n, res.analysed)] for name, n in res.categories.items()]
    verbs = [[v.verb, str(v.count), _pct(v.count, res.analysed)] for v in res.verbs]
    pairs = [[f"{p.verb} {p.object or ''}".strip(), str(p.count)] for p in res.pairs]
    return Section(
        "Instruction complexity",
        lines=[
            "leading verb (English lexicon) and its object of every user turn; simple = "
            "list/name/give..., reasoning = explain/summarise/compare..."
        ],
        tables=[
            Table(["ask", "turns", "share"], cats, title="asks"),
            Table(["verb", "turns", "share"], verbs, title="leading verbs"),
            Table(["verb + object", "turns"], pairs, title="verb + object"),
        ],
        side_by_side=True,
    )


def _duplicates(report: ScanReport, names: _Names, limit: int) -> Section:
    res = report.results["duplicates"]
    lines = [
        "rows compare as whole conversations (every turn, roles included); "
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
        found = [
            [names.one(f.file, f.row), _turn(f.turn, f.role), f.kind, f.masked]
            for f in res.findings
        ]
        headers = ["row", "turn", "kind", "value (masked)"]
        tables = [Table(["kind", "rows"], kinds), Table(headers, _limited(found, limit, headers))]
    return Section("Personal data", lines=lines, tables=tables)


def _turn(number: int | None, role: str) -> str:
    return f"{number} ({role})" if number is not None else f"field {role} (refused row)"


def _empty(report: ScanReport, names: _Names, limit: int) -> Section:
    res = report.results["empty"]
    rows = [[names.one(f.file, f.row), f.problem] for f in res.findings]
    headers = ["row", "problem"]
    return Section(
        "Rows training refuses",
        lines=[
            f"{res.rows_with_empty} rows with an empty turn, a missing field or another problem "
            "the layouts refuse (training stops at the first: fix or remove them)"
        ],
        tables=[Table(headers, _limited(rows, limit, headers))] if rows else [],
    )


def build_sections(report: ScanReport, *, limit: int = 20) -> list[Section]:
    """The report's sections, each check's tables cut to `limit` rows (JSON has them all)."""
    names = _Names(report)
    res = report.results
    sections = [_overview(report)]
    if "turns" in res:
        sections.append(_turns(report))
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
