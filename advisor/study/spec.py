"""The study file as a pydantic model tree: what to tune, on what data, within which budget.

`StudySpec` is the root; its sections live in `sections.py` and the search space in
`space.py`. Rules across sections live here, in `StudySpec`'s validator, which either raises or,
when `load_study` passes a `problems` list in the validation context, appends every broken rule
with its path so that all of them are reported at once. What a method takes and its defaults
come from the runner's method registry (`runners.methods`), never from a list kept here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from runners.methods import METHOD_ALIASES, METHODS, Method, canonical_name
from runners.metrics import METRICS

from .knowledge import retrieval_problems
from .layouts import DEFAULT_METRIC
from .method_search import (
    fill_method_defaults,
    method_search_problems,
    method_view,
    parameter_problems,
    searched_methods,
    searches_method,
)
from .replay import replay_problems
from .sections import (
    COST_OBJECTIVES,
    TASK_STUDY_PATTERN,
    CostSpec,
    DataSpec,
    EvalSpec,
    ModelSpec,
    ObjectiveName,
    OptunaSpec,
    TaskSpec,
    TrackingSpec,
    TrainSpec,
    TrialLimitsSpec,
)
from .space import (
    METHOD_KEYS,
    NUMERIC_PARAMS,
    SEED_MAX,
    FloatRange,
    IntRange,
    SearchSpec,
    Section,
    choice_count,
    rule,
    shown,
)
from .start import start_problems

SAMPLER_MULTI_OBJECTIVE = {"tpe": True, "random": True, "grid": True}
"""Which samplers can optimise two objectives (Optuna 5: all three can; pruners cannot)."""
SHARED_PARAMS = ("learning_rate", "replay_fraction")
"""Search parameters of every method; the other `search:` keys belong to the methods that list
them in their registry entry (`Method.search`)."""


def known_methods() -> tuple[str, ...]:
    """Names of the runner's method registry."""
    return tuple(METHODS)


def per_method_params() -> tuple[str, ...]:
    """`search:` keys that belong to some methods only (r, lora_alpha, target_modules, ...)."""
    return tuple(
        name for name in SearchSpec.model_fields if name not in (*SHARED_PARAMS, *METHOD_KEYS)
    )


class StudySpec(Section):
    """A tuning study: model, data, metric, method, search space, budget, objectives, stores."""

    name: str = Field(
        pattern=TASK_STUDY_PATTERN,
        description="Slug naming the Optuna study and the MLflow experiment: a-z, 0-9, _ and -. "
        "A dot only in `<study>.<task>`, the name advisor gives each task's own study.",
    )
    description: str = Field("", description="Free text shown in reports.")
    seed: int = Field(
        0, ge=0, le=SEED_MAX, description="Seeds the sampler and every trial, 0 .. 2^32-1."
    )
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
        DEFAULT_METRIC,
        description=f"Task metric: {', '.join(METRICS)}. Chat data: a metric of the generated "
        "last answer, or eval_loss; raw text: perplexity or eval_loss (both minimised).",
    )
    method: str = Field(
        "lora",
        description="Fine-tuning method from the runner's registry; rag (no training: passages "
        "of data.knowledge in the prompt) and rag_lora (also written rag+lora: LoRA trained "
        "with the passages in its prompts) retrieve. To compare methods in one study, list "
        "them in search.method instead (this key is then the first of them).",
    )
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
    _task: str | None = PrivateAttr(None)

    @property
    def source_file(self) -> str | None:
        """The study file this spec was loaded from (None when built in Python)."""
        return self._source_file

    def set_source_file(self, path: str | None) -> None:
        """Record where the study file lies (it locates line numbers in later errors, and its
        folder holds the default stores' project)."""
        self._source_file = path

    @property
    def umbrella(self) -> str | None:
        """The multi-task study this spec is one task of (set by `expand_tasks`), else None."""
        return self._umbrella

    @property
    def task(self) -> str | None:
        """The task's name when this spec is one task of a multi-task study, else None."""
        return self._task

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        """The registry's name: an alias (`rag+lora`) is stored and hashed as `rag_lora`."""
        methods = known_methods()
        if canonical_name(value) not in methods:
            names = (*methods, *METHOD_ALIASES)
            raise rule(f"unknown method {shown(value)}", f"use one of: {', '.join(names)}")
        return canonical_name(value)

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, value: list[str]) -> list[str]:
        if not 1 <= len(value) <= 2 or value[0] != "metric" or "metric" in value[1:]:
            raise rule(
                f"objectives must be [metric] or [metric, COST], but got {shown(value)}",
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
        """Make the spec fully resolved, from the method's registry entry: a dump of it reruns
        the same study. A LoRA-family alpha is given once: lora_alpha, or alpha_ratio x r.
        A study that searches the method fills every listed method's (`method_search`)."""
        if searches_method(self):
            self.method = searched_methods(self)[0]
            fill_method_defaults(self)
            if self.tracking.experiment is None:
                self.tracking.experiment = self.name
            return
        search, method = self.search, self.method_entry()
        for name, value in method.defaults.items():
            if name == "alpha_ratio" and search.lora_alpha is not None:
                continue
            if getattr(search, name) is None:
                setattr(search, name, value)
        if search.learning_rate is None and method.trains:  # rag has no learning rate
            search.learning_rate = method.learning_rate
        if self.tracking.experiment is None:
            self.tracking.experiment = self.name

    # --- derived views used by the tuner and the CLI ---

    def method_entry(self) -> Method:
        """The method's entry in the runner's registry."""
        return METHODS[self.method]

    def method_params(self) -> tuple[str, ...]:
        """The `search:` keys the method takes besides the shared ones (learning_rate, ...);
        of a study that searches the method, the keys any of its methods takes."""
        return tuple(k for m in self.methods() for k in METHODS[m].search)

    def methods(self) -> tuple[str, ...]:
        """The methods the study's trials run: search.method, else the one `method`."""
        return searched_methods(self)

    def objective_names(self) -> list[str]:
        """Objective names as logged: the metric's name, then the cost (if any)."""
        return [self.metric if o == "metric" else o for o in self.objectives]

    def directions(self) -> list[str]:
        """Optuna directions: the metric is maximised (eval_loss minimised), costs minimised."""
        first = "maximize" if METRICS[self.metric].higher_is_better else "minimize"
        return [first] + ["minimize"] * (len(self.objectives) - 1)

    def space_size(self) -> float:
        """Number of distinct configurations (math.inf when a range is continuous); of a study
        that searches the method, the sum of its methods' spaces."""
        if searches_method(self):
            return sum(method_view(self, m).space_size() for m in self.methods())
        size: float = 1
        for name in NUMERIC_PARAMS:
            size *= choice_count(getattr(self.search, name))
        return size * max(1, len(self.search.target_choices()))


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


def cross_field_problems(spec: StudySpec) -> list[tuple[tuple[Any, ...], str, str]]:
    """Every broken rule that spans sections, as (location, message, fix)."""
    problems: list[tuple[tuple[Any, ...], str, str]] = []
    problems.extend(parameter_problems(spec, per_method_params()))
    problems.extend(method_search_problems(spec))
    if any(METHODS[m].trains for m in spec.methods()):  # else retrieval_problems refuses replay
        problems.extend(replay_problems(spec))
    problems.extend(retrieval_problems(spec))
    problems.extend(start_problems(spec))  # optuna.start: see .start
    if spec.optuna.sampler == "grid":
        for name in NUMERIC_PARAMS:
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
