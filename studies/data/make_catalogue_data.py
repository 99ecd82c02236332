"""Generate the knowledge demo: a made-up product catalogue, and questions about it.

Run `python studies/data/make_catalogue_data.py` to rewrite catalogue/*.md,
catalogue_train.jsonl and catalogue_eval.jsonl next to this script; the output is byte-for-byte
deterministic (seeded `random.Random`, no network), and a test checks that the committed files
match.

Why this task, beside the format demo (make_demo_data.py): it is the opposite case. The answers
are facts no pre-trained model can know (invented brands, SKUs, prices, colours, stock per
warehouse), written once in the catalogue (`data.knowledge`), so retrieval can find them and
weights cannot guess them. The eval set asks only about products held out of training: no
training question or answer names them, so a LoRA adapter cannot have memorised their facts;
it can learn the answer format from the other products' questions (and `rag_lora` learns to read
the passages for them). A method that scores well here found the fact in the catalogue.

Every sentence of the catalogue names its product, so a passage cut anywhere (`chunk_size`)
still says whose price or stock it holds, and BM25 finds it by the product's invented brand.

Each record: prompt (the question), response (the value alone: "$34.50", "17", "teal",
"VD-4821"), product, kind (price, sku, colour, stock) and held_out (bool: an eval-only product).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 20260517
HERE = Path(__file__).resolve().parent
CATALOGUE = "catalogue"
PER_TYPE = 8
"""Products per product type: 8 types x 8 = 64 products."""
HELD_OUT_PER_TYPE = 2
"""Products per type asked about only in the eval set: 16 of 64."""
N_EVAL = 40

CATEGORIES: dict[str, dict[str, tuple[str, int, int]]] = {
    "lighting": {"desk lamp": ("desk lamps", 18, 95), "floor lamp": ("floor lamps", 40, 220)},
    "kitchen": {"kettle": ("kettles", 15, 120), "toaster": ("toasters", 20, 140)},
    "travel": {"backpack": ("backpacks", 25, 180), "travel mug": ("travel mugs", 8, 40)},
    "office": {"office chair": ("office chairs", 60, 450), "notebook": ("notebooks", 3, 25)},
}
"""file -> product type -> (plural, lowest and highest price in dollars)."""
ONSETS = ["V", "K", "Br", "T", "M", "Gr", "L", "S", "D", "Fl", "R", "N", "Qu", "Z", "P", "H"]
VOWELS = ["a", "e", "i", "o", "u", "ae", "y"]
CODAS = ["rnel", "rrin", "ssa", "ndor", "lvik", "mbet", "tto", "rrax", "nix", "lden", "vro"]
COLOURS = ["teal", "amber", "slate grey", "olive", "crimson", "ivory", "navy", "copper", "plum"]
WAREHOUSES = ["Graz", "Linz", "Brno", "Verona", "Bremen", "Basel"]
CENTS = [0, 25, 49, 50, 75, 90, 95, 99]

QUESTIONS: dict[str, list[str]] = {
    "price": [
        "How much does the {name} cost?",
        "What is the price of the {name}?",
        "What does the {name} sell for?",
    ],
    "sku": ["What is the SKU of the {name}?", "Which SKU does the {name} have?"],
    "colour": ["What colour is the {name}?", "Which colour does the {name} come in?"],
    "stock": [
        "How many {brand} {plural} are in stock in {warehouse}?",
        "How many {brand} {plural} does the {warehouse} warehouse hold?",
    ],
}
KINDS = list(QUESTIONS)


class Product:
    """One catalogue entry: its invented brand, type and facts."""

    def __init__(
        self,
        rng: random.Random,
        brand: str,
        kind: str,
        plural: str,
        prices: tuple[int, int],
        sku: str,
    ) -> None:
        self.brand, self.type, self.plural, self.sku = brand, kind, plural, sku
        self.name = f"{brand} {kind}"
        self.price = f"${rng.randint(*prices)}.{rng.choice(CENTS):02d}"
        self.colour = rng.choice(COLOURS)
        self.stock = {w: rng.randint(1, 60) for w in sorted(rng.sample(WAREHOUSES, 2))}

    def entry(self) -> str:
        """The product's paragraph of the catalogue: every sentence names the product."""
        (first, n1), (second, n2) = self.stock.items()
        return (
            f"## {self.name}\n\n"
            f"The {self.name} has SKU {self.sku} and costs {self.price}. "
            f"The {self.name} comes in {self.colour}. "
            f"The {first} warehouse holds {n1} {self.brand} {self.plural}; "
            f"the {second} warehouse holds {n2} {self.brand} {self.plural}.\n"
        )

    def questions(self, rng: random.Random, held_out: bool) -> list[dict[str, object]]:
        """One question per fact (the price, SKU, colour and both warehouses' stock)."""
        answers = [("price", self.price, None), ("sku", self.sku, None)]
        answers += [("colour", self.colour, None)]
        answers += [("stock", str(n), w) for w, n in self.stock.items()]
        return [
            {
                "prompt": rng.choice(QUESTIONS[kind]).format(
                    name=self.name, brand=self.brand, plural=self.plural, warehouse=warehouse
                ),
                "response": answer,
                "product": self.name,
                "kind": kind,
                "held_out": held_out,
            }
            for kind, answer, warehouse in answers
        ]


