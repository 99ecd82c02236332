"""A trial on two processes: torchrun starts two ranks, the Trainer runs them as DDP over gloo.

What must hold: the parent hears one voice (each eval and log event once, from rank 0), rank 0's
prune answer stops every rank, one result is written, and two ranks of batch b train exactly as
one process of batch 2b (same examples per step, loss averaged over the tokens of both ranks).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from advisor.tuning.process import TrialLimits, run_trial_process
from runners.config import TrialConfig, TrialResult
from runners.errors import TrialInputError

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo on POSIX"),
]

# A hang (a rank left waiting in a collective) reads as TrialTimeout instead of stalling the run.
LIMITS = TrialLimits(timeout_s=300)


def _run(
    config: TrialConfig, workdir: Path, prune_at: int | None = None
) -> tuple[TrialResult, list[tuple[int, float]], list[dict[str, Any]]]:
    evals: list[tuple[int, float]] = []
    events: list[dict[str, Any]] = []

    def on_eval(step: int, loss: float) -> bool:
        evals.append((step, loss))
        return prune_at is not None and step >= prune_at

    result = run_trial_process(
        config, workdir, on_eval=on_eval, on_event=events.append, limits=LIMITS
    )
    return result, evals, events


def _log_tail(workdir: Path) -> str:
    return (workdir / "trial.log").read_text(errors="replace")[-3000:]


def _every_rank_succeeded(workdir: Path) -> bool:
    """torchrun reports any rank that failed (e.g. one left in a collective its peer quit)."""
    return "ChildFailedError" not in (workdir / "trial.log").read_text(errors="replace")


def test_two_processes_report_once_and_train_like_one_with_twice_the_batch(
    make_config, tmp_path: Path
) -> None:
    workdir = tmp_path / "w"
    config = make_config(
        train={"batch_size": 2, "max_steps": 4, "eval_steps": 2},
        output_dir=str(tmp_path / "out2"),
        processes=2,
    )
    result, evals, events = _run(config, workdir)

    assert result.state == "complete", f"{result.error}\n{_log_tail(workdir)}"
    assert result.world_size == 2 and result.steps == 4
    assert _every_rank_succeeded(workdir), _log_tail(workdir)
    assert [step for step, _ in evals] == [2, 4]  # once per evaluation, not once per rank
    assert [tuple(p) for p in result.eval_curve] == evals
    phases = [e["phase"] for e in events if e["event"] == "phase"]
    assert phases == ["load", "train", "evaluate", "forgetting", "save"]  # rank 0 only, once each
    loss_logs = [e["step"] for e in events if e["event"] == "log" and "loss" in e["metrics"]]
    assert loss_logs == [1, 2, 3, 4]
    assert result.score is not None and 0.0 <= result.score <= 1.0
    assert (Path(result.adapter_dir) / "adapter_model.safetensors").is_file()
    assert len(Path(result.generations_path).read_text().splitlines()) == 3
    assert not list(workdir.glob(".trial_result.json.*"))  # written by a rename, by one rank

    # The same examples per optimizer step in one process: the losses agree to float rounding.
    # Two ranks average their gradients (gloo all-reduce) where one process sums one batch: the
    # order of fp32 additions differs, an ulp or two per gradient element per step, carried
    # through 4 steps at lr 1e-2 into losses near 5: rel 1e-5 (~80 ulps) leaves room for that.
    from runners.trial import run_trial

    single = run_trial(
        dataclasses.replace(
            config,
            processes=1,
            train=dataclasses.replace(config.train, batch_size=4),
            output_dir=str(tmp_path / "out1"),
        )
    )
    assert single.state == "complete" and single.world_size == 1
    assert result.train_loss == pytest.approx(single.train_loss, rel=1e-5)
    assert [s for s, _ in result.eval_curve] == [s for s, _ in single.eval_curve]
    for (_, two), (_, one) in zip(result.eval_curve, single.eval_curve, strict=True):
        assert two == pytest.approx(one, rel=1e-5)


def test_a_prune_answered_to_rank_0_stops_every_rank(make_config, tmp_path: Path) -> None:
    workdir = tmp_path / "w"
    config = make_config(
        train={"batch_size": 2, "max_steps": 12, "eval_steps": 2},
        output_dir=str(tmp_path / "out"),
        processes=2,
    )
    result, evals, _ = _run(config, workdir, prune_at=2)
    assert result.state == "pruned", f"{result.error}\n{_log_tail(workdir)}"
    assert result.steps == 2 and [step for step, _ in evals] == [2]
    assert result.adapter_dir is None
    assert _every_rank_succeeded(workdir), _log_tail(workdir)  # rank 1 stopped at step 2 too


def test_an_input_error_under_torchrun_is_reported_by_rank_0(make_config, tmp_path: Path) -> None:
    """Every rank meets the error; rank 0 writes it, and exits 1 so torchrun ends the rest."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    workdir = tmp_path / "w"
    config = make_config(device="cuda", output_dir=str(tmp_path / "out"), processes=2)
    result, _, _ = _run(config, workdir)
    assert result.state == "failed" and result.world_size == 2
    assert result.error.startswith("TrialInputError: device:"), _log_tail(workdir)


def test_more_gpu_processes_than_gpus_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from runners.distributed import check_world

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(TrialInputError, match=r"trial.processes = 4 needs one GPU per process"):
        check_world("cuda")
    check_world("cpu")  # CPU ranks need no device each
    monkeypatch.setenv("WORLD_SIZE", "2")
    check_world("cuda")
