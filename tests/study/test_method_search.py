"""The method as a search dimension (issue 17, item 2): `search.method: [rag, lora, full]`.

A conditional space: each trial draws a method, then only that method's parameters; each method
gets its own learning rate where the families differ; a study of one method is unchanged (the
shipped studies hash as before the key existed); a warm-start point is one method's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from advisor.errors import AdvisorInputError
from advisor.stores.sampling import make_pruner, make_sampler, suggest
from advisor.study import (
    dump_resolved,
    load_study,
    representative_parameters,
    resolve_trial_config,
    search_parameters,
)
from advisor.study.loading import spec_hash
from advisor.study.start import space_of
from advisor.tuning.plan import warm_start_points

REPO = Path(__file__).resolve().parents[2]

SHIPPED_HASHES = {
    "bench_grid.yaml": "6e7cf19885dfa9de",
    "demo.yaml": "c8056e44ab6afc33",  # issue 18: the 8-minute demo
    "demo_replay.yaml": "5baddcb1d2a29544",
    "dora_demo.yaml": "d5ab19c6c7041711",
    "layout_alpaca.yaml": "ddea9ca854f42584",
    "layout_messages.yaml": "3ec060673ad14216",
    "layout_prompt_completion.yaml": "185cf9814a3378ae",
    "layout_prompt_response.yaml": "cbaa66af8ab8a51d",
    "layout_sharegpt.yaml": "3a18b75bdc17900e",
    "layout_text.yaml": "5d7d084449aeb53a",
    "lora_cost_pareto.yaml": "fa8da72d28ef766b",
    "qlora_demo.yaml": "39ca07ef6a23f631",
}
"""The shipped studies' hashes before `search.method` existed (advisor at dff848e): a study of
one method is continued, not refused as changed."""

SEARCH = {
    "method": ["rag", "lora", "full"],
    "r": [2, 4],
    "top_k": [1, 3],
    "learning_rate": {"low": 1e-4, "high": 1e-3, "log": True},
    "per_method": {"full": {"learning_rate": {"low": 1e-5, "high": 1e-4, "log": True}}},
}


def _study(tmp_path: Path, **overrides: Any) -> Path:
    for name in ("train.jsonl", "eval.jsonl"):
        (tmp_path / name).write_text('{"prompt": "p", "response": "r"}\n')
    (tmp_path / "kb").mkdir(exist_ok=True)
    (tmp_path / "kb" / "facts.md").write_text("The lamp costs 49 euros.")
    raw: dict[str, Any] = {
        "name": "m",
        "model": {"source": "smollm2-135m"},
        "data": {"train": "train.jsonl", "eval": "eval.jsonl", "knowledge": "kb"},
        "search": SEARCH,
    }
    raw.update(overrides)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("name", sorted(SHIPPED_HASHES))
def test_a_study_of_one_method_hashes_as_before(name: str) -> None:
    spec = load_study(REPO / "studies" / name)
    assert spec_hash(spec) == SHIPPED_HASHES[name]
    assert "method" not in spec.search.model_dump() and "per_method" not in dump_resolved(spec)


def test_each_method_samples_its_own_parameters(tmp_path: Path) -> None:
    spec = load_study(_study(tmp_path))
    assert spec.method == "rag" and spec.methods() == ("rag", "lora", "full")
    params = {p.name: p for p in search_parameters(spec)}
    assert list(params) == ["method", "top_k", "r", "learning_rate", "full.learning_rate"]
    assert params["method"].choices == ("rag", "lora", "full") and params["method"].methods == ()
    assert params["top_k"].methods == ("rag",)
    assert params["r"].methods == params["learning_rate"].methods == ("lora",)
    assert (params["full.learning_rate"].low, params["full.learning_rate"].methods) == (
        1e-5,
        ("full",),
    )


def test_each_trial_resolves_as_its_method(tmp_path: Path) -> None:
    spec = load_study(_study(tmp_path))
    rag = resolve_trial_config(
        spec, {"method": "rag", "top_k": 3}, trial_number=0, output_dir="o", cuda=False
    )
    assert (rag.method.name, rag.method.top_k, rag.method.r) == ("rag", 3, None)
    assert rag.train.learning_rate == 0.0 and rag.data.knowledge_path == str(tmp_path / "kb")
    lora = resolve_trial_config(
        spec,
        {"method": "lora", "r": 4, "learning_rate": 5e-4},
        trial_number=1,
        output_dir="o",
        cuda=False,
    )
    assert (lora.method.name, lora.method.r, lora.method.top_k) == ("lora", 4, None)
    assert lora.train.learning_rate == 5e-4 and lora.data.knowledge_path is None
    full = resolve_trial_config(
        spec, {"method": "full", "full.learning_rate": 3e-5}, trial_number=2, output_dir="o"
    )
    assert (full.method.name, full.method.r, full.train.learning_rate) == ("full", None, 3e-5)
    with pytest.raises(ValueError, match="'r' does not belong to a 'rag' trial"):
        resolve_trial_config(
            spec, {"method": "rag", "top_k": 1, "r": 2}, trial_number=3, output_dir="o"
        )
    baseline = resolve_trial_config(spec, {}, trial_number=-1, output_dir="o", baseline=True)
    assert baseline.baseline and baseline.method.name == "rag"
    assert representative_parameters(spec) == {"method": "rag", "top_k": 1}


def test_without_a_learning_rate_each_method_trains_at_its_registry_rate(tmp_path: Path) -> None:
    search = {"method": ["lora", "full"], "r": [2, 4]}
    spec = load_study(
        _study(tmp_path, search=search, data={"train": "train.jsonl", "eval": "eval.jsonl"})
    )
    assert {m: v.learning_rate for m, v in spec.search.per_method.items()} == {
        "lora": 2e-4,
        "full": 2e-5,
    }
    full = resolve_trial_config(spec, {"method": "full"}, trial_number=0, output_dir="o")
    assert full.train.learning_rate == 2e-5
    again = tmp_path / "again.yaml"
    again.write_text(dump_resolved(spec))
    assert spec_hash(load_study(again)) == spec_hash(spec)  # the dump reruns the same study


def test_the_dumped_study_reloads_and_hashes_the_same(tmp_path: Path) -> None:
    search = {**SEARCH, "method": ["rag+lora", "lora"], "per_method": None}
    spec = load_study(_study(tmp_path, search=search))
    assert spec.methods() == ("rag_lora", "lora")
    again = tmp_path / "again.yaml"
    again.write_text(dump_resolved(spec))
    reloaded = load_study(again)
    assert reloaded.model_dump() == spec.model_dump()
    assert spec_hash(reloaded) == spec_hash(spec)


def test_a_shared_learning_rate_across_families_is_refused(tmp_path: Path) -> None:
    search = {k: v for k, v in SEARCH.items() if k != "per_method"}
    with pytest.raises(AdvisorInputError) as refused:
        load_study(_study(tmp_path, search=search))
    text = str(refused.value)
    assert "search.learning_rate: one learning_rate for lora (default 0.0002), full" in text
    assert "search.per_method: {full: {learning_rate:" in text


def test_a_warm_start_point_is_one_method_s(tmp_path: Path) -> None:
    good = {"warm_start": True, "start": {"method": "lora", "r": 4}}
    spec = load_study(_study(tmp_path, optuna=good))
    assert warm_start_points(spec) == [({"method": "lora", "r": 4}, "optuna.start")]
    assert set(space_of(spec, "rag")) == {"method", "top_k"}
    for start, said in (
        ({"method": "rag", "r": 4}, "optuna.start.r: 'r' is not a parameter of method 'rag'"),
        ({"r": 4}, "the starting point names no method"),
        ({"method": "dora"}, "names method 'dora', but the study searches the method"),
        ({"method": "full", "full.learning_rate": 1.0}, "1.0 is outside search.full.learning_rate"),
    ):
        with pytest.raises(AdvisorInputError) as refused:
            load_study(_study(tmp_path, optuna={"warm_start": True, "start": start}))
        assert said in str(refused.value)


def test_a_past_point_is_fitted_to_its_own_method(tmp_path: Path) -> None:
    spec = load_study(_study(tmp_path, optuna={"warm_start": True}))
    past = [
        ({"method": "lora", "r": 4, "top_k": 2, "learning_rate": 1.0}, "study:x#0"),
        ({"method": "full", "r": 64, "full.learning_rate": 1e-6}, "study:y#3"),
    ]
    assert warm_start_points(spec, past=past) == [  # top_k and r: not theirs; rates clipped
        ({"method": "lora", "r": 4, "learning_rate": 1e-3}, "study:x#0"),
        ({"method": "full", "full.learning_rate": 1e-5}, "study:y#3"),
    ]


def test_the_sampler_draws_the_method_then_its_parameters_only(tmp_path: Path) -> None:
    params = search_parameters(load_study(_study(tmp_path)))
    sampler = make_sampler("tpe", params, seed=0, n_startup_trials=2)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    seen = set()
    for _ in range(12):
        trial = study.ask()
        values = suggest(trial, params)
        seen.add(values["method"])
        expected = {
            "rag": {"method", "top_k"},
            "lora": {"method", "r", "learning_rate"},
            "full": {"method", "full.learning_rate"},
        }[values["method"]]
        assert set(values) == expected == set(trial.params)
        study.tell(trial, {"rag": 0.8, "lora": 0.5, "full": 0.2}[values["method"]])
    assert seen == {"rag", "lora", "full"}


def test_a_poor_lora_trial_is_pruned_beside_rag_trials(tmp_path: Path) -> None:
    """The median pruner compares eval-loss curves: a rag trial reports none (nothing trains),
    so it completes unpruned and is no point of the median; lora trials are compared to lora's."""
    params = search_parameters(load_study(_study(tmp_path)))
    pruner = make_pruner("median", n_startup_trials=2, max_steps=4, eval_steps=1)
    study = optuna.create_study(direction="minimize", pruner=pruner)
    for method, losses in (("rag", []), ("lora", [1.0, 0.8]), ("lora", [0.9, 0.7])):
        study.enqueue_trial({"method": method})
        trial = study.ask()
        suggest(trial, params)
        for step, loss in enumerate(losses, start=1):
            trial.report(loss, step)
            assert not trial.should_prune()
        study.tell(trial, 0.5)
    study.enqueue_trial({"method": "rag"})
    rag = study.ask()
    assert suggest(rag, params)["method"] == "rag" and not rag.should_prune()
    study.tell(rag, 0.4)
    study.enqueue_trial({"method": "lora"})
    poor = study.ask()
    suggest(poor, params)
    poor.report(5.0, 1)
    assert not poor.should_prune()  # never on the first eval loss (stores.sampling._median)
    poor.report(5.0, 2)
    assert poor.should_prune()


