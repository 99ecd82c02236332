"""`advisor serve` over real HTTP on 127.0.0.1: uvicorn in a background thread, requests through
sockets. Recommend/estimate against the CLI's --json, tokens, limits, CORS, bad submissions,
one submission prepared without a worker (tests/test_serve_flow.py runs workers), and a bounded
load test."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from support import write_tiny_study
from typer.testing import CliRunner

from advisor.cli import app as cli_app
from advisor.decide.recommend import recommend
from advisor.decide.traits import Traits
from advisor.serve import ServeSettings
from advisor.serve.app import create_app
from advisor.serve.client import SAMPLE_TRAITS, Client

TOKEN = "s3cret-token-for-tests"
"""Good enough on loopback; too short where other machines connect."""
STRONG_TOKEN = "Yq3v9X2hLr8Tz5Kw1Nc7Pd4Fs6Gb0Jm2Ve8Ua"
"""38 characters of a wide alphabet: accepted for a public bind."""


@contextlib.contextmanager
def serving(settings: ServeSettings) -> Iterator[str]:
    """The service on a free port of 127.0.0.1, in a thread; yields its base URL."""
    import uvicorn

    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _settings(tmp_path: Path, **overrides) -> ServeSettings:
    values = {
        "data_roots": [tmp_path / "data"],
        "studies_dir": tmp_path / "served",
        "root": tmp_path,
        **overrides,
    }
    Path(values["data_roots"][0]).mkdir(parents=True, exist_ok=True)
    return ServeSettings(**values)


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    """A service with a token and default settings otherwise."""
    with serving(_settings(tmp_path, token=TOKEN)) as url:
        yield url


def _cli_json(*args: str) -> dict:
    result = CliRunner().invoke(cli_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- recommend and estimate -------------------------------------------------------------------
def test_recommend_and_estimate_answer_what_the_cli_prints(base: str) -> None:
    client = Client(base)
    answer = client.post(
        "/v1/recommend",
        json_body={
            "goal": "both",
            "knowledge_changes": True,
            "examples": 3000,
            "model": "qwen2.5-7b",
            "vram_gb": 16,
            "priority": "cost",
        },
    )
    assert answer.status == 200, answer.body
    cli = _cli_json(
        "recommend", "--goal", "both", "--knowledge-changes", "--examples", "3000",
        "--model", "qwen2.5-7b", "--vram", "16", "--priority", "cost",
    )  # fmt: skip
    assert cli.pop("study_file") is None
    assert answer.json() == cli

    answer = client.post(
        "/v1/estimate",
        json_body={"model": "llama-2-70b", "method": "QLoRA", "seq_len": 1024, "r": 8},
    )
    assert answer.status == 200, answer.body
    cli = _cli_json(
        "estimate", "--model", "llama-2-70b", "--method", "QLoRA", "--seq-len", "1024", "--r", "8"
    )
    assert answer.json() == cli

    body = {"model": "smollm2-135m", "method": "qlora", "batch_size": 4, "device": "cpu"}
    answer = client.post("/v1/estimate", json_body=body)
    assert answer.status == 200, answer.body
    cli = _cli_json(
        "estimate", "--model", "smollm2-135m", "--method", "qlora", "--batch-size", "4",
        "--device", "cpu",
    )  # fmt: skip
    assert answer.json() == cli and "mapped_checkpoint" in cli["breakdown"]


def test_openapi_and_docs_are_served(base: str) -> None:
    client = Client(base)
    schema = client.get("/openapi.json").json()
    assert {"/v1/recommend", "/v1/estimate", "/v1/studies", "/v1/studies/{name}"} <= set(
        schema["paths"]
    )
    assert "/v1/studies/{name}/stop" in schema["paths"]
    assert "application/yaml" in schema["paths"]["/v1/studies"]["post"]["requestBody"]["content"]
    docs = client.get("/docs")
    assert docs.status == 200 and b"swagger" in docs.body.lower()


def test_bad_traits_are_422_naming_each_field_and_its_fix(base: str) -> None:
    answer = Client(base).post(
        "/v1/recommend", json_body={"goal": "facts", "vram_gb": -1, "colour": "red"}
    )
    assert answer.status == 422
    body = answer.json()
    assert body["message"] and body["fix"]
    by_path = {e["path"]: e for e in body["errors"]}
    assert set(by_path) == {"goal", "vram_gb", "colour"}
    assert "knowledge" in by_path["goal"]["fix"]
    assert by_path["vram_gb"]["fix"].startswith("use a value greater than 0")
    bad = Client(base).post("/v1/estimate", json_body={"model": "llama-3-8b", "method": "magic"})
    assert bad.status == 422 and "qlora" in bad.json()["fix"]


def test_a_model_path_must_be_a_preset_or_inside_a_data_root(
    tmp_path: Path, tiny_model: Path
) -> None:
    settings = _settings(tmp_path, data_roots=[tiny_model.parent])
    with serving(settings) as url:
        client = Client(url)
        for outside in ("/etc", "../../../etc/hostname", str(tmp_path)):
            answer = client.post("/v1/estimate", json_body={"model": outside, "method": "lora"})
            assert answer.status == 422, outside
            assert "data roots" in answer.json()["message"]
        inside = client.post("/v1/estimate", json_body={"model": tiny_model.name, "method": "lora"})
        assert inside.status == 200, inside.body
        assert inside.json()["model_shape"]["hidden_size"] == 64


# -- access -----------------------------------------------------------------------------------
def test_without_a_token_writes_are_403_and_reads_work(tmp_path: Path) -> None:
    with serving(_settings(tmp_path)) as url:
        client = Client(url)
        refused = client.post("/v1/studies", text="name: x\n")
        assert refused.status == 403
        assert "ADVISOR_SERVE_TOKEN" in refused.json()["fix"]
        assert client.post("/v1/studies/x/stop").status == 403
        assert client.get("/v1/studies").status == 200
        assert client.post("/v1/recommend", json_body={}).status == 200


def test_writes_need_the_right_bearer_token(base: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        answer = Client(base).post("/v1/studies/nope/stop", headers=headers)
        assert answer.status == 401, headers
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["fix"]
    right = Client(base, token=TOKEN)
    assert right.post("/v1/studies/nope/stop").status == 404  # authorised: the study is unknown
    assert right.post("/v1/studies", text="name: [unclosed\n").status == 422
    assert Client(base).get("/v1/studies").status == 200  # reads are open by default


def test_read_token_guards_reads_recommend_and_estimate(tmp_path: Path) -> None:
    with serving(_settings(tmp_path, token=TOKEN, read_requires_token=True)) as url:
        anonymous, known = Client(url), Client(url, token=TOKEN)
        for client, status in ((anonymous, 401), (known, 200)):
            assert client.get("/v1/studies").status == status
            assert client.post("/v1/recommend", json_body={}).status == status
            body = {"model": "llama-3-8b", "method": "lora"}
            assert client.post("/v1/estimate", json_body=body).status == status
        assert anonymous.get("/v1/health").status == 200


def test_the_settings_refuse_a_public_address_without_a_token(tmp_path: Path) -> None:
    from advisor.errors import AdvisorInputError

    with pytest.raises(AdvisorInputError, match="without a token"):
        create_app(_settings(tmp_path, host="0.0.0.0"))
    with pytest.raises(AdvisorInputError, match="weak token: it has 22 characters"):
        create_app(_settings(tmp_path, host="0.0.0.0", token=TOKEN))  # fine on loopback only
    create_app(_settings(tmp_path, host="0.0.0.0", token=STRONG_TOKEN))  # with a strong one it may


def test_a_body_over_the_limit_is_413(tmp_path: Path) -> None:
    with serving(_settings(tmp_path, token=TOKEN, max_body_bytes=1024)) as url:
        answer = Client(url, token=TOKEN).post("/v1/studies", text="#" * 4096)
        assert answer.status == 413
        assert "1024 bytes" in answer.json()["message"] and answer.json()["fix"]
        # No Content-Length: the streamed body is counted as it arrives.
        port = int(url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        chunks = (b"#" * 512 for _ in range(8))
        conn.request(
            "POST",
            "/v1/studies",
            body=chunks,
            encode_chunked=True,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/yaml"},
        )
        reply = conn.getresponse()
        assert reply.status == 413 and "1024 bytes" in json.loads(reply.read())["message"]
        conn.close()
        assert not (tmp_path / "served").exists()


def test_cors_headers_only_when_origins_are_configured(tmp_path: Path) -> None:
    origin = {"Origin": "https://ui.example"}
    preflight = {**origin, "Access-Control-Request-Method": "POST"}
    with serving(_settings(tmp_path)) as url:
        client = Client(url)
        assert "access-control-allow-origin" not in client.get("/v1/health", headers=origin).headers
        assert (
            "access-control-allow-origin"
            not in client.request("OPTIONS", "/v1/recommend", headers=preflight).headers
        )
    with serving(_settings(tmp_path, cors_origins=["https://ui.example"])) as url:
        client = Client(url)
        got = client.get("/v1/health", headers=origin).headers
        assert got["access-control-allow-origin"] == "https://ui.example"
        allowed = client.request("OPTIONS", "/v1/recommend", headers=preflight)
        assert allowed.status == 200
        assert "POST" in allowed.headers["access-control-allow-methods"]
        other = client.get("/v1/health", headers={"Origin": "https://evil.example"}).headers
        assert "access-control-allow-origin" not in other


# -- submissions --------------------------------------------------------------------------------
def _study(tmp_path: Path, model: Path, name: str = "served", **overrides) -> dict:
    """A valid tiny study's mapping; its data in tmp_path/data (the service's data root)."""
    path = write_tiny_study(tmp_path / "data", model, name, **overrides)
    return yaml.safe_load(path.read_text())


def _outside_file(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    target = outside / "train.jsonl"
    target.write_text((tmp_path / "data" / "train.jsonl").read_text())
    return target


def _with(spec: dict, section: str, **values) -> str:
    changed = {**spec, section: {**spec[section], **values}}
    return yaml.safe_dump(changed, sort_keys=False)


BAD_SUBMISSIONS = {
    "yaml-syntax": lambda spec, tmp: "name: served\nmodel: {source: [unclosed\n",
    "unknown-key": lambda spec, tmp: _with(spec, "train", max_stepz=3),
    "r-not-positive": lambda spec, tmp: _with(spec, "search", r=[0, 4]),
    "missing-data-file": lambda spec, tmp: _with(spec, "data", train="missing.jsonl"),
    "dotdot-escape": lambda spec, tmp: _with(
        spec, "data", train=f"../outside/{_outside_file(tmp).name}"
    ),
    "absolute-path": lambda spec, tmp: _with(spec, "data", train=str(_outside_file(tmp))),
    "symlink-escape": lambda spec, tmp: _with(spec, "data", train=_symlink(tmp)),
    "personal-data": lambda spec, tmp: _with(spec, "data", train=_with_email(tmp)),
}
EXPECTED = {
    "unknown-key": ("train.max_stepz", "max_stepz:", 0),
    "r-not-positive": ("search.r[0]", "  r:", 1),  # the list item's own line
    "missing-data-file": ("data.train", "  train:", 0),
    "dotdot-escape": ("data.train", "  train:", 0),
    "absolute-path": ("data.train", "  train:", 0),
    "symlink-escape": ("data.train", "  train:", 0),
    "personal-data": ("data", "data:", 0),  # the scan `advisor tune` runs refuses it
}
"""Case -> (YAML path of the error, text of the line it names, offset from that line)."""


def _with_email(tmp_path: Path) -> str:
    text = (tmp_path / "data" / "train.jsonl").read_text()
    rows = [json.loads(line) for line in text.splitlines()]
    rows[3]["prompt"] += " Write to anna.berg@example.com"
    (tmp_path / "data" / "pii.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return "pii.jsonl"


def _symlink(tmp_path: Path) -> str:
    link = tmp_path / "data" / "linked.jsonl"
    link.symlink_to(_outside_file(tmp_path))
    return link.name


@pytest.mark.parametrize("case", sorted(BAD_SUBMISSIONS))
def test_bad_submissions_are_422_with_their_yaml_path_and_write_nothing(
    tmp_path: Path, tiny_model: Path, case: str
) -> None:
    spec = _study(tmp_path, tiny_model)
    text = BAD_SUBMISSIONS[case](spec, tmp_path)
    settings = _settings(tmp_path, token=TOKEN, data_roots=[tmp_path / "data", tiny_model.parent])
    with serving(settings) as url:
        client = Client(url, token=TOKEN)
        answer = client.post("/v1/studies", text=text)
        assert answer.status == 422, answer.body
        body = answer.json()
        assert body["message"] and body["fix"]
        errors = body["errors"]
        assert errors and all(e["message"] and e["fix"] for e in errors)
        if case == "yaml-syntax":  # the end of input, naming where the bracket was opened
            assert "YAML syntax" in errors[0]["message"] and errors[0]["line"] == 3
            assert "started at line 2" in errors[0]["message"]
        else:
            path, needle, offset = EXPECTED[case]
            (hit,) = [e for e in errors if e["path"] == path]
            lines = text.splitlines()
            assert hit["line"] == offset + next(
                i for i, t in enumerate(lines, 1) if t.startswith(needle) or f" {needle}" in t
            )
        assert client.get("/v1/studies").json() == []
    assert not (tmp_path / "served").exists() or not list((tmp_path / "served").iterdir())
    assert not (tmp_path / "mlruns").exists()


def test_stop_of_an_unknown_study_is_404(base: str) -> None:
    answer = Client(base, token=TOKEN).post("/v1/studies/ghost/stop")
    assert answer.status == 404
    assert "ghost" in answer.json()["message"] and answer.json()["fix"]
    assert Client(base).get("/v1/studies/ghost").status == 404


def test_a_submitted_study_is_written_and_prepared_not_trained(
    tmp_path: Path, tiny_model: Path
) -> None:
    spec = _study(tmp_path, tiny_model, name="queued")
    text = yaml.safe_dump(spec)
    settings = _settings(tmp_path, token=TOKEN, data_roots=[tmp_path / "data", tiny_model.parent])
    with serving(settings) as url:
        client = Client(url, token=TOKEN)
        created = client.post("/v1/studies", json_body={"yaml": text})
        assert created.status == 201, created.body
        answer = created.json()
        assert answer["name"] == "queued" and answer["state"] == "queued"
        written = yaml.safe_load(Path(answer["study_file"]).read_text())
        assert Path(written["data"]["train"]).is_absolute()
        assert written["data"]["root"] == str((tmp_path / "data").resolve())
        assert answer["worker_command"].startswith(f"advisor worker {answer['study_file']} ")
        assert str(tmp_path / "mlruns" / "optuna.db") in answer["worker_command"]
        assert answer["links"]["mlflow_parent_run"]

        again = client.post("/v1/studies", text=text)
        assert again.status == 200 and again.json()["name"] == "queued"
        changed = _with(spec, "optuna", n_trials=5)
        conflict = client.post("/v1/studies", text=changed)
        assert conflict.status == 409
        assert "rename the study" in conflict.json()["fix"]
        assert "optuna" in conflict.json()["message"]

        (listed,) = client.get("/v1/studies").json()
        assert listed == {
            "name": "queued",
            "state": "queued",
            "n_trials": {"done": 0, "target": 2},
            "best_score": None,
        }
        detail = client.get("/v1/studies/queued").json()
        assert detail["trials"] == [] and detail["best"] is None
        assert detail["baseline_score"] is None
        stopped = client.post("/v1/studies/queued/stop")
        assert stopped.status == 200 and stopped.json()["state"] == "stopped"
        assert client.post("/v1/studies/queued/stop").json()["state"] == "stopped"  # idempotent


# -- load -----------------------------------------------------------------------------------------


def test_200_recommend_requests_from_8_clients_all_answered_correctly(base: str) -> None:
    traits = [SAMPLE_TRAITS[(i * 7) % len(SAMPLE_TRAITS)] for i in range(200)]
    expected = {
        json.dumps(t, sort_keys=True): json.loads(json.dumps(recommend(Traits(**t)).to_dict()))
        for t in traits
    }
    local = threading.local()

    def ask(body: dict) -> tuple[int, bool, float]:
        if not hasattr(local, "client"):
            local.client = Client(base)
        started = time.perf_counter()
        answer = local.client.post("/v1/recommend", json_body=body)
        took = time.perf_counter() - started
        right = answer.status == 200 and answer.json() == expected[json.dumps(body, sort_keys=True)]
        return answer.status, right, took

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(ask, traits))
    assert [status for status, _, _ in results] == [200] * 200
    assert all(right for _, right, _ in results)
    assert max(took for _, _, took in results) < 30
