"""Recommendations that learn: how alike a finished study is, and how it moves the start.

The stores read finished studies into `PastStudy` records (`advisor.stores.evidence`); this
module is pure: it weighs each study against the current question and pulls the starting point
toward what the alike ones found. A study's weight is the product of four likenesses, each in
(0, 1]:

- model: 1 for the same model; else by size class, 1 / (1 + |log10 of the parameter ratio|)
  (a 2x larger model 0.77, 10x 0.5): learning rates move with model size (EVIDENCE.md).
- method: 1 for the same method; 0.7 within the LoRA family (their learning rates agree within
  1-2x once tuned, Lee et al. 2026); 0 otherwise (full fine-tuning's rate is ~10x lower, LWR).
- data size: 1 / (1 + |log10 of the examples ratio|); 0.5 when either is unknown.
- data: 1 on the same training data (same SHA-256), 0.5 on other data or when --train was not
  given: a study of another task weighs half as much as one of the same task.

A study moves the start only when its best trial did not do worse than its untuned baseline
(gain >= 0: a tie on the metric still says which values trained best, the stores break it on
eval loss) and its weight is at least `MIN_WEIGHT`. Each movable value (`learning_rate` and
`r`, in log space) moves toward the weighted geometric mean of the studies' best values by
the largest weight: a study on the same model, method and data moves it all the way; a
distant one barely. The rank lands on a power of two, and lora_alpha keeps its ratio to it.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .estimate import ADAPTER_METHODS

MIN_WEIGHT = 0.1
"""Below this a study is shown as seen but moves nothing."""
OTHER_DATA = 0.5
"""Weight of a study on other training data (or when the current data is unknown)."""
LORA_FAMILY = 0.7
UNKNOWN_SIZE = 0.5
MAX_PAST_POINTS = 3
"""Past studies' best points a warm start enqueues at most (after the recommended point): the
sampler then has the rest of the budget."""
MOVABLE = ("learning_rate", "r")
"""Starting values a study's best trial moves; lora_alpha follows r (its ratio kept)."""


@dataclass(frozen=True)
class PastStudy:
    """A finished study as the stores recorded it: what it tuned and what its best trial found."""

    name: str
    model: str
    """The model source as the study file named it (a preset or a path)."""
    num_params: int | None
    method: str
    metric: str
    best_trial: int
    best_params: dict[str, Any]
    """The best complete trial's values: its searched parameters and the study's fixed ones."""
    best_score: float
    baseline_score: float | None = None
    gain: float | None = None
    """The best score's improvement over the untuned baseline, in the metric's direction."""
    eval_loss: float | None = None
    """The best trial's eval loss (what breaks a tie on the metric)."""
    examples: int | None = None
    data_hash: str | None = None
    """SHA-256 of the training file (`advisor.data_hash.train` on the study's parent run)."""
    cost_usd: float | None = None
    wall_seconds: float | None = None
    forgetting: dict[str, float] = field(default_factory=dict)
    """The best trial's forgetting measures (forgetting_kl, general_score_delta, ...)."""


@dataclass(frozen=True)
class Question:
    """What the current recommendation is about, in the terms a study is compared on."""

    model: str
    num_params: int | None
    method: str
    examples: int
    data_hash: str | None = None


@dataclass
class Used:
    """One study in the JSON's `evidence` list: how alike, what it found and what it moved."""

    name: str
    similarity: float
    likeness: dict[str, float]
    found: dict[str, Any]
    contributed: list[str] = field(default_factory=list)
    """What it moved (`learning_rate 2.9e-04 -> 1.0e-02`), or why it moved nothing."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio_likeness(a: float | None, b: float | None) -> float:
    if not a or not b:
        return UNKNOWN_SIZE
    return 1.0 / (1.0 + abs(math.log10(a / b)))


def _same_model(a: str, b: str) -> bool:
    """The same preset name, or the same local model directory however it was spelled."""
    if a == b:
        return True
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def likeness(past: PastStudy, question: Question) -> dict[str, float]:
    """The four likenesses (module docstring); their product is the study's weight."""
    same_model = _same_model(past.model, question.model)
    if past.method == question.method:
        method = 1.0
    elif past.method in ADAPTER_METHODS and question.method in ADAPTER_METHODS:
        method = LORA_FAMILY
    else:
        method = 0.0
    same_data = question.data_hash is not None and past.data_hash == question.data_hash
    return {
        "model": 1.0 if same_model else _ratio_likeness(past.num_params, question.num_params),
        "method": method,
        "data_size": _ratio_likeness(past.examples, question.examples),
        "data": 1.0 if same_data else OTHER_DATA,
    }


def _found(past: PastStudy) -> dict[str, Any]:
    found: dict[str, Any] = {
        "model": past.model,
        "method": past.method,
        "metric": past.metric,
        "best_trial": past.best_trial,
        "best_params": past.best_params,
        "best_score": past.best_score,
        "gain": past.gain,
        "eval_loss": past.eval_loss,
        "cost_usd": past.cost_usd,
        "wall_seconds": past.wall_seconds,
        "examples": past.examples,
    }
    return found | ({"forgetting": past.forgetting} if past.forgetting else {})


