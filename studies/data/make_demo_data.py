"""Generate the demo task: short free-text requests -> one fixed JSON format.

Run `python studies/data/make_demo_data.py` to rewrite demo_train.jsonl and demo_eval.jsonl next to
this script; the output is byte-for-byte deterministic (seeded `random.Random`, no network), and a
test checks that the committed files match.

Why it is hard enough to tell configurations apart (a plain 4-field extraction is learnt to 100%
in 30 LoRA steps, so every configuration ties):
- three intents with different fields (order, booking, contact) in one format;
- normalisation: numbers in words -> ints, plurals -> singular items, dates in four styles ->
  "MM-DD", 12-hour times -> "HH:MM", "Surname, First" -> "First Surname", lower-case cities ->
  capitalised, phone numbers with spaces/dashes/words -> digits only;
- one to three items per order;
- held out from training: two phrasing templates per intent, and a share of names, cities and
  items that appear only in the eval set.

Each record: prompt, response (compact JSON), intent, template (e.g. "order/7"), held_out (bool).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

SEED = 1234
N_TRAIN = 300
N_EVAL = 48
HERE = Path(__file__).resolve().parent

FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Eva",
    "Felix",
    "Greta",
    "Hugo",
    "Ida",
    "Jonas",
    "Lena",
    "Max",
    "Nina",
    "Oskar",
    "Paula",
    "Rita",
    "Sofia",
    "Tom",
    "Ulla",
    "Viktor",
]
LAST = [
    "Weber",
    "Huber",
    "Berger",
    "Klein",
    "Wolf",
    "Brandt",
    "Lang",
    "Fuchs",
    "Koch",
    "Roth",
    "Vogel",
    "Hahn",
    "Sommer",
    "Stein",
    "Keller",
    "Frank",
]
CITIES = [
    "Graz",
    "Linz",
    "Vienna",
    "Salzburg",
    "Innsbruck",
    "Munich",
    "Zurich",
    "Basel",
    "Bern",
    "Leipzig",
    "Dresden",
    "Bremen",
    "Prague",
    "Brno",
    "Bologna",
    "Verona",
]
ITEMS = {  # singular -> plural
    "mug": "mugs",
    "desk lamp": "desk lamps",
    "usb cable": "usb cables",
    "notebook": "notebooks",
    "backpack": "backpacks",
    "water bottle": "water bottles",
    "candle": "candles",
    "towel": "towels",
    "phone case": "phone cases",
    "pillow": "pillows",
    "scarf": "scarves",
    "box": "boxes",
    "glass": "glasses",
    "knife": "knives",
    "battery": "batteries",
    "umbrella": "umbrellas",
}
# Values only the eval set uses (held out from training).
EVAL_ONLY = {
    "first": {"Rita", "Sofia", "Tom", "Ulla", "Viktor"},
    "last": {"Keller", "Frank", "Stein"},
    "city": {"Prague", "Brno", "Bologna", "Verona"},
    "item": {"battery", "umbrella", "knife"},
}
NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
DIGIT_WORDS = dict(enumerate(NUMBER_WORDS[:10]))


def _pool(values: list[str] | dict[str, str], key: str, held_out: bool) -> list[str]:
    names = list(values)
    return names if held_out else [v for v in names if v not in EVAL_ONLY[key]]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _count(rng: random.Random, n: int) -> str:
    return NUMBER_WORDS[n] if rng.random() < 0.6 else str(n)


def _date(rng: random.Random) -> tuple[str, str]:
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    text = rng.choice(
        [
            f"{day} {MONTHS[month - 1]}",
            f"{MONTHS[month - 1]} {_ordinal(day)}",
            f"the {_ordinal(day)} of {MONTHS[month - 1]}",
            f"{day}.{month}.",
        ]
    )
    return text, f"{month:02d}-{day:02d}"


def _time(rng: random.Random) -> tuple[str, str]:
    hour, minute = rng.randint(8, 21), rng.choice([0, 15, 30, 45])
    h12, half = (hour - 12 if hour > 12 else hour), ("pm" if hour >= 12 else "am")
    text = rng.choice(
        [f"{hour}:{minute:02d}", f"{h12}:{minute:02d} {half}"]
        + ([f"{h12} {half}", f"{h12}{half}"] if minute == 0 else [f"{h12}.{minute:02d}{half}"])
    )
    return text, f"{hour:02d}:{minute:02d}"


def _phone(rng: random.Random) -> tuple[str, str]:
    digits = "06" + "".join(str(rng.randint(0, 9)) for _ in range(8))
    style = rng.randrange(3)
    if style == 0:
        text = f"{digits[:4]} {digits[4:7]} {digits[7:]}"
    elif style == 1:
        text = f"{digits[:4]}-{digits[4:]}"
    else:
        text = " ".join(DIGIT_WORDS[int(d)] for d in digits[:4]) + " " + digits[4:]
    return text, digits


class Values:
    """The values of one example, drawn from the train pools or the full (held-out) pools."""

    def __init__(self, rng: random.Random, held_out: bool) -> None:
        self.first = rng.choice(_pool(FIRST, "first", held_out))
        self.last = rng.choice(_pool(LAST, "last", held_out))
        self.name = f"{self.first} {self.last}"
        self.city = rng.choice(_pool(CITIES, "city", held_out))
        self.city_text = self.city.lower() if rng.random() < 0.3 else self.city
        items = rng.sample(_pool(ITEMS, "item", held_out), rng.choice([1, 1, 2, 2, 3]))
        self.items = [(item, rng.choice([1, 1, 2, 3, 4, 5, 6, 10, 12])) for item in items]
        self.item_text = _and(
            [
                f"{_count(rng, q)} {ITEMS[i] if q > 1 else i}" if q > 1 else f"a {i}"
                for i, q in self.items
            ]
        )
        self.people = rng.randint(1, 9)
        self.people_text = _count(rng, self.people)
        self.date_text, self.date = _date(rng)
        self.time_text, self.time = _time(rng)
        self.phone_text, self.phone = _phone(rng)


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _order(v: Values) -> dict[str, object]:
    return {
        "intent": "order",
        "name": v.name,
        "items": [[i, q] for i, q in v.items],
        "city": v.city,
    }


def _booking(v: Values) -> dict[str, object]:
    return {"intent": "booking", "name": v.name, "people": v.people, "date": v.date, "time": v.time}


def _contact(v: Values) -> dict[str, object]:
    return {"intent": "contact", "name": v.name, "phone": v.phone, "city": v.city}


Template = Callable[[Values], str]
# The last two templates of each intent are held out: they appear only in the eval set.
TEMPLATES: dict[str, tuple[Callable[[Values], dict[str, object]], list[Template]]] = {
    "order": (
        _order,
        [
            lambda v: f"Hi, {v.name} here. Please send {v.item_text} to {v.city_text}.",
            lambda v: f"I'd like to order {v.item_text}. Ship to {v.city_text}, name {v.name}.",
            lambda v: f"Order for {v.last}, {v.first}: {v.item_text}, delivery to {v.city_text}.",
            lambda v: f"{v.name} from {v.city_text} wants {v.item_text}.",
            lambda v: f"Can you deliver {v.item_text} to {v.city_text}? Thanks, {v.first} {v.last}",
            lambda v: f"{v.city_text} address please: {v.item_text} for {v.name}.",
            lambda v: (
                f"This is {v.last}, {v.first}. I need {v.item_text}, my city is {v.city_text}."
            ),
            lambda v: f"Put me down for {v.item_text}, shipped to {v.city_text} - {v.name}",
        ],
    ),
    "booking": (
        _booking,
        [
            lambda v: (
                f"Table for {v.people_text} on {v.date_text} at {v.time_text}, name {v.name}."
            ),
            lambda v: (
                f"Hi, I'm {v.name}. Can I book for {v.people_text} people, {v.date_text}, "
                f"{v.time_text}?"
            ),
            lambda v: (
                f"Reservation: {v.last}, {v.first}; {v.people_text} guests; {v.date_text} "
                f"{v.time_text}."
            ),
            lambda v: (
                f"{v.name} would like a table at {v.time_text} on {v.date_text} for "
                f"{v.people_text}."
            ),
            lambda v: (
                f"Please reserve {v.date_text}, {v.time_text}, party of {v.people_text}. "
                f"{v.first} {v.last}"
            ),
            lambda v: (
                f"Book us in: {v.people_text} persons, {v.time_text}, {v.date_text}. "
                f"Thanks, {v.name}"
            ),
            lambda v: (
                f"We are {v.people_text} and want to come {v.date_text} around {v.time_text}. "
                f"Name: {v.last}, {v.first}"
            ),
            lambda v: (
                f"{v.first} {v.last} booking {v.people_text} seats for {v.date_text}, "
                f"{v.time_text}."
            ),
        ],
    ),
    "contact": (
        _contact,
        [
            lambda v: f"Please call {v.name} back on {v.phone_text}, based in {v.city_text}.",
            lambda v: f"New contact: {v.last}, {v.first} - phone {v.phone_text} - {v.city_text}.",
            lambda v: f"Hi, this is {v.name} from {v.city_text}, my number is {v.phone_text}.",
            lambda v: f"Save {v.name}, {v.city_text}, tel. {v.phone_text}.",
            lambda v: f"You can reach {v.first} {v.last} at {v.phone_text} ({v.city_text}).",
            lambda v: f"Contact details for {v.name}: {v.phone_text}, lives in {v.city_text}.",
            lambda v: f"Ring me on {v.phone_text}, I'm {v.last}, {v.first} in {v.city_text}.",
            lambda v: f"{v.city_text} customer {v.name} left the number {v.phone_text}.",
        ],
    ),
}
HELD_OUT_TEMPLATES = 2


def _example(rng: random.Random, intent: str, held_out: bool) -> dict[str, object]:
    answer, templates = TEMPLATES[intent]
    seen = len(templates) - HELD_OUT_TEMPLATES
    index = rng.randrange(seen, len(templates)) if held_out else rng.randrange(seen)
    values = Values(rng, held_out)
    return {
        "prompt": templates[index](values),
        "response": json.dumps(answer(values), separators=(",", ":")),
        "intent": intent,
        "template": f"{intent}/{index}",
        "held_out": held_out,
    }


def build(seed: int = SEED) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """(train, eval) records. Half the eval set uses held-out templates and values."""
    rng = random.Random(seed)
    intents = list(TEMPLATES)
    train = [_example(rng, intents[i % 3], held_out=False) for i in range(N_TRAIN)]
    evaluation = [_example(rng, intents[i % 3], held_out=i % 2 == 1) for i in range(N_EVAL)]
    return train, evaluation


def write(out_dir: Path = HERE, seed: int = SEED) -> tuple[Path, Path]:
    """Write demo_train.jsonl and demo_eval.jsonl into `out_dir`."""
    train, evaluation = build(seed)
    paths = out_dir / "demo_train.jsonl", out_dir / "demo_eval.jsonl"
    for path, records in zip(paths, (train, evaluation), strict=True):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        path.write_text(text, encoding="utf-8", newline="\n")
    return paths


if __name__ == "__main__":
    for written in write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(written)
