"""One base model, one adapter per task: write a bundle, load it once, switch by task name.

A multi-task study tunes one adapter per task on the same base model (`advisor.study.tasks`).
Serving them as separate exports would load the base once per task; a bundle loads it once and
keeps every task's adapter beside it through peft's multi-adapter API: the first adapter comes
with `PeftModel.from_pretrained(..., adapter_name=task)`, the others with `load_adapter(path,
adapter_name=task)`, and `set_adapter(task)` picks the one that answers.

Layout of a bundle directory::

    bundle.json          format, study, base model (a local directory that loads offline: for
                         a GGUF preset the converted safetensors cache), tasks and their facts
    adapters/<task>/     one peft adapter directory per task (config names the base directory)
    tokenizer files      the base model's tokenizer
    README.md            what it is and how to use it
    .advisor-export      the marker that lets `advisor export --force` replace the directory

Like an export, the directory is built beside its destination and renamed into place
(`advisor.export.output`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.errors import AdvisorInputError
from runners.config import ModelRef
from runners.evaluate import generate
from runners.models import load_model_and_tokenizer

from .output import building, check_out_dir, copy_adapter, out_path

BUNDLE_FILE = "bundle.json"
FORMAT = "advisor-bundle/1"
ADAPTERS = "adapters"


@dataclass
class BundleResult:
    """Where `write_bundle` wrote, and what."""

    out_dir: Path
    study: str
    base_model_dir: str
    tasks: list[str]
    files: list[str]
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "study": self.study,
            "base_model_dir": self.base_model_dir,
            "tasks": self.tasks,
            "files": self.files,
            "facts": self.facts,
        }


@dataclass
class Bundle:
    """A base model with every task's adapter loaded; `generate` answers as one task."""

    study: str
    model: Any
    """A `peft.PeftModel` holding one adapter per task, named by the task."""
    tokenizer: Any
    tasks: dict[str, dict[str, Any]]
    """Per task: `system_prompt` and the trial's facts (when loaded from a bundle)."""

    def generate(
        self, task: str, prompts: list[str], *, max_new_tokens: int = 64, batch_size: int = 8
    ) -> list[str]:
        """Greedy answers of task `task`'s adapter: its system prompt, the chat template."""
        if task not in self.tasks:
            raise AdvisorInputError(
                f"unknown task {task!r}", where="task", fix=f"use one of: {', '.join(self.tasks)}"
            )
        self.model.set_adapter(task, inference_mode=True)
        system = self.tasks[task].get("system_prompt")
        head = [{"role": "system", "content": system}] if system else []
        chats = [[*head, {"role": "user", "content": prompt}] for prompt in prompts]
        return generate(
            self.model, self.tokenizer, chats, max_new_tokens=max_new_tokens, batch_size=batch_size
        )


def write_bundle(
    out_dir: str | Path,
    base: str | Path,
    adapters: Mapping[str, Path],
    facts: Mapping[str, Mapping[str, Any]],
    *,
    study: str,
    dtype: str = "float32",
    force: bool = False,
) -> BundleResult:
    """Write `adapters` ({task: peft adapter dir}) over base model directory `base` to `out_dir`.

    `facts` holds each task's trial facts (`advisor.export.card.TrialFacts` as a dict; its
    `system_prompt` is what the task is prompted with); `dtype` the precision to load in.
    """
    from transformers import AutoTokenizer

    out = out_path(out_dir)
    check_out_dir(out, force)
    base_dir = Path(base).resolve()
    with building(out, kind="bundle", study=study) as build:
        for task, adapter in adapters.items():
            copy_adapter(Path(adapter), base_dir, build / ADAPTERS / task)
        AutoTokenizer.from_pretrained(base_dir, local_files_only=True).save_pretrained(build)
        manifest = {
            "format": FORMAT,
            "study": study,
            "base_model_dir": str(base_dir),
            "dtype": dtype,
            "tasks": {
                task: {
                    "adapter": f"{ADAPTERS}/{task}",
                    "system_prompt": facts.get(task, {}).get("system_prompt"),
                    "facts": dict(facts.get(task, {})),
                }
                for task in adapters
            },
        }
        (build / BUNDLE_FILE).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        (build / "README.md").write_text(bundle_card(manifest))
        files = sorted(str(p.relative_to(build)) for p in build.rglob("*") if p.is_file())
    return BundleResult(
        out_dir=out,
        study=study,
        base_model_dir=str(base_dir),
        tasks=list(adapters),
        files=files,
        facts={task: dict(value) for task, value in facts.items()},
    )


