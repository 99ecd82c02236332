"""The header of a GGUF file: its metadata keys and tensor shapes, without the tensor data.

Why not `gguf.GGUFReader`: it memory-maps every tensor and builds numpy views of the whole
vocabulary (~3 s for SmolLM2), while the keys a model's shape needs sit in the first kilobytes.
`advisor recommend` and `advisor validate` read headers; only a trial loads the weights.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

# Layout (ggml docs/gguf.md): magic "GGUF", u32 version, u64 tensor count, u64 KV count, then KV
# pairs (string key, u32 type, value) and tensor infos (name, u32 n_dims, u64 dims..., u32 type,
# u64 offset). Strings are a u64 length followed by UTF-8 bytes.
_SCALARS: dict[int, str] = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                            10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9
_VERSIONS = (2, 3)  # version 1 (2023, u32 counts) is laid out differently


def _read(stream: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def _check_room(stream: BinaryIO, needed: int, what: str) -> None:
    """Refuse a count or length larger than the rest of the file.

    A corrupt header must fail here, not as a read of 2**60 bytes (MemoryError) or a loop of 2**60
    iterations; small reads need no check, they fail at the end of the file by themselves.
    """
    if needed > 1 << 16 and needed > os.fstat(stream.fileno()).st_size - stream.tell():
        raise EOFError(f"truncated or corrupt GGUF header ({what} runs past the end of the file)")


def _read_string(stream: BinaryIO) -> str:
    length = _read(stream, "<Q")
    _check_room(stream, length, "a string")
    return stream.read(length).decode("utf-8", errors="replace")


def _read_value(stream: BinaryIO, kind: int) -> Any:
    """One metadata value; arrays come back as their length only (we never need their items)."""
    if kind == _STRING:
        return _read_string(stream)
    if kind == _ARRAY:
        item_kind, count = _read(stream, "<I"), _read(stream, "<Q")
        if item_kind in _SCALARS:
            size = struct.calcsize(_SCALARS[item_kind]) * count
            _check_room(stream, size, "an array")
            stream.seek(size, 1)
        else:
            _check_room(stream, 8 * count, "an array")  # every item is at least 8 bytes
            for _ in range(count):
                _read_value(stream, item_kind)
        return count
    if kind not in _SCALARS:
        raise ValueError(f"corrupt GGUF header (unknown value type {kind})")
    return _read(stream, _SCALARS[kind])


def read_gguf_header(path: Path) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """Metadata key/values and tensor name -> dims of a GGUF file, without reading tensor data.

    Raises ValueError or EOFError (never MemoryError or a long loop) on a corrupt or truncated
    file: counts and lengths are checked against the file's size before they are used.
    """
    with path.open("rb") as stream:
        if stream.read(4) != b"GGUF":
            raise ValueError("not a GGUF file (it does not start with the bytes 'GGUF')")
        version, n_tensors, n_kv = _read(stream, "<I"), _read(stream, "<Q"), _read(stream, "<Q")
        if version not in _VERSIONS:
            raise ValueError(f"unsupported GGUF version {version} (this reader knows 2 and 3)")
        _check_room(stream, 8 * (n_kv + n_tensors), "the key/tensor count")
        meta = {}
        for _ in range(n_kv):
            key = _read_string(stream)
            meta[key] = _read_value(stream, _read(stream, "<I"))
        tensors = {}
        for _ in range(n_tensors):
            name = _read_string(stream)
            n_dims = _read(stream, "<I")
            _check_room(stream, 8 * n_dims, "a tensor's dimensions")
            dims = tuple(_read(stream, "<Q") for _ in range(n_dims))
            _read(stream, "<I"), _read(stream, "<Q")
            tensors[name] = dims
    return meta, tensors
