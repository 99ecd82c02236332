"""`advisor --help`, `recommend`, `estimate` and the service's app must not import torch or
transformers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ("torch", "transformers", "peft", "trl", "bitsandbytes", "mlflow", "optuna")

PROBE = textwrap.dedent(
    """
    import json, sys
    from typer.testing import CliRunner
    from advisor.cli import app

    HEAVY = set(sys.argv[1:])
    runner = CliRunner()
    codes = [
        runner.invoke(app, ["--help"]).exit_code,
        runner.invoke(app, ["recommend", "--model", "llama-2-7b", "--json"]).exit_code,
        runner.invoke(app, ["estimate", "--model", "llama-3-8b", "--method", "qlora",
                            "--json"]).exit_code,
    ]
    # The service's app (recommend and estimate over HTTP) is built from the same light path.
    from advisor.serve import ServeSettings
    from advisor.serve.app import create_app

    create_app(ServeSettings())
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
    print(json.dumps({"codes": codes, "heavy": heavy}))
    """
)


def test_decision_commands_stay_light() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *HEAVY],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["codes"] == [0, 0, 0]
    assert out["heavy"] == [], f"heavy modules imported: {out['heavy']}"
