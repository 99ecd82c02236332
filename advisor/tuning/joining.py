"""Who works on a study, and with which study file: the checks before a process joins one.

A study may be worked on by several processes: the `advisor tune` that coordinates it, and any
number of workers (`advisor worker`, or a second `advisor tune` of the same study while the
first still runs). They must all run the study file the study was started with, and each
process's sampler needs a seed of its own, or two processes propose the same parameters:

- `study_changes` lists what a study file changes against the stored study (read from the study
  file logged on its MLflow parent run), so a changed file under an existing name is refused,
  showing what differs, instead of mixing trials of two studies;
- `live_coordinator` says which `advisor tune` coordinates the study now (a second `tune` then
  joins as a worker);
- `claim_slot` gives a joining process the next sampler slot (`StudyPlan.sampler(slot)`).

Each is called under the study's ask lock, so two processes starting at once decide in turn.
"""

from __future__ import annotations

from typing import Any

from advisor.errors import AdvisorInputError
from advisor.stores import coordination as co
from advisor.stores import keys
from advisor.stores.tracker import StudyTracker
from advisor.study import yamlsafe
from advisor.study.loading import spec_content

from .plan import StudyPlan

IGNORED = ("description", "storage", "tracking")
"""Top-level study keys that do not change a study's results (the spec hash leaves them out)."""
SHOWN = 8
"""Differences named in a refusal; the rest are counted."""


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested study mapping as {dotted path: leaf value}."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def spec_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """`path: old -> new` for each setting that differs (settings that change no result, such as
    the description, the stores and `data.allow_pii`, left out)."""
    a = {k: v for k, v in flatten(old).items() if k.split(".")[0] not in IGNORED}
    b = {k: v for k, v in flatten(new).items() if k.split(".")[0] not in IGNORED}
    changed = []
    for path in sorted(set(a) | set(b)):
        if path.endswith(".allow_pii") or a.get(path) == b.get(path):
            continue
        changed.append(
            f"{path}: {_short(a.get(path, '(unset)'))} -> {_short(b.get(path, '(unset)'))}"
        )
    return changed


def _short(value: Any) -> str:
    """A value cut to 40 characters; a long string keeps its end (a path's file name)."""
    text = repr(value)
    if len(text) <= 40:
        return text
    return "..." + text[-37:] if isinstance(value, str) else text[:37] + "..."


def study_changes(plan: StudyPlan, study: Any, tracker: StudyTracker | None) -> list[str] | None:
    """What `plan`'s study file changes against the stored `study`; None when they are the same
    study (equal spec hashes, or a study no advisor version fingerprinted).

    The stored content (`keys.SPEC_CONTENT`, paths relative to the study file) is compared
    with the new file's; a study an older advisor prepared has only the study file logged on
    its parent run (absolute paths). A change neither can show is still reported, by its
    fingerprints."""
    stored = study.user_attrs.get(keys.SPEC_HASH)
    if stored is None or stored == plan.spec_hash:
        return None
    old = study.user_attrs.get(keys.SPEC_CONTENT)
    new: Any = spec_content(plan.spec)
    if not isinstance(old, dict):
        parent = study.user_attrs.get(keys.PARENT_RUN)
        logged = tracker.read_artifact_text(parent, keys.STUDY_FILE) if tracker and parent else None
        old = yamlsafe.load(logged)[1] if logged else None
        new = yamlsafe.load(plan.spec_yaml)[1]
    differences = spec_differences(old or {}, new or {}) if old else []
    return differences or [f"its fingerprint (spec hash {stored} -> {plan.spec_hash})"]


def refusal(name: str, changes: list[str], *, worker: bool) -> AdvisorInputError:
    """The error for a study file that changes a stored study."""
    shown = "; ".join(changes[:SHOWN])
    more = f"; and {len(changes) - SHOWN} more" if len(changes) > SHOWN else ""
    fix = (
        "give every worker the study file the study was started with"
        if worker
        else f"give the changed study a new name (e.g. `name: {name}-2`) to start a new study, "
        "or pass --continue-changed to add trials of the changed file to this one (they are "
        "not comparable with its earlier trials)"
    )
    return AdvisorInputError(
        f"study {name!r} already exists with another study file; this file changes {shown}{more}",
        where="name",
        fix=fix,
    )


def live_coordinator(study: Any) -> str | None:
    """`host:pid` of another `advisor tune` coordinating the study now, or None (none, this
    process, or a coordinator on this machine that no longer runs)."""
    owner = str(study.user_attrs.get(keys.COORDINATOR) or "")
    if not owner or owner == co.worker_id() or co.dead_local(owner):
        return None
    return owner


def claim_slot(study: Any) -> int:
    """The next worker slot of the study (1, 2, ...); the coordinator's is 0."""
    slot = int(study.user_attrs.get(keys.WORKER_SLOTS) or 0) + 1
    study.set_user_attr(keys.WORKER_SLOTS, slot)
    return slot


def release(study: Any) -> None:
    """Clear the coordinator mark if it is still this process's (the study may be continued)."""
    if study.user_attrs.get(keys.COORDINATOR) == co.worker_id():
        study.set_user_attr(keys.COORDINATOR, "")
