"""The worker subprocess end to end: protocol on stdout only, answers honoured, result on disk."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from runners.config import TrialResult
from runners.reporting import parse_message


def _drive(config_path: Path, result_path: Path, answers: list[str], out: dict) -> None:
    """Run `python -m runners` and answer the evals in turn, like the orchestrator does."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "runners", str(config_path), str(result_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    stderr: list[str] = []
    drain = threading.Thread(target=lambda: stderr.extend(proc.stderr))
    drain.start()
    messages, stray = [], []
    pending = list(answers)
    for line in proc.stdout:
        message = parse_message(line)
        if message is None:
            stray.append(line)
            continue
        messages.append(message)
        if message["event"] == "eval":
            proc.stdin.write((pending.pop(0) if pending else "continue") + "\n")
            proc.stdin.flush()
    out.update(rc=proc.wait(timeout=300), messages=messages, stray=stray)
    drain.join()
    out["stderr"] = "".join(stderr)


def test_worker_continues_then_prunes_as_answered(make_config, tmp_path: Path) -> None:
    """One child process (imports cost ~10 s): "continue" at step 2 is honoured, "prune" at
    step 4 stops it. The complete path of run_trial is covered in-process by test_runners_trial."""
    config = make_config(output_dir=str(tmp_path / "out"), train={"max_steps": 8, "eval_steps": 2})
    config_path = tmp_path / "config.json"
    config_path.write_text(config.to_json())
    result_path = tmp_path / "out" / "result.json"
    run: dict = {}
    _drive(config_path, result_path, ["continue", "prune"], run)

    assert run["rc"] == 0, run["stderr"][-2000:]
    assert run["stray"] == [], f"non-protocol output on stdout: {run['stray'][:3]}"
    events = [m["event"] for m in run["messages"]]
    assert events.count("eval") == 2 and "log" in events
    phases = [m["phase"] for m in run["messages"] if m["event"] == "phase"]
    assert phases == ["load", "train"]
    evals = [(m["step"], m["eval_loss"]) for m in run["messages"] if m["event"] == "eval"]
    result = TrialResult.read(result_path)
    assert result.state == "pruned" and result.steps == 4
    assert [tuple(p) for p in result.eval_curve] == evals
    assert not list(tmp_path.glob("out/.result.json.*"))  # the temporary file was renamed


def test_worker_writes_a_failed_result_and_exits_zero(make_config, tmp_path: Path) -> None:
    config = make_config(data={"eval_path": str(tmp_path / "missing.jsonl")})
    config_path = tmp_path / "c.json"
    config_path.write_text(config.to_json())
    result_path = tmp_path / "r.json"
    run: dict = {}
    _drive(config_path, result_path, [], run)
    assert run["rc"] == 0 and run["stray"] == []
    result = TrialResult.read(result_path)
    assert result.state == "failed" and "data.eval_path" in result.error
    assert "Traceback" in run["stderr"]
