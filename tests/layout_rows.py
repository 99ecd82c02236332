"""One small file per data layout, for the scan and recommend tests: rows whose every count is
known (turns, roles, system prompts, personal data by row and turn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runners.testing import write_jsonl


def _chat(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in turns]


MESSAGES = [
    {
        "messages": _chat(
            ("system", "You route tickets. Escalate to ops.lead@example.com when unsure."),
            ("user", "My invoice is wrong."),
            ("assistant", "I am sorry to hear that. Which invoice number is it?"),
            ("user", "Number 4471, from March."),
            ("assistant", "Thank you, I have sent it to billing for a correction."),
        )
    },
    {
        "messages": _chat(
            ("user", "Reset my password, please."),
            ("assistant", "Use the link on the sign-in page to reset it."),
            ("user", "It failed; call me on +44 20 7946 0958 instead."),
            ("assistant", "A colleague will call you within the hour."),
        )
    },
    {
        "messages": _chat(
            ("user", "Explain why invoices are numbered."),
            ("assistant", "Numbers make every invoice easy to find and to audit."),
        )
    },
]
"""Row 1: a system turn holding an e-mail address; row 2: a phone number in its third turn."""

SHAREGPT = [
    {
        "conversations": [
            {"from": "system", "value": "You answer in one sentence."},
            {"from": "human", "value": "Name a planet with rings."},
            {"from": "gpt", "value": "Saturn has the most famous rings."},
        ]
    },
    {
        "conversations": [
            {"from": "human", "value": "Explain what a comet is."},
            {"from": "gpt", "value": "A comet is a ball of ice and dust that orbits the sun."},
        ]
    },
]

ALPACA = [
    {"instruction": "Translate to German.", "input": "Good morning", "output": "Guten Morgen"},
    {"instruction": "List three primary colours.", "input": "", "output": "Red, yellow, blue."},
]

PROMPT_COMPLETION = [
    {"prompt": "Summarise: the meeting moved to Friday.", "completion": "Meeting now Friday."},
    {
        "prompt": _chat(("system", "Be terse."), ("user", "Give the capital of Peru.")),
        "completion": _chat(("assistant", "Lima.")),
    },
]

PROMPT_RESPONSE = [
    {"question": "Name the largest ocean.", "answer": "The Pacific Ocean."},
    {"question": "Explain what tides are.", "answer": "Tides are the rise and fall of the sea."},
]
"""Read with the fields `question` and `answer` (`--prompt-field`, `--response-field`)."""

TEXT = [
    {"text": "The harbour of Hamburg handles millions of containers every year."},
    {"text": "Container ships are measured in twenty-foot equivalent units, or TEU."},
    {"text": "Write to the harbour office at port.office@example.org for berth requests."},
]

LAYOUT_ROWS: dict[str, list[dict[str, Any]]] = {
    "messages": MESSAGES,
    "sharegpt": SHAREGPT,
    "alpaca": ALPACA,
    "prompt_completion": PROMPT_COMPLETION,
    "prompt_response": PROMPT_RESPONSE,
    "text": TEXT,
}


def write_layout(folder: Path, layout: str) -> Path:
    return write_jsonl(folder / f"{layout}.jsonl", LAYOUT_ROWS[layout])
