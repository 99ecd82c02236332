"""A study that searches `use_rslora: [false, true]` trains each trial with the sampled scaling:
the switch goes through the sampler, the trial's recorded config and the saved peft adapter, and
a rerun of the rsLoRA trial trains it again with rsLoRA (the same eval loss)."""

from __future__ import annotations

import json
from pathlib import Path

from support import write_tiny_study

from advisor.review.rerun import rerun
from advisor.tuning.entry import tune


def _recorded(root: Path, study: str) -> dict[int, tuple[bool, bool]]:
    """trial number -> (use_rslora of its trial_config.json, of its saved adapter_config.json)."""
    found = {}
    for config_file in (root / "mlruns" / "artifacts" / study).rglob("trial_config.json"):
        config = json.loads(config_file.read_text())
        if config["baseline"]:
            continue
        adapter = json.loads((config_file.parent / "adapter" / "adapter_config.json").read_text())
        found[config["trial_number"]] = (config["method"]["use_rslora"], adapter["use_rslora"])
    return found


def test_a_searched_switch_trains_each_trial_with_its_scaling(
    tmp_path: Path, tiny_model: Path
) -> None:
    study = write_tiny_study(
        tmp_path,
        tiny_model,
        "rs",
        search={
            "r": 4,
            "target_modules": "all_linear",
            "learning_rate": 1e-2,
            "use_rslora": [False, True],
        },
        train={"max_steps": 2, "eval_steps": 2},
        eval={"forgetting": False},
        optuna={"sampler": "grid", "pruner": "none", "n_trials": 2},
    )
    summary = tune(study, root=tmp_path)
    sampled = {row.number: row.params["use_rslora"] for row in summary.rows}
    assert sorted(sampled.values()) == [False, True]
    assert _recorded(tmp_path, "rs") == {n: (on, on) for n, on in sampled.items()}
    losses = {row.params["use_rslora"]: row.eval_loss for row in summary.rows}
    # the scaling changed what was trained, far beyond the rerun's tolerance (1e-6)
    assert abs(losses[True] - losses[False]) > 1e-3

    rslora_trial = next(n for n, on in sampled.items() if on)
    report = rerun("rs", root=tmp_path, trial=rslora_trial, name="rs-again")
    assert [t.same_params for t in report.trials] == [True]
    assert report.reproduced  # the same loss as the rsLoRA trial, not the plain one
