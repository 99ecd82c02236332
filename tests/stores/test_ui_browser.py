"""`advisor ui`: the MLflow UI over a recorded study, checked in a real headless Chromium.

The browser test drives Debian's chromium + chromium-driver through selenium with explicit
paths (selenium must never download a driver: there is no internet in CI), and skips with the
reason when they are not installed. The CLI tests start no server.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advisor.cli import app
from advisor.errors import AdvisorInputError
from advisor.stores import ui as ui_lib

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

runner = CliRunner()


def _browser_missing() -> str | None:
    """Why the browser test cannot run here (checked before the study fixture is built)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        return f"{' and '.join(missing)} missing: apt-get install chromium chromium-driver"
    if importlib.util.find_spec("selenium") is None:
        return "selenium missing: pip install -e '.[dev]'"
    return None


def _browser(tmp_path: Path):
    """A headless Chromium driven by the system chromedriver (no Selenium Manager)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument("--window-size=1400,1000")
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "driver.log"))
    return webdriver.Chrome(service=service, options=options)


def _wait_for_text(driver, text: str, timeout: float = 60) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: text in d.find_element(By.TAG_NAME, "body").text,
        message=f"{text!r} never appeared on {driver.current_url}",
    )


@pytest.mark.skipif(_browser_missing() is not None, reason=str(_browser_missing()))
def test_ui_shows_trial_run_and_metrics_in_chromium(recorded_study, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from advisor.stores.records import open_recorded_study

    root = tmp_path / "r"
    shutil.copytree(recorded_study["root"], root)
    recorded = open_recorded_study("recorded", root=root)
    experiment_id = recorded.tracker.experiment_id
    run_id = recorded.trial_run_id(0)
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"

    driver = _browser(tmp_path)
    try:
        with ui_lib.start_ui(uri, port=ui_lib.free_port()) as server:
            assert server.healthy()
            driver.get(f"{server.url}/#/experiments/{experiment_id}")
            _wait_for_text(driver, "recorded")
            driver.get(f"{server.url}/#/experiments/{experiment_id}/runs/{run_id}")
            _wait_for_text(driver, "trial-0")
            _wait_for_text(driver, "eval_loss")
            _wait_for_text(driver, "learning_rate")
            # The metrics table sits below the fold: bring it into the screenshot.
            metric = driver.find_element(By.XPATH, "//*[text()='eval_loss']")
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", metric)
            shot = tmp_path / "trial-0-metrics.png"
            assert driver.save_screenshot(str(shot))
            # Artifacts live under file:// URIs outside the server: it must still list them.
            driver.find_element(By.XPATH, "//*[text()='Artifacts']").click()
            _wait_for_text(driver, "trial_config.json")
            _wait_for_text(driver, "adapter")
        assert not server.alive()
    finally:
        driver.quit()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000


def test_start_ui_refuses_taken_port_before_starting(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    store.touch()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(AdvisorInputError, match=f"127.0.0.1:{port}") as error:
            ui_lib.start_ui(f"sqlite:///{store}", port=port)
    assert error.value.where == "--port"


def test_start_ui_reports_log_tail_when_server_dies(tmp_path: Path, monkeypatch) -> None:
    store = tmp_path / "mlflow.db"
    store.touch()
    server = ui_lib.UiServer(f"sqlite:///{store}", port=ui_lib.free_port())
    script = "import sys; print('boom: cannot open store'); sys.exit(3)"
    monkeypatch.setattr(server, "command", lambda: [sys.executable, "-c", script])
    with pytest.raises(AdvisorInputError, match=r"(?s)exited with code 3.*boom: cannot open"):
        server.start()
    assert not server.alive()


@pytest.mark.parametrize(
    ("host", "exposed"),
    [("127.0.0.1", False), ("localhost", False), ("::1", False), ("0.0.0.0", True), ("::", True)],
)
def test_exposure_warning_only_off_loopback(host: str, exposed: bool) -> None:
    warning = ui_lib.exposure_warning(host, 5000)
    assert (warning is not None) is exposed
    if exposed:
        assert "no authentication" in warning and host in warning


class _FakeServer:
    url = "http://127.0.0.1:5999"

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def wait(self) -> int:
        return 0


@contextmanager
def _fake_start_ui(monkeypatch):
    calls: list[dict] = []

    def fake(uri: str, **kwargs):
        calls.append({"uri": uri, **kwargs})
        return _FakeServer()

    monkeypatch.setattr(ui_lib, "start_ui", fake)
    yield calls


def test_cli_warns_when_bound_beyond_loopback(tmp_path: Path, monkeypatch) -> None:
    store = tmp_path / "mlflow.db"
    store.touch()
    uri = f"sqlite:///{store}"
    with _fake_start_ui(monkeypatch) as calls:
        exposed = runner.invoke(
            app, ["ui", "--host", "0.0.0.0", "--port", "5999", "--tracking-uri", uri]
        )
        local = runner.invoke(app, ["ui", "--port", "5999", "--tracking-uri", uri])
    assert exposed.exit_code == 0, exposed.output
    assert "WARNING" in exposed.output and "no authentication" in exposed.output
    assert "http://127.0.0.1:5999" in exposed.output
    assert local.exit_code == 0, local.output
    assert "WARNING" not in local.output
    assert [c["host"] for c in calls] == ["0.0.0.0", "127.0.0.1"]


def test_cli_missing_default_store_exits_2(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with _fake_start_ui(monkeypatch) as calls:
        result = runner.invoke(app, ["ui"])
    assert result.exit_code == 2, result.output
    assert "no MLflow store" in result.output and "advisor tune" in result.output
    assert calls == []
    assert not (tmp_path / "mlruns").exists()


def test_server_lifecycle_health_sigterm_and_group_stop(tmp_path: Path, monkeypatch) -> None:
    """A stand-in server (python's http.server serving a `health` file) stands for `mlflow ui`:
    start waits for /health, SIGTERM while waiting becomes KeyboardInterrupt, and leaving the
    `with` block stops the whole process group."""
    import os
    import signal
    import threading

    store = tmp_path / "mlflow.db"
    store.touch()
    (tmp_path / "health").write_text("OK")
    port = ui_lib.free_port()
    server = ui_lib.UiServer(f"sqlite:///{store}", port=port)
    fake = [sys.executable, "-m", "http.server", str(port), "-b", "127.0.0.1", "-d", str(tmp_path)]
    monkeypatch.setattr(server, "command", lambda: fake)

    def terminate_us() -> None:
        if signal.getsignal(signal.SIGTERM) is before:
            server.stop()  # wait() installed no handler: end it, the assertion below fails
        else:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), server:
        assert server.healthy()
        pid = server.process.pid
        threading.Timer(0.5, terminate_us).start()
        server.wait(poll_s=0.1)
    assert not server.alive()
    assert signal.getsignal(signal.SIGTERM) is before
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


@pytest.mark.skipif(_browser_missing() is not None, reason=str(_browser_missing()))
def test_ui_opens_the_experiment_on_the_runs_and_the_outcome(recorded_study, tmp_path) -> None:
    """The link advisor gives opens the experiment's runs table, not MLflow 3's GenAI overview
    ("Traces", "No data"), and the study's parent row carries its outcome (best score, gain,
    trials done, cost) and the best parameters. Screenshots in `tmp_path/screenshots`."""
    from selenium.webdriver.common.by import By

    from advisor.stores.records import open_recorded_study
    from advisor.stores.tracker import run_page, runs_page

    root = tmp_path / "r"
    shutil.copytree(recorded_study["root"], root)
    recorded = open_recorded_study("recorded", root=root)
    experiment_id = recorded.tracker.experiment_id
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    shots = tmp_path / "screenshots"
    shots.mkdir()

    driver = _browser(tmp_path)
    try:
        with ui_lib.start_ui(uri, port=ui_lib.free_port()) as server:
            driver.get(f"{server.url}/#/experiments/{experiment_id}")  # what MLflow does alone
            _wait_for_text(driver, "recorded")
            assert driver.save_screenshot(str(shots / "plain-link.png"))
            plain_url = driver.current_url
            driver.get(runs_page(server.url, experiment_id))
            _wait_for_text(driver, "Run Name")  # the runs table's header
            _wait_for_text(driver, "recorded")
            body = driver.find_element(By.TAG_NAME, "body").text
            assert driver.save_screenshot(str(shots / "landing.png"))
            assert "/runs" in driver.current_url, driver.current_url
            assert "No data" not in body and "Traces" not in body.split("Run Name")[1]
            (shots / "urls.txt").write_text(f"{plain_url}\n{driver.current_url}\n{body}\n")
            driver.get(run_page(server.url, experiment_id, recorded.tracker.parent_run_id))
            for name in ("best_score", "best_gain_over_baseline", "trials_done", "total_cost_usd"):
                _wait_for_text(driver, name)
            _wait_for_text(driver, "best.learning_rate")
            assert driver.save_screenshot(str(shots / "parent-run.png"))
            run_body = driver.find_element(By.TAG_NAME, "body").text
            assert "Evaluation runs" not in run_body  # the model-training run page, not GenAI's
    finally:
        driver.quit()
    for shot in shots.glob("*.png"):
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_lists_each_study_with_a_link_to_its_runs_table(recorded_study, monkeypatch) -> None:
    """MLflow 3.17's own experiment links land on its GenAI overview: `advisor ui` prints, per
    study, the link that opens the runs table (`tracker.runs_page`)."""
    from advisor.stores.records import open_recorded_study

    root = recorded_study["root"]
    experiment_id = open_recorded_study("recorded", root=root).tracker.experiment_id
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    with _fake_start_ui(monkeypatch):
        result = runner.invoke(app, ["ui", "--port", "5999", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert "each link opens its runs table" in result.output
    link = f"/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    assert f"recorded: {_FakeServer.url}{link}" in result.output
    assert "Default:" not in result.output
