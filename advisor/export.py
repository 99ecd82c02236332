"""Adapters out of a recorded study: export a trial, try it on a prompt, register it.

A trial's adapter lives as the `adapter/` artifact of its MLflow child run, with
`adapter_config.json` naming whatever base path the runner saw. To be useful elsewhere it must
load with one call and no network, so an export rewrites `base_model_name_or_path` to the local
base model directory (for a GGUF preset: the converted safetensors cache) and adds the tokenizer;
`merge=True` instead folds the adapter into the base weights and saves a plain model. Both carry
a model card and `advisor_export.json` with the trial's facts, so the directory explains itself.

The output directory is built beside its destination and renamed into place: a failure never
leaves a half-written export behind. MLflow is reached only through `StudyTracker`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from advisor.errors import AdvisorInputError
from advisor.records import RecordedStudy
from runners.config import TrialConfig

ADAPTER = "adapter"
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
class TrialFacts:
    """What an exported adapter is: where it came from and how well it did."""

    study: str
    trial: int
    method: str
    params: dict[str, Any]
    """The parameters Optuna searched for this trial."""
    settings: dict[str, Any]
    """The method's and training's resolved settings (rank, alpha, modules, lr, steps)."""
    metric: str
    base_model: str
    """The trial's `model.source` as declared (a preset name, a directory or a GGUF file)."""
    base_model_dir: str
    """The local Hugging Face directory the adapter is applied to."""
    run_id: str
    tracking_uri: str
    system_prompt: str | None = None
    baseline_score: float | None = None
    gain_over_baseline: float | None = None
    results: dict[str, Any] = field(default_factory=dict)


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


# -- which trials have an adapter ---------------------------------------------------------
def _frozen_trial(recorded: RecordedStudy, number: int) -> Any:
    for trial in recorded.study.get_trials(deepcopy=False):
        if trial.number == number:
            return trial
    known = [t.number for t in recorded.study.get_trials(deepcopy=False)]
    raise AdvisorInputError(
        f"study {recorded.name!r} has no trial {number}",
        where="--trial",
        fix=f"one of {known} or 'best'" if known else "run `advisor tune` first",
    )


def trials_with_adapter(recorded: RecordedStudy) -> list[int]:
    """Numbers of the complete trials whose run logged an `adapter/` artifact."""
    import optuna

    complete = recorded.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return [
        t.number
        for t in complete
        if recorded.tracker.has_artifact(recorded.trial_run_id(t.number), ADAPTER)
    ]


def adapter_run(recorded: RecordedStudy, trial: int | str) -> tuple[int, str]:
    """(trial number, MLflow run id) of a trial that has an adapter, else a user error saying
    why it has none (pruned, failed, full fine-tuning) and which trials do."""
    number = recorded.resolve_trial(trial)
    frozen = _frozen_trial(recorded, number)
    state = frozen.state.name.lower()
    run_id = recorded.trial_run_id(number)
    if state != "complete":
        reason = {
            "pruned": "it was pruned (stopped early), so no adapter was saved",
            "fail": "it failed"
            + (f" ({frozen.user_attrs['error']})" if frozen.user_attrs.get("error") else ""),
        }.get(state, f"its state is {state}")
    elif not recorded.tracker.has_artifact(run_id, ADAPTER):
        reason = "its run logged no adapter (a `full` fine-tuning trial saves no weights)"
    else:
        return number, run_id
    having = trials_with_adapter(recorded)
    raise AdvisorInputError(
        f"trial {number} of study {recorded.name!r} has no adapter: {reason}",
        where="--trial",
        fix=f"pick a trial with an adapter: {having} or 'best'"
        if having
        else "no trial of this study has an adapter yet; run `advisor tune` further",
    )


def trial_config(recorded: RecordedStudy, run_id: str) -> TrialConfig:
    """The fully resolved TrialConfig the trial ran with (its `trial_config.json` artifact)."""
    text = recorded.tracker.read_artifact_text(run_id, "trial_config.json")
    if text is None:
        raise AdvisorInputError(
            f"run {run_id} has no trial_config.json artifact", where="--trial", fix="re-run it"
        )
    return TrialConfig.from_json(text)


