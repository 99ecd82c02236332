"""Everything a study run derives from its study file once, before any trial: the plan.

A `StudyPlan` holds the validated spec with its stores, searched parameters, objectives, hashes
and limits, and builds the study's Optuna storage, sampler and pruner (through
`advisor.stores`). The coordinator (`tune`), a worker (`work`) and the service (`advisor serve`,
which prepares a study for workers) all start from one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.errors import AdvisorInputError
from advisor.provenance import file_sha256
from advisor.stores.locations import Stores
from advisor.stores.sampling import SHARED_SEED, make_pruner, make_sampler
from advisor.stores.storage import make_storage
from advisor.study import (
    dump_resolved,
    load_study,
    search_parameters,
    spec_hash,
)
from advisor.study.preflight import preflight
from advisor.study.presets import encode_choice
from advisor.study.space import Param
from advisor.study.spec import StudySpec
from advisor.study.start import fitted, space_of
from runners.knowledge import knowledge_files

from .process import TrialLimits


@dataclass
class StudyPlan:
    """Everything derived from the study file once, before any trial runs."""

    spec: Any
    spec_path: Path
    stores: Stores
    params: list[Param]
    available_modules: list[str] | None
    metric: str
    method: str
    """The study's method, or the methods it searches joined by commas (`rag,lora`): the parent
    run's `method` param; a trial's own is its config's (`resolve_trial_config`)."""
    objectives: list[str]
    directions: list[str]
    price_per_hour: float
    experiment: str
    spec_yaml: str
    spec_hash: str
    data_hashes: dict[str, str]
    n_startup: int
    limits: TrialLimits
    _storage: Any = field(default=None, repr=False)

    @classmethod
    def load(
        cls,
        study_file: str | Path | StudySpec,
        *,
        root: Path | None = None,
        storage: str | None = None,
        tracking_uri: str | None = None,
    ) -> StudyPlan:
        """Load and check the study file (or take a loaded spec, which it then changes);
        `storage`/`tracking_uri` override its stores."""
        if isinstance(study_file, StudySpec):
            spec, spec_path = study_file, Path(study_file.source_file or ".")
        else:
            spec_path = Path(study_file)
            spec = load_study(spec_path)
        if spec.tasks:
            raise AdvisorInputError(
                f"study {spec.name!r} declares tasks {[t.name for t in spec.tasks]}: each is "
                "tuned as its own study",
                where="tasks",
                fix="tune it with `advisor tune FILE` (advisor.tuning.entry.tune_tasks / "
                "work_tasks)",
            )
        if storage:
            spec.storage = storage
        if tracking_uri:
            spec.tracking.uri = tracking_uri
        return cls.build(spec, spec_path, root=root)

    @classmethod
    def build(cls, spec: Any, spec_path: Path, root: Path | None = None) -> StudyPlan:
        """Run the checks before training (`preflight`, which `advisor validate` runs too:
        target modules, data layouts, chat template) and resolve stores, objectives and
        hashes."""
        available = preflight(spec).modules
        stores = Stores.resolve(
            optuna_url=spec.storage,
            tracking_uri=spec.tracking.uri,
            artifact_root=spec.tracking.artifact_root,
            root=root,
        )
        objectives, directions = objectives_of(spec)
        return cls(
            spec=spec,
            spec_path=spec_path,
            stores=stores,
            params=search_parameters(spec),
            available_modules=available,
            metric=spec.metric,
            method=",".join(spec.methods()),
            objectives=objectives,
            directions=directions,
            price_per_hour=float(spec.cost.price_per_hour),
            experiment=spec.tracking.experiment or spec.name,
            spec_yaml=dump_resolved(spec),
            spec_hash=spec_hash(spec),
            data_hashes={
                "train": file_sha256(spec.data.train),
                "eval": file_sha256(spec.data.eval),
                **({"replay": file_sha256(spec.data.replay.path)} if spec.data.replay else {}),
                **(
                    {"knowledge": knowledge_sha256(spec.data.knowledge)}
                    if spec.data.knowledge
                    else {}
                ),
            },
            n_startup=int(spec.optuna.n_startup_trials),
            limits=TrialLimits(
                timeout_s=spec.trial.timeout_s, max_memory_gb=spec.trial.max_memory_gb
            ),
        )

    def storage(self) -> Any:
        """The Optuna storage, with the study's heartbeat and retry settings (opened once: the
        coordination of workers needs the storage the study was opened on)."""
        if self._storage is None:
            opt = self.spec.optuna
            self._storage = make_storage(
                self.stores.optuna_url,
                heartbeat_interval=opt.heartbeat_interval,
                grace_period=opt.grace_period,
                max_retry=opt.max_retry,
            )
        return self._storage

    def sampler(self, slot: int = 0) -> Any:
        """The study's sampler; `slot` 0 (the coordinator) is seeded with the study's seed, so a
        single-process study replays; a worker's slot gives its sampler a seed of its own, so
        processes sharing a study do not propose the same parameters."""
        return make_sampler(
            self.spec.optuna.sampler,
            self.params,
            seed=sampler_seed(self.spec.optuna.sampler, self.spec.seed, slot),
            n_startup_trials=self.n_startup,
        )

    def pruner(self) -> Any:
        return make_pruner(
            self.spec.optuna.pruner,
            n_startup_trials=self.n_startup,
            max_steps=self.spec.train.max_steps,
            eval_steps=self.spec.train.eval_steps,
        )


