"""MLflow, owned here: one parent run per study, one child run per trial, one baseline run.

Nothing outside `advisor.stores` calls MLflow's API (beside this module: the model registry in
`registry.py`, system metrics in `system_metrics.py`). We use `MlflowClient` with explicit run
ids rather than the fluent `mlflow.start_run` stack: a study's parent run outlives many child
runs created and finished out of order, and a killed process must not leave an "active run".

Why not optuna-integration's MLflowCallback: it logs only after a trial ends (a killed trial
gets no run), makes no parent run, and is deprecated (optuna#5148). Here the child run exists
from the trial's first second, so the eval-loss curve is live in the UI and a crash is visible.

Layout in MLflow (all searchable by tag; the names are in `advisor.stores.keys`):
    experiment  <study.tracking.experiment or study name>
      run  <study name>            tags advisor.role=study, advisor.study=<name>
        run  baseline              tags advisor.role=baseline, mlflow.parentRunId=<parent>
        run  trial-0, trial-1 ...  tags advisor.role=trial, advisor.trial=<n>, advisor.state=...
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.entities import Metric
from mlflow.entities import Param as MlflowParam
from mlflow.exceptions import MlflowException

from advisor.redact import redact_url
from runners.config import TrialConfig, TrialResult

from . import keys
from .creation import creating
from .keys import PARENT, ROLE, STATE, STUDY, TRIAL
from .outcome import MAX_PARAM, Outcome, flatten, other_seconds, record
from .system_metrics import system_metrics


def quiet_mlflow() -> None:
    # MLflow prints alembic migrations and a banner per new SQLite store: noise for a CLI.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # With a tracking server MLflow writes "View run ... at: URL" to stdout when a run ends,
    # which would break `--json` output; the runs are linked from the report instead.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    for name in ("alembic", "mlflow", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _now_ms() -> int:
    return int(time.time() * 1000)


class StudyTracker:
    """Records one study in MLflow. Create it once per `advisor tune` invocation."""

    def __init__(
        self,
        tracking_uri: str,
        artifact_root: str,
        experiment: str,
        *,
        system_metrics_s: float = 0.0,
    ) -> None:
        """`system_metrics_s`: seconds between system samples on trial runs (0: none)."""
        quiet_mlflow()
        self.system_metrics_s = system_metrics_s
        self.tracking_uri = tracking_uri
        # MLflow creates (and migrates) an embedded store when its client is made: one process
        # at a time, and never over a store left half-built.
        with creating(tracking_uri):
            self.client = MlflowClient(tracking_uri=tracking_uri)
            self.experiment_id = self._experiment(experiment, artifact_root)
        self.experiment_name = experiment
        self.parent_run_id: str | None = None
        self.study_name: str | None = None
        self._opening_s: dict[str, float] = {}
        """Seconds spent opening each trial's run, added to its `tracking_seconds` at the end."""

    def _experiment(self, name: str, artifact_root: str) -> str:
        """The experiment's id, created on first use (by one process: a second one that lost
        the race on a server store finds the experiment the first made)."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if keys.EXPERIMENT_KIND not in found.tags:  # made by an older advisor: tag it now
                self._tag_training(str(found.experiment_id))
            return str(found.experiment_id)
        # With a tracking server and no artifact root, the server decides (it may proxy).
        location = f"{artifact_root.rstrip('/')}/{name}" if artifact_root else None
        try:
            return str(
                self.client.create_experiment(
                    name,
                    artifact_location=location,
                    tags={keys.EXPERIMENT_KIND: keys.TRAINING_KIND},
                )
            )
        except MlflowException:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def _tag_training(self, experiment_id: str) -> None:
        """Tag the experiment as model training (`keys.EXPERIMENT_KIND`), so that MLflow 3's
        UI opens it on its runs table, not on the GenAI overview ("Traces", "No data")."""
        with contextlib.suppress(MlflowException):  # a read-only user still gets the runs
            self.client.set_experiment_tag(experiment_id, keys.EXPERIMENT_KIND, keys.TRAINING_KIND)

    # -- the study (parent run) -------------------------------------------------------------
    def find_study_run(self, study_name: str) -> str | None:
        """The parent run of `study_name` in this experiment, newest first, or None."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{ROLE}` = 'study' and tags.`{STUDY}` = '{study_name}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def join_study(self, study_name: str, parent_run_id: str) -> None:
        """Attach to the parent run another process created (a worker joining a study)."""
        self.study_name, self.parent_run_id = study_name, parent_run_id

    def start_study(
        self,
        study_name: str,
        *,
        spec_yaml: str,
        spec_hash: str,
        data_hashes: Mapping[str, str],
        seed: int,
        versions: Mapping[str, str],
        git_commit: str | None,
        optuna_url: str,
        params: Mapping[str, Any] | None = None,
        extra_tags: Mapping[str, str] | None = None,
    ) -> str:
        """Create the study's parent run, or reopen it when the study is being continued."""
        self.study_name = study_name
        existing = self.find_study_run(study_name)
        if existing is not None:
            self.parent_run_id = existing
            self.client.update_run(existing, status="RUNNING")
            self.client.set_tag(existing, keys.RESUMED_AT, time.strftime("%Y-%m-%dT%H:%M:%S"))
            return existing
        tags = {
            ROLE: "study",
            STUDY: study_name,
            keys.SPEC_HASH: spec_hash,
            keys.SEED: str(seed),
            keys.OPTUNA_STORAGE: redact_url(optuna_url),
            keys.OPTUNA_STUDY: study_name,
            **({keys.GIT_COMMIT: git_commit} if git_commit else {}),
            **{f"{keys.DATA_HASH}{k}": v for k, v in data_hashes.items()},
            **(extra_tags or {}),
        }
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=study_name)
        self.parent_run_id = run.info.run_id
        flat: dict[str, str] = {}
        flatten("", dict(params or {}), flat)
        flat.update({f"{keys.VERSION}{k}": v for k, v in versions.items()})
        self.client.log_batch(
            self.parent_run_id,
            params=[MlflowParam(k, v[:MAX_PARAM]) for k, v in sorted(flat.items())],
        )
        self.client.log_text(self.parent_run_id, spec_yaml, keys.STUDY_FILE)
        self.client.log_dict(
            self.parent_run_id,
            {
                "study": study_name,
                "spec_hash": spec_hash,
                "data_hashes": dict(data_hashes),
                "seed": seed,
                "versions": dict(versions),
                "git_commit": git_commit,
            },
            keys.PROVENANCE,
        )
        return self.parent_run_id

    def end_study(
        self, status: str = "FINISHED", summary: Mapping[str, float | None] | None = None
    ) -> None:
        """Close the parent run; `summary` metrics (best score, baseline) go on it first."""
        if self.parent_run_id is None:
            return
        if summary:
            self.log_metrics(self.parent_run_id, summary)
        self.client.set_terminated(self.parent_run_id, status=status)

    def record_outcome(self, outcome: Outcome) -> None:
        """The study's outcome so far on its parent run (`outcome.record`): called as trials
        finish and when the study closes, so the runs table answers "what won"."""
        if self.parent_run_id is not None:
            record(self.client, self.parent_run_id, outcome)

    # -- trials (child runs) ----------------------------------------------------------------
    def start_trial(
        self,
        trial_number: int | None,
        *,
        params: Mapping[str, Any],
        config: TrialConfig,
        baseline: bool = False,
    ) -> str:
        """Open the child run before the trial starts, so a crash still leaves a record."""
        assert self.parent_run_id is not None, "start_study first"
        started = time.perf_counter()
        name = "baseline" if baseline else f"trial-{trial_number}"
        tags = {
            PARENT: self.parent_run_id,
            ROLE: "baseline" if baseline else "trial",
            STUDY: config.study,
            STATE: "running",
            keys.OPTUNA_STUDY: config.study,
        }
        if trial_number is not None:
            tags[TRIAL] = str(trial_number)
            tags[keys.OPTUNA_TRIAL] = str(trial_number)
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=name)
        run_id = run.info.run_id
        flat: dict[str, str] = {}
        flatten("", dict(params), flat)
        flat.setdefault("method", "none" if baseline else config.method.name)
        flat.setdefault("seed", str(config.seed))
        flat.setdefault("max_steps", str(config.train.max_steps))
        flat.setdefault("batch_size", str(config.train.batch_size))
        flat.setdefault("max_seq_length", str(config.train.max_seq_length))
        params_batch = [MlflowParam(k, v[:MAX_PARAM]) for k, v in flat.items()]
        self.client.log_batch(run_id, params=params_batch)
        self.client.log_text(run_id, config.to_json(), keys.TRIAL_CONFIG)
        self._opening_s[run_id] = time.perf_counter() - started
        return run_id

    def system_metrics(self, run_id: str) -> contextlib.AbstractContextManager[None]:
        """Sample the machine into `run_id` while the block runs (see `system_metrics.py`)."""
        return system_metrics(
            run_id, tracking_uri=self.tracking_uri, interval_s=self.system_metrics_s
        )

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float | None], step: int | None = None
    ) -> None:
        """Log several metrics in one call (one `log_metric` each is 20x slower: mlflow#5269)."""
        now = _now_ms()
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items() if v is not None]
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def log_curve(self, run_id: str, key: str, points: Iterable[tuple[int, float]]) -> None:
        now = _now_ms()
        batch = [Metric(key, float(v), now, int(s)) for s, v in points]
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def finish_trial(
        self,
        run_id: str,
        result: TrialResult,
        *,
        derived: Mapping[str, float | None],
        files: Iterable[Path] = (),
        log_eval_curve: bool = False,
    ) -> None:
        """Record a finished trial: metrics, state, artifacts; then close its run.

        `derived` holds figures computed by the orchestrator (GPU-hours, cost, objective values).
        Pruned trials end FINISHED with `advisor.state=pruned`; failed ones end FAILED. The
        trial's phases are logged as `keys.PHASE_SECONDS` says; `tracking_seconds` last, once
        everything else is recorded.
        """
        started = time.perf_counter()
        metrics: dict[str, float | None] = {
            "score": result.score,
            f"score_{result.metric}": result.score,
            "eval_loss": result.eval_loss,
            "train_loss": result.train_loss,
            "steps": float(result.steps),
            "wall_seconds": result.wall_seconds,
            "load_seconds": result.load_seconds,
            "train_seconds": result.train_seconds,
            "eval_seconds": result.eval_seconds,
            "tokens_per_second": result.tokens_per_second,
            "generation_tokens_per_second": result.generation_tokens_per_second,
            "generation_tokens": float(result.generation_tokens)
            if result.generation_tokens
            else None,
            "peak_memory_mb": result.peak_memory_mb,
            "peak_reserved_mb": result.peak_reserved_mb,  # CUDA only: None is not logged
            "trainable_params": float(result.trainable_params),
            "total_params": float(result.total_params),
            "trainable_percent": result.trainable_percent,
            "adapter_mb": result.adapter_mb,
            "world_size": float(result.world_size),  # processes that trained it (trial.processes)
            "train_examples": float(result.train_examples),
            "replay_examples": float(result.replay_examples),
            # what train.max_seq_length cut from the training set (runners.chat.Truncation)
            "truncated_rows": float(result.truncated_rows),
            "truncated_assistant_turns": float(result.truncated_assistant_turns),
            "truncated_context_turns": float(result.truncated_context_turns),
            "untrained_rows": float(result.untrained_rows),
            "truncated_documents": float(result.truncated_documents),
            # forgetting against the base model (runners.forgetting); None when not measured
            "forgetting_kl": result.forgetting_kl,
            "forgetting_ppl_delta": result.forgetting_ppl_delta,
            "base_ppl": result.base_ppl,
            "tuned_ppl": result.tuned_ppl,
            "general_score": result.general_score,
            "base_general_score": result.base_general_score,
            "general_score_delta": result.general_score_delta,
            "forgetting_seconds": result.forgetting_seconds,
            "probes_base_cached": {"cache": 1.0, "computed": 0.0}.get(result.probes_base_source),
            "eval_loss_seconds": result.eval_loss_seconds,
            # a retrieval method's index over data.knowledge (runners.retrieval); 0 s otherwise
            "index_seconds": result.index_seconds,
            "index_chunks": float(result.index_chunks) if result.index_chunks else None,
            "other_seconds": other_seconds(result),
            **derived,
        }
        if result.state == "failed":
            metrics = {k: v for k, v in metrics.items() if k not in ("score", "eval_loss")}
        self.log_metrics(run_id, metrics, step=result.steps)
        if log_eval_curve:
            self.log_curve(run_id, "eval_loss_curve", result.eval_curve)
        tags = {
            STATE: result.state,
            keys.DEVICE: result.device,
            keys.PRECISION: result.precision,
            **{f"{keys.VERSION}{k}": v for k, v in result.versions.items()},
        }
        if result.error:
            tags[keys.ERROR_TAG] = result.error[:5000]
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)
        self.client.log_text(run_id, result.to_json(), keys.TRIAL_RESULT)
        for path in files:
            if path.is_dir():
                self.client.log_artifacts(run_id, str(path), artifact_path=path.name)
            elif path.is_file():
                self.client.log_artifact(run_id, str(path))
        tracking = self._opening_s.pop(run_id, 0.0) + time.perf_counter() - started
        self.log_metrics(run_id, {keys.PHASE_SECONDS["tracking"]: tracking}, step=result.steps)
        status = "FAILED" if result.state == "failed" else "FINISHED"
        self.client.set_terminated(run_id, status=status)

    def abort_run(self, run_id: str, *, status: str = "KILLED", reason: str = "") -> None:
        """Close a run whose trial never returned (Ctrl-C, killed worker, runner crash)."""
        self.client.set_tag(run_id, STATE, "failed")
        if reason:
            self.client.set_tag(run_id, keys.ERROR_TAG, reason[:5000])
        self.client.set_terminated(run_id, status=status)

    # -- lookups ----------------------------------------------------------------------------
    def child_runs(self, role: str | None = None) -> list[Any]:
        """Child runs of the current study, oldest first."""
        assert self.parent_run_id is not None
        filt = f"tags.`{PARENT}` = '{self.parent_run_id}'"
        if role:
            filt += f" and tags.`{ROLE}` = '{role}'"
        return list(
            self.client.search_runs(
                [self.experiment_id], filter_string=filt, order_by=["attributes.start_time ASC"]
            )
        )

    def finished_baseline(self) -> tuple[str, TrialResult] | None:
        """The study's completed baseline run and its result, if one was recorded."""
        for run in reversed(self.child_runs("baseline")):
            if run.info.status == "FINISHED" and run.data.tags.get(STATE) == "complete":
                raw = self._load_json(run.info.run_id, keys.TRIAL_RESULT)
                if raw is not None:
                    return run.info.run_id, TrialResult.from_dict(raw)
        return None

    def reconcile(
        self, live_trial_numbers: Iterable[int] = (), roles: Iterable[str] = ("trial", "baseline")
    ) -> list[str]:
        """Close child runs left RUNNING by a killed process (SIGKILL leaves them RUNNING).

        Runs of trials in `live_trial_numbers` (still running in Optuna, maybe on another
        worker) are left alone; so are runs of roles not in `roles`. Returns the run ids closed.
        """
        live = {str(n) for n in live_trial_numbers}
        wanted = set(roles)
        closed = []
        for run in self.child_runs():
            if run.data.tags.get(ROLE) not in wanted:
                continue
            if run.info.status == "RUNNING" and run.data.tags.get(TRIAL) not in live:
                self.abort_run(run.info.run_id, reason="process ended before the trial finished")
                closed.append(run.info.run_id)
        return closed

    def read_artifact_text(self, run_id: str, artifact: str) -> str | None:
        """The text of one artifact of a run, or None when it was not logged."""
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = download_artifacts(
                    run_id=run_id,
                    artifact_path=artifact,
                    dst_path=tmp,
                    tracking_uri=self.tracking_uri,
                )
            except Exception:
                return None
            return Path(local).read_text()

    def _load_json(self, run_id: str, artifact: str) -> dict[str, Any] | None:
        text = self.read_artifact_text(run_id, artifact)
        return None if text is None else json.loads(text)

    def trial_run(self, study_name: str, number: int) -> str | None:
        """The run id of trial `number` of `study_name` found by its tags, or None."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{STUDY}` = '{study_name}' and tags.`{TRIAL}` = '{number}'",
        )
        return runs[0].info.run_id if runs else None

    # -- adapters out: export, try, model registry ------------------------------------------
    def has_artifact(self, run_id: str, path: str) -> bool:
        """Whether `run_id` logged an artifact (file or directory) at `path`."""
        parent, _, leaf = path.rstrip("/").rpartition("/")
        listed = self.client.list_artifacts(run_id, parent or None)
        return any(item.path.rstrip("/").rpartition("/")[2] == leaf for item in listed)

    def artifact_uri(self, run_id: str, path: str) -> str:
        """The storage URI of one artifact of a run (what the model registry points at)."""
        root = self.client.get_run(run_id).info.artifact_uri
        return f"{root.rstrip('/')}/{path.strip('/')}"

    def download_artifact(self, run_id: str, path: str, dst: Path) -> Path:
        """Copy a run's artifact (file or directory) under `dst`; returns the local path."""
        dst.mkdir(parents=True, exist_ok=True)
        local = download_artifacts(
            run_id=run_id, artifact_path=path, dst_path=str(dst), tracking_uri=self.tracking_uri
        )
        return Path(local)

    # -- report: plots on the study's parent run ---------------------------------------------
    def log_artifacts_to_parent(
        self, paths: Iterable[Path], artifact_path: str = keys.PLOTS
    ) -> list[str]:
        """Log files on the study's parent run under `artifact_path/` (shown in the MLflow UI).

        Returns the artifact paths logged, e.g. `plots/history.png`.
        """
        assert self.parent_run_id is not None, "open the study first"
        logged = []
        for path in paths:
            self.client.log_artifact(self.parent_run_id, str(path), artifact_path=artifact_path)
            logged.append(f"{artifact_path}/{Path(path).name}")
        return logged


def runs_page(ui_url: str, experiment_id: str) -> str:
    """The MLflow UI's page of an experiment's runs table.

    MLflow 3.17's UI picks an experiment's landing tab from its global workflow type (the
    `workflowType` URL parameter, else the browser's last choice, GenAI by default), not from
    the experiment's `mlflow.experimentKind` tag: a plain link opens the GenAI overview
    ("Traces", "No data"). `workflowType=machine_learning` opens the runs."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def run_page(ui_url: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI's page of one run, in the model-training view (see `runs_page`: without
    the parameter MLflow 3.17 shows a run under GenAI's "Evaluation runs")."""
    base = f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{base}?workflowType=machine_learning"


def run_tags(tracking_uri: str, run_id: str) -> dict[str, str] | None:
    """The tags of MLflow run `run_id`, or None when the store has no such run."""
    quiet_mlflow()
    try:
        with creating(tracking_uri):
            client = MlflowClient(tracking_uri)
        return dict(client.get_run(run_id).data.tags)
    except MlflowException:
        return None
