"""Studies over HTTP, as library functions: submit, list, describe, stop (no FastAPI here).

Submitting validates the study text exactly as `advisor tune` does (`load_study`, the model's
module names, the personal-data scan), after a check of its own that no path in it leaves the
service's data roots (before the loader opens any file). A valid study is written, with absolute
paths and the service's stores, to `studies_dir/<name>.yaml` (atomically), and prepared in the
stores (`advisor.tuning.entry.prepare`): Optuna study, MLflow parent run, budget. Nothing trains
here: `advisor worker <file>` processes run the trials, and the first of them the baseline.

The stores and the tuner are imported inside the functions that need them (`# lazy:`), so
`import advisor.serve.app` stays light: recommend and estimate answer without Optuna or MLflow.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from advisor.directions import best
from advisor.errors import AdvisorInputError
from advisor.redact import redact_url
from advisor.scan.gate import check_study_data
from advisor.stores import keys
from advisor.stores.locations import Stores, sqlite_path
from advisor.study import dump_resolved, load_study, yamlsafe
from advisor.study.files import resolve_against
from advisor.study.loading import locate
from advisor.study.preflight import preflight
from advisor.study.sections import known_model_presets

from .decisions import inside_roots
from .errors import ServiceError, StudyConflict, StudyNotFound
from .settings import ServeSettings

PATH_FIELDS: tuple[tuple[str, ...], ...] = (
    ("data", "root"),
    ("data", "train"),
    ("data", "eval"),
    ("data", "replay", "path"),
    ("model", "source"),
    ("model", "chat_template"),
)
"""Where a study file names a path (relative paths start at the first data root)."""
VALIDATE_FIX = "fix each error at its line; `advisor validate FILE` checks a study file locally"


class StudyService:
    """One service's view of its stores, data roots and studies folder."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.roots = settings.resolved_roots()
        self.studies_dir = Path(settings.studies_dir).expanduser().resolve()
        self.stores = Stores.resolve(
            optuna_url=settings.storage, tracking_uri=settings.tracking_uri, root=settings.root
        )
        self._submit_lock = threading.Lock()
        self._storage_lock = threading.Lock()
        self._storage: Any = None

    # -- submit ----------------------------------------------------------------------------
    def submit(self, text: str) -> tuple[bool, dict[str, Any]]:
        """Validate, write and prepare a study; (created, answer). Same spec again: not created.

        Raises ServiceError (422) listing every problem, StudyConflict (409) when a different
        study of that name exists.
        """
        with tempfile.TemporaryDirectory(prefix="advisor-submit-") as folder:
            draft = Path(folder) / "study.yaml"
            draft.write_text(text, encoding="utf-8")
            spec, data_report = self._validate(draft, text)
            spec.storage = self.stores.optuna_url
            spec.tracking.uri = self.stores.tracking_uri
            spec.tracking.artifact_root = self.stores.artifact_root
            resolved = dump_resolved(spec)
        with self._submit_lock:
            return self._write_and_prepare(spec.name, resolved, data_report)

    def _validate(self, draft: Path, text: str) -> tuple[Any, Any]:
        """The loaded spec and its data scan, or ServiceError with every problem found."""
        try:
            node, raw = yamlsafe.load(text)
        except (yaml.YAMLError, yamlsafe.YamlRefused):
            node = raw = None  # load_study reports it, with its line
        except RecursionError:  # PyYAML composes nested collections recursively
            message, fix = _TOO_DEEP
            raise _invalid([{"path": None, "line": None, "message": message, "fix": fix}]) from None
        if isinstance(raw, dict):
            refused = self._path_problems(raw, node)
            if refused:  # before the loader opens (and describes) a file outside the roots
                raise _invalid(refused)
        try:
            spec = load_study(draft, base_dir=self.roots[0])
            if spec.tasks:
                raise _invalid([_problem(node, ("tasks",), *_TASKS_REFUSED)])
            preflight(spec)  # the checks `tune` and `validate` run before training
            return spec, check_study_data(spec)
        except ServiceError:
            raise
        except AdvisorInputError as error:
            raise _invalid(_problems_of(error, node, draft)) from None

    def _path_problems(self, raw: dict[str, Any], node: Any) -> list[dict[str, Any]]:
        """A problem for each path in the study that resolves outside every data root."""
        found = []
        roots = ", ".join(map(str, self.roots))
        for loc in PATH_FIELDS:
            value = _dig(raw, loc)
            if not isinstance(value, str) or (loc[0] == "model" and value in known_model_presets()):
                continue
            if not inside_roots(resolve_against(value, self.roots[0]), self.roots):
                message = f"{value!r} resolves outside the service's data roots ({roots})"
                fix = "use a path inside a data root (relative paths start at the first)"
                found.append(_problem(node, loc, message, fix))
        return found

    def _write_and_prepare(
        self, name: str, resolved: str, data_report: Any
    ) -> tuple[bool, dict[str, Any]]:
        from advisor.tuning.entry import prepare  # lazy: Optuna and MLflow
        from advisor.tuning.plan import StudyPlan  # lazy: Optuna and MLflow

        self.studies_dir.mkdir(parents=True, exist_ok=True)
        final = self.studies_dir / f"{name}.yaml"
        staged = self.studies_dir / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp.yaml"
        staged.write_text(resolved, encoding="utf-8")
        try:
            plan = StudyPlan.load(
                staged,
                root=self.settings.root,
                storage=self.stores.optuna_url,
                tracking_uri=self.stores.tracking_uri,
            )
            existing = self._frozen(name)
            if existing is not None:
                if existing.user_attrs.get(keys.SPEC_HASH) != plan.spec_hash:
                    raise _conflict(name, final, resolved)
                return False, self.answer(name)
            os.replace(staged, final)
            plan.spec_path = final
            plan.spec.set_source_file(str(final))
            try:
                prepare(plan, data_report, marks={keys.SERVED: True, keys.BASELINE: "pending"})
            except BaseException:
                final.unlink(missing_ok=True)
                raise
        finally:
            staged.unlink(missing_ok=True)
        return True, self.answer(name)

    def answer(self, name: str) -> dict[str, Any]:
        """What submit returns: state, the study file, the worker command, links."""
        frozen = self._frozen(name)
        if frozen is None:
            raise _not_found(name)
        return {
            "name": name,
            "state": self._state(frozen),
            "study_file": self._study_file(name),
            "worker_command": self.worker_command(self.studies_dir / f"{name}.yaml"),
            "links": self._links(frozen.user_attrs),
        }

    def _study_file(self, name: str) -> str | None:
        """The study file the service wrote for `name` (None for a study `tune` started)."""
        path = self.studies_dir / f"{name}.yaml"
        return str(path) if path.is_file() else None

    def worker_command(self, study_file: Path) -> str:
        """The `advisor worker` line for a served study (passwords shown as ***)."""
        return shlex.join(
            [
                "advisor",
                "worker",
                str(study_file),
                "--storage",
                str(redact_url(self.stores.optuna_url)),
                "--tracking-uri",
                str(redact_url(self.stores.tracking_uri)),
            ]
        )

    # -- read ------------------------------------------------------------------------------
    def list_studies(self) -> list[dict[str, Any]]:
        """Every study in the service's storage (served or started by `advisor tune`)."""
        storage = self._open_storage(create=False)
        if storage is None:
            return []
        found = []
        for frozen in sorted(storage.get_all_studies(), key=lambda s: s.study_name):
            trials = self._trials(frozen.study_name)
            found.append(
                {
                    "name": frozen.study_name,
                    "state": study_state(trials, frozen.user_attrs),
                    "n_trials": {"done": n_finished(trials), "target": _target(frozen)},
                    "best_score": _best_value(trials, frozen.directions),
                }
            )
        return found

    def describe(self, name: str) -> dict[str, Any]:
        """State, target, trials, best, Pareto front, baseline and MLflow links of a study."""
        from advisor.review.build import build_report  # lazy: Optuna and MLflow
        from advisor.stores.records import open_recorded_study  # lazy: Optuna and MLflow

        frozen = self._frozen(name)
        if frozen is None:
            raise _not_found(name)
        recorded = open_recorded_study(
            name,
            storage=self.stores.optuna_url,
            tracking_uri=self.stores.tracking_uri,
            root=self.settings.root,
        )
        report = build_report(recorded)
        attrs, trials = frozen.user_attrs, self._trials(name)
        experiment = attrs.get(keys.EXPERIMENT_ID)
        best = report.best_trial
        rows = [
            {
                "number": r.number,
                "state": r.state,
                "params": r.params,
                "values": r.values,
                "score": r.score,
                "eval_loss": r.eval_loss,
                "wall_seconds": r.wall_seconds,
                "error": r.error,
                "run_id": r.run_id,
                "mlflow_run": self._run_link(experiment, r.run_id),
            }
            for r in report.rows
        ]
        return {
            "name": name,
            "state": study_state(trials, attrs),
            "n_trials": {"done": n_finished(trials), "target": _target(frozen)},
            "stop_requested": bool(attrs.get(keys.STOP)),
            "metric": report.metric,
            "objectives": report.objectives,
            "directions": report.directions,
            "baseline_score": report.baseline_score,
            "trials": rows,
            "best": None
            if best is None
            else {
                "trial": best.number,
                "score": best.score,
                "values": best.values,
                "params": best.params,
                "run_id": best.run_id,
                "mlflow_run": self._run_link(experiment, best.run_id),
            },
            "pareto_front": asdict(report.pareto) if report.pareto else None,
            "decision": report.decision,
            "study_file": self._study_file(name),
            "links": self._links(attrs),
        }

    # -- stop ------------------------------------------------------------------------------
    def stop(self, name: str) -> dict[str, Any]:
        """Ask the study's workers to start no new trial (running trials finish). Idempotent."""
        frozen = self._frozen(name)
        if frozen is None:
            raise _not_found(name)
        if not frozen.user_attrs.get(keys.STOP):
            storage = self._open_storage(create=False)
            storage.set_study_user_attr(storage.get_study_id_from_name(name), keys.STOP, True)
            frozen = self._frozen(name)
        return {"name": name, "state": self._state(frozen), "stop_requested": True}

    # -- stores ----------------------------------------------------------------------------
    def _open_storage(self, *, create: bool) -> Any:
        """The Optuna storage, opened once; None when its SQLite file does not exist yet
        (a read creates no store)."""
        with self._storage_lock:
            if self._storage is None:
                url = self.stores.optuna_url
                path = sqlite_path(url)
                if not create and path is not None and not path.is_file():
                    return None
                from advisor.stores.storage import make_storage  # lazy: Optuna

                self._storage = make_storage(url)
            return self._storage

    def _frozen(self, name: str) -> Any:
        """The stored study `name` (Optuna's FrozenStudy), or None."""
        storage = self._open_storage(create=False)
        if storage is None:
            return None
        return next((s for s in storage.get_all_studies() if s.study_name == name), None)

    def _trials(self, name: str) -> list[Any]:
        storage = self._open_storage(create=False)
        return storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False)

    def _state(self, frozen: Any) -> str:
        return study_state(self._trials(frozen.study_name), frozen.user_attrs)

    def _run_link(self, experiment: str | None, run_id: str | None) -> str | None:
        """A full MLflow UI URL when the service knows the UI, else the run id."""
        ui = self.settings.mlflow_ui_url
        if not run_id or not ui or experiment is None:
            return run_id
        return f"{ui.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"

    def _links(self, attrs: dict[str, Any]) -> dict[str, Any]:
        experiment = attrs.get(keys.EXPERIMENT_ID)
        parent = attrs.get(keys.PARENT_RUN)
        return {
            "tracking_uri": redact_url(self.stores.tracking_uri),
            "mlflow_experiment_id": experiment,
            "mlflow_parent_run": self._run_link(experiment, parent),
        }


