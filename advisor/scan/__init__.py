"""`advisor scan`: look at instruction data before it costs GPU hours.

Lengths in the model's tokens (and what `max_seq_length` cuts), the language mix, what the
instructions ask for, exact and near duplicates, personal data and empty fields; one module per
check, registered in `registry.CHECKS`. Heavy dependencies (a tokenizer, datasketch, py3langid)
are imported by the checks that use them, so `import advisor.scan` stays light.
"""

from __future__ import annotations

from .core import FileInfo, Location, Row, ScanOptions, ScanReport
from .failon import Rule, evaluate_fail_on, parse_fail_on
from .gate import check_study_data, describe_pii
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
    "scan_file",
    "scan_files",
    "scan_metrics",
    "to_html",
    "to_markdown",
    "write_report",
    "write_report_files",
]
