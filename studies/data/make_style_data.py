"""Generate the style task: a casual note -> one formal sentence in a fixed pattern.

Run `python studies/data/make_style_data.py` to rewrite style_train.jsonl and style_eval.jsonl
next to this script; the output is byte-for-byte deterministic (seeded `random.Random`, no
network), and a test checks that the committed files match. It is the style/format grid of the
tuner benchmark (studies/bench_grid_style.yaml), beside the demo's extraction and the route
classification, so that no tuning strategy is judged on one task only.

The answer is always `{Name} asks to {action} the {thing} {on|to|for} {Day}[ at {HH:MM}].`, so
copying the pattern is learnt quickly; what separates a good adapter from a weak one (scored by
ROUGE-L, which gives partial credit) is the rewrite of each slot:
- four actions (move, cancel, confirm, book), each with its own preposition and time rule;
- normalisation: day abbreviations -> full day names, "2pm" / "2.30" / "half past two" ->
  "HH:MM", nicknames of things ("dentist thing") -> their formal name, lower-case signatures ->
  capitalised names;
- held out from training: the last two phrasing templates of every action, and a share of the
  names and things, that appear only in the eval set.

Each record: prompt, response, action, template (e.g. "move/2"), held_out (bool).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

SEED = 2468
N_TRAIN = 300
N_EVAL = 48
HERE = Path(__file__).resolve().parent

NAMES = ["Sam", "Ana", "Ben", "Clara", "Dev", "Eli", "Maya", "Noah", "Omar", "Lea", "Ravi", "Zoe"]
EVAL_ONLY_NAMES = {"Ravi", "Zoe", "Lea"}
THINGS = {  # the formal name -> how a casual note calls it
    "dentist appointment": ["dentist thing", "dentist", "teeth appointment"],
    "team meeting": ["team sync", "standup thing", "team catchup"],
    "client call": ["call with the client", "client chat", "client thing"],
    "haircut": ["hair appointment", "trim", "haircut"],
    "project review": ["review", "project check-in", "review thing"],
    "lunch meeting": ["lunch", "lunch catchup", "lunch thing"],
    "car service": ["car thing", "garage visit", "car check"],
    "doctor appointment": ["doc appointment", "doctor", "checkup"],
}
EVAL_ONLY_THINGS = {"car service", "doctor appointment"}
DAYS = {
    "Monday": ["mon", "monday", "Mon"],
    "Tuesday": ["tue", "tues", "tuesday"],
    "Wednesday": ["wed", "weds", "wednesday"],
    "Thursday": ["thu", "thurs", "thursday"],
    "Friday": ["fri", "friday", "Fri"],
}
HOUR_WORDS = ["", "one", "two", "three", "four", "five", "six"]
HOUR_WORDS += ["seven", "eight", "nine", "ten", "eleven", "twelve"]


def _time(rng: random.Random) -> tuple[str, str]:
    """A casual time and its 24-hour form: "2pm", "2.30pm", "half past 2", "14:30"."""
    hour, minute = rng.randint(9, 17), rng.choice([0, 0, 30])
    h12 = hour - 12 if hour > 12 else hour
    half = "pm" if hour >= 12 else "am"
    styles = [f"{hour}:{minute:02d}"]
    if minute == 0:
        styles += [f"{h12}{half}", f"{h12} {half}", f"{HOUR_WORDS[h12]} o'clock"]
    else:
        styles += [f"{h12}.30{half}", f"half past {h12}"]
    return rng.choice(styles), f"{hour:02d}:{minute:02d}"


class Values:
    """The slots of one note, from the train pools or the full (held-out) pools."""

    def __init__(self, rng: random.Random, held_out: bool) -> None:
        self.name = rng.choice([n for n in NAMES if held_out or n not in EVAL_ONLY_NAMES])
        self.sign = self.name.lower() if rng.random() < 0.5 else self.name
        self.thing = rng.choice([t for t in THINGS if held_out or t not in EVAL_ONLY_THINGS])
        self.nick = rng.choice(THINGS[self.thing])
        self.day = rng.choice(list(DAYS))
        self.day_text = rng.choice(DAYS[self.day])
        self.time_text, self.time = _time(rng)


Template = Callable[[Values], str]
# Per action: the formal sentence, then the casual templates; the last two are held out.
ACTIONS: dict[str, tuple[Template, list[Template]]] = {
    "move": (
        lambda v: f"{v.name} asks to move the {v.thing} to {v.day} at {v.time}.",
        [
            lambda v: f"hey can we push the {v.nick} to {v.day_text} {v.time_text}? - {v.sign}",
            lambda v: f"{v.sign} here, {v.nick} better on {v.day_text} at {v.time_text} pls",
            lambda v: f"move my {v.nick} to {v.day_text}, {v.time_text} works. thx {v.sign}",
            lambda v: (
                f"cant do the usual time for the {v.nick}, {v.day_text} {v.time_text}? {v.sign}"
            ),
            lambda v: f"could u shift the {v.nick} to {v.day_text} around {v.time_text}. {v.sign}",
            lambda v: f"{v.day_text} {v.time_text} for the {v.nick} instead? cheers, {v.sign}",
        ],
    ),
    "cancel": (
        lambda v: f"{v.name} asks to cancel the {v.thing} on {v.day}.",
        [
            lambda v: f"hey, cant make the {v.nick} on {v.day_text}, pls cancel. - {v.sign}",
            lambda v: f"{v.sign} here, drop the {v.nick} {v.day_text}, sorry",
            lambda v: f"cancel {v.day_text}'s {v.nick} pls, {v.sign}",
            lambda v: f"no {v.nick} for me on {v.day_text} after all. {v.sign}",
            lambda v: f"gotta bail on the {v.nick} {v.day_text}, can u cancel? {v.sign}",
            lambda v: f"{v.day_text} {v.nick} is off, please scrap it - {v.sign}",
        ],
    ),
    "confirm": (
        lambda v: f"{v.name} asks to confirm the {v.thing} on {v.day} at {v.time}.",
        [
            lambda v: f"still on for the {v.nick} {v.day_text} {v.time_text}? - {v.sign}",
            lambda v: f"{v.sign} here, just checking the {v.nick} is {v.day_text} at {v.time_text}",
            lambda v: f"pls confirm {v.nick}, {v.day_text} {v.time_text}. ta {v.sign}",
            lambda v: f"{v.nick} {v.day_text} {v.time_text} still good yeah? {v.sign}",
            lambda v: f"can u double check my {v.nick} on {v.day_text}, {v.time_text}? {v.sign}",
            lambda v: f"we're set for the {v.nick} {v.day_text} at {v.time_text} right? {v.sign}",
        ],
    ),
    "book": (
        lambda v: f"{v.name} asks to book the {v.thing} for {v.day} at {v.time}.",
        [
            lambda v: f"can u get me a {v.nick} {v.day_text} {v.time_text}? {v.sign}",
            lambda v: f"{v.sign} here, need a {v.nick} on {v.day_text} at {v.time_text}",
            lambda v: f"book me in for the {v.nick}, {v.day_text} {v.time_text} pls - {v.sign}",
            lambda v: f"{v.day_text} {v.time_text} free for a {v.nick}? grab it for me. {v.sign}",
            lambda v: f"pls set up a {v.nick} for {v.day_text}, {v.time_text} ideally. {v.sign}",
            lambda v: f"put a {v.nick} in the diary {v.day_text} {v.time_text} thx {v.sign}",
        ],
    ),
}
HELD_OUT_TEMPLATES = 2


def _example(rng: random.Random, action: str, held_out: bool) -> dict[str, object]:
    formal, templates = ACTIONS[action]
    seen = len(templates) - HELD_OUT_TEMPLATES
    index = rng.randrange(seen, len(templates)) if held_out else rng.randrange(seen)
    values = Values(rng, held_out)
    return {
        "prompt": templates[index](values),
        "response": formal(values),
        "action": action,
        "template": f"{action}/{index}",
        "held_out": held_out,
    }


def build(seed: int = SEED) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """(train, eval) records, actions balanced. Every other round of four eval records uses
    held-out templates, names and things (so each action has both kinds)."""
    rng = random.Random(seed)
    actions, n = list(ACTIONS), len(ACTIONS)
    train = [_example(rng, actions[i % n], held_out=False) for i in range(N_TRAIN)]
    evaluation = [_example(rng, actions[i % n], held_out=i // n % 2 == 1) for i in range(N_EVAL)]
    return train, evaluation


def write(out_dir: Path = HERE, seed: int = SEED) -> tuple[Path, Path]:
    """Write style_train.jsonl and style_eval.jsonl into `out_dir`."""
    train, evaluation = build(seed)
    paths = out_dir / "style_train.jsonl", out_dir / "style_eval.jsonl"
    for path, records in zip(paths, (train, evaluation), strict=True):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        path.write_text(text, encoding="utf-8", newline="\n")
    return paths


if __name__ == "__main__":
    for written in write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(written)