def trial_facts(
    recorded: RecordedStudy, number: int, run_id: str, config: TrialConfig
) -> TrialFacts:
    """The facts of one trial, from the Optuna record and its MLflow run."""
    from runners.models import resolve_model_dir

    frozen = _frozen_trial(recorded, number)
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
        tracking_uri=recorded.tracker.tracking_uri,
        system_prompt=config.data.system_prompt,
        baseline_score=baseline,
        gain_over_baseline=score - baseline if None not in (score, baseline) else None,
        results={k: attrs[k] for k in _FACTS if attrs.get(k) is not None},
    )


def _settings(config: TrialConfig) -> dict[str, Any]:
    method = config.method
    out: dict[str, Any] = {"r": method.r, "lora_alpha": method.lora_alpha}
    if method.target_modules:
        out["target_modules"] = list(method.target_modules)
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
def check_out_dir(out_dir: Path, force: bool) -> None:
    """Refuse a destination that is a file, or a non-empty directory unless `force`."""
    if out_dir.exists() and not out_dir.is_dir():
        raise AdvisorInputError(
            f"{out_dir} exists and is not a directory", where="OUT_DIR", fix="choose another path"
        )
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise AdvisorInputError(
            f"{out_dir} exists and is not empty",
            where="OUT_DIR",
            fix="choose a new directory, or pass --force to replace it",
        )


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
    out = Path(out_dir).expanduser().absolute()
    check_out_dir(out, force)
    number, run_id = adapter_run(recorded, trial)
    config = trial_config(recorded, run_id)
    say("resolving the base model")
    facts = trial_facts(recorded, number, run_id, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        say(f"downloading the adapter of trial {number}")
        adapter = recorded.tracker.download_artifact(run_id, ADAPTER, build / ".download")
        if merge:
            say("merging the adapter into the base model")
            _write_merged(config, adapter, build, _dtype_of(recorded, number))
        else:
            _write_adapter(adapter, Path(facts.base_model_dir), build)
        shutil.rmtree(build / ".download")
        _write_card(build, facts, merged=merge)
        files = sorted(str(p.relative_to(build)) for p in build.rglob("*") if p.is_file())
        replace_dir(build, out)
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)
    result = ExportResult(out_dir=out, merged=merge, facts=facts, files=files)
    if register:
        say("registering the adapter")
        result.registered = register_trial(recorded, number)
    return result


def _dtype_of(recorded: RecordedStudy, number: int) -> str:
    """The precision the trial trained in (its trial_result.json), as a torch dtype name."""
    run_id = recorded.trial_run_id(number)
    text = recorded.tracker.read_artifact_text(run_id, "trial_result.json")
    precision = json.loads(text).get("precision", "fp32") if text else "fp32"
    return _DTYPES.get(precision, "float32")


def _write_adapter(adapter: Path, base_dir: Path, build: Path) -> None:
    from transformers import AutoTokenizer

    copy_adapter(adapter, base_dir, build)
    AutoTokenizer.from_pretrained(base_dir, local_files_only=True).save_pretrained(build)


