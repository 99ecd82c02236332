"""Generate small example data in every layout advisor reads (`runners.layouts.LAYOUTS`).

Run `python studies/data/make_layout_data.py [OUT_DIR]` to rewrite the files below next to this
script; the output is deterministic (seeded `random.Random`, no network, no clock), and
tests/study/test_layout_examples.py checks that the committed files match. Each layout has its
own study, studies/layout_<layout>.yaml, on SmolLM2-135M.

| file                             | layout            | container  | task                         |
|----------------------------------|-------------------|------------|------------------------------|
| messages_{train,eval}.jsonl      | messages          | JSON Lines | a cart as JSON over 1-2 user |
|                                  |                   |            | turns; 40% with a system turn|
| sharegpt_{train,eval}.json       | sharegpt          | JSON array | route 1-2 tickets to a team  |
| alpaca_{train,eval}.jsonl        | alpaca            | JSON Lines | plurals, digits, ISO dates,  |
|                                  |                   |            | title case; half with input  |
| prompt_completion_train.parquet  | prompt_completion | Parquet    | product name -> URL slug     |
| prompt_completion_eval.jsonl     | prompt_completion | JSON Lines | the same, as turn lists      |
| prompt_response_{train,eval}.csv | prompt_response   | CSV        | the order code in a message  |
| corpus_{train,eval}.jsonl        | text              | JSON Lines | notes on fictional e-bikes   |
| corpus_eval_dataset/             | text              | saved      | corpus_eval.jsonl's rows     |
|                                  |                   | dataset    | (`save_to_disk`)             |

Every task can be read off the prompt (nothing to memorise), is new to the base model, and has
short answers, so SmolLM2-135M learns it within a few dozen steps, as with the demo data
(make_demo_data.py). Evaluation rows use values the training rows do not (`EVAL_ONLY`). The
corpus describes the fictional bike maker Velora: continued pre-training on it lowers the
held-out perplexity, which its study measures. All names are invented and no row holds personal
data (no e-mail address or phone number), so `advisor scan` passes every file.

Parquet and Arrow files embed the writer's version (`created_by`, the `datasets` features), and
`save_to_disk` would write a random fingerprint into `state.json` (it is fixed here): their
tables are deterministic, their bytes only for one library version; the test compares their
tables.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED = 2024
N_TRAIN, N_EVAL = 120, 24
"""Rows per train and eval file (the corpus: what is left after its eval rows)."""
N_CORPUS_EVAL = 32
N_NOTES = 20
"""Maintenance notes drawn per bike model (duplicates are dropped)."""
HERE = Path(__file__).resolve().parent
Row = dict[str, Any]
Make = Callable[[random.Random, int, bool], Row]
"""(rng, row index, held out) -> one row."""

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ITEMS = {  # singular -> plural
    "mug": "mugs",
    "scarf": "scarves",
    "candle": "candles",
    "notebook": "notebooks",
    "towel": "towels",
    "pillow": "pillows",
    "box": "boxes",
    "glass": "glasses",
    "knife": "knives",
    "battery": "batteries",
    "umbrella": "umbrellas",
    "leaf": "leaves",
    "brush": "brushes",
    "wheel": "wheels",
}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August"]
MONTHS += ["September", "October", "November", "December"]
ADJECTIVES = ["Blue", "Quiet", "Compact", "Heavy", "Folding", "Bright", "Smart", "Classic"]
PRODUCTS = ["Desk Lamp", "Kettle", "Backpack", "Bike Lock", "Tent", "Helmet", "Speaker", "Stool"]
SIZES = ["Small", "Large", "XL", "2-Pack", "Mini", "Pro"]
PREFIXES = ["VL", "KT", "RX", "MB", "QP", "ZN", "HT", "WD"]
# Values only the eval sets use: held out from training.
EVAL_ONLY = {
    "item": {"brush", "wheel", "leaf"},
    "adjective": {"Smart", "Classic"},
    "product": {"Speaker", "Stool"},
    "prefix": {"HT", "WD"},
}


def _pool(values: list[str] | dict[str, str], key: str, held_out: bool) -> list[str]:
    names = list(values)
    return names if held_out else [v for v in names if v not in EVAL_ONLY[key]]


def _count(rng: random.Random, n: int) -> str:
    return NUMBER_WORDS[n] if rng.random() < 0.6 else str(n)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _cart_json(cart: dict[str, int]) -> str:
    return json.dumps(cart, separators=(",", ":"))


# --- messages: a cart kept as JSON over one or two user turns ---------------------------------

CART_SYSTEM = "Keep the customer's cart as one JSON object: item -> quantity."


def _items_text(rng: random.Random, cart: dict[str, int]) -> str:
    parts = [f"{_count(rng, q)} {ITEMS[i]}" if q > 1 else f"a {i}" for i, q in cart.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _change(rng: random.Random, cart: dict[str, int], items: list[str]) -> tuple[str, dict]:
    """A follow-up request and the cart after it: add to, remove or set an item."""
    after = dict(cart)
    kind = rng.choice(["add", "add_new", "remove", "set"])
    item = rng.choice(list(cart))
    if kind == "add":
        n = rng.randint(1, 3)
        after[item] += n
        return f"Add {_count(rng, n)} more {ITEMS[item] if n > 1 else item}, please.", after
    if kind == "add_new":
        new = rng.choice([i for i in items if i not in cart])
        n = rng.randint(1, 4)
        after[new] = n
        return f"Also {_count(rng, n)} {ITEMS[new] if n > 1 else new}.", after
    if kind == "remove" and len(cart) > 1:
        del after[item]
        return f"Remove the {ITEMS[item] if cart[item] > 1 else item}.", after
    n = rng.choice([q for q in range(1, 7) if q != cart[item]])
    after[item] = n
    return f"Make that {_count(rng, n)} {ITEMS[item] if n > 1 else item} instead.", after


def _messages_row(rng: random.Random, held_out: bool) -> Row:
    items = _pool(ITEMS, "item", held_out)
    cart = {i: rng.choice([1, 1, 2, 3, 4]) for i in rng.sample(items, rng.choice([1, 2]))}
    opening = rng.choice(["I'd like {}.", "Please put {} in my cart.", "Hi! {} for me, please."])
    messages = [
        {"role": "user", "content": opening.format(_items_text(rng, cart))},
        {"role": "assistant", "content": _cart_json(cart)},
    ]
    if rng.random() < 0.7:
        follow_up, cart = _change(rng, cart, items)
        messages += [
            {"role": "user", "content": follow_up},
            {"role": "assistant", "content": _cart_json(cart)},
        ]
    if rng.random() < 0.4:
        messages.insert(0, {"role": "system", "content": CART_SYSTEM})
    return {"messages": messages}


# --- sharegpt: route a support ticket to one team ---------------------------------------------

ROUTING_SYSTEM = "Route the ticket to one team: billing, delivery, returns or repair."
TICKETS = {
    "billing": [
        "I was charged twice for my {p}.",
        "The invoice for the {p} shows the wrong amount.",
        "Can I pay for the {p} in three instalments?",
        "My card was declined when I bought the {p}.",
    ],
    "delivery": [
        "My {p} has not arrived yet.",
        "The courier left the {p} at the wrong door.",
        "When will the {p} be shipped?",
        "Tracking for my {p} has not moved for a week.",
    ],
    "returns": [
        "I want to send the {p} back.",
        "The {p} is the wrong size, can I exchange it?",
        "How do I get a refund for the {p}?",
        "I changed my mind about the {p}; what is the return address?",
    ],
    "repair": [
        "The {p} stopped working after two days.",
        "The switch on my {p} is broken.",
        "My {p} makes a loud noise, can you fix it?",
        "The {p} will not turn on any more.",
    ],
}
HELD_OUT_TICKETS = 1  # the last phrasing of each team appears only in the eval set


def _ticket(rng: random.Random, held_out: bool) -> tuple[str, str]:
    team = rng.choice(list(TICKETS))
    phrasings = TICKETS[team]
    seen = len(phrasings) - HELD_OUT_TICKETS
    text = phrasings[rng.randrange(seen, len(phrasings)) if held_out else rng.randrange(seen)]
    product = rng.choice(_pool(PRODUCTS, "product", held_out)).lower()
    return text.format(p=product), team


def _sharegpt_row(rng: random.Random, held_out: bool) -> Row:
    turns = [{"from": "system", "value": ROUTING_SYSTEM}]
    for _ in range(rng.choice([1, 1, 2])):
        text, team = _ticket(rng, held_out)
        turns += [{"from": "human", "value": text}, {"from": "gpt", "value": team}]
    return {"conversations": turns}


# --- alpaca: small text transformations, with and without `input` -----------------------------


def _plural(rng: random.Random, held_out: bool) -> tuple[str, str, str]:
    item = rng.choice(_pool(ITEMS, "item", held_out))
    return "Give the plural of the word.", item, ITEMS[item]


def _digits(rng: random.Random, held_out: bool) -> tuple[str, str, str]:
    tens = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    t, u = rng.randrange(len(tens)), rng.randrange(10)
    words = tens[t] + (f"-{NUMBER_WORDS[u]}" if u else "")
    return "Write the number in digits.", words, str((t + 2) * 10 + u)


def _iso_date(rng: random.Random, held_out: bool) -> tuple[str, str, str]:
    year, month, day = rng.randint(2019, 2027), rng.randint(1, 12), rng.randint(1, 28)
    name = MONTHS[month - 1]
    text = rng.choice([f"{day} {name} {year}", f"{name} {_ordinal(day)}, {year}"])
    return "Write the date in ISO format.", text, f"{year}-{month:02d}-{day:02d}"


def _title(rng: random.Random, held_out: bool) -> tuple[str, str, str]:
    name = f"{rng.choice(_pool(ADJECTIVES, 'adjective', held_out))} "
    name += rng.choice(_pool(PRODUCTS, "product", held_out))
    return "Write the product name in title case.", name.lower(), name


ALPACA_TASKS: list[Callable[[random.Random, bool], tuple[str, str, str]]] = [
    _plural,
    _digits,
    _iso_date,
    _title,
]
INLINE = {  # the same instruction with its input written into it (no `input` field)
    "Give the plural of the word.": "Give the plural of '{}'.",
    "Write the number in digits.": "Write '{}' in digits.",
    "Write the date in ISO format.": "Write {} in ISO format.",
    "Write the product name in title case.": "Write '{}' in title case.",
}


def _alpaca_row(rng: random.Random, _: int, held_out: bool) -> Row:
    instruction, given, output = rng.choice(ALPACA_TASKS)(rng, held_out)
    if rng.random() < 0.5:
        return {"instruction": instruction, "input": given, "output": output}
    return {"instruction": INLINE[instruction].format(given), "input": "", "output": output}


# --- prompt_completion and prompt_response ----------------------------------------------------


def _product_name(rng: random.Random, held_out: bool) -> tuple[str, str]:
    adjective = rng.choice(_pool(ADJECTIVES, "adjective", held_out))
    product = rng.choice(_pool(PRODUCTS, "product", held_out))
    size = rng.choice(SIZES)
    name = rng.choice([f"{adjective} {product} ({size})", f"{adjective} {product}, {size}"])
    slug = "-".join(f"{adjective} {product} {size}".lower().split())
    return name, slug


def _slug_row(rng: random.Random, held_out: bool, *, turns: bool) -> Row:
    name, slug = _product_name(rng, held_out)
    row = {"prompt": f"URL slug for: {name}", "completion": slug}
    return _as_turns(row) if turns else row


def _as_turns(row: Row) -> Row:
    """trl's conversational prompt/completion: the same row as lists of turns."""
    return {
        "prompt": [{"role": "user", "content": row["prompt"]}],
        "completion": [{"role": "assistant", "content": row["completion"]}],
    }


