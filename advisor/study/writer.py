"""Write a ready study file for the method `advisor recommend` chose.

The recommender suggests one starting point (r, alpha, target modules, learning rate); the study
searches around it — half and double the rank, alpha = r and 2r, the suggested modules against all
linear layers, a learning-rate range of 9x around the suggestion — so the first study a team runs
already tests the blog-post defaults against their neighbours.

The file is written atomically and validated with the same loader `advisor tune` uses; a study
that would not validate is not left on disk.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from advisor.decide.estimate import TRAINS_AS
from advisor.errors import AdvisorInputError
from runners.methods import METHODS
from runners.methods.targets import TARGET_MODULE_PRESETS

from .loading import load_study
from .sections import known_model_presets

WHERE = "--write-study"


def _trained_method(plan: list[str], method: str) -> str:
    """The runner method a study trains for the recommendation: the chosen method, else the
    last trained step of the plan; a LoRA-family or full fine-tuning method of the registry."""
    for name in [method, *reversed(plan)]:
        trained = TRAINS_AS.get(name, name)
        if trained in METHODS and METHODS[trained].family in ("lora", "full"):
            return trained
    if method == "prompt_tuning":
        raise AdvisorInputError(
            "the recommendation is prompt tuning of a model behind an API: there are no local "
            "weights to train, so there is no study to write",
            where=WHERE,
            fix="run without --write-study, or recommend for open weights (--weights open)",
        )
    raise AdvisorInputError(
        f"the plan {plan} trains nothing (RAG retrieves facts; it has no hyperparameters to tune)",
        where=WHERE,
        fix="run without --write-study; for a format or style to learn, use --goal both",
    )


def _neighbours(r: int) -> list[int]:
    return sorted({max(2, r // 2), r, r * 2})


def _target_choices(suggested: list[str]) -> list[Any]:
    for name, modules in TARGET_MODULE_PRESETS.items():
        if sorted(modules) == sorted(suggested):
            return sorted({name, "all_linear"}, key=["attention_qv", name, "all_linear"].index)
    return [list(suggested), "all_linear"]


def study_for_recommendation(
    recommendation: Any,
    *,
    name: str,
    model: str,
    train: str,
    eval_file: str,
    prompt_field: str = "prompt",
    response_field: str = "response",
    metric: str = "rouge_l",
    n_trials: int = 12,
) -> dict[str, Any]:
    """The study (as plain data) that searches around the recommendation's hyperparameters."""
    if not os.path.exists(model) and model not in known_model_presets():
        raise AdvisorInputError(
            f"the study needs a model the tuner can load locally, and {model!r} is only a shape "
            "preset (the tuner never downloads weights)",
            where="--study-model",
            fix="pass --study-model DIR (a local HF model directory or .gguf file), or "
            f"--model {' / '.join(known_model_presets())}",
        )
    method = _trained_method(list(recommendation.plan), recommendation.method)
    hp = recommendation.hyperparameters
    lr = float(hp.get("learning_rate", 2e-4))
    traits = recommendation.traits
    examples = int(traits.get("examples", 1000))
    batch = 4
    epochs = float(hp.get("epochs", 1))
    steps = max(20, min(2000, round(examples * epochs / batch)))
    low, high = float(f"{lr / 3:.2g}"), float(f"{lr * 3:.2g}")
    search: dict[str, Any] = {"learning_rate": {"low": low, "high": high, "log": True}}
    if method != "full":
        r = int(hp.get("r", 8))
        search.update(
            r=_neighbours(r),
            alpha_ratio=[1, 2],
            target_modules=_target_choices(list(hp.get("target_modules", ["q_proj", "v_proj"]))),
            lora_dropout=0.05,
        )
    return {
        "name": name,
        "description": f"Written by `advisor recommend` for {recommendation.model.get('name')}: "
        f"plan {' -> '.join(recommendation.plan)}; searches around its starting point.",
        "seed": 0,
        "model": {"source": model},
        "data": {
            "train": train,
            "eval": eval_file,
            "prompt_field": prompt_field,
            "response_field": response_field,
        },
        "metric": metric,
        "method": method,
        "search": search,
        "train": {
            "max_steps": steps,
            "batch_size": batch,
            "max_seq_length": int(traits.get("seq_len", 512)),
            "eval_steps": max(10, steps // 5),
        },
        "optuna": {"sampler": "tpe", "pruner": "median", "n_trials": n_trials},
        "objectives": ["metric"],
    }


def _portable(path: str, study_dir: Path) -> str:
    """Relative to the study file when both lie in the project (cwd), else absolute."""
    resolved, project = Path(path).resolve(), Path.cwd().resolve()
    if resolved.is_relative_to(project) and study_dir.resolve().is_relative_to(project):
        return os.path.relpath(resolved, study_dir.resolve())
    return str(resolved)


def write_study_file(path: str | Path, study: dict[str, Any]) -> Path:
    """Write `study` as YAML at `path` atomically, then validate it like `advisor tune` would.

    Relative data paths are written relative to the study file's folder, as the loader reads
    them. An invalid study is removed and its errors raised.
    """
    target = Path(path)
    if target.exists():
        raise AdvisorInputError(
            f"{target} already exists", where=WHERE, fix="choose another path or remove the file"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    files = [Path(study["data"][key]).resolve() for key in ("train", "eval")]
    for key in ("train", "eval"):
        study["data"][key] = _portable(study["data"][key], target.parent)
    if any(not f.is_relative_to(target.parent.resolve()) for f in files):
        # data.root defaults to the study file's folder: declare the folder holding the data.
        holder = os.path.commonpath([f.parent for f in files])
        study["data"]["root"] = _portable(holder, target.parent)
    if Path(study["model"]["source"]).exists():
        study["model"]["source"] = _portable(study["model"]["source"], target.parent)
    header = "# Written by `advisor recommend --write-study`; check it with `advisor validate`.\n"
    text = header + yaml.safe_dump(study, sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, target)
    try:
        load_study(target)
    except AdvisorInputError:
        target.unlink(missing_ok=True)
        raise
    return target
