"""A conversation as token ids and a label mask: the loss on every assistant turn, nothing else.

advisor tokenises conversations itself instead of handing trl the messages, because trl 1.x puts
the loss either on one completion (`completion_only_loss`: the last assistant turn only) or on
the spans a template marks with `{% generation %}` (`assistant_only_loss`), which SmolLM2's
template, like most, does not have. trl takes the result as it is: a dataset holding
`input_ids` and `labels` is not tokenised again, and its collator pads `labels` with -100 by
length, so an EOS used as pad token is still trained where it ends an answer.

What the loss covers, per assistant turn i: the characters between the text that asks for it,
`render(messages[:i], prompt=True)` (which ends with the assistant header), and the text that
holds it, `render(messages[:i + 1])`. That is the answer's content, the template's end-of-turn
token after it (`<|im_end|>` in ChatML, EOS in `plain`: a model that never learns end-of-turn
does not stop generating) and the separator the template writes after that (ChatML's newline).
The separator is trained because trl's completion mask trains it too: a single-turn row gets
exactly the labels it got when advisor handed trl prompt/completion pairs, so studies recorded
before this module rerun to the same eval losses (`advisor rerun`); it costs nothing, since
generation stops at end-of-turn. Not trained: system and user turns and the assistant header
(generation supplies it). `runners.templates` checks that a template has this prefix property;
here each conversation is checked again, since a template may treat some differently.

A fast tokenizer tokenises the whole text once and its offset mapping assigns tokens to turns
(a token overlapping an assistant span is trained); a slow one tokenises the text piece by piece
between span boundaries. `train.max_seq_length` keeps the first tokens; what was cut is
counted in `Truncation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from runners.errors import TrialInputError
from runners.layouts import Conversation

IGNORE = -100
"""The label of a token the loss skips (PyTorch's cross-entropy `ignore_index`)."""
Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Span:
    """Where one turn lies in the rendered text (characters); an assistant span is trained."""

    start: int
    end: int
    role: str


@dataclass
class Truncation:
    """What `train.max_seq_length` cut from a training set (see `TrialResult` for each count)."""

    rows: int = 0
    assistant_turns: int = 0
    context_turns: int = 0
    documents: int = 0
    untrained_rows: int = 0
    """Rows whose every assistant token was cut: they train on nothing (trl drops them)."""

    def warning(self, max_length: int) -> str | None:
        """A line for the trial's log when anything was cut, else None."""
        if not (self.rows or self.documents):
            return None
        parts = []
        if self.rows:
            parts.append(
                f"{self.rows} conversation(s) cut ({self.assistant_turns} assistant turn(s), "
                f"{self.context_turns} context turn(s))"
            )
        if self.untrained_rows:
            parts.append(
                f"{self.untrained_rows} of them lost every assistant token and train on nothing"
            )
        if self.documents:
            parts.append(f"{self.documents} document(s) cut")
        return (
            f"warning: train.max_seq_length={max_length} truncated the training set: "
            f"{'; '.join(parts)}; raise train.max_seq_length to keep them whole"
        )


@dataclass(frozen=True)
class Encoded:
    """One conversation ready for trl: `labels` is `input_ids` with untrained tokens -100."""

    input_ids: list[int]
    labels: list[int]
    cut_assistant_turns: int = 0
    cut_context_turns: int = 0

    @property
    def cut(self) -> bool:
        return bool(self.cut_assistant_turns or self.cut_context_turns)

    @property
    def trains(self) -> bool:
        return any(label != IGNORE for label in self.labels)


def as_messages(conversation: Conversation) -> Messages:
    return [{"role": turn.role, "content": turn.content} for turn in conversation.messages]


def bos_text(tokenizer: Any) -> str:
    """The BOS token's text when the tokenizer adds one by default (Llama, Gemma), else "".

    Chat templates are rendered and tokenised without special tokens (the template writes its
    own), so a model that expects BOS and whose template does not write it (any model under
    the `plain` template) gets it here, in training and in generation alike."""
    bos, bos_id = tokenizer.bos_token, tokenizer.bos_token_id
    if not bos or bos_id is None:
        return ""
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return bos if ids and ids[0] == bos_id else ""


def with_bos(tokenizer: Any, text: str) -> str:
    bos = bos_text(tokenizer)
    return text if not bos or text.startswith(bos) else bos + text


def _render(tokenizer: Any, messages: Messages, *, prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)


def prompt_text(tokenizer: Any, messages: Messages) -> str:
    """The text that asks the model for the next assistant turn (generation)."""
    return with_bos(tokenizer, _render(tokenizer, messages, prompt=True))


def _template_fault(row: int, what: str) -> TrialInputError:
    return TrialInputError(
        f"the chat template renders the conversation of data row {row} inconsistently: {what}, "
        "so the assistant's tokens cannot be told apart for the loss",
        fix="set model.chat_template to chatml or plain, or fix the template",
        where="model.chat_template",
    )


def turn_spans(tokenizer: Any, messages: Messages, *, row: int = 0) -> tuple[str, list[Span]]:
    """The rendered conversation and each turn's span in it (see the module docstring)."""
    full = _render(tokenizer, messages, prompt=False)
    spans: list[Span] = []
    before = ""
    for i, turn in enumerate(messages):
        upto = _render(tokenizer, messages[: i + 1], prompt=False)
        if not full.startswith(upto):
            raise _template_fault(row, f"the text up to turn {i + 1} is not a prefix of the whole")
        start = len(before)
        if turn["role"] == "assistant":
            asked = _render(tokenizer, messages[:i], prompt=True) if i else ""
            if not upto.startswith(asked):
                raise _template_fault(
                    row, f"assistant turn {i + 1} does not extend the prompt that asks for it"
                )
            start = len(asked)
        spans.append(Span(start, len(upto), turn["role"]))
        before = upto
    return full, spans


def _encode(tokenizer: Any, text: str, spans: Sequence[Span]) -> tuple[list[int], list[tuple]]:
    """Token ids and each token's (start, end) characters in `text`."""
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(encoded["input_ids"]), [tuple(o) for o in encoded["offset_mapping"]]
    cuts = sorted({0, len(text), *(s.start for s in spans), *(s.end for s in spans)})
    ids: list[int] = []
    offsets: list[tuple] = []
    for start, end in pairwise(cuts):
        piece = tokenizer(text[start:end], add_special_tokens=False)["input_ids"]
        ids.extend(piece)
        offsets.extend([(start, end)] * len(piece))
    return ids, offsets


def _overlaps(offset: tuple, span: Span) -> bool:
    start, end = offset
    return start < span.end and max(end, start + 1) > span.start


def encode_conversation(
    tokenizer: Any, conversation: Conversation, *, max_length: int | None = None
) -> Encoded:
    """Token ids and labels of `conversation`, cut to `max_length` tokens (see module docstring).

    Raises TrialInputError (model.chat_template) when the template renders the conversation so
    that an assistant turn's tokens cannot be found, and RuntimeError when the tokenizer's
    offsets leave an assistant turn without tokens (a bug, not the user's input).
    """
    text, spans = turn_spans(tokenizer, as_messages(conversation), row=conversation.row)
    bos = bos_text(tokenizer)
    if bos and not text.startswith(bos):
        text = bos + text
        spans = [Span(s.start + len(bos), s.end + len(bos), s.role) for s in spans]
    ids, offsets = _encode(tokenizer, text, spans)
    answers = [s for s in spans if s.role == "assistant"]
    labels = [
        token if any(_overlaps(o, s) for s in answers) else IGNORE
        for token, o in zip(ids, offsets, strict=True)
    ]
    for span in answers:
        if span.end > span.start and not any(
            _overlaps(o, span) for o, lab in zip(offsets, labels, strict=True) if lab != IGNORE
        ):
            raise RuntimeError(f"row {conversation.row}: an assistant turn got no tokens")
    cut_assistant = cut_context = 0
    if max_length is not None and len(ids) > max_length:
        cut_at = offsets[max_length][0]
        for span in spans:
            if span.end > cut_at:
                if span.role == "assistant":
                    cut_assistant += 1
                else:
                    cut_context += 1
        ids, labels = ids[:max_length], labels[:max_length]
    return Encoded(ids, labels, cut_assistant, cut_context)


def encode_conversations(
    tokenizer: Any, conversations: Sequence[Conversation], *, max_length: int | None
) -> tuple[list[Encoded], Truncation]:
    """`encode_conversation` for each row, and what truncation cut from them all."""
    encoded = [encode_conversation(tokenizer, c, max_length=max_length) for c in conversations]
    cut = Truncation()
    for item in encoded:
        if item.cut:
            cut.rows += 1
            cut.assistant_turns += item.cut_assistant_turns
            cut.context_turns += item.cut_context_turns
        if not item.trains:
            cut.untrained_rows += 1
    return encoded, cut