def _brands(rng: random.Random, count: int) -> list[str]:
    """`count` distinct invented brand names (onset + vowel + coda: Varnel, Quorrin, ...)."""
    names = sorted({o + v + c for o in ONSETS for v in VOWELS for c in CODAS})
    return rng.sample(names, count)


def _products(rng: random.Random) -> dict[str, list[Product]]:
    types = [(f, t, p) for f, kinds in CATEGORIES.items() for t, p in kinds.items()]
    brands = iter(_brands(rng, PER_TYPE * len(types)))
    skus: set[str] = set()
    catalogue: dict[str, list[Product]] = {file: [] for file in CATEGORIES}
    for file, kind, (plural, *prices) in types:
        for _ in range(PER_TYPE):
            brand = next(brands)
            sku = ""
            while not sku or sku in skus:
                sku = f"{brand[0]}{kind[0]}-{rng.randint(1000, 9999)}".upper()
            skus.add(sku)
            catalogue[file].append(Product(rng, brand, kind, plural, (prices[0], prices[1]), sku))
    return catalogue


def build(
    seed: int = SEED,
) -> tuple[dict[str, str], list[dict[str, object]], list[dict[str, object]]]:
    """(catalogue files by name, train records, eval records).

    Per type, the last `HELD_OUT_PER_TYPE` products are held out: the eval set asks about them
    only, the training set never names them."""
    rng = random.Random(seed)
    catalogue = _products(rng)
    train: list[dict[str, object]] = []
    held: list[dict[str, object]] = []
    for products in catalogue.values():
        for n, product in enumerate(products):
            held_out = n % PER_TYPE >= PER_TYPE - HELD_OUT_PER_TYPE
            (held if held_out else train).extend(product.questions(rng, held_out))
    rng.shuffle(train)
    evaluation = rng.sample(held, N_EVAL)
    files = {
        f"{file}.md": f"# {file.capitalize()} catalogue\n\n"
        + "\n".join(p.entry() for p in products)
        for file, products in catalogue.items()
    }
    return files, train, evaluation


def write(out_dir: Path = HERE, seed: int = SEED) -> list[Path]:
    """Write catalogue/*.md, catalogue_train.jsonl and catalogue_eval.jsonl into `out_dir`."""
    files, train, evaluation = build(seed)
    (out_dir / CATALOGUE).mkdir(exist_ok=True)
    written = []
    for name, text in files.items():
        path = out_dir / CATALOGUE / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    for name, records in (("catalogue_train.jsonl", train), ("catalogue_eval.jsonl", evaluation)):
        path = out_dir / name
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