ORDER_MESSAGES = [
    "Hello, order {c} arrived with {n} broken {p}.",
    "Where is my order? The code is {c}.",
    "I paid {n} euros twice for {c}, please check.",
    "Order {c}: the {p} came in {n} boxes instead of one.",
    "Please cancel {c}, I ordered {n} by mistake.",
    "My neighbour got my parcel ({c}) on day {n}.",
    "Code {c}, {n} items missing from the {p} set.",
]
HELD_OUT_MESSAGES = 2


def _order_row(rng: random.Random, held_out: bool) -> Row:
    prefix = rng.choice(_pool(PREFIXES, "prefix", held_out))
    code = f"{prefix}-{rng.randint(1000, 9999)}"
    seen = len(ORDER_MESSAGES) - HELD_OUT_MESSAGES
    index = rng.randrange(seen, len(ORDER_MESSAGES)) if held_out else rng.randrange(seen)
    product = rng.choice(_pool(PRODUCTS, "product", held_out)).lower()
    text = ORDER_MESSAGES[index].format(c=code, n=rng.randint(2, 40), p=product)
    return {"prompt": f"Which order code? {text}", "response": code}


# --- text: a handbook of the fictional bike maker Velora --------------------------------------

BIKES = ["Strada", "Monte", "Lago", "Vento", "Fiume", "Colle", "Piazza", "Sentiero"]
BIKES += ["Riva", "Bosco"]
KINDS = ["city bike", "mountain bike", "cargo bike", "touring bike", "folding bike"]
COLOURS = ["slate grey", "forest green", "harbour blue", "sand", "signal red", "matt black"]
PARTS = ["chain", "brake pads", "tyres", "battery contacts", "headlight", "kickstand"]


