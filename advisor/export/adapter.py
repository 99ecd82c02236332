"""Adapters out of a recorded study: export a trial, or each task's best as a bundle.

A trial's adapter lives as the `adapter/` artifact of its MLflow child run, with
`adapter_config.json` naming whatever base path the runner saw. To be useful elsewhere it must
load with one call and no network, so an export rewrites `base_model_name_or_path` to the local
base model directory (for a GGUF preset: the converted safetensors cache) and adds the tokenizer;
`merge=True` instead folds the adapter into the base weights and saves a plain model. Both carry
a model card and `advisor_export.json` with the trial's facts, so the directory explains itself.

The output directory is built beside its destination and renamed into place (`output.py`): a
failure never leaves a half-written export behind, and `--force` replaces only a directory an
earlier export wrote (its `.advisor-export` marker). The stores are reached through
`advisor.stores` only.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from advisor.directions import gain
from advisor.errors import AdvisorInputError
from advisor.redact import redact_url
from advisor.stores import keys
from advisor.stores.records import RecordedStudy
from advisor.stores.registry import register_trial
from runners.config import TrialConfig
from runners.models import load_model_and_tokenizer, resolve_model_dir

from .bundle import BundleResult, write_bundle
from .card import TrialFacts, write_card
from .output import building, check_out_dir, copy_adapter, out_path

Progress = Callable[[str], None]

# Trial user attributes copied into the model card and advisor_export.json, in this order.
_FACTS = (
    "score",
    "eval_loss",
    "wall_seconds",
    "peak_memory_mb",
    "trainable_params",
    "adapter_mb",
    "gpu_hours",
    "cost_usd",
    "device",
)
_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass
class ExportResult:
    """Where the export went and what it holds."""

    out_dir: Path
    merged: bool
    facts: TrialFacts
    files: list[str]
    registered: tuple[str, str] | None = None
    """(registered model name, version) when `--register` was given."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "merged": self.merged,
            "files": self.files,
            "registered": list(self.registered) if self.registered else None,
            **asdict(self.facts),
        }


def trial_config(recorded: RecordedStudy, run_id: str) -> TrialConfig:
    """The fully resolved TrialConfig the trial ran with (its `trial_config.json` artifact)."""
    text = recorded.tracker.read_artifact_text(run_id, keys.TRIAL_CONFIG)
    if text is None:
        raise AdvisorInputError(
            f"run {run_id} has no trial_config.json artifact", where="--trial", fix="re-run it"
        )
    return TrialConfig.from_json(text)


def trial_facts(
    recorded: RecordedStudy, number: int, run_id: str, config: TrialConfig
) -> TrialFacts:
    """The facts of one trial, from the Optuna record and its MLflow run."""
    frozen = recorded.trial(number)
    attrs = frozen.user_attrs
    baseline = recorded.baseline_score
    score = attrs.get("score")
    return TrialFacts(
        study=recorded.name,
        trial=number,
        method=config.method.name,
        params=dict(frozen.params),
        settings=_settings(config),
        metric=recorded.metric,
        base_model=config.model.source,
        base_model_dir=str(resolve_model_dir(config.model).resolve()),
        run_id=run_id,
        tracking_uri=redact_url(recorded.tracker.tracking_uri),  # written into the card
        system_prompt=config.data.system_prompt,
        baseline_score=baseline,
        gain_over_baseline=(
            gain(score, baseline, recorded.direction) if None not in (score, baseline) else None
        ),
        results={k: attrs[k] for k in _FACTS if attrs.get(k) is not None},
    )


def _settings(config: TrialConfig) -> dict[str, Any]:
    method = config.method
    out: dict[str, Any] = {"r": method.r, "lora_alpha": method.lora_alpha}
    if method.target_modules:
        out["target_modules"] = list(method.target_modules)
    if method.use_rslora:  # named only when on: a card of a plain alpha/r adapter reads as before
        out["use_rslora"] = True
    out.update(
        lora_dropout=method.lora_dropout,
        learning_rate=config.train.learning_rate,
        max_steps=config.train.max_steps,
        batch_size=config.train.batch_size,
        max_seq_length=config.train.max_seq_length,
        seed=config.seed,
    )
    return {k: v for k, v in out.items() if v is not None}


