"""The helpers every command shares (`advisor.cli._common`): strict JSON on stdout, and a
stdout that cannot take the output (a full disk, a closed pipe) ends the command with a message
and exit code 1, not a traceback."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from advisor.cli._common import print_json


def test_print_json_writes_strict_json_with_non_finite_measures_as_null(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_json({"loss": math.nan, "best": [1.5, math.inf, {"low": -math.inf}], "n": 3})
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"loss": None, "best": [1.5, None, {"low": None}], "n": 3}


def _advisor(*args: str, stdout: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "advisor", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize(
    "args",
    [
        ("schema",),
        ("recommend", "--json"),
        ("recommend",),
        ("estimate", "--model", "llama-3-8b", "--method", "lora"),
    ],
    ids=["schema", "recommend-json", "recommend-table", "estimate"],
)
def test_a_full_disk_on_stdout_is_a_message_and_exit_1(args: tuple[str, ...]) -> None:
    with open("/dev/full", "w") as full:
        result = _advisor(*args, stdout=full)
    assert result.returncode == 1, result.stderr
    assert "error: cannot write the output: No space left on device" in result.stderr
    assert "fix:" in result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def test_a_closed_pipe_on_stdout_ends_quietly() -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written (as after `| head -1`)
    with os.fdopen(write, "w") as pipe:
        result = _advisor("schema", stdout=pipe)
    assert result.returncode == 1
    assert result.stderr == ""