def load_bundle(directory: str | Path, *, device: str | None = None) -> Bundle:
    """Load a bundle: the base model once, then every task's adapter under the task's name."""
    root = Path(directory).expanduser()
    manifest_path = root / BUNDLE_FILE
    if not manifest_path.is_file():
        raise AdvisorInputError(
            f"{root} is not an advisor bundle (no {BUNDLE_FILE})",
            where="BUNDLE_DIR",
            fix="give a directory written by `advisor export STUDY --bundle OUT_DIR`",
        )
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise AdvisorInputError(
            f"{manifest_path} has format {manifest.get('format')!r}, this advisor reads {FORMAT}",
            where="BUNDLE_DIR",
            fix="export the bundle again with this version of advisor",
        )
    tasks = manifest["tasks"]
    adapters = {task: root / info["adapter"] for task, info in tasks.items()}
    return open_adapters(
        manifest["base_model_dir"],
        adapters,
        tasks,
        study=manifest["study"],
        dtype=manifest.get("dtype", "float32"),
        device=device,
    )


def open_adapters(
    base_model_dir: str | Path,
    adapters: Mapping[str, Path],
    tasks: Mapping[str, Mapping[str, Any]],
    *,
    study: str,
    dtype: str = "float32",
    device: str | None = None,
) -> Bundle:
    """The base model in `base_model_dir` with each of `adapters` loaded under its task name."""
    import torch
    from peft import PeftModel

    if not adapters:
        raise AdvisorInputError("no task adapters to load", where="tasks", fix="tune a task first")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    base, tokenizer = load_model_and_tokenizer(
        ModelRef(source=str(base_model_dir)), device=device, dtype=getattr(torch, dtype)
    )
    (first, first_dir), *others = adapters.items()
    model = PeftModel.from_pretrained(base, str(first_dir), adapter_name=first)
    for task, adapter in others:
        model.load_adapter(str(adapter), adapter_name=task)
    model.eval()
    return Bundle(
        study=study,
        model=model,
        tokenizer=tokenizer,
        tasks={task: dict(tasks.get(task, {})) for task in adapters},
    )


def bundle_card(manifest: Mapping[str, Any]) -> str:
    """README.md of a bundle: what it holds and the few lines of Python that use it."""
    tasks = manifest["tasks"]
    first = next(iter(tasks))
    rows = []
    for task, info in tasks.items():
        facts = info.get("facts") or {}
        score = (facts.get("results") or {}).get("score", "-")
        rows.append(
            f"| {task} | `{info['adapter']}` | {facts.get('study', '-')} | "
            f"{facts.get('trial', '-')} | {facts.get('metric', '-')} {score} |"
        )
    return "\n".join(
        [
            "---",
            f"base_model: {manifest['base_model_dir']}",
            "library_name: peft",
            f"tags: [advisor, multi-adapter, 'study:{manifest['study']}']",
            "---",
            "",
            f"# {manifest['study']}: one adapter per task",
            "",
            "One base model and one peft adapter per task, each the best trial of the task's "
            "own study. Load the base once and switch adapters by task name.",
            "",
            "| task | adapter | study | trial | score |",
            "| --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"Base model directory: `{manifest['base_model_dir']}` (loads offline).",
            "",
            "## Use it",
            "",
            "```python",
            "from advisor.export.bundle import load_bundle",
            "bundle = load_bundle(THIS_DIR)  # the base once, every task's adapter",
            f'print(bundle.generate("{first}", ["your request"])[0])  # the task\'s system prompt',
            "```",
            "",
            "Or with peft alone:",
            "",
            "```python",
            "from peft import PeftModel",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "base = AutoModelForCausalLM.from_pretrained(BASE_MODEL_DIR)",
            f'model = PeftModel.from_pretrained(base, THIS_DIR + "/{tasks[first]["adapter"]}", '
            f'adapter_name="{first}")',
            *[
                f'model.load_adapter(THIS_DIR + "/{info["adapter"]}", adapter_name="{task}")'
                for task, info in tasks.items()
                if task != first
            ],
            f'model.set_adapter("{first}")  # then generate as usual',
            "tokenizer = AutoTokenizer.from_pretrained(THIS_DIR)",
            "```",
            "",
            "`bundle.json` lists each task's system prompt and trial facts (parameters, score, "
            "MLflow run).",
            "",
        ]
    )