def copy_adapter(adapter: Path, base_dir: Path, dest: Path) -> None:
    """Copy a peft adapter directory to `dest`, its config naming the local `base_dir` (the
    runner's own path to the base may be a temporary or another machine's)."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in adapter.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    config_path = dest / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text())
    adapter_config["base_model_name_or_path"] = str(base_dir)
    config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")


def _write_merged(config: TrialConfig, adapter: Path, build: Path, dtype: str) -> None:
    import torch
    from peft import PeftModel

    from runners.models import load_model_and_tokenizer

    # Always the full-precision base, also for QLoRA: merging into 4-bit weights loses the delta.
    base, tokenizer = load_model_and_tokenizer(
        config.model, device="cpu", dtype=getattr(torch, dtype)
    )
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(build)
    tokenizer.save_pretrained(build)


def replace_dir(build: Path, out: Path) -> None:
    """Move the finished export into place; an old `out` is removed only once `build` is ready."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{build.name}")
        out.rename(old)
    build.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def model_card(facts: TrialFacts, *, merged: bool) -> str:
    """README.md: Hugging Face model-card front matter, then the trial's facts and how to load."""
    import yaml

    front = {
        "base_model": facts.base_model_dir,
        "library_name": "transformers" if merged else "peft",
        "tags": [
            "advisor",
            facts.method,
            f"study:{facts.study}",
            "merged" if merged else "adapter",
        ],
    }
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {facts.study} — trial {facts.trial} ({facts.method}{', merged' if merged else ''})",
        "",
        f"Tuned by advisor in study `{facts.study}`, trial {facts.trial}, on `{facts.base_model}`.",
        "",
        "## Searched parameters",
        "",
        *[f"- {k}: {_fmt(v)}" for k, v in facts.params.items()],
        "",
        "## Settings",
        "",
        *[f"- {k}: {_fmt(v)}" for k, v in facts.settings.items()],
        "",
        "## Results",
        "",
        f"- task metric ({facts.metric}): {_fmt(facts.results.get('score', '-'))}",
        f"- baseline (untuned base model): {_fmt(facts.baseline_score)}",
        f"- gain over baseline: {_fmt(facts.gain_over_baseline)}",
        *[f"- {k}: {_fmt(v)}" for k, v in facts.results.items() if k != "score"],
        "",
        "## Provenance",
        "",
        f"- MLflow run id: `{facts.run_id}`",
        f"- MLflow tracking URI: `{facts.tracking_uri}`",
        f"- base model directory: `{facts.base_model_dir}`",
        "",
        "## Load it",
        "",
        "```python",
    ]
    if merged:
        lines += [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "model = AutoModelForCausalLM.from_pretrained(THIS_DIR)",
        ]
    else:
        lines += [
            "from peft import AutoPeftModelForCausalLM",
            "from transformers import AutoTokenizer",
            "model = AutoPeftModelForCausalLM.from_pretrained(THIS_DIR)  # base from the card",
        ]
    lines += ["tokenizer = AutoTokenizer.from_pretrained(THIS_DIR)", "```", ""]
    return "\n".join(lines)


def _write_card(build: Path, facts: TrialFacts, *, merged: bool) -> None:
    (build / "README.md").write_text(model_card(facts, merged=merged))
    payload = {"merged": merged, **asdict(facts)}
    (build / "advisor_export.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")


# -- try -------------------------------------------------------------------------------------
def cached_adapter(recorded: RecordedStudy, run_id: str) -> Path:
    """The run's adapter in a per-run temp cache (downloaded once, renamed into place)."""
    cache = Path(tempfile.gettempdir()) / "advisor-adapters" / run_id
    if (cache / "adapter_config.json").is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}-", dir=cache.parent))
    try:
        local = recorded.tracker.download_artifact(run_id, ADAPTER, tmp)
        if not cache.exists():
            local.rename(cache)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cache


def try_trial(
    recorded: RecordedStudy,
    trial: int | str,
    prompt: str,
    *,
    max_new_tokens: int = 64,
    progress: Progress | None = None,
) -> str:
    """Answer `prompt` with the base model plus trial `trial`'s adapter (greedy decoding).

    The prompt is formatted as in training: the study's system prompt, then the user turn,
    through the tokenizer's chat template.
    """
    import torch
    from peft import PeftModel

    from runners.evaluate import generate
    from runners.models import load_model_and_tokenizer

    if max_new_tokens < 1:
        raise AdvisorInputError(
            f"--max-new-tokens must be >= 1, got {max_new_tokens}", where="--max-new-tokens"
        )
    say = progress or (lambda _msg: None)
    number, run_id = adapter_run(recorded, trial)
    config = trial_config(recorded, run_id)
    say(f"fetching the adapter of trial {number}")
    adapter = cached_adapter(recorded, run_id)
    say("loading the base model and the adapter")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, _dtype_of(recorded, number))
    base, tokenizer = load_model_and_tokenizer(config.model, device=device, dtype=dtype)
    model = PeftModel.from_pretrained(base, str(adapter))
    messages = []
    if config.data.system_prompt:
        messages.append({"role": "system", "content": config.data.system_prompt})
    messages.append({"role": "user", "content": prompt})
    say("generating")
    return generate(model, tokenizer, [messages], max_new_tokens=max_new_tokens, batch_size=1)[0]


