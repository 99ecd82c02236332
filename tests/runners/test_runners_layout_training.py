"""Every layout trains two steps on the tiny model and is scored the way its kind is: chat by
generation on the last assistant turn, raw text by perplexity; base models use `plain`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from runners.config import ModelRef
from runners.corpus import perplexity
from runners.reporting import CallbackReporter
from runners.testing import build_tiny_llama, write_jsonl
from runners.trial import run_trial


def _messages(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Answer with the colour."},
        {"role": "user", "content": f"The red cat {i}."},
        {"role": "assistant", "content": "red"},
        {"role": "user", "content": "And the animal?"},
        {"role": "assistant", "content": "cat"},
    ]


ROWS: dict[str, Any] = {
    "messages": lambda i: {"messages": _messages(i)},
    "sharegpt": lambda i: {
        "conversations": [
            {"from": "human", "value": f"The blue dog {i}."},
            {"from": "gpt", "value": "blue"},
        ]
    },
    "alpaca": lambda i: {
        "instruction": "Name the colour.",
        "input": f"green fox {i}",
        "output": "green",
    },
    "alpaca_no_input": lambda i: {"instruction": f"Name a colour {i}.", "output": "white"},
    "prompt_completion": lambda i: {"prompt": f"The black owl {i}.", "completion": "black"},
    "prompt_completion_lists": lambda i: {
        "prompt": [{"role": "user", "content": f"The purple bee {i}."}],
        "completion": [{"role": "assistant", "content": "purple"}],
    },
    "prompt_response": lambda i: {"prompt": f"The yellow hen {i}.", "response": "yellow"},
    "text": lambda i: {"text": f"The orange cow {i} is in the city. " * (1 + i % 3)},
}
LAYOUT_OF = {"alpaca_no_input": "alpaca", "prompt_completion_lists": "prompt_completion"}
LAYOUT_OF |= {"text_packed": "text"}


def _files(root: Path, kind: str) -> tuple[Path, Path]:
    row = ROWS["text" if kind == "text_packed" else kind]
    return (
        write_jsonl(root / f"{kind}-train.jsonl", [row(i) for i in range(8)]),
        write_jsonl(root / f"{kind}-eval.jsonl", [row(100 + i) for i in range(4)]),
    )


@pytest.mark.parametrize("kind", [*ROWS, "text_packed"])
def test_each_layout_trains_two_steps_and_is_scored(make_config, tmp_path: Path, kind) -> None:
    train, evals = _files(tmp_path, kind)
    text = kind.startswith("text")
    config = make_config(
        data={"train_path": str(train), "eval_path": str(evals), "packing": kind == "text_packed"},
        train={"max_steps": 2, "eval_steps": 2, "batch_size": 2},
        evaluation={
            "metric": "perplexity" if text else "exact_match",
            "forgetting": False,
            "max_new_tokens": 4,
        },
    )
    result = run_trial(config)
    assert result.state == "complete", result.error
    assert result.steps == 2 and result.layout == LAYOUT_OF.get(kind, kind)
    assert result.eval_loss is not None and math.isfinite(result.eval_loss)
    assert result.truncated_rows == result.truncated_documents == 0
    if text:
        assert result.score > 1 and result.generations_path is None
    else:
        assert 0.0 <= result.score <= 1.0
        first = json.loads(Path(result.generations_path).read_text().splitlines()[0])
        expected = {"messages": "cat", "sharegpt": "blue", "alpaca": "green"}
        assert first["reference"] == expected.get(kind, first["reference"])


def test_full_fine_tuning_on_a_corpus_is_continued_pre_training(make_config, tmp_path) -> None:
    train, evals = _files(tmp_path, "text")
    common = {
        "data": {"train_path": str(train), "eval_path": str(evals), "packing": True},
        "evaluation": {"metric": "perplexity", "forgetting": False},
    }
    base = run_trial(make_config(baseline=True, **common))
    tuned = run_trial(
        make_config(
            method={"name": "full"},
            train={"max_steps": 8, "eval_steps": 8, "learning_rate": 3e-3, "batch_size": 2},
            **common,
        )
    )
    assert base.state == tuned.state == "complete", (base.error, tuned.error)
    assert base.score > 1 and tuned.score < base.score  # perplexity, minimised
    assert tuned.trainable_params == tuned.total_params


def test_perplexity_weighs_every_token_not_every_batch(tiny_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    sequences = [list(range(5, 45)), [7, 8, 9], list(range(20, 30))]
    nll, count = 0.0, 0
    for seq in sequences:
        ids = torch.tensor([seq])
        with torch.no_grad():
            loss = model(input_ids=ids, labels=ids).loss  # mean over len(seq) - 1 tokens
        nll += float(loss) * (len(seq) - 1)
        count += len(seq) - 1
    expected = math.exp(nll / count)
    for batch_size in (1, 2, 3):
        assert perplexity(model, sequences, batch_size=batch_size) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kind", "metric", "says"),
    [
        ("text", "exact_match", "set eval.metric to perplexity"),
        ("messages", "perplexity", "is for raw text"),
    ],
)
def test_a_metric_that_does_not_fit_the_layout_is_refused(
    make_config, tmp_path: Path, kind, metric, says
) -> None:
    train, evals = _files(tmp_path, kind)
    config = make_config(
        data={"train_path": str(train), "eval_path": str(evals)}, evaluation={"metric": metric}
    )
    result = run_trial(config)
    assert result.state == "failed" and result.error.startswith("TrialInputError: eval.metric")
    assert says in result.error


def test_truncation_is_counted_and_logged(make_config, tmp_path: Path, capfd) -> None:
    train, evals = _files(tmp_path, "messages")
    config = make_config(
        data={"train_path": str(train), "eval_path": str(evals)},
        train={"max_steps": 2, "eval_steps": 2, "max_seq_length": 40},
        evaluation={"metric": "eval_loss", "forgetting": False},
    )
    result = run_trial(config)
    assert result.state == "complete", result.error
    # 40 tokens end inside the first answer's conversation: the second answer is lost
    assert result.truncated_rows == 8 and result.truncated_assistant_turns >= 8
    assert result.truncated_context_turns >= 8
    assert "train.max_seq_length=40 truncated the training set" in capfd.readouterr().err


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its tokenizer's chat template removed, as a pretrained base has."""
    from transformers import AutoTokenizer

    path = build_tiny_llama(tmp_path_factory.mktemp("base") / "llama")
    (path / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((path / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    assert AutoTokenizer.from_pretrained(path).chat_template is None
    return path


def test_a_base_model_without_a_template_trains_and_scores_with_plain(
    make_config, base_model: Path, tmp_path: Path
) -> None:
    train, evals = _files(tmp_path, "messages")
    data = {"train_path": str(train), "eval_path": str(evals)}
    result = run_trial(
        make_config(
            model=ModelRef(str(base_model)),
            data=data,
            train={"max_steps": 2, "eval_steps": 2},
            evaluation={"metric": "exact_match", "forgetting": False, "max_new_tokens": 4},
        )
    )
    assert result.state == "complete", result.error
    assert result.score is not None and result.generations_path

    refused = run_trial(
        make_config(
            model=ModelRef(str(base_model), chat_template="model"),
            data=data,
            evaluation={"forgetting": False},
        )
    )
    assert refused.state == "failed"
    assert refused.error.startswith("TrialInputError: model.chat_template")
    assert "no chat template" in refused.error


@pytest.mark.parametrize(
    ("train_kind", "eval_kind", "packing", "where"),
    [
        ("messages", "text", False, "data.eval_path"),
        ("alpaca", "alpaca", True, "data.packing"),
    ],
)
def test_data_that_cannot_train_fails_before_the_model_loads(
    make_config, tmp_path: Path, train_kind, eval_kind, packing, where
) -> None:
    train, _ = _files(tmp_path, train_kind)
    _, evals = _files(tmp_path, eval_kind)
    config = make_config(
        data={"train_path": str(train), "eval_path": str(evals), "packing": packing},
        evaluation={"metric": "eval_loss"},
    )
    reporter = CallbackReporter()
    result = run_trial(config, reporter)
    assert result.state == "failed" and result.error.startswith(f"TrialInputError: {where}")
    assert reporter.phases == []  # nothing was loaded
