"""The base model's view of the forgetting probes on disk, so that a study measures its base once.

Every trial of a study compares its model with the same base on the same probes: before this
cache each trial measured the base again (~16 s of a SmolLM2 trial on 2 CPU cores, a third of
its forgetting measurement). The study's baseline run now computes the base's `ProbeView`
(`runners.forgetting`) and stores it here; a trial loads it and computes only its own side. A
trial that finds nothing (no baseline ran yet: a worker joined first, or another base) measures
the base as before and stores it for the next one.

One file per key under `$ADVISOR_CACHE_DIR/probes/` (beside `runners.models.cache_root()`;
`~/.cache/advisor/probes` by default), a safetensors file: no pickle, the replies as metadata.
The key is the SHA-256 of everything the base's view depends on (`cache_key`), so a stale view
is never read for another model, probe or setting. Files are written to a temporary file in
the same directory and renamed into place (`os.replace`), so concurrent trials never read half
a file. A file that cannot be read (truncated, another format version, another shape) is
ignored and written again; a cache that cannot be written (a read-only directory) is a warning
on stderr: the trial measures the base itself, as it did before the cache existed.

`write_record` writes the run's record of the probes (`RECORD_FILE` in the trial's output
directory, logged as a run artifact): the base's replies and scores, the trial's own, and the
cache key of the base's view.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from runners.chat import prompt_text
from runners.config import EvalConfig
from runners.forgetting import (
    CHUNK_TOKENS,
    INSTRUCTION_PROBE,
    TEXT_PROBE,
    TOP_K,
    Forgetting,
    Probes,
    ProbeView,
)
from runners.models import cache_root

FORMAT_VERSION = 1
"""The layout of a cached view; bump it when `ProbeView` or the way it is computed changes."""
RECORD_FILE = "forgetting_probes.json"
_SUFFIX = ".safetensors"
_LIBRARIES = ("torch", "transformers")
"""Their versions are in the key: an upgrade may change the base's numbers (kernels, attention)."""


class _Unusable(ValueError):
    """A cache file that was read but does not hold a view for these probes."""


def cache_dir() -> Path:
    """`$ADVISOR_CACHE_DIR/probes` or `~/.cache/advisor/probes`."""
    return cache_root().parent / "probes"


def probe_version() -> str:
    """SHA-256 of the two probe files and `FORMAT_VERSION`: a new probe is a new version."""
    digest = hashlib.sha256(f"probe view format {FORMAT_VERSION}\n".encode())
    for path in (TEXT_PROBE, INSTRUCTION_PROBE):
        data = path.read_bytes()
        digest.update(f"{path.name} {len(data)}\n".encode())
        digest.update(data)
    return digest.hexdigest()


def model_identity(directory: Path) -> dict[str, Any]:
    """A model directory's identity, cheaply: its name (a converted GGUF's carries the GGUF's
    content fingerprint, `runners.models.gguf_fingerprint`), the SHA-256 of its config.json and
    the name, size and modification time of every other file in it (weights, tokenizer, remote
    code). No weight is hashed: that would read GBs per trial for a 7B model."""
    files = []
    for path in sorted(directory.iterdir()):
        if path.name != "config.json" and path.is_file():
            stat = path.stat()
            files.append([path.name, stat.st_size, stat.st_mtime_ns])
    config = hashlib.sha256((directory / "config.json").read_bytes()).hexdigest()
    return {"name": directory.name, "config": config, "files": files}


def load_settings(load_kwargs: Mapping[str, Any]) -> str:
    """A stable string of the load arguments that change the base (QLoRA's 4-bit quantisation
    config): a configuration object by its `to_dict()`, keys sorted."""

    def plain(value: Any) -> Any:
        return value.to_dict() if hasattr(value, "to_dict") else value

    settings = {name: plain(value) for name, value in load_kwargs.items()}
    return json.dumps(settings, sort_keys=True, default=str)


