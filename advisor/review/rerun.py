"""`advisor rerun`: rebuild a study from what was logged, run it again, and report the drift.

What makes a rerun exact: the resolved study file (every default filled in, data paths
absolute) is an artifact of the study's parent run; the data files' hashes, the seed and the
package versions are in its `provenance.json`. The sampler is seeded from the study seed, each
trial seeds everything before the adapter is created, and CPU training is deterministic, so the
same parameters come back in the same order and the same eval losses to ~1e-6.

A rerun is a new study (`<name>-rerun-<k>`) in the same stores, linked to the original by the
tag `advisor.rerun_of` on its parent run. `trial=N` reruns one trial with its parameters fixed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from advisor.errors import AdvisorInputError
from advisor.provenance import file_sha256, package_versions
from advisor.redact import redact_url
from advisor.stores import keys
from advisor.stores.locations import Stores, sqlite_path
from advisor.stores.records import RecordedStudy, open_recorded_study, state_of
from advisor.stores.storage import study_names
from advisor.stores.tracker import run_tags
from advisor.study import yamlsafe
from advisor.study.sections import NAME_PATTERN
from advisor.tuning.entry import tune
from advisor.tuning.plan import knowledge_sha256
from advisor.tuning.summary import TuneObserver

TOLERANCE = 1e-6


@dataclass
class TrialDrift:
    """One trial, original against rerun."""

    original: int
    rerun: int
    params: dict[str, Any]
    same_params: bool
    state: tuple[str, str]
    score: tuple[float | None, float | None]
    eval_loss: tuple[float | None, float | None]

    @property
    def eval_loss_diff(self) -> float | None:
        a, b = self.eval_loss
        return None if a is None or b is None else abs(a - b)

    @property
    def score_diff(self) -> float | None:
        a, b = self.score
        return None if a is None or b is None else abs(a - b)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "eval_loss_diff": self.eval_loss_diff,
            "score_diff": self.score_diff,
        }


@dataclass
class RerunReport:
    """The drift between a study and its rerun."""

    original: str
    rerun: str
    original_run_id: str | None
    rerun_run_id: str | None
    data_changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    version_drift: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    baseline: tuple[float | None, float | None] = (None, None)
    trials: list[TrialDrift] = field(default_factory=list)

    @property
    def max_eval_loss_diff(self) -> float | None:
        diffs = [t.eval_loss_diff for t in self.trials if t.eval_loss_diff is not None]
        return max(diffs) if diffs else None

    @property
    def reproduced(self) -> bool:
        """Same parameters everywhere and eval losses within TOLERANCE where both finished."""
        worst = self.max_eval_loss_diff
        return all(t.same_params for t in self.trials) and (worst is None or worst <= TOLERANCE)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["trials"] = [t.to_dict() for t in self.trials]
        out["max_eval_loss_diff"] = self.max_eval_loss_diff
        out["reproduced"] = self.reproduced
        out["tolerance"] = TOLERANCE
        return out


def locate(
    target: str, *, storage: str | None, tracking_uri: str | None, root: Path | None
) -> tuple[RecordedStudy, int | None]:
    """A study name, a study file, or an MLflow run id (a study's parent run or a trial's run)."""
    try:
        return open_recorded_study(
            target, storage=storage, tracking_uri=tracking_uri, root=root
        ), None
    except AdvisorInputError as by_name:
        stores = Stores.resolve(tracking_uri=tracking_uri, optuna_url=storage, root=root)
        missing = sqlite_path(stores.tracking_uri)
        if missing is not None and not missing.is_file():
            raise by_name from None  # asking MLflow for the run would create the store
        tags = run_tags(stores.tracking_uri, target)
        if tags is None:
            raise by_name from None
        if keys.STUDY not in tags:
            raise AdvisorInputError(
                f"MLflow run {target} was not recorded by `advisor tune`",
                where="STUDY_OR_RUN_ID",
                fix="give a study name, a study file, or the id of a study or trial run",
            ) from None
        recorded = open_recorded_study(
            tags[keys.STUDY], storage=storage, tracking_uri=tracking_uri, root=root
        )
        trial = int(tags[keys.TRIAL]) if tags.get(keys.ROLE) == "trial" else None
        return recorded, trial


def _logged(recorded: RecordedStudy) -> tuple[dict[str, Any], dict[str, Any]]:
    tracker = recorded.tracker
    if tracker.parent_run_id is None:
        raise AdvisorInputError(
            f"study {recorded.name!r} has no MLflow parent run to rebuild it from",
            where="STUDY_OR_RUN_ID",
            fix="rerun only studies recorded by `advisor tune`",
        )
    text = tracker.read_artifact_text(tracker.parent_run_id, keys.STUDY_FILE)
    provenance = tracker.read_artifact_text(tracker.parent_run_id, keys.PROVENANCE)
    if text is None or provenance is None:
        raise AdvisorInputError(
            f"the parent run of {recorded.name!r} lacks study.yaml or provenance.json",
            where="STUDY_OR_RUN_ID",
            fix="the study was not recorded completely; tune it again instead",
        )
    return yamlsafe.load(text)[1], json.loads(provenance)


def check_data(spec: dict[str, Any], provenance: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Data files whose content changed since the study ran: {role: (logged, now)}. The
    knowledge source may be a folder, hashed by its documents as `tune` hashed it."""
    changed = {}
    for role, logged in provenance.get("data_hashes", {}).items():
        entry = spec["data"][role]
        path = Path(entry["path"] if isinstance(entry, dict) else entry)  # replay: {path, ...}
        folder = role == "knowledge" and path.is_dir()
        if not (path.is_file() or folder):
            raise AdvisorInputError(
                f"data file {path} ({role}) of the original study is missing",
                where=f"data.{role}",
                fix="restore the file at that path (a rerun reads the data the study logged)",
            )
        now = knowledge_sha256(path) if role == "knowledge" else file_sha256(path)
        if now != logged:
            changed[role] = (logged, now)
    return changed