# -- states ---------------------------------------------------------------------------------
def n_finished(trials: Sequence[Any]) -> int:
    """Trials that ended (complete, pruned, failed), a failure that was retried not counted."""
    from advisor.stores.coordination import budget  # lazy: Optuna

    return budget(trials).finished


def study_state(trials: Sequence[Any], attrs: dict[str, Any]) -> str:
    """queued | running | stopping | stopped | complete | failed, from trials and attributes.

    complete/failed: the budget is spent and nothing runs (failed when no trial completed);
    stopping/stopped: a stop was requested and trials still run / none runs; running: trials
    or a baseline are under way; queued: prepared, no worker has started yet.
    """
    names = [t.state.name for t in trials]
    busy = "RUNNING" in names or "WAITING" in names
    target = attrs.get(keys.N_TRIALS)
    if not busy and target is not None and n_finished(trials) >= int(target):
        return "complete" if "COMPLETE" in names else "failed"
    if attrs.get(keys.STOP):
        return "stopping" if "RUNNING" in names else "stopped"
    if trials or str(attrs.get(keys.BASELINE, "")).startswith("claimed"):
        return "running"
    return "queued"


def _target(frozen: Any) -> int | None:
    value = frozen.user_attrs.get(keys.N_TRIALS)
    return None if value is None else int(value)


