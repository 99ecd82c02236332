"""Model shapes: the few numbers the memory estimator needs, from a preset, config.json or GGUF.

Why not load the model? `advisor recommend` must start instantly and must not import torch or
transformers, and a 70B model does not fit here anyway. A decoder-only Llama-family transformer is
fully described, for counting parameters and activations, by hidden size, layers, heads, KV heads,
MLP width, vocabulary and whether the output head shares the embedding matrix.

GGUF metadata is read by `advisor.decide.gguf`, a header parser that reads only the first
kilobytes of the file; a config.json by `runners.models.read_model_config`, within bounds. Either
may hold anything: each dimension must be a whole number in 1 .. 2^31-1 (`MAX_DIMENSION`), so
the estimates built from them stay finite.
"""

from __future__ import annotations

import os
import reprlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.errors import AdvisorInputError
from runners.errors import InputError
from runners.methods.targets import LINEAR_MODULES
from runners.models import read_model_config

from .gguf import read_gguf_header

MAX_DIMENSION = 2**31 - 1
"""Largest size of one dimension (the biggest models have vocabularies of ~256k, widths of ~16k)."""
_DIMENSIONS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "intermediate_size",
    "vocab_size",
)


@dataclass(frozen=True)
class ModelShape:
    """Dimensions of a Llama-style decoder (RMSNorm, SwiGLU MLP, grouped-query attention)."""

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    tie_embeddings: bool
    head_dim: int = 0
    """0 means hidden_size // num_heads (the usual case)."""
    attention_bias: bool = False
    """Qwen2 puts biases on q/k/v; Llama and Mistral have none."""

    def __post_init__(self) -> None:
        for name in (*_DIMENSIONS, "head_dim"):
            value, low = getattr(self, name), 0 if name == "head_dim" else 1
            if type(value) is not int or not low <= value <= MAX_DIMENSION:  # bool is no size
                raise AdvisorInputError(
                    f"model shape {reprlib.repr(self.name)}: `{low} <= {name} <= {MAX_DIMENSION}` "
                    f"must hold, got {reprlib.repr(value)}",
                    fix="check the model's config.json / GGUF metadata",
                    where="--model",
                )
        if self.head_dim == 0:
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_heads)

    @property
    def linear_modules(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of every linear layer of one block, by peft module name."""
        h, q, kv, i = (
            self.hidden_size,
            self.num_heads * self.head_dim,
            self.num_kv_heads * self.head_dim,
            self.intermediate_size,
        )
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    @property
    def linear_params_per_layer(self) -> int:
        """Weights of the seven linear layers of one block (quantised by QLoRA)."""
        return sum(fan_in * fan_out for fan_in, fan_out in self.linear_modules.values())

    @property
    def other_params_per_layer(self) -> int:
        """Two RMSNorm weight vectors, plus q/k/v biases where the family has them."""
        bias = 0
        if self.attention_bias:
            bias = (self.num_heads + 2 * self.num_kv_heads) * self.head_dim
        return 2 * self.hidden_size + bias

    @property
    def embedding_params(self) -> int:
        """Input embedding, plus the output head when it is not tied to it."""
        copies = 1 if self.tie_embeddings else 2
        return copies * self.vocab_size * self.hidden_size

    @property
    def num_params(self) -> int:
        """Total parameters: blocks + embeddings (+ untied head) + the final norm."""
        per_layer = self.linear_params_per_layer + self.other_params_per_layer
        return self.num_layers * per_layer + self.embedding_params + self.hidden_size

    @property
    def num_param_tensors(self) -> int:
        """How many parameter tensors a full fine-tune hands to the optimizer."""
        per_layer = len(LINEAR_MODULES) + 2 + (3 if self.attention_bias else 0)
        return self.num_layers * per_layer + (1 if self.tie_embeddings else 2) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "num_kv_heads": self.num_kv_heads,
            "intermediate_size": self.intermediate_size,
            "vocab_size": self.vocab_size,
            "tie_embeddings": self.tie_embeddings,
            "head_dim": self.head_dim,
            "num_params": self.num_params,
        }


def _preset(name: str, h: int, layers: int, heads: int, kv: int, mlp: int, vocab: int, **kw: Any):
    return ModelShape(name, h, layers, heads, kv, mlp, vocab, **kw)


# Sources: each model's published config.json (Hugging Face hub); LLaMA-1 from the paper's Table 2.
PRESETS: dict[str, ModelShape] = {
    shape.name: shape
    for shape in (
        _preset("smollm2-135m", 576, 30, 9, 3, 1536, 49152, tie_embeddings=True),
        _preset(
            "qwen2.5-0.5b", 896, 24, 14, 2, 4864, 151936, tie_embeddings=True, attention_bias=True
        ),
        _preset("llama-3.2-1b", 2048, 16, 32, 8, 8192, 128256, tie_embeddings=True, head_dim=64),
        _preset("llama-3.2-3b", 3072, 28, 24, 8, 8192, 128256, tie_embeddings=True),
        _preset("llama-2-7b", 4096, 32, 32, 32, 11008, 32000, tie_embeddings=False),
        _preset("mistral-7b", 4096, 32, 32, 8, 14336, 32000, tie_embeddings=False),
        _preset(
            "qwen2.5-7b", 3584, 28, 28, 4, 18944, 152064, tie_embeddings=False, attention_bias=True
        ),
        _preset("llama-3-8b", 4096, 32, 32, 8, 14336, 128256, tie_embeddings=False),
        _preset("llama-2-13b", 5120, 40, 40, 40, 13824, 32000, tie_embeddings=False),
        _preset("llama-30b", 6656, 60, 52, 52, 17920, 32000, tie_embeddings=False),
        _preset("llama-65b", 8192, 80, 64, 64, 22016, 32000, tie_embeddings=False),
        _preset("llama-2-70b", 8192, 80, 64, 8, 28672, 32000, tie_embeddings=False),
        _preset("llama-3-70b", 8192, 80, 64, 8, 28672, 128256, tie_embeddings=False),
    )
}

# Hugging Face config.json key -> our field; the first key present wins (Llama, GPT-2, OPT names).
_HF_KEYS: dict[str, tuple[str, ...]] = {
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "num_heads": ("num_attention_heads", "n_head"),
    "num_kv_heads": ("num_key_value_heads", "num_attention_heads", "n_head"),
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_dim"),
    "vocab_size": ("vocab_size",),
    "head_dim": ("head_dim",),
}
_BIASED_FAMILIES = frozenset({"qwen2"})


def shape_from_hf_config(config: dict[str, Any], name: str) -> ModelShape:
    """A `ModelShape` from the dict of a Hugging Face `config.json`."""
    text_config = config.get("text_config") or {}
    if not isinstance(text_config, dict):
        raise AdvisorInputError(
            f"{name}: config.json's text_config is a {type(text_config).__name__}, not an object",
            fix="point --model at a decoder-only model's config.json, or use a preset",
            where="--model",
        )
    config = {**text_config, **config}
    values: dict[str, Any] = {}
    for ours, keys in _HF_KEYS.items():
        key = next((k for k in keys if config.get(k) is not None), None)
        if key is not None:
            values[ours] = _whole(config[key], f"{name}: config.json's {key}")
    if "intermediate_size" not in values and "hidden_size" in values:
        values["intermediate_size"] = 4 * values["hidden_size"]
    missing = [
        k for k in ("hidden_size", "num_layers", "num_heads", "vocab_size") if k not in values
    ]
    if missing:
        raise AdvisorInputError(
            f"{name}: config.json lacks {', '.join(missing)}",
            fix="point --model at a decoder-only model's config.json, or use a preset",
            where="--model",
        )
    return ModelShape(
        name=name,
        tie_embeddings=bool(config.get("tie_word_embeddings", False)),
        attention_bias=bool(
            config.get("attention_bias", config.get("model_type") in _BIASED_FAMILIES)
        ),
        **values,
    )


def _whole(value: Any, what: str) -> int:
    """`value` as an int: a whole number (12 or 12.0), not a bool, a fraction or a string."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise AdvisorInputError(
            f"{what} must be a whole number, got {reprlib.repr(value)}",
            fix="point --model at an intact config.json, or use a preset",
            where="--model",
        )
    return value


