"""The trial worker: `python -m runners CONFIG.json RESULT.json`.

Runs one trial in this process and reports over the line protocol of `runners.reporting`. stdout
belongs to the protocol alone: file descriptor 1 is duplicated for the reporter, then pointed at
stderr, so any print, warning, progress bar or C-level write from torch/transformers/trl lands
on stderr and can never interleave with protocol lines. The result is written atomically
(temporary file + rename); the exit code is 0 whenever a result was written, failed trials
included, so the parent reads the state from the result and not from the exit code.

Under torchrun (`trial.processes` > 1, see `runners.distributed`) every rank runs this module:
rank 0 speaks the protocol and writes the result, the others stay silent. A failed trial then
exits 1 on any rank (after rank 0 wrote its result), so torchrun stops the other ranks at once
instead of leaving them blocked in a collective. Only an input error on a rank other than 0
exits 0: every rank meets it alike, and rank 0 must live to report it.

Whatever the launcher, the worker dies with its parent (`runners.lifeline`).
"""

from __future__ import annotations

import os

FIRST_PARENT = os.getppid()  # read before anything slow: see runners.lifeline.die_with_parent

import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import IO, TYPE_CHECKING  # noqa: E402

from runners import distributed, lifeline  # noqa: E402  (both light: no torch)

if TYPE_CHECKING:
    from runners.config import TrialResult
    from runners.reporting import Reporter


def _protocol_stdout():
    """A private handle on the real stdout; fd 1 and sys.stdout are redirected to stderr."""
    sys.stdout.flush()
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return proto


def calm_threads() -> None:
    """Let OpenMP threads sleep instead of spinning while they wait (must precede `import torch`).

    Measured on 2 cores with one other training process: a LoRA step on SmolLM2 (batch 4 x 64)
    took 33 s with the default spin-waiting and 2.3 s with OMP_WAIT_POLICY=PASSIVE (or 1 thread).
    Trials share their machine with other trials and tests, so oversubscription is the rule here.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # reported by the trial itself
        pass


def write_result_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` so a reader sees the old file, or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None, *, first_parent: int = FIRST_PARENT) -> int:
    """Run one trial; `first_parent` is the launcher that started this process (the fork server
    passes its own pid: this module was imported there, before the fork)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m runners CONFIG.json RESULT.json", file=sys.stderr)
        return 2
    config_path, result_path = Path(args[0]), Path(args[1])
    lifeline.die_with_parent(first_parent=first_parent, announced=lifeline.announced_parent())
    proto = _protocol_stdout()
    calm_threads()
    quiet_libraries()

    from runners.config import TrialConfig, TrialResult  # lazy: after calm_threads()

    try:
        config = TrialConfig.from_json(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        result = TrialResult(
            state="failed", metric="unknown", error=f"{type(exc).__name__}: bad trial config {exc}"
        )
    else:
        from runners.trial import run_trial  # lazy: after calm_threads(), as torch may load

        result = run_trial(config, _reporter(proto))
    if distributed.is_main():
        write_result_atomically(result_path, result.to_json())
    proto.flush()
    distributed.finish()
    return _exit_code(result)


def _reporter(proto: IO[str]) -> Reporter:
    """The protocol on one process; under torchrun rank 0's voice and rank 0's decisions."""
    from runners.reporting import NullReporter, PipeReporter  # lazy: as main's imports

    if distributed.world_size() == 1:
        return PipeReporter(out=proto, inp=sys.stdin)
    inner = PipeReporter(out=proto, inp=sys.stdin) if distributed.is_main() else NullReporter()
    return distributed.RankReporter(inner)


def _exit_code(result: TrialResult) -> int:
    """0 whenever a result was written; under torchrun, 1 for a failure (see module docstring)."""
    if distributed.world_size() == 1 or result.state != "failed":
        return 0
    input_error = (result.error or "").startswith(("TrialInputError", "InputError"))
    return 0 if input_error and not distributed.is_main() else 1


if __name__ == "__main__":
    sys.exit(main())
