"""A continued pre-training study (raw text, perplexity) through the review path: the baseline's
perplexity, the report's direction and Pareto front, and `rerun`, as a chat study has them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from support import write_tiny_study

from advisor.review.build import report_study
from advisor.review.rerun import rerun
from advisor.tuning.entry import tune
from runners.testing import write_jsonl

_COLOURS = ("red", "green", "blue", "black", "white", "yellow")
_ANIMALS = ("cat", "dog", "fox", "owl", "bee", "cow")


def _documents(n: int, offset: int) -> list[dict[str, str]]:
    return [
        {
            "text": f"The {_COLOURS[(i + offset) % 6]} {_ANIMALS[(i * 5 + offset) % 6]} sleeps "
            f"near the {_COLOURS[(i * 7 + 1) % 6]} {_ANIMALS[(i + 2 * offset) % 6]}."
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def corpus_study(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    root = tmp_path_factory.mktemp("corpus")
    write_jsonl(root / "corpus_train.jsonl", _documents(24, 0))
    write_jsonl(root / "corpus_eval.jsonl", _documents(6, 3))
    study_file = write_tiny_study(
        root,
        tiny_model,
        "corpus",
        data={"train": "corpus_train.jsonl", "eval": "corpus_eval.jsonl", "packing": True},
        metric="perplexity",
        method="full",
        objectives=["metric", "wall_seconds"],
        eval={"forgetting": False},
        optuna={"sampler": "grid", "n_trials": 2},
    )
    spec = yaml.safe_load(study_file.read_text())
    spec["search"] = {"learning_rate": [1e-4, 3e-3]}  # full fine-tuning: no r, no modules
    study_file.write_text(yaml.safe_dump(spec))
    summary = tune(study_file, root=root)
    return root, summary


def test_the_study_minimises_perplexity_from_the_baselines(corpus_study) -> None:
    _, summary = corpus_study
    assert summary.directions[0] == "minimize"
    assert [row.state for row in summary.rows] == ["complete", "complete"]
    base = summary.baseline_score
    assert base is not None and math.isfinite(base) and base > 1.0
    for row in summary.rows:
        assert row.score is not None and row.score > 1.0 and math.isfinite(row.score)
        # perplexity is exp of the token-weighted NLL of the held-out blocks; the Trainer's eval
        # loss is a mean of batch means (its last batch holds a shorter block), so they agree
        # only to within that weighting
        assert row.score == pytest.approx(math.exp(row.eval_loss), rel=1e-2)
        assert row.gain == pytest.approx(base - row.score)  # lower is better: a gain > 0
    assert min(row.score for row in summary.rows) < base  # 3e-3 on a tiny corpus learns


def test_the_report_ranks_by_lowest_perplexity(corpus_study) -> None:
    root, summary = corpus_study
    report = report_study("corpus", root=root, make_plots=False, log_plots=False)
    assert report.metric == "perplexity" and report.directions[0] == "minimize"
    lowest = min(summary.rows, key=lambda row: row.score)
    assert report.best[0].trial == lowest.number
    assert report.pareto is not None and lowest.number in report.pareto.trials
    assert report.decision


def test_a_rerun_repeats_the_corpus_studys_eval_losses(corpus_study) -> None:
    root, _ = corpus_study
    report = rerun("corpus", root=root)
    assert report.reproduced
    for trial in report.trials:
        assert trial.same_params and trial.state == ("complete", "complete")
        assert trial.eval_loss_diff is not None and trial.eval_loss_diff <= 1e-6