def _bike_facts(rng: random.Random) -> dict[str, dict[str, Any]]:
    """The fixed facts of each model: every paragraph about a model agrees with them."""
    facts = {}
    for name in BIKES:
        battery = rng.choice([400, 500, 625, 750])
        facts[name] = {
            "kind": rng.choice(KINDS),
            "battery": battery,
            "range": battery // 5 + rng.choice([-10, 0, 10]),
            "weight": rng.randint(16, 31),
            "colours": rng.sample(COLOURS, 2),
            "charge": round(battery / 125 * 0.5 + rng.choice([0, 0.5]), 1),
            "warranty": rng.choice([2, 3, 5]),
            "price": rng.randrange(1900, 4600, 100),
            "torque": rng.choice([50, 65, 75, 85]),
            "pressure": rng.choice([2.0, 2.5, 3.0, 3.5, 4.5]),
        }
    return facts


def _paragraphs(name: str, f: dict[str, Any], other: str, g: dict[str, Any]) -> list[str]:
    """Every paragraph the handbook can say about model `name` (and one comparison)."""
    lighter = name if f["weight"] < g["weight"] else other
    return [
        f"The Velora {name} is a {f['kind']} with a {f['battery']} Wh battery. It weighs "
        f"{f['weight']} kg and comes in {f['colours'][0]} or {f['colours'][1]}.",
        f"On one charge the Velora {name} rides about {f['range']} km with medium assistance. "
        f"In the lowest mode the range grows by roughly a third.",
        f"The {f['battery']} Wh battery of the {name} charges from empty to full in about "
        f"{f['charge']} hours with the standard Velora charger.",
        f"Velora gives a {f['warranty']}-year warranty on the frame and motor of the {name}. "
        f"The battery is covered for two years or 500 charge cycles.",
        f"The Velora {name} costs {f['price']} euros in the base version. A second battery "
        f"adds {f['battery'] // 2 + 90} euros.",
        f"The {name} has a {f['torque']} Nm motor in the bottom bracket. Assistance stops at "
        f"25 km/h, as the law for pedelecs asks, and starts again below it.",
        f"Pump the tyres of the Velora {name} to {f['pressure']} bar; a loaded {f['kind']} "
        f"needs up to half a bar more.",
        f"Compared with the {other}, the {name} is a {f['kind']} rather than a {g['kind']}; "
        f"the {lighter} is the lighter of the two.",
    ]


