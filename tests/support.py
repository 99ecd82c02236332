"""Builders shared by tests (not collected: no test_ prefix): tiny study files and a runner
that crashes on purpose."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def write_tiny_study(tmp_path: Path, model: Path, name: str, **overrides) -> Path:
    """A study file on the tiny Llama with toy data; `overrides` merge into its sections."""
    import yaml

    from runners.testing import toy_dataset, write_jsonl

    write_jsonl(tmp_path / "train.jsonl", toy_dataset(24, seed=1))
    write_jsonl(tmp_path / "eval.jsonl", toy_dataset(4, seed=2))
    spec = {
        "name": name,
        "seed": 5,
        "model": {"source": str(model)},
        "data": {"train": "train.jsonl", "eval": "eval.jsonl"},
        "metric": "json_match",
        "method": "lora",
        "search": {
            "r": [2, 4],
            "alpha_ratio": 2,
            "target_modules": ["attention_qv", "all_linear"],
            "learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
        },
        "train": {"max_steps": 4, "batch_size": 2, "max_seq_length": 64, "eval_steps": 2},
        "eval": {"max_new_tokens": 6, "batch_size": 4, "samples_to_log": 2},
        "optuna": {"sampler": "random", "pruner": "none", "n_trials": 2},
        "cost": {"price_per_hour": 3.6},
    }
    for key, value in overrides.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def write_task_study(
    tmp_path: Path, model: Path, name: str, answers: dict[str, str], **overrides
) -> Path:
    """A multi-task study (`tasks:`) on the tiny Llama: task T always answers `answers[T]`
    (toy prompts, a constant response), so each task's adapter is easy to tell apart."""
    import yaml

    from runners.testing import toy_dataset, write_jsonl

    path = write_tiny_study(tmp_path, model, name, **overrides)
    spec = yaml.safe_load(path.read_text())
    spec.pop("data")
    spec["tasks"] = []
    for task, answer in answers.items():
        for split, n, seed in (("train", 24, 1), ("eval", 4, 2)):
            rows = [{"prompt": r["prompt"], "response": answer} for r in toy_dataset(n, seed=seed)]
            write_jsonl(tmp_path / f"{task}_{split}.jsonl", rows)
        data = {"train": f"{task}_train.jsonl", "eval": f"{task}_eval.jsonl"}
        spec["tasks"].append({"name": task, "data": data})
    path.write_text(yaml.safe_dump(spec))
    return path