def test_passage_room_counts_the_catalogues_passages_with_the_models_tokenizer() -> None:
    """The shipped catalogue's 3 longest 64-word passages, as a trial lists them, with SmolLM2's
    tokenizer: about 1.9 tokens per word, well above the words-based estimate (3 x 64 x 1.3)."""
    from advisor.decide.retrieval import passage_tokens
    from advisor.study.knowledge import passage_room

    room = passage_room("smollm2-135m", REPO / "studies/data/catalogue", top_k=3, chunk_size=64)
    assert room > passage_tokens("rag", top_k=3, chunk_size=64)
    assert 3 * 64 < room < 3 * 64 * 3


def test_passage_context_counts_where_it_can_and_estimates_where_it_cannot(tmp_path) -> None:
    """The one sizing of `--write-study` and `--verify`: the tokenizer's count for a local model
    and a readable source; the words-based estimate for a model with no local tokenizer or a
    source that cannot be read (whose study then refuses it by name); 0 for a method that
    does not retrieve."""
    from advisor.decide.retrieval import passage_tokens
    from advisor.study.knowledge import passage_context, passage_room

    catalogue = REPO / "studies/data/catalogue"
    sizes = {"top_k": 3, "chunk_size": 64}
    estimate = passage_tokens("rag", **sizes)
    assert (
        passage_context("rag", "smollm2-135m", catalogue, **sizes)
        == passage_room("smollm2-135m", catalogue, **sizes)
        != estimate
    )
    assert passage_context("rag_lora", "no-such-org/no-such-model", catalogue, **sizes) == estimate
    (tmp_path / "empty").mkdir()
    assert passage_context("rag", "smollm2-135m", tmp_path / "empty", **sizes) == estimate
    assert passage_context("rag", "smollm2-135m", None, **sizes) == estimate
    assert passage_context("lora", "smollm2-135m", catalogue, **sizes) == 0