# -- export ----------------------------------------------------------------------------------
def export_trial(
    recorded: RecordedStudy,
    trial: int | str,
    out_dir: str | Path,
    *,
    merge: bool = False,
    force: bool = False,
    register: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """Write trial `trial` (a number or "best") of a recorded study as a loadable directory.

    Unmerged: `peft.AutoPeftModelForCausalLM.from_pretrained(out_dir)` works offline. Merged:
    `transformers.AutoModelForCausalLM.from_pretrained(out_dir)` works, no peft needed.
    """
    say = progress or (lambda _msg: None)
    out = out_path(out_dir)
    check_out_dir(out, force)
    number, run_id = recorded.adapter_run(trial)
    config = trial_config(recorded, run_id)
    say("resolving the base model")
    facts = trial_facts(recorded, number, run_id, config)
    with building(out, kind="merged" if merge else "adapter", study=recorded.name) as build:
        say(f"downloading the adapter of trial {number}")
        adapter = recorded.tracker.download_artifact(run_id, keys.ADAPTER, build / ".download")
        if merge:
            say("merging the adapter into the base model")
            _write_merged(config, adapter, build, trial_dtype(recorded, number))
        else:
            _write_adapter(adapter, Path(facts.base_model_dir), build)
        shutil.rmtree(build / ".download")
        write_card(build, facts, merged=merge)
        files = sorted(str(p.relative_to(build)) for p in build.rglob("*") if p.is_file())
    result = ExportResult(out_dir=out, merged=merge, facts=facts, files=files)
    if register:
        say("registering the adapter")
        result.registered = register_trial(recorded, number)
    return result


def trial_dtype(recorded: RecordedStudy, number: int) -> str:
    """The precision the trial trained in (its trial_result.json), as a torch dtype name."""
    run_id = recorded.trial_run_id(number)
    text = recorded.tracker.read_artifact_text(run_id, keys.TRIAL_RESULT)
    precision = json.loads(text).get("precision", "fp32") if text else "fp32"
    return _DTYPES.get(precision, "float32")


def _write_adapter(adapter: Path, base_dir: Path, build: Path) -> None:
    from transformers import AutoTokenizer

    copy_adapter(adapter, base_dir, build)
    AutoTokenizer.from_pretrained(base_dir, local_files_only=True).save_pretrained(build)


def _write_merged(config: TrialConfig, adapter: Path, build: Path, dtype: str) -> None:
    import torch
    from peft import PeftModel

    # Always the full-precision base, also for QLoRA: merging into 4-bit weights loses the delta.
    base, tokenizer = load_model_and_tokenizer(
        config.model, device="cpu", dtype=getattr(torch, dtype)
    )
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(build)
    tokenizer.save_pretrained(build)


def cached_adapter(recorded: RecordedStudy, run_id: str) -> Path:
    """The run's adapter in a per-run temp cache (downloaded once, renamed into place)."""
    cache = Path(tempfile.gettempdir()) / "advisor-adapters" / run_id
    if (cache / "adapter_config.json").is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}-", dir=cache.parent))
    try:
        local = recorded.tracker.download_artifact(run_id, keys.ADAPTER, tmp)
        if not cache.exists():
            local.rename(cache)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cache


# -- multi-task studies: one adapter per task ----------------------------------------------
def task_adapter(recorded: RecordedStudy, trial: int | str) -> tuple[Path, TrialFacts, str]:
    """(local adapter dir, facts, torch dtype name) of one task study's trial."""
    run_id, facts, dtype = _task_trial(recorded, trial)
    return cached_adapter(recorded, run_id), facts, dtype


def _task_trial(recorded: RecordedStudy, trial: int | str) -> tuple[str, TrialFacts, str]:
    """(MLflow run id, facts, torch dtype name) of one task study's trial: all from the
    records, nothing downloaded yet."""
    number, run_id = recorded.adapter_run(trial)
    config = trial_config(recorded, run_id)
    return run_id, trial_facts(recorded, number, run_id, config), trial_dtype(recorded, number)


def _bundle_trial(trial: int | str) -> str:
    if str(trial) != "best":
        raise AdvisorInputError(
            f"a bundle takes each task's best trial, got --trial {trial}",
            where="--trial",
            fix="leave out --trial, or export one task's trial with `advisor export "
            "STUDY.TASK OUT_DIR --trial N`",
        )
    return "best"


def export_bundle(
    tasks: dict[str, RecordedStudy],
    out_dir: str | Path,
    *,
    study: str,
    trial: int | str = "best",
    force: bool = False,
    progress: Progress | None = None,
) -> BundleResult:
    """Write each task's best adapter into one bundle over one base model (`bundle.py`).

    `tasks` maps task names to their recorded studies (`records.open_task_studies`).
    """
    say = progress or (lambda _msg: None)
    check_out_dir(out_path(out_dir), force, where="--bundle")
    trial = _bundle_trial(trial)
    found = {task: _task_trial(recorded, trial) for task, recorded in tasks.items()}
    facts = {task: asdict(task_facts) for task, (_, task_facts, _) in found.items()}
    bases = {f["base_model_dir"] for f in facts.values()}
    if len(bases) != 1:  # before any adapter is downloaded
        raise AdvisorInputError(
            f"the tasks of study {study!r} were tuned on different base models: {sorted(bases)}",
            where="STUDY",
            fix="a bundle serves one base model: tune every task on the same model.source",
        )
    adapters = {}
    for task, (run_id, _, _) in found.items():
        say(f"fetching the adapter of task {task}")
        adapters[task] = cached_adapter(tasks[task], run_id)
    dtypes = {dtype for _, _, dtype in found.values()}
    say("writing the bundle")
    dtype = "float32" if len(dtypes) != 1 else dtypes.pop()
    return write_bundle(
        out_dir, bases.pop(), adapters, facts, study=study, dtype=dtype, force=force
    )
