"""Task metrics: how a trial's generations are scored against the references.

Pure Python (no torch): the orchestrator validates metric names from a study file and the runner
scores generations with the same registry. Every score is a mean over examples in [0, 1].

`eval_loss` and `perplexity` are marker entries: they need no generation (the runner computes
them from the model's losses), and they are minimised, so `higher_is_better` is False and
`score` refuses to run. `perplexity` is for raw text (the `text` layout): exp of the mean
negative log-likelihood per token of the held-out text, weighted by tokens
(`runners.corpus.perplexity`); the generation metrics are for chat layouts
(`runners.evaluate.check_metric_fits`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_WS = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Strip and collapse runs of whitespace to one space."""
    return _WS.sub(" ", text).strip()


@dataclass(frozen=True)
class Metric:
    """One task metric: a name, a direction and a per-example scoring function."""

    name: str
    higher_is_better: bool
    description: str
    scorer: Callable[[str, str], float] | None
    """`scorer(prediction, reference) -> [0, 1]`; None for metrics computed without generation."""
    needs_generation: bool = True

    def score_one(self, prediction: str, reference: str) -> float:
        """Score of one generation against its reference, in [0, 1]."""
        if self.scorer is None:
            raise ValueError(
                f"metric {self.name!r} is not computed from generations; "
                "the runner reports it from the evaluation loop"
            )
        return float(self.scorer(prediction, reference))

    def score(self, predictions: list[str], references: list[str]) -> float:
        """Mean of `score_one` over aligned lists; both must be equally long and non-empty."""
        if len(predictions) != len(references):
            raise ValueError(
                f"predictions and references must be equally long, but got "
                f"({len(predictions)}, {len(references)})"
            )
        if not references:
            raise ValueError("cannot score an empty evaluation set")
        return sum(
            self.score_one(p, r) for p, r in zip(predictions, references, strict=True)
        ) / len(references)


# --- exact match --------------------------------------------------------------------------------


def _exact_match(prediction: str, reference: str) -> float:
    return float(normalise_text(prediction) == normalise_text(reference))


# --- JSON ---------------------------------------------------------------------------------------

_MISSING = object()


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object embedded in `text` (models often add prose around it), or None."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def flatten_json(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of a JSON value keyed by dotted path; lists are flattened element-wise (`items.0`).

    Element-wise lists give partial credit for a request with several items, and a list of the
    wrong length loses the missing elements (or pays for the extra ones, see `_json_match`).
    Empty containers are leaves, so `[]` still has to be produced when the reference has it.
    """
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten_json(item, f"{prefix}{key}."))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(flatten_json(item, f"{prefix}{index}."))
        return out
    return {prefix.rstrip("."): value}


def _leaf_equal(predicted: Any, expected: Any) -> bool:
    """Strings compare after whitespace normalisation, case-insensitively; types must agree.

    `3` and `3.0` are equal, `"3"` and `3` are not (turning words into numbers is the task), and
    booleans never equal numbers.
    """
    if isinstance(expected, str):
        return isinstance(predicted, str) and (
            normalise_text(predicted).casefold() == normalise_text(expected).casefold()
        )
    if isinstance(expected, bool) or isinstance(predicted, bool):
        return type(expected) is type(predicted) and expected == predicted
    if isinstance(expected, (int, float)):
        return isinstance(predicted, (int, float)) and float(predicted) == float(expected)
    return predicted == expected


def _parse_reference(reference: str) -> Any:
    try:
        return json.loads(reference)
    except json.JSONDecodeError as error:
        raise ValueError(f"reference is not valid JSON ({error}): {reference[:80]!r}") from None


def _json_fields(prediction: str, reference: str) -> tuple[int, int, bool]:
    """(matching fields, fields counted, exact) of a prediction against a JSON reference."""
    expected = flatten_json(_parse_reference(reference))
    parsed = first_json_object(prediction)
    if parsed is None:
        return 0, len(expected), False
    predicted = flatten_json(parsed)
    matched = sum(
        1
        for key, value in expected.items()
        if predicted.get(key, _MISSING) is not _MISSING and _leaf_equal(predicted[key], value)
    )
    extra = sum(1 for key in predicted if key not in expected)
    return matched, len(expected) + extra, matched == len(expected) and extra == 0


def _json_match(prediction: str, reference: str) -> float:
    """Fraction of fields right: matched / (reference fields + extra predicted fields)."""
    matched, counted, _ = _json_fields(prediction, reference)
    return matched / counted if counted else 1.0


def _json_exact(prediction: str, reference: str) -> float:
    return float(_json_fields(prediction, reference)[2])


# --- ROUGE-L ------------------------------------------------------------------------------------


def _lcs_length(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for token_a in a:
        current = [0]
        for j, token_b in enumerate(b):
            current.append(
                previous[j] + 1 if token_a == token_b else max(previous[j + 1], current[j])
            )
        previous = current
    return previous[-1]


def _rouge_l(prediction: str, reference: str) -> float:
    """F1 of the longest common subsequence of lower-cased whitespace tokens."""
    pred, ref = prediction.lower().split(), reference.lower().split()
    if not pred and not ref:
        return 1.0
    lcs = _lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


# --- accuracy (labels) --------------------------------------------------------------------------


def _label(text: str) -> str:
    first = next((line for line in text.strip().splitlines() if line.strip()), "")
    return normalise_text(first).strip(" .!:;\"'").casefold()


def _accuracy(prediction: str, reference: str) -> float:
    """The prediction's first non-empty line, normalised, equals the label (case-insensitive)."""
    return float(_label(prediction) == _label(reference))


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "exact_match", True, "whole answer equal after whitespace normalisation", _exact_match
        ),
        Metric(
            "json_match", True, "fraction of JSON fields equal (first object parsed)", _json_match
        ),
        Metric(
            "json_exact", True, "the first JSON object equals the reference exactly", _json_exact
        ),
        Metric("rouge_l", True, "LCS F1 on whitespace tokens", _rouge_l),
        Metric("accuracy", True, "first line equals the label, case-insensitive", _accuracy),
        Metric(
            "eval_loss", False, "cross-entropy on the eval responses", None, needs_generation=False
        ),
        Metric(
            "perplexity",
            False,
            "exp of the token-weighted mean NLL on the held-out text (raw text corpora)",
            None,
            needs_generation=False,
        ),
    )
}


def get_metric(name: str) -> Metric:
    """The registered metric called `name`; unknown names raise ValueError naming the known ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None