# -- multi-task studies: one adapter per task ----------------------------------------------
def _task_adapter(recorded: RecordedStudy, trial: int | str) -> tuple[Path, TrialFacts, str]:
    """(local adapter dir, facts, torch dtype name) of one task study's trial."""
    number, run_id = adapter_run(recorded, trial)
    config = trial_config(recorded, run_id)
    facts = trial_facts(recorded, number, run_id, config)
    return cached_adapter(recorded, run_id), facts, _dtype_of(recorded, number)


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
) -> Any:
    """Write each task's best adapter into one bundle over one base model (`advisor.bundle`).

    `tasks` maps task names to their recorded studies (`records.open_task_studies`).
    """
    from advisor.bundle import write_bundle

    say = progress or (lambda _msg: None)
    check_out_dir(Path(out_dir).expanduser().absolute(), force)
    adapters, facts, dtypes = {}, {}, set()
    for task, recorded in tasks.items():
        say(f"fetching the adapter of task {task}")
        adapters[task], task_facts, dtype = _task_adapter(recorded, _bundle_trial(trial))
        facts[task] = asdict(task_facts)
        dtypes.add(dtype)
    bases = {f["base_model_dir"] for f in facts.values()}
    if len(bases) != 1:
        raise AdvisorInputError(
            f"the tasks of study {study!r} were tuned on different base models: {sorted(bases)}",
            where="STUDY",
            fix="a bundle serves one base model: tune every task on the same model.source",
        )
    say("writing the bundle")
    dtype = "float32" if len(dtypes) != 1 else dtypes.pop()
    return write_bundle(
        out_dir, bases.pop(), adapters, facts, study=study, dtype=dtype, force=force
    )


def try_task(
    tasks: dict[str, RecordedStudy],
    task: str,
    prompt: str,
    *,
    trial: int | str = "best",
    max_new_tokens: int = 64,
    progress: Progress | None = None,
) -> tuple[int, str]:
    """(trial number, answer): `prompt` answered by task `task`'s adapter, loaded the way a
    bundle loads it (base once, the adapter by task name, the task's system prompt)."""
    from advisor.bundle import open_adapters

    if task not in tasks:
        raise AdvisorInputError(
            f"unknown task {task!r}", where="--task", fix=f"use one of: {', '.join(tasks)}"
        )
    if max_new_tokens < 1:
        raise AdvisorInputError(
            f"--max-new-tokens must be >= 1, got {max_new_tokens}", where="--max-new-tokens"
        )
    say = progress or (lambda _msg: None)
    say(f"fetching the adapter of task {task}")
    adapter, facts, dtype = _task_adapter(tasks[task], trial)
    say("loading the base model and the adapter")
    bundle = open_adapters(
        facts.base_model_dir,
        {task: adapter},
        {task: {"system_prompt": facts.system_prompt}},
        study=facts.study,
        dtype=dtype,
    )
    say("generating")
    return facts.trial, bundle.generate(task, [prompt], max_new_tokens=max_new_tokens)[0]


# -- model registry ----------------------------------------------------------------------------
def register_trial(
    recorded: RecordedStudy, trial: int | str, *, name: str | None = None
) -> tuple[str, str]:
    """Register trial `trial`'s adapter in the MLflow model registry: (model name, version)."""
    number, run_id = adapter_run(recorded, trial)
    frozen = _frozen_trial(recorded, number)
    model_name = name or f"{recorded.name}-adapter"
    tags = {
        "advisor.study": recorded.name,
        "advisor.trial": number,
        "advisor.metric": recorded.metric,
        **{f"advisor.param.{k}": v for k, v in frozen.params.items()},
    }
    if frozen.user_attrs.get("score") is not None:
        tags["advisor.score"] = frozen.user_attrs["score"]
    version = recorded.tracker.register_adapter(run_id, model_name, tags)
    return model_name, version


def register_best(recorded: RecordedStudy, *, name: str | None = None) -> tuple[str, str]:
    """Register the best complete trial's adapter as a new version of `<study>-adapter`."""
    return register_trial(recorded, "best", name=name)
