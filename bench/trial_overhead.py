"""Fixed cost of a trial outside its training steps, on the real path: one child process per trial.

Issue goal (CPU, SmolLM2): under 10 s of fixed overhead per trial after the first. Each trial is
the demo study's configuration (`studies/demo.yaml`; LoRA r=8, alpha 16, all linear layers,
lr 1e-3) with a few steps, run by `advisor.tuning.process.run_trial_process` exactly as `advisor
tune` runs it, and recorded in a throw-away MLflow store the way tune records it (child run
opened before, a log_batch per training log, metrics + artifacts after). The first trial gets an
empty model cache (`ADVISOR_CACHE_DIR`), so it converts the GGUF base; the later ones reuse it.

Per trial, from the parent's clock (phase messages arrive as the child announces them) and the
runner's own timings: process start -> first phase, model load, trainer set-up + final eval
loss, training steps, generation eval, forgetting probes, save + exit, tracking. "Fixed overhead"
is wall (tracking included) minus the training steps' seconds. The imports alone are timed in
fresh interpreters to show how much of the start they make.

    .venv/bin/python bench/trial_overhead.py [--trials 3] [--forgetting-trials 2] [--steps 4]
                                             [--quick] [--no-write] [--model DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import ROOT, calm_threads, fmt, median, provenance, table, write_section

TITLE = "Trial overhead (CPU, SmolLM2, real trial processes)"
GOAL_S = 10.0
STUDY = ROOT / "studies" / "demo.yaml"
PARAMS = {"r": 8, "alpha_ratio": 2, "target_modules": "all_linear", "learning_rate": 1e-3}
IMPORT_STAGES = {
    "python -c pass": "pass",
    "+ torch": "import torch",
    "+ transformers (AutoModelForCausalLM)": "import torch; "
    "from transformers import AutoModelForCausalLM",
    "+ peft (get_peft_model)": "import torch; from transformers import AutoModelForCausalLM; "
    "from peft import get_peft_model",
    "+ trl (SFTTrainer)": "import torch; from transformers import AutoModelForCausalLM; "
    "from peft import get_peft_model; from trl import SFTTrainer",
}


@dataclass
class Measured:
    """One trial: the parent's phase clock, the runner's result and the tracking calls."""

    label: str
    cold: bool
    forgetting: bool
    fresh: bool = False
    """A fresh `python -m runners` (ADVISOR_FORKSERVER=0) instead of a fork of the fork server."""
    start: float = 0.0
    end: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    tracking_before: float = 0.0
    tracking_after: float = 0.0
    tracking_streamed: float = 0.0
    result: Any = None

    @property
    def plain_warm(self) -> bool:
        return not (self.cold or self.forgetting or self.fresh)

    def since(self, a: str, b: str) -> float | None:
        """Seconds between phase `a` and phase `b` (or the end) as the parent saw them."""
        if a not in self.phases:
            return None
        return (self.phases[b] if b != "end" else self.end) - self.phases[a]

    @property
    def wall(self) -> float:
        return self.end - self.start + self.tracking_before + self.tracking_after

    def row(self) -> dict[str, float | None]:
        r = self.result
        first = self.phases.get("load", self.end) - self.start
        train_phase = self.since("train", "evaluate")
        after_eval = "forgetting" if "forgetting" in self.phases else "save"
        generation = self.since("evaluate", after_eval)
        return {
            "wall": self.wall,
            "start": first,
            "load": r.load_seconds,
            "setup": max(0.0, (self.since("load", "train") or 0.0) - r.load_seconds),
            "trainer": None
            if train_phase is None
            else train_phase - r.train_seconds - r.eval_loss_seconds,
            "train": r.train_seconds,
            "eval_loss": r.eval_loss_seconds,
            "generation": generation,
            "forgetting": self.since("forgetting", "save"),
            "save": self.since("save", "end"),
            "tracking": self.tracking_before + self.tracking_after,
            "streamed": self.tracking_streamed,
            "overhead": self.wall - r.train_seconds,
            "overhead_infra": self.wall
            - r.train_seconds
            - r.eval_loss_seconds
            - (generation or 0.0)
            - (self.since("forgetting", "save") or 0.0),
        }


def trial_config(spec: Any, number: int, workdir: Path, *, forgetting: bool) -> Any:
    from advisor.study import resolve_trial_config

    spec.eval.forgetting = forgetting
    return resolve_trial_config(spec, dict(PARAMS), trial_number=number, output_dir=str(workdir))


def make_tracker(root: Path) -> Any:
    from advisor.stores.tracker import StudyTracker

    tracker = StudyTracker(f"sqlite:///{root / 'mlflow.db'}", str(root / "artifacts"), "bench")
    tracker.start_study(
        "bench-overhead",
        spec_yaml="bench",
        spec_hash="bench",
        data_hashes={},
        seed=42,
        versions={},
        git_commit=None,
        optuna_url="sqlite://",
    )
    return tracker


def run_one(config: Any, workdir: Path, tracker: Any, measured: Measured) -> Measured:
    """One trial as `advisor tune` runs it: open the child run, stream logs, record the result."""
    from advisor.tuning.objective import derived_costs
    from advisor.tuning.process import run_trial_process

    t = time.perf_counter()
    run_id = tracker.start_trial(config.trial_number, params=dict(PARAMS), config=config)
    measured.tracking_before = time.perf_counter() - t

    def on_event(message: dict[str, Any]) -> None:
        if message.get("event") == "phase":
            measured.phases[str(message["phase"])] = time.perf_counter()
        elif message.get("event") == "log":
            t = time.perf_counter()
            metrics = {k: v for k, v in (message.get("metrics") or {}).items()}
            tracker.log_metrics(run_id, metrics, step=int(message.get("step", 0)))
            measured.tracking_streamed += time.perf_counter() - t

    def on_eval(step: int, loss: float) -> bool:
        t = time.perf_counter()
        tracker.log_metrics(run_id, {"eval_loss": loss}, step=step)
        measured.tracking_streamed += time.perf_counter() - t
        return False

    measured.start = time.perf_counter()
    command = [sys.executable, "-m", "runners"] if measured.fresh else None  # no fork server
    result = run_trial_process(config, workdir, on_eval=on_eval, on_event=on_event, command=command)
    measured.end = time.perf_counter()
    if result.state != "complete":
        raise SystemExit(f"{measured.label} ended {result.state}: {result.error}")
    files = [workdir / "trial.log"]
    files += [Path(p) for p in (result.adapter_dir, result.generations_path) if p]
    t = time.perf_counter()
    tracker.finish_trial(run_id, result, derived=derived_costs(result, 0.1), files=files)
    measured.tracking_after = time.perf_counter() - t
    measured.result = result
    return measured


_NO_EXIT = "; import os; os._exit(0)"  # the interpreter's exit is timed with the trials


def time_imports() -> dict[str, float]:
    """Wall seconds of a fresh interpreter importing each stage: the faster of two runs, after
    one warm-up of the whole stack (the trials find the files in the page cache too)."""
    subprocess.run([sys.executable, "-c", list(IMPORT_STAGES.values())[-1]], check=True)
    out = {}
    for label, code in IMPORT_STAGES.items():
        times = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code + _NO_EXIT], check=True)
            times.append(time.perf_counter() - start)
        out[label] = min(times)
    return out


def plan(args: argparse.Namespace) -> list[Measured]:
    """The trials in order: the first one cold, then warm ones, the variants last."""
    runs = [Measured("", cold=i == 0, forgetting=False) for i in range(args.trials)]
    runs += [Measured("", False, False, fresh=True) for _ in range(args.fresh_trials)]
    runs += [Measured("", cold=False, forgetting=True) for _ in range(args.forgetting_trials)]
    for number, run in enumerate(runs):
        run.label = f"#{number + 1}"
    return runs


def measure(args: argparse.Namespace, scratch: Path) -> list[Measured]:
    from advisor.study import load_study

    spec = load_study(STUDY)
    spec.train.max_steps = args.steps
    spec.model.source = args.model or spec.model.source
    os.environ["ADVISOR_CACHE_DIR"] = str(scratch / "cache")  # inherited by every trial process
    tracker = make_tracker(scratch / "mlruns")
    measured = []
    for number, planned in enumerate(plan(args)):
        workdir = scratch / f"trial{number}"
        config = trial_config(spec, number, workdir, forgetting=planned.forgetting)
        one = run_one(config, workdir, tracker, planned)
        print(f"{one.label}: {one.row()}", flush=True)
        measured.append(one)
    return measured


COLUMNS = {
    "wall": "wall s",
    "start": "process start -> first phase",
    "load": "load (model + adapter)",
    "setup": "set-up (params, probes)",
    "trainer": "trainer set-up",
    "train": "training steps",
    "eval_loss": "eval-loss passes",
    "generation": "generation eval",
    "forgetting": "forgetting probes",
    "save": "save + exit",
    "tracking": "MLflow (before + after)",
    "overhead": "wall - steps",
    "overhead_infra": "fixed overhead (without the evaluations)",
}


def render(measured: list[Measured], imports: dict[str, float], args: argparse.Namespace) -> str:
    rows = []
    for m in measured:
        values = m.row()
        kind = "cold cache" if m.cold else "warm"
        kind += ", forgetting on" if m.forgetting else ""
        kind += ", fresh interpreter" if m.fresh else ""
        rows.append([f"{m.label} ({kind})", *(fmt(values[k]) for k in COLUMNS)])
    groups = {
        "forgetting off": [m.row() for m in measured if m.plain_warm],
        "forgetting off, fresh interpreter (no fork server)": [
            m.row() for m in measured if m.fresh
        ],
        "forgetting on": [m.row() for m in measured if m.forgetting],
    }
    lines = [
        *provenance(args.load),
        f"- what: {len(measured)} trials of `studies/demo.yaml` (LoRA r=8, alpha 16, all_linear,"
        f" lr 1e-3, batch 4, max_seq_length 128) with {args.steps} steps each, through"
        " `run_trial_process` (a process per trial, forked from the worker's pre-imported fork"
        " server `runners.forkserver`, or a fresh `python -m runners` where marked) and a"
        " temporary MLflow"
        " SQLite store; eval as in the demo (32 eval examples, greedy generation of <= 48 tokens"
        " batched by 8). Trial #1 starts with an empty model cache (GGUF -> safetensors"
        f" conversion). Goal: fixed overhead < {GOAL_S:g} s per trial after the first.",
        "",
        *table(["trial", *COLUMNS.values()], rows),
        "",
    ]
    for name, group in groups.items():
        if not group:
            continue
        overhead = median(r["overhead"] for r in group) or 0.0
        infra = median(r["overhead_infra"] for r in group) or 0.0
        lines.append(
            f"- Warm trials, {name}: median fixed overhead (without the evaluations)"
            f" {infra:.1f} s (goal < {GOAL_S:g} s:"
            f" {'met' if infra < GOAL_S else 'MISSED'}); wall minus steps {overhead:.1f} s."
        )
    base = imports.get("python -c pass", 0.0)
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in imports.items())
    lines += [
        f"- Imports alone, fresh interpreter (cumulative wall): {stages}; the imports of a trial"
        f" process cost about {max(imports.values()) - base:.1f} s of its overhead.",
        "- The fork server imports torch/transformers/peft/trl once per worker (trial #1 pays it:"
        " the server starts inside its `run_trial_process`) and forks every trial from there; a"
        " forked trial also skips the interpreter's final garbage collections (`os._exit`).",
        "- Fixed overhead, the goal's figure, excludes the evaluations: the eval-loss passes"
        " (the pruner's curve), the generation eval and the forgetting probes cost per eval"
        " example and per generated token (`data.max_eval_examples`, `train.eval_steps`,"
        " `eval.max_new_tokens`, `eval.forgetting`), not per trial; the full wall minus steps"
        " is the column before it.",
        "- MLflow's per-step log_batch calls run in the parent while the child trains (streamed:"
        " not on the trial's critical path).",
        "- Columns: the parent's clock between the phase messages of the child (start -> `load`"
        " -> `train` -> `evaluate` -> `forgetting` -> `save` -> exit) split with the runner's"
        " own `load_seconds`, `train_seconds` (the steps alone) and `eval_loss_seconds`.",
    ]
    return "\n".join(lines)


def main() -> int:
    calm_threads()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="forgetting-off trials, first cold")
    parser.add_argument("--fresh-trials", type=int, default=2, help="warm, no fork server")
    parser.add_argument("--forgetting-trials", type=int, default=1, help="warm, forgetting on")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="2 trials, 2 steps, no forgetting")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--model", help="another base model (smoke tests: a tiny model directory)")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.fresh_trials, args.forgetting_trials, args.steps = 2, 0, 0, 2
    args.load = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="advisor-bench-overhead-"))
    try:
        imports = time_imports()
        print(f"imports: {imports}", flush=True)
        body = render(measure(args, scratch), imports, args)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(body)
    if not args.no_write:
        write_section(TITLE, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