def crashing_python(tmp_path: Path, trial: int) -> str:
    """A `python` whose runner process dies for one trial, like a segfault or an OOM kill."""
    import stat
    import sys

    script = tmp_path / "python-crashing"
    script.write_text(
        "#!/bin/sh\n"
        f'if grep -qE \'"trial_number": {trial},?$\' "$3"; then echo boom >&2; exit 9; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def synthetic_report(rows, front=None):
    """A `Report` over hand-made rows (maximising exact_match, baseline 0.2), best picks filled,
    for tests of the decision and rendering logic without a recorded study."""
    from advisor.review.build import _best_picks
    from advisor.review.report import Importances, ParetoFront, Report

    report = Report(
        study="s",
        method="lora",
        metric="exact_match",
        objectives=["score"],
        directions=["maximize"],
        baseline_score=0.2,
        rows=rows,
        fixed={},
        best=[],
        pareto=ParetoFront("exact_match", "wall_seconds", front or [], "computed"),
        importances=Importances(unavailable="n/a"),
        decision="",
    )
    report.best = _best_picks(rows, report.objectives, report.directions)
    return report


def processes_touching(fragment: str) -> list[int]:
    """Live processes whose command line, or any open file, names a path containing `fragment`.

    A trial forked by the fork server keeps the server's command line (`-m runners.forkserver`),
    but its stderr is the trial's log in the trial's work directory, so open files find it too.
    """
    import os

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
                continue
            texts = [(entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")]
            texts += [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if any(fragment in text for text in texts):
            found.append(int(entry.name))
    return found


# -- a data file whose every problem is known: the scan's tests --------------------------
LONG = "Summarise this text: " + "The quick brown fox jumps over the lazy dog. " * 12

DIRTY = [
    {"prompt": "List three rivers in Europe.", "response": "The Danube, the Rhine and the Elbe."},
    {"prompt": "Name the capital of France.", "response": "Paris is the capital of France."},
    {
        "prompt": "Explain why the sky is blue during the day.",
        "response": "Sunlight scatters off air molecules, and blue light scatters the most.",
    },
    {
        "prompt": "Summarise the causes of the First World War in two sentences.",
        "response": "Alliances, militarism and nationalism made Europe tense. Sarajevo set it off.",
    },
    {
        "prompt": "Compare Python and Java for writing web services.",
        "response": "Python is quicker to write; Java is faster at run time and more verbose.",
    },
    # 6, 7: exact copies of row 1 (the second with extra whitespace)
    {"prompt": "List three rivers in Europe.", "response": "The Danube, the Rhine and the Elbe."},
    {"prompt": "List  three rivers in Europe. ", "response": "The Danube, the Rhine and the Elbe."},
    # 8: a near copy of row 3
    {
        "prompt": "Explain why the sky is blue during the day!",
        "response": "Sunlight scatters off air molecules, and blue light scatters the most.",
    },
    # 9-11: German, Chinese, French
    {
        "prompt": "Erkläre bitte, warum der Himmel am Tag blau ist und am Abend rot wird.",
        "response": "Das Sonnenlicht wird an den Molekülen der Luft gestreut.",
    },
    {
        "prompt": "请解释一下为什么白天的天空是蓝色的。",
        "response": "阳光被空气分子散射，蓝光散射得最多。",
    },
    {
        "prompt": "Explique pourquoi le ciel est bleu pendant la journée.",
        "response": "La lumière du soleil est diffusée par les molécules de l'air.",
    },
    # 12-17: personal data (15: resident IDs with a wrong check character / impossible date;
    # 16: one Luhn-valid and one Luhn-invalid card number; 17: two addresses and a non-address)
    {
        "prompt": "Write a short reply to jane.doe@example.com confirming the meeting on Friday.",
        "response": "Dear Jane, I confirm our meeting on Friday. Best regards",
    },
    {
        "prompt": "Call the customer back on 13812345678 and text +86 139-1234-5678 as well.",
        "response": "I called the customer and sent the text message.",
    },
    {
        "prompt": "Check the resident ID 11010519491231002X against the register.",
        "response": "The ID 44030419900307123X is also on file.",
    },
    {
        "prompt": "Check the resident ID 110105194912310021 against the register.",
        "response": "The number 110105194902310018 has an impossible birth date.",
    },
    {
        "prompt": "Use the card 4111 1111 1111 1111 to pay for the order.",
        "response": "The card 4111 1111 1111 1112 was declined.",
    },
    {
        "prompt": "Why does the server 192.168.1.20 not answer pings from 2001:db8::1?",
        "response": "Version 999.1.1.1 is not an address; check the firewall.",
    },
    # 18-20: empty prompt, whitespace response, missing response
    {"prompt": "", "response": "An answer to nothing."},
    {"prompt": "Describe a cat.", "response": "   \n"},
    {"prompt": "Give an example of a prime number."},
    # 21: long enough to be truncated
    {"prompt": LONG, "response": "A fox jumps over a dog, again and again."},
]
FULL_VALUES = (
    "jane.doe@example.com",
    "13812345678",
    "139-1234-5678",
    "11010519491231002X",
    "44030419900307123X",
    "4111 1111 1111 1111",
    "192.168.1.20",
    "2001:db8::1",
)


def write_dirty(folder: Path) -> Path:
    """The crafted file of `advisor scan`'s tests, whose every finding is known (`DIRTY`)."""
    from runners.testing import write_jsonl

    return write_jsonl(folder / "dirty.jsonl", DIRTY)


def load_script(path: Path) -> ModuleType:
    """A data generator script (studies/data/make_*.py) imported from its file: the scripts are
    run by hand and by `make`, not installed, so the tests load them by path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
