"""`advisor scan`: look at training data before it costs GPU hours.

Files are read as training reads them, in any layout (`runners.layouts`: chat messages,
ShareGPT, Alpaca, prompt/completion, prompt/response, raw text). The turns of each conversation,
lengths in the model's tokens through its chat template (and what `max_seq_length` cuts), the
language mix, what the requests ask for, exact and near duplicates, personal data in every turn
and the rows training would refuse; one module per check, registered in `registry.CHECKS`.
`profile.read_data_traits` is what `advisor recommend --train` reads from a file. Heavy
dependencies (a tokenizer, datasketch, py3langid) are imported by the checks that use them, so
`import advisor.scan` stays light.
"""

from __future__ import annotations

from .core import FileInfo, Location, Row, ScanOptions, ScanReport
from .failon import Rule, evaluate_fail_on, parse_fail_on
from .gate import check_study_data, describe_pii
from .profile import read_data_traits
from .report import scan_metrics, to_html, to_markdown, write_report, write_report_files
from .scanner import scan_file, scan_files

__all__ = [
    "FileInfo",
    "Location",
    "Row",
    "Rule",
    "ScanOptions",
    "ScanReport",
    "check_study_data",
    "describe_pii",
    "evaluate_fail_on",
    "parse_fail_on",
    "read_data_traits",
    "scan_file",
    "scan_files",
    "scan_metrics",
    "to_html",
    "to_markdown",
    "write_report",
    "write_report_files",
]
