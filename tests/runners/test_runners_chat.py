"""The label mask of a conversation, token by token, on the tiny ChatML tokenizer and `plain`."""

from __future__ import annotations

from typing import Any

import pytest

from runners.chat import IGNORE, encode_conversation, encode_conversations, prompt_text
from runners.errors import TrialInputError
from runners.layouts import Conversation, Turn
from runners.templates import use_template
from runners.testing import build_tokenizer


@pytest.fixture(scope="module")
def chatml() -> Any:
    return build_tokenizer()


@pytest.fixture(scope="module")
def plain() -> Any:
    tokenizer = build_tokenizer()
    tokenizer.chat_template = None  # a base model's tokenizer
    assert use_template(tokenizer, "auto").name == "plain"
    return tokenizer


def _conversation(*turns: tuple[str, str]) -> Conversation:
    return Conversation(1, tuple(Turn(role, content) for role, content in turns))


SINGLE = _conversation(("user", "U one"), ("assistant", "A one"))
MULTI = _conversation(
    ("system", "S sys"),
    ("user", "U one"),
    ("assistant", "A one"),
    ("user", "U two"),
    ("assistant", "A two"),
)


def _tokens(tokenizer: Any, ids: list[int], labels: list[int]) -> list[tuple[str, bool]]:
    assert len(ids) == len(labels)
    for token, label in zip(ids, labels, strict=True):
        assert label in (token, IGNORE)  # a label is the token itself or ignored
    return [(tokenizer.decode([t]), lab != IGNORE) for t, lab in zip(ids, labels, strict=True)]


def _trained_runs(tokenizer: Any, ids: list[int], labels: list[int]) -> list[str]:
    """The trained tokens, as text, one string per contiguous run."""
    runs: list[list[int]] = []
    previous = False
    for token, label in zip(ids, labels, strict=True):
        if label != IGNORE:
            if not previous:
                runs.append([])
            runs[-1].append(token)
        previous = label != IGNORE
    return [tokenizer.decode(run) for run in runs]


def test_single_turn_trains_the_answer_and_its_end_of_turn_only(chatml) -> None:
    encoded = encode_conversation(chatml, SINGLE)
    assert "".join(t for t, _ in _tokens(chatml, encoded.input_ids, encoded.labels)) == (
        "<|im_start|>user\nU one<|im_end|>\n<|im_start|>assistant\nA one<|im_end|>\n"
    )
    trained = _tokens(chatml, encoded.input_ids, encoded.labels)
    header = trained.index(("istant", False))  # "<|im_start|>assistant\n" is the prompt
    assert trained[header + 1] == ("\n", False)
    # the answer, its end of turn, and the newline after it (as trl's completion mask has it)
    assert [t for t, on in trained if on] == ["A", " o", "n", "e", "<|im_end|>", "\n"]
    assert all(on for _, on in trained[header + 2 :])
    assert not any(on for _, on in trained[: header + 2])


def test_multi_turn_trains_every_assistant_turn_and_no_system_or_user_turn(chatml) -> None:
    encoded = encode_conversation(chatml, MULTI)
    tokens = _tokens(chatml, encoded.input_ids, encoded.labels)
    assert _trained_runs(chatml, encoded.input_ids, encoded.labels) == [
        "A one<|im_end|>\n",
        "A two<|im_end|>\n",
    ]
    untrained = "".join(t for t, on in tokens if not on)
    assert untrained == (
        "<|im_start|>system\nS sys<|im_end|>\n<|im_start|>user\nU one<|im_end|>\n"
        "<|im_start|>assistant\n<|im_start|>user\nU two<|im_end|>\n<|im_start|>assistant\n"
    )
    assert encoded.trains and not encoded.cut


