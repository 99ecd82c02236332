"""Generate the route task: short customer messages -> one of six queue labels.

Run `python studies/data/make_route_data.py` to rewrite route_train.jsonl and route_eval.jsonl
next to this script; the output is byte-for-byte deterministic (seeded `random.Random`, no
network), and a test checks that the committed files match. It is the classification grid of the
tuner benchmark (studies/bench_grid_route.yaml), beside the demo's extraction and the style
rewrite, so that no tuning strategy is judged on one task only.

Why one keyword does not solve it (a keyword router would score about 60%):
- confounders: half the messages name a second topic that is not the request ("I already paid
  the invoice, but the parcel never came" is shipping, not billing);
- negation: some messages say what they are *not* about ("not a billing question");
- held out from training: the last two phrasing templates of every label, and a share of the
  products, that appear only in the eval set.

Each record: prompt, response (the label), label, template (e.g. "returns/3"), held_out (bool).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

SEED = 4321
N_TRAIN = 300
N_EVAL = 48
HERE = Path(__file__).resolve().parent

LABELS = ("billing", "shipping", "returns", "technical", "account", "cancel")
PRODUCTS = [
    "blender",
    "router",
    "headset",
    "kettle",
    "smart watch",
    "printer",
    "desk chair",
    "camera",
    "speaker",
    "keyboard",
    "coffee machine",
    "monitor",
]
EVAL_ONLY_PRODUCTS = {"coffee machine", "monitor", "keyboard"}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "last week", "yesterday"]

# A second topic a message may mention without asking about it (the confounder), by label.
ASIDES = {
    "billing": ["I already paid the invoice", "the payment went through fine"],
    "shipping": ["the parcel arrived on time", "delivery was quick"],
    "returns": ["I do not want to send it back", "no need for a refund"],
    "technical": ["it works fine otherwise", "the app runs without errors"],
    "account": ["I can log in without problems", "my password is fine"],
    "cancel": ["I am keeping my subscription", "I do not want to cancel anything"],
}


class Values:
    """The slot values of one message, from the train pools or the full (held-out) pools."""

    def __init__(self, rng: random.Random, held_out: bool) -> None:
        pool = [p for p in PRODUCTS if held_out or p not in EVAL_ONLY_PRODUCTS]
        self.product = rng.choice(pool)
        self.day = rng.choice(DAYS)
        self.amount = rng.choice([9, 15, 24, 39, 49, 79, 120])
        self.order = rng.randint(1000, 9999)
        self.aside = ""

    def with_aside(self, text: str) -> str:
        """The message with the confounder in front ("X, but ...") when there is one."""
        if not self.aside:
            return text
        head = text if text.startswith("I ") else text[0].lower() + text[1:]
        return f"{self.aside[0].upper()}{self.aside[1:]}, but {head}"


Template = Callable[[Values], str]
# The last two templates of each label are held out: they appear only in the eval set.
TEMPLATES: dict[str, list[Template]] = {
    "billing": [
        lambda v: f"I was charged {v.amount} euros twice for my {v.product}.",
        lambda v: f"Why does my invoice for order {v.order} show {v.amount} euros?",
        lambda v: "This is not about delivery: my card was charged the wrong amount.",
        lambda v: f"Can I get a copy of the bill for the {v.product}?",
        lambda v: f"The price I paid {v.day} was higher than the one in the shop.",
        lambda v: f"My bank shows a payment of {v.amount} euros I do not recognise.",
        lambda v: f"Please fix the VAT on invoice {v.order}.",
        lambda v: f"I paid {v.amount} euros but the receipt says more.",
    ],
    "shipping": [
        lambda v: f"Where is my {v.product}? Order {v.order} has not arrived.",
        lambda v: f"The tracking for order {v.order} has not moved since {v.day}.",
        lambda v: "Not a payment question: the courier never came.",
        lambda v: f"Can you deliver the {v.product} to my office instead?",
        lambda v: f"My parcel with the {v.product} is stuck at the depot.",
        lambda v: f"When will order {v.order} be delivered?",
        lambda v: f"The {v.product} was sent to the wrong address.",
        lambda v: f"Still waiting for the {v.product} I ordered {v.day}.",
    ],
    "returns": [
        lambda v: f"I want to send the {v.product} back and get a refund.",
        lambda v: f"How do I return order {v.order}?",
        lambda v: f"The {v.product} is the wrong size, can I exchange it?",
        lambda v: "This is not a delivery problem, I just want my money back for the item.",
        lambda v: f"I need a return label for the {v.product}.",
        lambda v: f"The {v.product} came broken, I would like a replacement.",
        lambda v: f"Can I still return the {v.product} I got {v.day}?",
        lambda v: f"Refund please, the {v.product} is not what I expected.",
    ],
    "technical": [
        lambda v: f"My {v.product} will not turn on.",
        lambda v: f"The {v.product} keeps disconnecting from wifi.",
        lambda v: f"Since {v.day} the app crashes when I pair the {v.product}.",
        lambda v: "Not about my bill: the firmware update failed.",
        lambda v: f"How do I reset the {v.product} to factory settings?",
        lambda v: f"The {v.product} makes a loud noise and then stops.",
        lambda v: f"Error code {v.order % 100} on the {v.product} display.",
        lambda v: f"The {v.product} does not show up in the app.",
    ],
    "account": [
        lambda v: "I cannot log in to my account.",
        lambda v: "Please change the email address on my profile.",
        lambda v: f"I forgot my password and the reset mail never came {v.day}.",
        lambda v: "This is not about an order, I want to update my phone number.",
        lambda v: "Someone else may have access to my account.",
        lambda v: "How do I merge my two customer accounts?",
        lambda v: f"My username was changed {v.day} without my consent.",
        lambda v: "I want to turn on two-factor login.",
    ],
    "cancel": [
        lambda v: "Please cancel my subscription.",
        lambda v: f"I want to cancel order {v.order} before it ships.",
        lambda v: "Stop my membership at the end of the month.",
        lambda v: f"Not a return, I never want the {v.product}: cancel the order.",
        lambda v: f"Cancel the {v.product} I ordered {v.day}, I changed my mind.",
        lambda v: "End my plan and do not charge me again.",
        lambda v: f"I no longer need order {v.order}, please call it off.",
        lambda v: "Terminate my contract, effective now.",
    ],
}
HELD_OUT_TEMPLATES = 2
ASIDE_SHARE = 0.5
"""Share of messages with a confounder naming another label's topic."""


