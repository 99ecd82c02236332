"""Finished studies read back as plain records (issue 16 item 5): the one reading of past
studies that `recommend --evidence` hands down to decide. Reuses the session's recorded tiny
study; nothing trains here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from advisor.errors import AdvisorInputError
from advisor.provenance import file_sha256
from advisor.stores.evidence import read_studies, stores_folder


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else ""
        for p in sorted(folder.rglob("*"))
    }


def test_a_recorded_study_reads_as_its_best_trial_and_what_it_ran_on(recorded_study, tiny_model):
    root: Path = recorded_study["root"]
    before = snapshot(root / "mlruns")
    (found,) = read_studies(root / "mlruns")
    assert snapshot(root / "mlruns") == before  # reading writes nothing
    assert found.name == "recorded" and found.method == "lora"
    assert found.model == str(tiny_model) and found.num_params and found.num_params > 0
    # trial 0 (lr 1e-2) is the one that learns; the fixed r comes from the study file's search
    assert found.best_trial == 0
    assert found.best_params["learning_rate"] == 1e-2 and found.best_params["r"] == 4
    assert found.data_hash == file_sha256(root / "train.jsonl")
    assert found.examples == 24
    assert found.metric == "json_match"
    if found.baseline_score is not None:
        assert found.gain == pytest.approx(found.best_score - found.baseline_score)
    assert found.wall_seconds and found.wall_seconds > 0


def test_the_evidence_folder_is_the_mlruns_folder_or_the_project_holding_one(
    recorded_study, tmp_path
):
    root: Path = recorded_study["root"]
    assert stores_folder(root) == root / "mlruns"
    assert stores_folder(root / "mlruns") == root / "mlruns"
    with pytest.raises(AdvisorInputError) as refused:
        stores_folder(tmp_path)
    assert refused.value.where == "--evidence" and "--evidence none" in (refused.value.fix or "")
    assert list(tmp_path.iterdir()) == []


def test_a_searched_methods_best_trial_reads_as_its_own_method() -> None:
    """A study over search.method: the evidence names the best trial's method, with only the
    keys that method takes (not the fixed keys of the other methods), its own learning rate
    under its plain name."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import create_trial

    from advisor.stores.evidence import _best_values, _method_of

    content = {
        "method": "rag",  # the first listed: what the baseline's config was built from
        "search": {"method": ["rag", "lora", "full"], "r": 8, "chunk_size": 64, "top_k": [1, 3]},
    }
    lora = create_trial(
        params={"method": "lora", "learning_rate": 1e-3},
        distributions={
            "method": CategoricalDistribution(["rag", "lora", "full"]),
            "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
        },
        value=0.8,
    )
    assert _method_of(content, lora) == "lora"
    assert _best_values(content, lora) == {"r": 8, "learning_rate": 1e-3}
    full = create_trial(
        params={"method": "full", "full.learning_rate": 2e-5},
        distributions={
            "method": CategoricalDistribution(["rag", "lora", "full"]),
            "full.learning_rate": FloatDistribution(1e-5, 1e-4, log=True),
        },
        value=0.7,
    )
    assert _method_of(content, full) == "full"
    assert _best_values(content, full) == {"learning_rate": 2e-5}
    one = {"method": "lora", "search": {"r": 8}}
    plain = create_trial(
        params={"learning_rate": 1e-3},
        distributions={"learning_rate": FloatDistribution(1e-4, 1e-2, log=True)},
        value=0.5,
    )
    assert _method_of(one, plain) == "lora"
    assert _best_values(one, plain) == {"r": 8, "learning_rate": 1e-3}
