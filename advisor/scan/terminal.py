"""The scan report in the terminal: the sections as rich tables, histograms in a row."""

from __future__ import annotations

from rich.columns import Columns
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from advisor.scan.core import ScanReport
from advisor.scan.sections import Section, Table, build_sections


def _table(table: Table) -> RichTable:
    rich = RichTable(*table.headers, title=table.title, title_justify="left", show_edge=False)
    for row in table.rows:
        rich.add_row(*(Text(cell) for cell in row))  # Text: data is never read as markup
    return rich


def _section(console: Console, section: Section, first: bool) -> None:
    style = "bold" if first else "bold cyan"
    console.rule(Text(section.title, style=style), align="left")
    for line in section.lines:
        console.print(Text(line), soft_wrap=True)
    tables = [_table(table) for table in section.tables]
    if section.side_by_side and tables:
        console.print(Columns(tables, padding=(0, 4)))
    else:
        for table in tables:
            console.print(table)


def render(report: ScanReport, console: Console, *, limit: int = 10) -> None:
    """Print the whole report; long lists stop after `limit` rows (all of them are in --json)."""
    for index, section in enumerate(build_sections(report, limit=limit)):
        _section(console, section, index == 0)