def _example(rng: random.Random, label: str, held_out: bool) -> dict[str, object]:
    templates = TEMPLATES[label]
    seen = len(templates) - HELD_OUT_TEMPLATES
    index = rng.randrange(seen, len(templates)) if held_out else rng.randrange(seen)
    values = Values(rng, held_out)
    if rng.random() < ASIDE_SHARE:
        other = rng.choice([name for name in LABELS if name != label])
        values.aside = rng.choice(ASIDES[other])
    return {
        "prompt": values.with_aside(templates[index](values)),
        "response": label,
        "label": label,
        "template": f"{label}/{index}",
        "held_out": held_out,
    }


def build(seed: int = SEED) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """(train, eval) records, labels balanced. Every other round of six eval records uses
    held-out templates and products (so each label has both kinds)."""
    rng = random.Random(seed)
    n = len(LABELS)
    train = [_example(rng, LABELS[i % n], held_out=False) for i in range(N_TRAIN)]
    evaluation = [_example(rng, LABELS[i % n], held_out=i // n % 2 == 1) for i in range(N_EVAL)]
    return train, evaluation


def write(out_dir: Path = HERE, seed: int = SEED) -> tuple[Path, Path]:
    """Write route_train.jsonl and route_eval.jsonl into `out_dir`."""
    train, evaluation = build(seed)
    paths = out_dir / "route_train.jsonl", out_dir / "route_eval.jsonl"
    for path, records in zip(paths, (train, evaluation), strict=True):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        path.write_text(text, encoding="utf-8", newline="\n")
    return paths


if __name__ == "__main__":
    for written in write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(written)
