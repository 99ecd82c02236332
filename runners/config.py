"""The contract between orchestration (`advisor/`) and execution (`runners/`).

A trial is described by a fully resolved `TrialConfig` (nothing left to sample or default) and
answered by a `TrialResult`. Both are plain dataclasses that round-trip through JSON, so a trial
can run in a child process, under torchrun or on another machine. This module imports nothing
heavy: the orchestrator builds configs without loading torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

TrialState = Literal["complete", "pruned", "failed"]


@dataclass(frozen=True)
class ModelRef:
    """Which base model to load. Never a hub id: nothing is downloaded at run time."""

    source: str
    """A preset name (`smollm2-135m`), a local HF model directory, or a local `.gguf` file."""
    trust_remote_code: bool = False
    gguf_file: str | None = None
    """File name inside `source` when `source` is a directory holding GGUF files."""
    chat_template: str = "auto"
    """How chat rows become text (`runners.templates`): `auto` (the tokenizer's own template,
    `plain` when it has none), `model` (the tokenizer's own, required), `chatml`, `plain`, or
    the path of a Jinja template file."""


@dataclass(frozen=True)
class DataConfig:
    """Local train/eval files and how their fields map onto prompt and response."""

    train_path: str
    eval_path: str
    prompt_field: str = "prompt"
    response_field: str = "response"
    system_prompt: str | None = None
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    replay_path: str | None = None
    """General instruction data mixed into training against forgetting; None: no replay."""
    replay_fraction: float = 0.0
    """Share of the final training mixture drawn from `replay_path`, in [0, 1): see
    `runners.data.replay_count`."""
    replay_prompt_field: str = "prompt"
    replay_response_field: str = "response"
    format: str | None = None
    """A layout of `runners.layouts.LAYOUTS` (messages, sharegpt, alpaca, prompt_completion,
    prompt_response, text); None: detected from the rows."""
    packing: bool = False
    """Raw text only: concatenate documents and cut them into `train.max_seq_length` blocks."""
    knowledge_path: str | None = None
    """Documents a retrieval method (`rag`, `rag_lora`) indexes: a .txt, .md, .jsonl or .parquet
    file, or a folder of them (`runners.knowledge`); None: no retrieval."""


@dataclass(frozen=True)
class MethodConfig:
    """A method from the registry in `runners.methods` and its (already sampled) settings."""

    name: str
    """Registry key: lora, dora, qlora, full, ..."""
    r: int | None = None
    lora_alpha: float | None = None
    target_modules: tuple[str, ...] | None = None
    """Explicit module names; presets are resolved by the orchestrator before a trial starts."""
    lora_dropout: float = 0.0
    use_rslora: bool = False
    """rsLoRA: the update scaled by lora_alpha/sqrt(r) instead of lora_alpha/r (peft's
    `use_rslora`). Configs written before it existed load as False, the scaling they trained."""
    top_k: int | None = None
    """Retrieval methods: passages put into each prompt (`runners.retrieval`)."""
    chunk_size: int | None = None
    """Retrieval methods: words per indexed passage (`runners.knowledge.chunk`)."""


@dataclass(frozen=True)
class TrainConfig:
    """The training budget and optimiser settings of one trial."""

    max_steps: int
    learning_rate: float
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_seq_length: int = 128
    eval_steps: int = 10
    """Evaluate the eval loss every this many steps and report it (for pruning)."""
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    gradient_checkpointing: bool = False
    optimizer: str = "adamw_torch"


@dataclass(frozen=True)
class EvalConfig:
    """How the task metric is measured on the held-out set."""

    metric: str = "exact_match"
    """exact_match | json_match | rouge_l | accuracy | eval_loss | perplexity (raw text)"""
    max_new_tokens: int = 64
    batch_size: int = 32
    """Prompts generated together (length-sorted, `runners.generation`): 32 measured ~2x as fast
    as 8 on CPU for SmolLM2; lower it for a large model on a small GPU."""
    samples_to_log: int = 10
    forgetting: bool = True
    """Also measure how far training moved the model from the base on general ability
    (`runners.forgetting`): perplexity and KL on a text probe, score on an instruction probe."""
    forgetting_text_tokens: int = 2048
    """Tokens of the general-text probe scored (cut into chunks of at most 256)."""
    forgetting_prompts: int = 30
    """Prompts of the general instruction probe answered (at most the probe's size)."""
    forgetting_max_new_tokens: int = 16
    """Generation budget per probe answer: the probe asks for one word or one number."""
    merge_for_generation: bool = True
    """Generate from a copy of the model with its LoRA adapter merged in (`runners.generation`):
    the same answers within float rounding, at several times the speed on CPU."""


@dataclass(frozen=True)
class TrialConfig:
    """Everything one trial needs, fully resolved."""

    study: str
    trial_number: int
    seed: int
    model: ModelRef
    data: DataConfig
    method: MethodConfig
    train: TrainConfig
    eval: EvalConfig
    output_dir: str
    """Where the runner writes the adapter, generations and its result."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    baseline: bool = False
    """Evaluate the untuned base model only (no method applied, no training)."""
    processes: int = 1
    """Ranks the trial runs on (DDP under torchrun); each trains on `train.batch_size` examples
    per step, so the effective batch is processes x batch_size."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrialConfig:
        method = dict(raw["method"])
        if method.get("target_modules") is not None:
            method["target_modules"] = tuple(method["target_modules"])
        return cls(
            **{k: v for k, v in raw.items() if k not in _NESTED},
            model=ModelRef(**raw["model"]),
            data=DataConfig(**raw["data"]),
            method=MethodConfig(**method),
            train=TrainConfig(**raw["train"]),
            eval=EvalConfig(**raw["eval"]),
        )

    @classmethod
    def from_json(cls, text: str) -> TrialConfig:
        return cls.from_dict(json.loads(text))


_NESTED = ("model", "data", "method", "train", "eval")


@dataclass
class TrialResult:
    """What a trial measured. Costs and accuracy side by side; JSON-serialisable."""

    state: TrialState
    metric: str
    score: float | None = None
    """Task metric on the eval set, higher is better (for `eval_loss` the study minimises)."""
    eval_loss: float | None = None
    train_loss: float | None = None
    eval_curve: list[tuple[int, float]] = field(default_factory=list)
    """(step, eval loss) at every evaluation."""
    steps: int = 0
    wall_seconds: float = 0.0
    load_seconds: float = 0.0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    eval_loss_seconds: float = 0.0
    """The eval-loss passes run during training (the pruner's curve), outside train_seconds."""
    generation_tokens: int = 0
    """Tokens generated for the eval set, each answer counted up to its stop token."""
    generation_tokens_per_second: float | None = None
    """generation_tokens over the generation's own seconds (`runners.generation`)."""
    generation_merged: bool = False
    """The answers came from a merged copy of the adapter (`eval.merge_for_generation`)."""
    tokens_per_second: float | None = None
    peak_memory_mb: float | None = None
    """Peak CUDA memory allocated on GPU; peak resident set size of the process on CPU."""
    peak_reserved_mb: float | None = None
    """Peak CUDA memory reserved by PyTorch's caching allocator (what the GPU really had to
    hold: allocated plus cached blocks); None on CPU. Results written before it load as None."""
    trainable_params: int = 0
    total_params: int = 0
    adapter_mb: float = 0.0
    device: str = "cpu"
    precision: str = "fp32"
    adapter_dir: str | None = None
    generations_path: str | None = None
    error: str | None = None
    """For failed trials: the exception type and message (the traceback goes to the log)."""
    versions: dict[str, str] = field(default_factory=dict)
    world_size: int = 1
    """Processes the trial trained on (torchrun ranks); the effective batch scales with it.
    tokens_per_second counts all ranks; peak_memory_mb is rank 0's."""
    train_examples: int = 0
    """Task examples in the training set (after `max_train_examples`)."""
    replay_examples: int = 0
    """General instruction examples mixed in (`data.replay`); the mixture holds both."""
    layout: str | None = None
    """The task data's layout (`runners.layouts.LAYOUTS`); None in results written before it."""
    truncated_rows: int = 0
    """Training conversations cut at `train.max_seq_length` (`runners.chat.Truncation`)."""
    truncated_assistant_turns: int = 0
    """Assistant turns of those rows that lost tokens (their answers partly or wholly untrained)."""
    truncated_context_turns: int = 0
    """System and user turns that lost tokens."""
    untrained_rows: int = 0
    """Rows whose every assistant token was cut: left out of training, they teach nothing."""
    truncated_documents: int = 0
    """Raw text documents cut at `train.max_seq_length` (without packing nothing else is)."""
    forgetting_kl: float | None = None
    """Mean per-token KL(base || tuned) on the general-text probe, in nats; 0 for the base."""
    base_ppl: float | None = None
    tuned_ppl: float | None = None
    forgetting_ppl_delta: float | None = None
    """tuned_ppl - base_ppl on the general-text probe: > 0 when general text got less likely."""
    general_score: float | None = None
    """Share of the general instruction probe answered correctly by the trained model."""
    base_general_score: float | None = None
    general_score_delta: float | None = None
    """general_score - base_general_score: < 0 when general ability was lost."""
    forgetting_seconds: float = 0.0
    probes_path: str | None = None
    """JSON in output_dir (`runners.probe_cache.write_record`): the instruction probe's replies
    and scores of the base and of the trained model, and the cache key of the base's view."""
    probes_base_source: Literal["cache", "computed"] | None = None
    """Where the base's view of the forgetting probes came from: "cache" (measured once before,
    by the study's baseline or an earlier trial) or "computed" (by this trial, then cached);
    None when forgetting was not measured."""
    index_seconds: float = 0.0
    """Retrieval methods: reading, chunking and indexing `data.knowledge` (part of the cost)."""
    index_chunks: int = 0
    """Retrieval methods: passages in the index."""

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable_params / self.total_params if self.total_params else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["trainable_percent"] = self.trainable_percent
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrialResult:
        raw = {k: v for k, v in raw.items() if k != "trainable_percent"}
        raw["eval_curve"] = [tuple(p) for p in raw.get("eval_curve", [])]
        return cls(**raw)

    @classmethod
    def read(cls, path: str | Path) -> TrialResult:
        return cls.from_dict(json.loads(Path(path).read_text()))