TIPS = [
    "Maintenance note for the Velora {name}: check the {part} every {weeks} weeks, and after "
    "every ride in the rain. A Velora workshop does it in the yearly service.",
    "Before a long tour on the {name}, look at the {part} and charge the battery to full. "
    "Velora recommends a check every {weeks} weeks.",
    "Owners of the {name} ask how often to clean the {part}: every {weeks} weeks in summer, "
    "more often in winter when the roads are salted.",
    "Replacing the {part} of a Velora {name} takes under an hour; book the workshop after "
    "{weeks} weeks of daily riding.",
]


def _maintenance(rng: random.Random, name: str) -> str:
    return rng.choice(TIPS).format(
        name=name, part=rng.choice(PARTS), weeks=rng.choice([2, 4, 6, 8, 12])
    )


def _corpus(rng: random.Random) -> tuple[list[Row], list[Row]]:
    """(train, eval) paragraphs: every fact paragraph of each model, plus maintenance notes;
    eval draws a share of the same models' paragraphs, which training never shows."""
    facts = _bike_facts(rng)
    paragraphs = []
    for name in BIKES:
        other = rng.choice([b for b in BIKES if b != name])
        paragraphs += _paragraphs(name, facts[name], other, facts[other])
        paragraphs += [_maintenance(rng, name) for _ in range(N_NOTES)]
    rng.shuffle(paragraphs)
    rows = [{"text": text} for text in dict.fromkeys(paragraphs)]  # no duplicate paragraphs
    return rows[N_CORPUS_EVAL:], rows[:N_CORPUS_EVAL]


# --- the files ----------------------------------------------------------------------------------


