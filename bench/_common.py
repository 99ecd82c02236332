"""What every CPU benchmark shares: the provenance of a result and the section it rewrites.

A figure in BENCHMARKS.md is worth only as much as what it says about how it was taken, so every
section starts with the same lines: date, machine (cores, CPU model, RAM, load), library versions
and the exact command that refreshes it. Each script owns one `## ` section and replaces only it.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shlex
import statistics
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"
VERSIONED = ("torch", "transformers", "peft", "trl", "bitsandbytes", "mlflow")
HEADER = """# Benchmarks

Figures measured on the development machine (first written {today}): a CPU machine without a GPU.
Each section says how it was measured and when; rerun the named script to refresh it.
"""

if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/, not the repository, on the path
    sys.path.insert(0, str(ROOT))


def calm_threads() -> None:
    """Sleeping, not spinning, OpenMP waits (see runners.__main__.calm_threads): must precede
    `import torch`, in this process and (inherited) in every child it starts."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def ram_gib() -> float:
    try:
        text = Path("/proc/meminfo").read_text()
        kib = int(re.search(r"MemTotal:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
        return kib / 2**20
    except (OSError, AttributeError):
        return float("nan")


def versions() -> str:
    found = []
    for name in VERSIONED:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def command() -> str:
    """The command that produced this run, as typed from the repository root."""
    python = Path(sys.executable)
    try:
        shown = str(python.relative_to(ROOT)) if python.is_relative_to(ROOT) else str(python)
    except ValueError:
        shown = str(python)
    script = Path(sys.argv[0]).resolve()
    script_shown = str(script.relative_to(ROOT)) if script.is_relative_to(ROOT) else str(script)
    return " ".join(shlex.quote(a) for a in (shown, script_shown, *sys.argv[1:]))


def provenance(load_at_start: float) -> list[str]:
    """The lines every section starts with (markdown list)."""
    return [
        f"- date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- machine: {os.cpu_count()} cores (`nproc`: {len(os.sched_getaffinity(0))}), "
        f"{cpu_model()}, {ram_gib():.1f} GiB RAM, no GPU; 1-minute load average "
        f"{load_at_start:.2f} at the start",
        f"- versions: Python {platform.python_version()}, {versions()}",
        f"- command: `{command()}`",
    ]


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def median(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def write_section(title: str, body: str) -> None:
    """Replace the `## {title}` section of BENCHMARKS.md (up to the next `## `) or append it."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else ""
    if not text.strip():
        text = HEADER.format(today=dt.date.today().isoformat())
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    BENCHMARKS.write_text(text.rstrip("\n") + "\n")