def _best_value(trials: Sequence[Any], directions: Sequence[Any]) -> float | None:
    """The best first objective value (the task metric) over complete trials."""
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.values]
    top = best(complete, lambda t: t.values[0], directions[0])
    return None if top is None else top.values[0]


# -- problems -------------------------------------------------------------------------------
_TASKS_REFUSED = (
    "multi-task studies (`tasks:`) cannot be submitted to the service yet",
    "submit each task as its own study (its own `data:`), or tune it with `advisor tune FILE`",
)
_TOO_DEEP = (
    "the study file nests its values deeper than the YAML reader can follow",
    "write the study's sections a few levels deep, as in studies/demo.yaml",
)
_RENDERED = re.compile(r"^\s*\S+?:(\d+): (\S+): (.*) \(fix: (.*)\)$")


def _problem(node: Any, loc: tuple[Any, ...], message: str, fix: str) -> dict[str, Any]:
    line, dotted = locate(node, loc) if node is not None else (None, ".".join(map(str, loc)))
    return {"path": dotted, "line": line, "message": message, "fix": fix}


def _problems_of(error: AdvisorInputError, node: Any, draft: Path) -> list[dict[str, Any]]:
    """Every problem in a loader's error, as {path, line, message, fix}."""
    structured = getattr(error, "problems", None)
    if structured:
        return [
            {"path": dotted or None, "line": line, "message": message, "fix": fix}
            for line, dotted, message, fix in structured
        ]
    text = error.message.replace(str(draft.resolve()), "study.yaml")
    text = text.replace(str(draft), "study.yaml")
    rendered = [m.groups() for m in map(_RENDERED.match, text.splitlines()[1:]) if m]
    if rendered:
        return [
            {"path": path, "line": int(line), "message": message, "fix": fix}
            for line, path, message, fix in rendered
        ]
    where = error.where if error.where and error.where != str(draft) else None
    line_match = re.match(r"^study\.yaml:(\d+): (.*)$", text, re.S)
    if line_match:  # a YAML syntax error: `FILE:LINE: message`
        return [
            {
                "path": None,
                "line": int(line_match.group(1)),
                "message": line_match.group(2),
                "fix": error.fix or "",
            }
        ]
    line = _problem(node, (where,), "", "")["line"] if where and node is not None else None
    return [{"path": where, "line": line, "message": text, "fix": error.fix or ""}]


def _invalid(problems: list[dict[str, Any]]) -> ServiceError:
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return ServiceError(f"{count} in the submitted study", fix=VALIDATE_FIX, errors=problems)


def _not_found(name: str) -> StudyNotFound:
    return StudyNotFound(
        f"no study named {name!r} in the service's storage",
        where="name",
        fix="list the studies with GET /v1/studies, or submit one with POST /v1/studies",
    )


def _conflict(name: str, final: Path, resolved: str) -> StudyConflict:
    """409 naming what differs from the stored study file (when the service wrote one)."""
    differs = ""
    if final.is_file():
        old = yamlsafe.load(final.read_text(encoding="utf-8"))[1] or {}
        new = yamlsafe.load(resolved)[1] or {}
        keys = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
        differs = f" (it differs in: {', '.join(keys)})" if keys else ""
    return StudyConflict(
        f"a different study named {name!r} already exists{differs}",
        where="name",
        fix=f"rename the study (e.g. `name: {name}-2`) to run it as a new study, or submit the "
        "identical file to get the existing one",
    )


def _dig(raw: dict[str, Any], loc: tuple[str, ...]) -> Any:
    value: Any = raw
    for key in loc:
        value = value.get(key) if isinstance(value, dict) else None
    return value
