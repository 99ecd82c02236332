"""Cold start of the decision commands: median wall time of fresh `advisor` processes.

Target: < 0.5 s each, which holds only while `advisor --help`, `recommend` and `estimate` import
neither torch nor transformers. Writes (or replaces) the `## Cold start` section of BENCHMARKS.md.

    .venv/bin/python bench/cold_start.py [--runs 5] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"
TARGET_S = 0.5
COMMANDS: dict[str, list[str]] = {
    "advisor --help": ["--help"],
    "advisor recommend (example) --json": [
        "recommend", "--goal", "both", "--examples", "3000", "--model", "llama-2-7b",
        "--vram", "24", "--json",
    ],
    "advisor estimate --model llama-3-8b --method qlora --json": [
        "estimate", "--model", "llama-3-8b", "--method", "qlora", "--json",
    ],
}  # fmt: skip
HEADER = """# Benchmarks

Figures measured on the development machine (first written {today}): a 2-core CPU machine
without a GPU, Python {py}.
Each section says how it was measured and when; rerun the named script to refresh it.
"""


def advisor_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m`-style entry."""
    script = Path(sys.executable).with_name("advisor")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from advisor.cli import main; main()"]


def time_once(argv: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one process. CPU time (user + sys) barely moves when other jobs load
    the cores; wall time is what a user waits."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(runs: int) -> dict[str, list[tuple[float, float]]]:
    base = advisor_command()
    results = {}
    for label, args in COMMANDS.items():
        time_once(base + args)  # warm the OS file cache: "cold" means a fresh interpreter
        results[label] = [time_once(base + args) for _ in range(runs)]
    return results


def render(results: dict[str, list[tuple[float, float]]], runs: int, load: float) -> str:
    today = dt.date.today().isoformat()
    lines = [
        "## Cold start",
        "",
        f"Measured {today} with `bench/cold_start.py`: median of {runs} fresh processes each "
        f"(after one warm-up run for the file cache), {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, 1-minute load average {load:.2f} at the start "
        f"(other jobs share the cores). Target < {TARGET_S} s. A single-threaded start on an "
        "idle machine takes about its CPU time; when the load exceeds the cores, wall time "
        "also counts waiting for a core.",
        "",
        "| command | median wall s | min wall s | max wall s | median CPU s | target (wall) |",
        "|---|---|---|---|---|---|",
    ]
    for label, pairs in results.items():
        walls = [wall for wall, _ in pairs]
        median = statistics.median(walls)
        cpu = statistics.median(c for _, c in pairs)
        verdict = "met" if median < TARGET_S else "MISSED"
        lines.append(
            f"| `{label}` | {median:.3f} | {min(walls):.3f} | {max(walls):.3f} | {cpu:.3f} "
            f"| {verdict} |"
        )
    return "\n".join(lines) + "\n"


def write_section(section: str) -> None:
    """Replace the `## Cold start` section (up to the next `## `) or append it."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else ""
    if not text.strip():
        text = HEADER.format(py=platform.python_version(), today=dt.date.today().isoformat())
    pattern = re.compile(r"^## Cold start\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    BENCHMARKS.write_text(text.rstrip("\n") + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    section = render(measure(args.runs), args.runs, load)
    print(section)
    if not args.no_write:
        write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