def shape_from_gguf(path: Path) -> ModelShape:
    """A `ModelShape` from GGUF metadata (`{arch}.embedding_length`, `.block_count`, ...)."""
    meta, tensors = read_gguf_header(path)
    arch = meta.get("general.architecture", "llama")

    def key(suffix: str, default: Any = None) -> Any:
        return meta.get(f"{arch}.{suffix}", default)

    hidden, heads = key("embedding_length"), key("attention.head_count")
    vocab = key("vocab_size") or meta.get("tokenizer.ggml.tokens")
    if vocab is None and "token_embd.weight" in tensors:
        vocab = max(tensors["token_embd.weight"])
    if hidden is None or heads is None or key("block_count") is None or vocab is None:
        raise ValueError(f"GGUF metadata lacks the {arch}.* shape keys")
    return ModelShape(
        name=path.stem,
        hidden_size=int(hidden),
        num_layers=int(key("block_count")),
        num_heads=int(heads),
        num_kv_heads=int(key("attention.head_count_kv", heads)),
        intermediate_size=int(key("feed_forward_length", 4 * hidden)),
        vocab_size=int(vocab),
        tie_embeddings="output.weight" not in tensors,
        head_dim=int(key("attention.key_length", 0) or 0),
        attention_bias="blk.0.attn_q.bias" in tensors,
    )


