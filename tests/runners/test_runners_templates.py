"""Chat template choice (runners.templates): base models get `plain`, every choice is checked."""

from __future__ import annotations

import pytest

from runners.errors import TrialInputError
from runners.templates import CHATML, PLAIN, resolve_template, use_template
from runners.testing import build_tokenizer

TURNS = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]


@pytest.fixture(scope="module")
def templated():
    return build_tokenizer()


@pytest.fixture
def base():
    """A tokenizer without a chat template, as a pretrained-only model ships."""
    tokenizer = build_tokenizer()
    tokenizer.chat_template = None
    return tokenizer


def test_auto_takes_the_tokenizers_own_template(templated) -> None:
    template = resolve_template(templated, "auto")
    assert template.name == "model" and template.source == templated.chat_template


def test_auto_falls_back_to_plain_for_a_base_model_and_model_refuses(base) -> None:
    template = resolve_template(base, "auto")
    assert (template.name, template.source) == ("plain", PLAIN)
    assert template.render(base, TURNS, prompt=False) == "User:\nhi\n\nAssistant:\nyo<|im_end|>\n\n"
    assert template.render(base, TURNS[:1], prompt=True) == "User:\nhi\n\nAssistant:\n"
    with pytest.raises(TrialInputError, match="no chat template") as caught:
        resolve_template(base, "model")
    assert caught.value.where == "model.chat_template"


def test_use_template_sets_it_on_the_tokenizer(base) -> None:
    assert use_template(base, "chatml").name == "chatml"
    assert base.chat_template == CHATML
    assert base.apply_chat_template(TURNS, tokenize=False) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n"
    )


def test_a_template_file_is_read_and_checked(base, tmp_path) -> None:
    good = tmp_path / "t.jinja"
    good.write_text(PLAIN.replace("User:", "Q:").replace("Assistant:", "A:"))
    assert (
        resolve_template(base, str(good)).render(base, TURNS[:1], prompt=True) == "Q:\nhi\n\nA:\n"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ messages[-1]['content'] }}", "does not start with"),
        ("{% for m in messages %}{{ m.content }", "TemplateSyntaxError"),
        ("   ", "is empty"),
    ],
    ids=["last-turn-only", "syntax-error", "blank"],
)
def test_a_template_that_cannot_mask_the_answer_is_refused(base, tmp_path, source, message):
    path = tmp_path / "bad.jinja"
    path.write_text(source)
    with pytest.raises(TrialInputError, match=message) as caught:
        resolve_template(base, str(path))
    assert caught.value.where == "model.chat_template"


def test_an_unknown_name_that_is_no_file_lists_the_choices(base) -> None:
    with pytest.raises(TrialInputError, match="auto, model, chatml, plain"):
        resolve_template(base, "llama3")
