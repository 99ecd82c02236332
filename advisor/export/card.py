"""The model card of an exported trial: Hugging Face front matter, the trial's facts, how to
load it; and `advisor_export.json`, the same facts as data."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class TrialFacts:
    """What an exported adapter is: where it came from and how well it did."""

    study: str
    trial: int
    method: str
    params: dict[str, Any]
    """The parameters Optuna searched for this trial."""
    settings: dict[str, Any]
    """The method's and training's resolved settings (rank, alpha, modules, lr, steps)."""
    metric: str
    base_model: str
    """The trial's `model.source` as declared (a preset name, a directory or a GGUF file)."""
    base_model_dir: str
    """The local Hugging Face directory the adapter is applied to."""
    run_id: str
    tracking_uri: str
    system_prompt: str | None = None
    baseline_score: float | None = None
    gain_over_baseline: float | None = None
    results: dict[str, Any] = field(default_factory=dict)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def model_card(facts: TrialFacts, *, merged: bool) -> str:
    """README.md: Hugging Face model-card front matter, then the trial's facts and how to load."""
    front = {
        "base_model": facts.base_model_dir,
        "library_name": "transformers" if merged else "peft",
        "tags": [
            "advisor",
            facts.method,
            f"study:{facts.study}",
            "merged" if merged else "adapter",
        ],
    }
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {facts.study} — trial {facts.trial} ({facts.method}{', merged' if merged else ''})",
        "",
        f"Tuned by advisor in study `{facts.study}`, trial {facts.trial}, on `{facts.base_model}`.",
        "",
        "## Searched parameters",
        "",
        *[f"- {k}: {_fmt(v)}" for k, v in facts.params.items()],
        "",
        "## Settings",
        "",
        *[f"- {k}: {_fmt(v)}" for k, v in facts.settings.items()],
        "",
        "## Results",
        "",
        f"- task metric ({facts.metric}): {_fmt(facts.results.get('score', '-'))}",
        f"- baseline (untuned base model): {_fmt(facts.baseline_score)}",
        f"- gain over baseline: {_fmt(facts.gain_over_baseline)}",
        *[f"- {k}: {_fmt(v)}" for k, v in facts.results.items() if k != "score"],
        "",
        "## Provenance",
        "",
        f"- MLflow run id: `{facts.run_id}`",
        f"- MLflow tracking URI: `{facts.tracking_uri}`",
        f"- base model directory: `{facts.base_model_dir}`",
        "",
        "## Load it",
        "",
        "```python",
    ]
    if merged:
        lines += [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "model = AutoModelForCausalLM.from_pretrained(THIS_DIR)",
        ]
    else:
        lines += [
            "from peft import AutoPeftModelForCausalLM",
            "from transformers import AutoTokenizer",
            "model = AutoPeftModelForCausalLM.from_pretrained(THIS_DIR)  # base from the card",
        ]
    lines += ["tokenizer = AutoTokenizer.from_pretrained(THIS_DIR)", "```", ""]
    return "\n".join(lines)


def write_card(build: Path, facts: TrialFacts, *, merged: bool) -> None:
    (build / "README.md").write_text(model_card(facts, merged=merged))
    payload = {"merged": merged, **asdict(facts)}
    (build / "advisor_export.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
