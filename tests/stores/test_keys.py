"""Everything `advisor tune` writes into the stores is named in `advisor.stores.keys`.

Read back from the session's recorded tiny study: the Optuna study's and trials' user
attributes, and the MLflow tags of its parent, baseline and trial runs. A name written anywhere
without a constant in `keys` would be a stored layout nobody can find to migrate.
"""

from __future__ import annotations

from advisor.stores import keys
from advisor.stores.records import open_recorded_study

PREFIXES = (keys.DATA_HASH, keys.VERSION)
NAMES = {
    value
    for name, value in vars(keys).items()
    if name.isupper() and isinstance(value, str) and value not in PREFIXES
} | set(keys.RESULTS)


def _named(key: str) -> bool:
    return key in NAMES or key.startswith(PREFIXES)


def test_the_names_are_distinct_where_they_share_a_store() -> None:
    optuna_study = [keys.METRIC, keys.OBJECTIVES, keys.N_TRIALS, keys.SPEC_HASH, keys.PARENT_RUN]
    optuna_study += [keys.SEARCH_SPACE, keys.BASELINE_SCORE, keys.SERVED, keys.BASELINE, keys.STOP]
    mlflow_tags = [keys.ROLE, keys.STUDY, keys.TRIAL, keys.STATE, keys.ERROR_TAG, keys.DEVICE]
    for names in (optuna_study, mlflow_tags, list(keys.RESULTS)):
        assert len(set(names)) == len(names)


def test_every_stored_key_of_a_tuned_study_is_named(recorded_study) -> None:
    recorded = open_recorded_study(recorded_study["name"], root=recorded_study["root"])
    unnamed = {key for key in recorded.study.user_attrs if not _named(key)}
    for trial in recorded.study.get_trials(deepcopy=False):
        unnamed |= {key for key in trial.user_attrs if not _named(key)}
    runs = [recorded.tracker.client.get_run(recorded.tracker.parent_run_id)]
    runs += recorded.tracker.child_runs()
    assert {run.data.tags.get(keys.ROLE) for run in runs} == {"study", "baseline", "trial"}
    for run in runs:
        ours = [k for k in run.data.tags if k.startswith(("advisor.", "optuna.", "version."))]
        unnamed |= {key for key in ours if not _named(key)}
    assert unnamed == set()
    assert recorded.study.user_attrs[keys.PARENT_RUN] == recorded.tracker.parent_run_id
