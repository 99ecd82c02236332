"""runners.allocator: freed large blocks go back to the kernel instead of staying in the heap."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc only")

# Free a 16 MiB block (glibc then raises its mmap threshold to 16 MiB), allocate 256 blocks of
# 1 MiB, each followed by a small block that stays (as a step's activations sit between longer
# lived tensors), free the large ones: how much of their 256 MiB is still resident?
PROBE = """
import json, os, sys
from runners.allocator import return_freed_memory
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
set_to = return_freed_memory() if sys.argv[1] == "on" else None
big = bytearray(16 << 20); del big
blocks, pins = [], []
for _ in range(256):
    blocks.append(bytearray(1 << 20))
    pins.append(bytearray(2048))
before = rss()
del blocks
print(json.dumps({"set": set_to, "kept_mib": (rss() - before + 256 * 1024) / 1024}))
"""


def _probe(mode: str, **env: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip
    return json.loads(done.stdout)


def test_freed_blocks_are_returned_with_the_threshold_and_kept_without() -> None:
    off = _probe("off")
    on = _probe("on", ADVISOR_MMAP_THRESHOLD="65536")
    assert off["set"] is None and off["kept_mib"] > 200  # glibc's heap kept them
    assert on["set"] == 64 * 1024 and on["kept_mib"] < 16


def test_off_unless_asked_and_glibcs_own_setting_wins() -> None:
    assert _probe("on")["set"] is None
    assert _probe("on", ADVISOR_MMAP_THRESHOLD="0")["set"] is None
    both = {"ADVISOR_MMAP_THRESHOLD": "65536", "MALLOC_MMAP_THRESHOLD_": "131072"}
    assert _probe("on", **both)["set"] is None