def test_plain_template_for_a_tokenizer_without_one_trains_answer_and_eos(plain) -> None:
    encoded = encode_conversation(plain, MULTI)
    text = plain.decode(encoded.input_ids)
    assert text == (
        "S sys\n\nUser:\nU one\n\nAssistant:\nA one<|im_end|>\n\n"
        "User:\nU two\n\nAssistant:\nA two<|im_end|>\n\n"
    )
    assert _trained_runs(plain, encoded.input_ids, encoded.labels) == [
        "A one<|im_end|>\n\n",
        "A two<|im_end|>\n\n",
    ]
    # generation asks with the same header the answer followed in training
    assert prompt_text(plain, [{"role": "user", "content": "U one"}]) == (
        "User:\nU one\n\nAssistant:\n"
    )


class _Slow:
    """The tiny tokenizer without offset mappings (a slow, Python tokenizer)."""

    is_fast = False

    def __init__(self, fast: Any) -> None:
        self._fast = fast

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fast, name)

    def __call__(self, text: str, **kwargs: Any) -> Any:
        return self._fast(text, **kwargs)


def test_a_slow_tokenizer_gets_the_same_mask(chatml) -> None:
    slow = _Slow(chatml)
    encoded = encode_conversation(slow, MULTI)
    assert _trained_runs(chatml, encoded.input_ids, encoded.labels) == [
        "A one<|im_end|>\n",
        "A two<|im_end|>\n",
    ]


def test_truncation_counts_turns_cut_by_where(chatml) -> None:
    full = encode_conversation(chatml, MULTI)
    second_answer = len(full.input_ids) - 3  # inside "A two<|im_end|>\n"
    cut = encode_conversation(chatml, MULTI, max_length=second_answer)
    assert cut.input_ids == full.input_ids[:second_answer]
    assert (cut.cut_assistant_turns, cut.cut_context_turns) == (1, 0) and cut.trains
    first_user = full.input_ids.index(chatml.convert_tokens_to_ids("user")) + 2  # in "U one"
    early = encode_conversation(chatml, MULTI, max_length=first_user)
    assert (early.cut_assistant_turns, early.cut_context_turns) == (2, 2)
    assert not early.trains  # every answer cut: the row trains on nothing
    whole = encode_conversation(chatml, MULTI, max_length=len(full.input_ids))
    assert whole == full

    encoded, counts = encode_conversations(chatml, [MULTI, SINGLE, MULTI], max_length=first_user)
    assert [item.trains for item in encoded] == [False, False, False]
    assert (counts.rows, counts.assistant_turns, counts.context_turns) == (
        3,
        5,
        4,
    )  # SINGLE keeps its user turn
    assert counts.untrained_rows == 3
    warning = counts.warning(first_user)
    assert warning and "3 conversation(s) cut" in warning and "train on nothing" in warning
    assert encode_conversations(chatml, [SINGLE], max_length=256)[1].warning(256) is None


def test_a_template_that_rewrites_earlier_turns_is_refused(chatml) -> None:
    tokenizer = build_tokenizer()
    # Keeps only the last two turns, as templates that drop old reasoning do: earlier text changes.
    tokenizer.chat_template = (
        "{% for message in messages[-2:] %}{{ message['role'] + ': ' + message['content'] + "
        "'\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
    )
    with pytest.raises(TrialInputError, match="data row 1") as caught:
        encode_conversation(tokenizer, MULTI)
    assert caught.value.where == "model.chat_template"


def test_a_model_that_expects_bos_gets_it_under_plain(plain) -> None:
    """Gemma and Llama tokenizers add BOS; `plain` does not write it, so advisor does."""
    from tokenizers.processors import TemplateProcessing

    tokenizer = build_tokenizer()
    bos = tokenizer.bos_token_id
    tokenizer._tokenizer.post_processor = TemplateProcessing(
        single=f"{tokenizer.bos_token} $A", special_tokens=[(tokenizer.bos_token, bos)]
    )
    tokenizer.chat_template = None
    use_template(tokenizer, "auto")
    encoded = encode_conversation(tokenizer, SINGLE)
    without = encode_conversation(plain, SINGLE)
    assert encoded.input_ids == [bos, *without.input_ids]
    assert encoded.labels == [IGNORE, *without.labels]
    asked = prompt_text(tokenizer, [{"role": "user", "content": "U one"}])
    assert asked.startswith(tokenizer.bos_token) and asked.count(tokenizer.bos_token) == 1