def _target(pulls: list[tuple[float, float]]) -> float:
    """Weighted geometric mean of (weight, value) pairs."""
    total = sum(w for w, _ in pulls)
    return math.exp(sum(w * math.log(v) for w, v in pulls) / total)


def _movable(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value)


def _show(key: str, value: float) -> str:
    return f"{value:.2g}" if key == "learning_rate" else f"{value:g}"


def _alpha_at(start: dict[str, Any], r: int) -> tuple[int, str]:
    """lora_alpha at the moved rank `r` with the starting point's adapter scale kept: alpha/r,
    or alpha/sqrt(r) under rsLoRA (`use_rslora`), whose scale a ratio to r would change."""
    alpha, r0 = start["lora_alpha"], start["r"]
    if start.get("use_rslora"):
        scale = alpha / math.sqrt(r0)
        return max(1, round(scale * math.sqrt(r))), f"alpha/sqrt(r) = {scale:.3g}"
    return max(1, round(r * alpha / r0)), f"alpha/r = {alpha / r0:g}"


def apply_evidence(
    hyperparameters: dict[str, Any], studies: list[PastStudy], question: Question
) -> tuple[dict[str, Any], list[str], list[Used]]:
    """The starting point moved toward the alike studies' best trials, the reasons (one per
    moved value, naming the study that moved it most) and every study weighed, for the JSON."""
    used = []
    pulls: dict[str, list[tuple[float, float, PastStudy]]] = {key: [] for key in MOVABLE}
    for past in studies:
        parts = likeness(past, question)
        weight = round(math.prod(parts.values()), 3)
        entry = Used(past.name, weight, {k: round(v, 3) for k, v in parts.items()}, _found(past))
        used.append(entry)
        if weight < MIN_WEIGHT:
            entry.contributed.append(f"nothing: similarity {weight:g} < {MIN_WEIGHT:g}")
            continue
        if past.gain is not None and past.gain < 0:
            entry.contributed.append("nothing: its best trial did worse than the baseline")
            continue
        for key in MOVABLE:
            value = _movable(past.best_params.get(key))
            if value is not None and _movable(hyperparameters.get(key)) is not None:
                pulls[key].append((weight, value, past))
    moved = dict(hyperparameters)
    reasons = []
    for key, found in pulls.items():
        if not found:
            continue
        start = float(hyperparameters[key])
        target = _target([(w, v) for w, v, _ in found])
        share = min(1.0, max(w for w, _, _ in found))
        value = math.exp(math.log(start) + share * (math.log(target) - math.log(start)))
        # ranks come in powers of two (peft's and the search space's habit)
        value = float(f"{value:.2g}") if key == "learning_rate" else 2 ** round(math.log2(value))
        if value == hyperparameters[key]:
            continue
        moved[key] = value
        weight, best, lead = max(found, key=lambda f: f[0])
        figures = [f"gain {lead.gain:+.3g}"] if lead.gain is not None else []
        figures += [f"eval loss {lead.eval_loss:.3g}"] if lead.eval_loss is not None else []
        gain = f" ({', '.join(figures)})" if figures else ""
        reasons.append(
            f"moved {key} {_show(key, start)} -> {_show(key, value)}: study {lead.name}'s best "
            f"trial {lead.best_trial}{gain} used {_show(key, best)} (similarity {weight:g}"
            + (f"; {len(found)} studies weighed)" if len(found) > 1 else ")")
        )
        for _, _, past in found:
            entry = next(u for u in used if u.name == past.name)
            entry.contributed.append(f"{key} {_show(key, start)} -> {_show(key, value)}")
    if "r" in moved and moved["r"] != hyperparameters.get("r") and "lora_alpha" in moved:
        moved["lora_alpha"], kept = _alpha_at(hyperparameters, moved["r"])
        reasons.append(
            f"moved lora_alpha {hyperparameters['lora_alpha']} -> {moved['lora_alpha']}: "
            f"keeps the scale {kept} at the moved r"
        )
    for entry in used:
        if not entry.contributed:
            entry.contributed.append("nothing: no movable value in its best trial")
    return moved, reasons, used


def past_points(
    studies: list[PastStudy],
    question: Question,
    *,
    exclude: str | None = None,
    limit: int = MAX_PAST_POINTS,
) -> list[tuple[dict[str, Any], str]]:
    """The best points of the studies alike enough to move a start (weight >= `MIN_WEIGHT`,
    no worse than their baseline), most alike first, each with its source
    `study:<name>#<trial>`: what `tune` enqueues after the recommended point when
    `optuna.warm_start` is on. `exclude` is the study being started (a study is not its own
    evidence). The points are in the past study's space; the tuner fits them to its own."""
    weighed = []
    for past in studies:
        if past.name == exclude or (past.gain is not None and past.gain < 0):
            continue
        weight = math.prod(likeness(past, question).values())
        if weight >= MIN_WEIGHT and past.best_params:
            weighed.append((weight, past))
    weighed.sort(key=lambda item: (-item[0], item[1].name))
    return [
        (dict(past.best_params), f"study:{past.name}#{past.best_trial}")
        for _, past in weighed[:limit]
    ]


__all__ = ["PastStudy", "Question", "Used", "apply_evidence", "likeness", "past_points"]