def _from_config_file(path: Path) -> ModelShape:
    name = path.parent.name or path.stem
    try:
        config = read_model_config(path, where="--model")
    except InputError as error:
        raise AdvisorInputError(
            error.message,
            fix=f"point --model at an intact config.json, or use a preset ({', '.join(PRESETS)})",
            where="--model",
        ) from None
    return shape_from_hf_config(config, name)


def _from_directory(path: Path) -> ModelShape:
    if os.path.lexists(path / "config.json"):  # read_model_config names a broken one
        return _from_config_file(path / "config.json")
    ggufs = sorted(path.glob("*.gguf"))
    if ggufs:
        return shape_from_gguf(ggufs[0])
    raise FileNotFoundError(f"{path} holds neither config.json nor a .gguf file")


_LOADERS: tuple[tuple[Callable[[Path], bool], Callable[[Path], ModelShape]], ...] = (
    (os.path.isdir, _from_directory),
    (lambda p: p.suffix == ".gguf", shape_from_gguf),
    (lambda p: p.suffix == ".json", _from_config_file),
)


def resolve_model(spec: str) -> ModelShape:
    """A preset name, a local HF model directory, a `config.json` path or a `.gguf` file."""
    key = spec.strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    path = Path(spec).expanduser()
    presets = ", ".join(PRESETS)
    # os.path, not pathlib: False for a link loop or a name too long, where pathlib raises
    if not os.path.exists(path):
        raise AdvisorInputError(
            f"unknown model {reprlib.repr(spec)}: neither a preset nor an existing path",
            fix=f"use one of the presets ({presets}) or a local model directory, "
            "config.json or .gguf file",
            where="--model",
        )
    if not os.path.isdir(path) and not os.path.isfile(path):  # reading a fifo would block
        raise AdvisorInputError(
            f"{path} is not a regular file or a folder",
            fix=f"use a preset ({presets}), a model directory, config.json or .gguf file",
            where="--model",
        )
    for accepts, load in _LOADERS:
        if accepts(path):
            try:
                return load(path)
            except AdvisorInputError:
                raise
            except (OSError, ValueError, EOFError, KeyError, TypeError, struct.error) as error:
                raise AdvisorInputError(
                    f"cannot read model shape from {path}: {error}",
                    fix=f"point --model at a readable config.json or GGUF file, or use a preset "
                    f"({presets})",
                    where="--model",
                ) from None
    raise AdvisorInputError(
        f"{path} is not a model directory, config.json or .gguf file",
        fix=f"use a preset ({presets}) or one of those paths",
        where="--model",
    )


__all__ = [
    "PRESETS",
    "ModelShape",
    "resolve_model",
    "shape_from_gguf",
    "shape_from_hf_config",
]
