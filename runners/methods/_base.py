"""The method registry: one frozen `Method` entry per fine-tuning method, one shared loop.

Modelled on peft's `register_peft_method`: a closed table keyed by name that rejects duplicates
and answers unknown names with the list of known ones. The entry is everything advisor knows
about a method: how the base model is loaded (`load_kwargs`, e.g. a 4-bit quantisation config),
how it is turned into the model that is trained (`prepare`), which study parameters it takes and
their defaults (`search`, `defaults`), its default learning rate and optimizer. Study files
(`advisor.study`) and the recommender (`advisor.decide`) read these entries; `runners.train`
trains every method the same way. Adding a method is one module and one `register_method`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from runners.config import MethodConfig
from runners.errors import TrialInputError
from runners.models import module_names_of

LORA_SEARCH = (
    "r",
    "lora_alpha",
    "alpha_ratio",
    "target_modules",
    "lora_dropout",
    "use_rslora",
)
"""The study parameters of the LoRA family (besides learning_rate, which every method takes)."""
LORA_DEFAULTS: Mapping[str, Any] = {
    "r": 8,
    "alpha_ratio": 2.0,
    "target_modules": "attention_qv",
    "lora_dropout": 0.0,
    "use_rslora": False,
}
"""What a LoRA-family study leaves out: alpha = 2 r (the usual heuristic) on q and v, scaled by
alpha/r (peft's default; rsLoRA's alpha/sqrt(r) only when the study asks for it)."""
DEFAULT_LEARNING_RATE = 2e-4
"""The LoRA family's usual starting rate (QLoRA paper: 2e-4 for 7B-13B models)."""
RETRIEVAL_SEARCH = ("top_k", "chunk_size")
"""The study parameters of the retrieval methods (`runners.retrieval`)."""
Family = Literal["lora", "full", "light", "retrieval"]


def _no_load_kwargs(cfg: MethodConfig, *, device: str, dtype: Any) -> dict[str, Any]:
    return {}


def _no_callbacks(model: Any) -> list[Any]:
    return []


def adamw(*, cuda: bool) -> str:
    """Plain AdamW: its fp32 states cost little for an adapter's weights."""
    return "adamw_torch"


@dataclass(frozen=True)
class Method:
    """One registry entry. `prepare(model, cfg, max_steps=...)` receives the loaded base model and
    returns what is trained (`max_steps` is for schedules such as AdaLoRA's rank budget)."""

    name: str
    summary: str
    peft: bool
    """True when training produces a peft adapter (saved with `save_pretrained`)."""
    prepare: Callable[[Any, MethodConfig], Any]
    family: Family = "lora"
    """lora: a low-rank adapter of rank r on target modules (what the estimator counts as r x
    (d_in + d_out) per matrix); full: every weight; light: a few scales or soft-prompt tokens;
    retrieval: nothing trained (an index and inference)."""
    search: tuple[str, ...] = LORA_SEARCH
    """Study parameters the method takes besides learning_rate (`search:` keys in a study)."""
    defaults: Mapping[str, Any] = field(default_factory=lambda: dict(LORA_DEFAULTS))
    """Values of `search` parameters that a study leaves out."""
    learning_rate: float = DEFAULT_LEARNING_RATE
    """The learning rate of a study that sets none."""
    optimizer: Callable[..., str] = field(default=adamw)
    """`optimizer(cuda=...)`: the transformers optimizer of `train.optimizer: auto`."""
    needs_cuda: bool = False
    load_kwargs: Callable[..., dict[str, Any]] = field(default=_no_load_kwargs)
    """`load_kwargs(cfg, device=..., dtype=...)`: extra `from_pretrained` arguments."""
    callbacks: Callable[[Any], list[Any]] = field(default=_no_callbacks)
    """`callbacks(prepared_model)`: extra TrainerCallbacks the shared loop runs for this method."""
    trains: bool = True
    """False: the base model is evaluated as loaded (`rag`); no learning rate, no steps, no
    adapter, no forgetting."""
    retrieval: bool = False
    """True: `data.knowledge` is indexed and passages are put into the prompts
    (`runners.retrieval`); the method takes `RETRIEVAL_SEARCH`."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.defaults) - set(self.search))
        if unknown:
            raise ValueError(f"method {self.name!r}: defaults for {unknown}, not in its search")

    @property
    def uses_target_modules(self) -> bool:
        return "target_modules" in self.search


METHODS: dict[str, Method] = {}
METHOD_ALIASES: dict[str, str] = {}
"""Other spellings of a registered name (`rag+lora` for `rag_lora`), read as that name."""


def canonical_name(name: str) -> str:
    """The registry's name for `name` (itself unless it is an alias)."""
    return METHOD_ALIASES.get(name, name)


def register_method(method: Method) -> Method:
    """Add `method` to the registry; a second entry under the same name is a bug."""
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method called `name`; unknown names list the known ones."""
    try:
        return METHODS[canonical_name(name)]
    except KeyError:
        raise TrialInputError(
            f"unknown method {name!r}",
            fix=f"use one of: {', '.join(sorted(METHODS))}",
            where="method.name",
        ) from None


def check_target_modules(model: Any, cfg: MethodConfig) -> list[str] | None:
    """`cfg.target_modules` as a list, after checking each name exists among the model's linears.

    peft's own error ("Target modules ... not found") does not list the valid names; this one does.
    """
    if cfg.target_modules is None:
        return None
    known = module_names_of(model)
    unknown = [m for m in cfg.target_modules if m not in known]
    if unknown:
        raise TrialInputError(
            f"target module(s) {unknown} not found in the model",
            fix=f"choose among {known}",
            where="method.target_modules",
        )
    return list(cfg.target_modules)


def rank(cfg: MethodConfig, default: int = 8) -> int:
    """`cfg.r`, validated (a rank must be a positive integer)."""
    r = default if cfg.r is None else cfg.r
    if r < 1:
        raise TrialInputError(
            f"r must be >= 1, got {r}", fix="set r to 8, 16, 32 ...", where="method.r"
        )
    return int(r)