def cache_key(
    *,
    model_dir: Path,
    tokenizer: Any,
    probes: Probes,
    cfg: EvalConfig,
    device: str,
    dtype: Any,
    load_kwargs: Mapping[str, Any],
    k: int = TOP_K,
) -> str:
    """SHA-256 of everything the base's view depends on (see the module docstring).

    Besides the settings themselves, the key holds what the model reads: the text probe's token
    ids and the prompts rendered with the trial's chat template, so the tokenizer's files and
    the template are covered whatever they are named.
    """
    inputs = hashlib.sha256(json.dumps(probes.chunks).encode())
    for prompt in probes.prompts:
        inputs.update(prompt_text(tokenizer, prompt).encode())
    parts = {
        "probes": probe_version(),
        "model": model_identity(model_dir),
        "chat_template": getattr(tokenizer, "chat_template", None),
        "inputs": inputs.hexdigest(),
        "device": device,
        "dtype": str(dtype),
        "load": load_settings(load_kwargs),
        "sizes": {
            "forgetting_text_tokens": cfg.forgetting_text_tokens,
            "forgetting_prompts": cfg.forgetting_prompts,
            "forgetting_max_new_tokens": cfg.forgetting_max_new_tokens,
            "generation_batch": cfg.batch_size,  # left padding can change a greedy reply
        },
        "chunk_tokens": CHUNK_TOKENS,
        "k": k,
        "versions": {name: _version(name) for name in _LIBRARIES},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def cache_path(key: str) -> Path:
    return cache_dir() / f"{key}{_SUFFIX}"


def load(key: str, probes: Probes) -> ProbeView | None:
    """The cached base view for `key`, or None: not cached, or a file that cannot be used (said
    on stderr; the caller measures the base and `store` replaces the file)."""
    from safetensors import SafetensorError

    path = cache_path(key)
    if not path.exists():
        return None
    try:
        return _read(path, key, probes)
    except (OSError, ValueError, KeyError, SafetensorError) as error:
        print(
            f"advisor: ignoring the probe cache file {path} ({error}); measuring the base again",
            file=sys.stderr,
            flush=True,
        )
        return None


def store(key: str, view: ProbeView) -> Path | None:
    """Write `view` under `key` atomically; None (and a warning on stderr) when it cannot be
    written: the cache saves time, its absence fails nothing."""
    import torch
    from safetensors.torch import save

    path = cache_path(key)
    data = save(
        {
            "target_logprobs": view.target_logprobs.float().contiguous(),
            "top_ids": view.top_ids.to(torch.int32).contiguous(),
            "top_logprobs": view.top_logprobs.float().contiguous(),
            "rest_logprobs": view.rest_logprobs.float().contiguous(),
        },
        metadata={
            "format": str(FORMAT_VERSION),
            "key": key,
            "replies": json.dumps(list(view.replies), ensure_ascii=False),
            "scores": json.dumps(list(view.scores)),
        },
    )
    temporary: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{key[:16]}-", suffix=".tmp", dir=path.parent)
        temporary = Path(name)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except OSError as error:
        print(
            f"advisor: warning: cannot write the probe cache {path} "
            f"({error.strerror or error}); every trial measures the base itself",
            file=sys.stderr,
            flush=True,
        )
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        return None
    return path


def write_record(
    path: Path,
    key: str,
    source: str,
    probes: Probes,
    base: ProbeView,
    measured: Forgetting,
    *,
    untouched: bool,
) -> Path:
    """The run's record of the probes at `path`: per prompt the base's reply and score (and the
    trained model's unless `untouched`), the figures, the cache `key` of the base's view and
    where it came from (`source`: cache or computed)."""
    prompts = []
    for index, (prompt, answers) in enumerate(zip(probes.prompts, probes.answers, strict=True)):
        row: dict[str, Any] = {
            "prompt": prompt[-1]["content"],
            "answers": list(answers),
            "base_reply": base.replies[index],
            "base_score": base.scores[index],
        }
        if not untouched:
            row["reply"], row["score"] = measured.replies[index], measured.scores[index]
        prompts.append(row)
    record = {
        "cache_key": key,
        "base_source": source,
        "top_k": base.k,
        "text_positions": probes.positions,
        "base": {"ppl": measured.base_ppl, "general_score": measured.base_general_score},
        "tuned": None
        if untouched
        else {
            "ppl": measured.tuned_ppl,
            "general_score": measured.general_score,
            "kl": measured.kl,
        },
        "prompts": prompts,
    }
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _read(path: Path, key: str, probes: Probes) -> ProbeView:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as stream:
        meta = stream.metadata() or {}
        if meta.get("format") != str(FORMAT_VERSION):
            raise _Unusable(f"format {meta.get('format')!r}, this version reads {FORMAT_VERSION}")
        if meta.get("key") != key:
            raise _Unusable("written for another key")
        tensors = {name: stream.get_tensor(name) for name in stream.keys()}  # noqa: SIM118 (not iterable)
    replies, scores = json.loads(meta["replies"]), json.loads(meta["scores"])
    target, ids = tensors["target_logprobs"], tensors["top_ids"]
    top, rest = tensors["top_logprobs"], tensors["rest_logprobs"]
    positions, prompts = probes.positions, len(probes.prompts)
    if not (
        target.shape == rest.shape == (positions,)
        and ids.dim() == 2
        and ids.shape == top.shape
        and ids.shape[0] == positions
    ):
        raise _Unusable(f"tensors of other shapes than {positions} positions of the text probe")
    if not (
        isinstance(replies, list)
        and isinstance(scores, list)
        and len(replies) == len(scores) == prompts
        and all(isinstance(r, str) for r in replies)
        and all(isinstance(s, int | float) for s in scores)
    ):
        raise _Unusable(f"not {prompts} replies with their scores")
    return ProbeView(
        target_logprobs=target.float(),
        top_ids=ids.long(),
        top_logprobs=top.float(),
        rest_logprobs=rest.float(),
        replies=tuple(replies),
        scores=tuple(float(s) for s in scores),
    )


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