def rerun_name(recorded: RecordedStudy, name: str | None) -> str:
    """The new study's name: `name` if it is a valid, unused study name, else the next free
    `<study>-rerun-<k>`. Checked before anything is written: the name becomes a file name
    (the rebuilt study file) and a new study in the stores, so `../x` or an existing study's
    name would write outside the rerun's folder or add the rerun's trials to that study."""
    existing = set(study_names(recorded.storage))
    if name is None:
        k = 1
        while f"{recorded.name}-rerun-{k}" in existing:
            k += 1
        return f"{recorded.name}-rerun-{k}"
    if not re.fullmatch(NAME_PATTERN, name):
        raise AdvisorInputError(
            f"{name[:80]!r} is not a study name",
            where="--name",
            fix="use lowercase letters, digits, '_' and '-' (at most 64), e.g. "
            f"{recorded.name}-again",
        )
    if name in existing:
        raise AdvisorInputError(
            f"a study named {name!r} already exists in {redact_url(recorded.stores.optuna_url)}",
            where="--name",
            fix="a rerun is a new study: give an unused name, or leave --name out for "
            f"{rerun_name(recorded, None)!r}",
        )
    return name


def rerun(
    target: str,
    *,
    trial: int | None = None,
    allow_data_change: bool = False,
    name: str | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    root: Path | None = None,
    observer: TuneObserver | None = None,
    python: str = sys.executable,
) -> RerunReport:
    """Rebuild the study behind `target` from its logs, run it again, return the drift report.

    Refuses (AdvisorInputError) when a data file changed since the original run, unless
    `allow_data_change`. `trial` reruns that one trial with its logged parameters.
    """
    recorded, trial_from_run = locate(target, storage=storage, tracking_uri=tracking_uri, root=root)
    new_name = rerun_name(recorded, name)
    trial = trial if trial is not None else trial_from_run
    spec, provenance = _logged(recorded)
    changed = check_data(spec, provenance)
    if changed and not allow_data_change:
        roles = ", ".join(f"{r} ({spec['data'][r]})" for r in changed)
        raise AdvisorInputError(
            f"the data changed since study {recorded.name!r} ran: {roles} no longer match the "
            "logged hashes, so a rerun would not reproduce it",
            where="data",
            fix="restore the original files, or pass --allow-data-change to rerun anyway",
        )
    originals = {t.number: t for t in recorded.study.get_trials(deepcopy=False)}
    if trial is not None and trial not in originals:
        raise AdvisorInputError(
            f"study {recorded.name!r} has no trial {trial}",
            where="--trial",
            fix=f"one of {sorted(originals)}",
        )
    # Same stores and MLflow experiment as the original, so both sit side by side in the UI.
    experiment = recorded.tracker.experiment_name
    spec["name"] = new_name
    # Studies logged before data.root existed: their (absolute) data paths were accepted then.
    spec["data"].setdefault(
        "root", os.path.commonpath([str(Path(spec["data"][r]).parent) for r in ("train", "eval")])
    )
    spec["storage"] = recorded.stores.optuna_url
    spec["tracking"] = {
        **(spec.get("tracking") or {}),
        "uri": recorded.stores.tracking_uri,
        "experiment": experiment,
    }
    enqueue: list[dict[str, Any]] = []
    if trial is not None:
        spec["optuna"]["n_trials"] = 1
        enqueue = [dict(originals[trial].params)]
    with tempfile.TemporaryDirectory() as tmp:
        study_file = Path(tmp) / f"{new_name}.yaml"
        study_file.write_text(yaml.safe_dump(spec, sort_keys=False))
        summary = tune(
            study_file,
            observer=observer,
            root=root,
            python=python,
            enqueue=enqueue,
            study_tags={
                keys.RERUN_OF: recorded.tracker.parent_run_id or "",
                keys.RERUN_OF_STUDY: recorded.name,
                **({keys.RERUN_TRIAL: str(trial)} if trial is not None else {}),
            },
        )
    rerun_study = open_recorded_study(
        new_name, storage=recorded.stores.optuna_url, tracking_uri=recorded.stores.tracking_uri
    )
    pairs = [(trial, 0)] if trial is not None else [(n, n) for n in sorted(originals)]
    news = {t.number: t for t in rerun_study.study.get_trials(deepcopy=False)}
    report = RerunReport(
        original=recorded.name,
        rerun=new_name,
        original_run_id=recorded.tracker.parent_run_id,
        rerun_run_id=summary.parent_run_id,
        data_changed=changed,
        version_drift=_version_drift(provenance.get("versions", {})),
        baseline=(recorded.baseline_score, rerun_study.baseline_score),
    )
    for old_n, new_n in pairs:
        old, new = originals.get(old_n), news.get(new_n)
        if old is None or new is None:
            continue
        report.trials.append(_drift(old, new))
    return report


def _drift(old: Any, new: Any) -> TrialDrift:
    return TrialDrift(
        original=old.number,
        rerun=new.number,
        params=dict(old.params),
        same_params=dict(old.params) == dict(new.params),
        state=(state_of(old), state_of(new)),
        score=(old.user_attrs.get("score"), new.user_attrs.get("score")),
        eval_loss=(old.user_attrs.get("eval_loss"), new.user_attrs.get("eval_loss")),
    )


def _version_drift(logged: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
    now = package_versions()
    return {
        name: (logged.get(name), now.get(name))
        for name in sorted(set(logged) | set(now))
        if logged.get(name) != now.get(name)
    }