def _rows(make: Make, rng: random.Random, n: int, taken: set[str], held: bool | None) -> list[Row]:
    """`n` rows, none equal to another or to one in `taken` (which grows): a duplicate would
    be a finding of `advisor scan`, and an eval row seen in training measures nothing.
    `held` None: alternate between seen and held-out values (the eval sets)."""
    rows: list[Row] = []
    for _ in range(100 * n):
        if len(rows) == n:
            return rows
        row = make(rng, len(rows), len(rows) % 2 == 1 if held is None else held)
        key = json.dumps(row, sort_keys=True)
        if key not in taken:
            taken.add(key)
            rows.append(row)
    raise RuntimeError(f"only {len(rows)} distinct rows of {n}: widen the value pools")


def _split(make: Make, rng: random.Random) -> tuple[list[Row], list[Row]]:
    """(train, eval), all rows distinct; eval rows alternate between seen and held-out values."""
    taken: set[str] = set()
    return _rows(make, rng, N_TRAIN, taken, False), _rows(make, rng, N_EVAL, taken, None)


def build(seed: int = SEED) -> dict[str, list[Row]]:
    """Every file's rows by name (without its suffix, `CONTAINERS`); one random stream per
    layout, so that changing one layout leaves the others' files alone."""

    def stream(offset: int) -> random.Random:
        return random.Random(seed * 100 + offset)

    files: dict[str, list[Row]] = {}
    pairs = {
        "messages": lambda rng, i, held: _messages_row(rng, held),
        "sharegpt": lambda rng, i, held: _sharegpt_row(rng, held),
        "alpaca": _alpaca_row,
        "prompt_response": lambda rng, i, held: _order_row(rng, held),
    }
    for offset, (layout, make) in enumerate(pairs.items()):
        files[f"{layout}_train"], files[f"{layout}_eval"] = _split(make, stream(offset))
    rng, taken = stream(len(pairs)), set()  # eval as trl's turn lists, train as strings
    files["prompt_completion_train"] = _rows(
        lambda rng, i, held: _slug_row(rng, held, turns=False), rng, N_TRAIN, taken, False
    )
    strings = {
        json.dumps(_as_turns(row), sort_keys=True) for row in files["prompt_completion_train"]
    }
    files["prompt_completion_eval"] = _rows(
        lambda rng, i, held: _slug_row(rng, held, turns=True), rng, N_EVAL, strings, None
    )
    files["corpus_train"], files["corpus_eval"] = _corpus(stream(len(pairs) + 1))
    return files


CONTAINERS = {
    "messages_train": ".jsonl",
    "messages_eval": ".jsonl",
    "sharegpt_train": ".json",
    "sharegpt_eval": ".json",
    "alpaca_train": ".jsonl",
    "alpaca_eval": ".jsonl",
    "prompt_completion_train": ".parquet",
    "prompt_completion_eval": ".jsonl",
    "prompt_response_train": ".csv",
    "prompt_response_eval": ".csv",
    "corpus_train": ".jsonl",
    "corpus_eval": ".jsonl",
}
"""Each file's container, by the suffix it is written with."""
SAVED_DATASETS = {"corpus_eval": "corpus_eval_dataset"}
"""Files also written with `datasets.Dataset.save_to_disk`: rows -> folder name."""


def _jsonl(rows: list[Row]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _json_array(rows: list[Row]) -> str:
    return "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n"


def _csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _parquet(rows: list[Row], path: Path) -> None:
    import pyarrow as pa  # installed with `datasets`
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, compression="zstd")


def _saved_dataset(rows: list[Row], folder: Path) -> None:
    import datasets
    import pyarrow as pa

    datasets.disable_progress_bars()
    # A fixed fingerprint: `from_list` draws a random one, and state.json would differ per run.
    table = pa.Table.from_pylist(rows)
    datasets.Dataset(table, fingerprint=f"advisor-{folder.name}").save_to_disk(str(folder))


TEXT_WRITERS = {".jsonl": _jsonl, ".json": _json_array, ".csv": _csv}


def write(out_dir: Path = HERE, seed: int = SEED) -> list[Path]:
    """Write every file into `out_dir`; return the paths written (files and folders)."""
    written = []
    for name, rows in build(seed).items():
        path = out_dir / f"{name}{CONTAINERS[name]}"
        if path.suffix == ".parquet":
            _parquet(rows, path)
        else:
            path.write_text(TEXT_WRITERS[path.suffix](rows), encoding="utf-8", newline="\n")
        written.append(path)
        if name in SAVED_DATASETS:
            folder = out_dir / SAVED_DATASETS[name]
            _saved_dataset(rows, folder)
            written.append(folder)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