def knowledge_sha256(path: str | Path) -> str:
    """SHA-256 of a knowledge source: its file, or a folder's document files (the ones the
    retrieval methods index, `runners.knowledge.knowledge_files`) by relative path and content,
    so that an edited, added or removed document is a changed study input like edited data."""
    root = Path(path)
    files = knowledge_files(root)
    if files == [root]:
        return file_sha256(root)
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(root).as_posix()}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def objectives_of(spec: Any) -> tuple[list[str], list[str]]:
    """Objective names as tune records them (`score`, or `eval_loss` when that is the metric,
    then the cost) and the spec's Optuna directions."""
    first = "eval_loss" if spec.metric == "eval_loss" else "score"
    return [first, *spec.objectives[1:]], spec.directions()


SEED_SPACE = 2**32
"""Samplers take seeds in 0..2**32-1 (numpy's RandomState)."""


def sampler_seed(sampler: str, seed: int, slot: int) -> int:
    """The seed of the sampler of the process in `slot`: its own (`worker_seed`), except for a
    sampler whose seed all processes share (`stores.sampling.SHARED_SEED`: the grid's)."""
    return seed if sampler in SHARED_SEED else worker_seed(seed, slot)


def worker_seed(seed: int, slot: int) -> int:
    """The sampler seed of the process in `slot` of a study seeded `seed`: the seed itself for
    slot 0, then a large odd stride apart, so neighbouring seeds of other studies stay apart."""
    return (seed + slot * 2_654_435_761) % SEED_SPACE


START = "optuna.start"
"""The source of the study file's own starting point, as a warm-start trial records it."""
RECOMMENDED = "recommended"
"""The source of a point `advisor recommend --write-study` wrote (`optuna.start_source`)."""


def warm_start_points(
    spec: StudySpec, past: Iterable[tuple[Mapping[str, Any], str]] = ()
) -> list[tuple[dict[str, Any], str]]:
    """The starting points `tune` enqueues as the first trials of a new study when
    `optuna.warm_start` is on, each with its source (recorded as `keys.WARM_START`).

    First the study file's point(s), `optuna.start`, marked with `optuna.start_source`
    (`recommended` when `advisor recommend --write-study` wrote it, else `optuna.start`); the
    spec has checked that it lies in the search space (`study.start.start_problems`). Then
    `past`: the best points of similar past studies, each with its source
    (`study:<name>#<trial>`), as `tune` found them in its own stores (read by
    `stores.evidence.studies_in`, weighed by `decide.evidence.past_points`). They were searched
    in another space, so each is fitted
    to this one (`study.start.fitted`: numbers clipped into ranges, other values dropped); a
    point left empty or equal to an earlier one is skipped. Parameters a point leaves out are
    sampled. The grid sampler takes no warm start (refused by the spec: the grid tries every
    point). Values are in Optuna's encoding (target modules as `encode_choice` strings), as
    `enqueue_trial` takes them.
    """
    if not spec.optuna.warm_start:
        return []
    points: list[tuple[dict[str, Any], str]] = []
    for point in spec.optuna.start_points():
        points.append((point, spec.optuna.start_source or START))
    for point, source in past:  # of a searched method: fitted to the point's method's space
        method = point.get("method")
        points.append(
            (
                fitted(space_of(spec, method if method in spec.methods() else None), dict(point)),
                source,
            )
        )
    out: list[tuple[dict[str, Any], str]] = []
    for point, source in points:
        encoded = {
            name: encode_choice(value) if name == "target_modules" else value
            for name, value in point.items()
        }
        if encoded and all(encoded != seen for seen, _ in out):
            out.append((encoded, source))
    return out
