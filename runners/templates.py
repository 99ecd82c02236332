"""Chat templates: how a conversation becomes the text a model trains on and is asked with.

Instruction-tuned models ship a Jinja chat template in their tokenizer; base (pretrained-only)
models do not, and trl then fails every trial with "tokenizer.chat_template is not set". The
template is chosen once, from `ModelRef.chat_template`, before anything trains:

| choice   | the template                                                              |
|----------|---------------------------------------------------------------------------|
| `auto`   | the tokenizer's own; `plain` when it has none (the default)               |
| `model`  | the tokenizer's own, and an input error when it has none                  |
| `chatml` | `<|im_start|>role ... <|im_end|>` (SmolLM2's layout, no default system)   |
| `plain`  | `User:` / `Assistant:` headers on their own lines, the answer ended by EOS   |
| a path   | a Jinja file (the same variables as a tokenizer's template)               |

Whatever is chosen is checked the way training uses it: the text of a conversation up to an
assistant turn, with the generation prompt, must be a prefix of the text with that turn, so
that the assistant's tokens are exactly the difference (`runners.chat` masks the loss by it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.errors import TrialInputError

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

PLAIN = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User:\\n' + message['content'] + '\\n\\n' }}"
    "{% else %}{{ 'Assistant:\\n' + message['content'] + (eos_token or '') + '\\n\\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:\\n' }}{% endif %}"
)
"""For base models: headers on their own lines, so the answer's first token is the same whether
the model is trained on it or asked for it (a trailing space would tokenise differently)."""

BUILT_IN = {"chatml": CHATML, "plain": PLAIN}
CHOICES = ("auto", "model", *BUILT_IN)
MAX_TEMPLATE_BYTES = 256 * 1024
_WHERE = "model.chat_template"
_PROBE = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "U1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "U2"},
    {"role": "assistant", "content": "A2"},
]


@dataclass(frozen=True)
class ChatTemplate:
    """The template a trial uses: `name` says where it came from (model, chatml, plain or the
    file), `source` is the Jinja text."""

    name: str
    source: str

    def render(self, tokenizer: Any, messages: list[dict[str, str]], *, prompt: bool) -> str:
        """The conversation as text; `prompt` appends the generation prompt (an answer follows)."""
        return tokenizer.apply_chat_template(
            messages, chat_template=self.source, tokenize=False, add_generation_prompt=prompt
        )


def own_template(tokenizer: Any) -> str | None:
    """The tokenizer's own template, or None (a base model)."""
    template = getattr(tokenizer, "chat_template", None)
    return template if isinstance(template, str) and template.strip() else None


def _read_file(choice: str) -> ChatTemplate:
    path = Path(choice)
    fix = f"set {_WHERE} to auto, model, chatml, plain or the path of a Jinja template file"
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TrialInputError(
            f"chat template {choice!r} is not one of {', '.join(CHOICES)} and cannot be read "
            f"as a file ({error.strerror or error})",
            fix=fix,
            where=_WHERE,
        ) from None
    if len(data) > MAX_TEMPLATE_BYTES or not data.strip():
        size = "empty" if not data.strip() else f"{len(data)} bytes (at most {MAX_TEMPLATE_BYTES})"
        raise TrialInputError(f"chat template file {choice!r} is {size}", fix=fix, where=_WHERE)
    try:
        return ChatTemplate(name=str(path), source=data.decode("utf-8"))
    except UnicodeDecodeError:
        raise TrialInputError(
            f"chat template file {choice!r} is not UTF-8 text", fix=fix, where=_WHERE
        ) from None


def _check(template: ChatTemplate, tokenizer: Any) -> None:
    """Render a two-turn probe; each assistant turn must extend the prompt that asks for it."""
    try:
        for end in (2, 4):
            asked = template.render(tokenizer, _PROBE[:end], prompt=True)
            answered = template.render(tokenizer, _PROBE[: end + 1], prompt=False)
            if (
                not answered.startswith(asked)
                or _PROBE[end]["content"] not in answered[len(asked) :]
            ):
                raise ValueError(
                    "the text with an assistant turn does not start with the text that asks "
                    "for it (with add_generation_prompt), so the answer's tokens cannot be told "
                    "apart for the loss"
                )
    except Exception as error:  # Jinja raises many types; each is the same fault here
        raise TrialInputError(
            f"chat template {template.name!r} cannot be used for training: "
            f"{type(error).__name__}: {str(error)[:300]}",
            fix=f"set {_WHERE} to chatml or plain, or fix the template",
            where=_WHERE,
        ) from None


def resolve_template(tokenizer: Any, choice: str = "auto") -> ChatTemplate:
    """The template for `choice` (see the module's table), checked on a probe conversation."""
    own = own_template(tokenizer)
    if choice in ("auto", "model"):
        if own is None and choice == "model":
            raise TrialInputError(
                "the model's tokenizer has no chat template (a base model?)",
                fix=f"set {_WHERE} to plain or chatml, or to a Jinja template file",
                where=_WHERE,
            )
        template = ChatTemplate("model", own) if own else ChatTemplate("plain", PLAIN)
    elif choice in BUILT_IN:
        template = ChatTemplate(choice, BUILT_IN[choice])
    else:
        template = _read_file(choice)
    _check(template, tokenizer)
    return template


def use_template(tokenizer: Any, choice: str = "auto") -> ChatTemplate:
    """Resolve `choice` and set it as the tokenizer's template, so that trl, generation and a
    saved adapter all use the same one; the template chosen."""
    template = resolve_template(tokenizer, choice)
    tokenizer.chat_template = template.source
    return template
