"""`advisor recommend --verify`'s pure parts (issue 17, item 3): which ranked methods run here,
what the time budget pays for, and where the measurement disagrees with the rules. No training:
made-up rankings and measured rows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from advisor.errors import AdvisorInputError
from advisor.tuning.verify import (
    Candidate,
    Measured,
    disagreements,
    measured_rows,
    runnable_candidates,
)
from advisor.tuning.verify_budget import plan_budget


def _ranking(*methods: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(method=m) for m in methods]


def test_retrieval_needs_knowledge_and_sft_trains_as_full() -> None:
    chosen, skipped = runnable_candidates(
        _ranking("rag", "sft", "full", "lora", "dora"), knowledge=False
    )
    assert [(c.method, c.rule_rank) for c in chosen] == [("full", 2), ("lora", 4), ("dora", 5)]
    assert skipped == {"rag": "retrieves from documents: give --knowledge FILE_OR_FOLDER"}

    with_docs, skipped = runnable_candidates(_ranking("rag", "lora", "full"), knowledge=True)
    assert [c.method for c in with_docs] == ["rag", "lora", "full"] and skipped == {}


def test_the_top_candidates_only() -> None:
    chosen, _ = runnable_candidates(
        _ranking("lora", "dora", "full", "qlora"), knowledge=False, top=2
    )
    assert [c.method for c in chosen] == ["lora", "dora"]


def test_the_budget_pays_for_steps_up_to_one_pass_over_the_data() -> None:
    smol = {"num_params": 135e6, "seq_len": 128, "eval_rows": 32}
    # 2 methods + baseline: 9.5 s imports + 3 x (2.6 + 32 x 1.56) s = 166.1 s fixed; a step of
    # lora and one of full at batch 4 x 128 on SmolLM2: 2.91 + 8.0 s
    budget = plan_budget(10, ["lora", "full"], train_rows=10_000, **smol)
    assert budget.max_steps == 2 + int((600 - 166.1 - 2 * 10.91) // 10.91) == 39
    assert (budget.batch_size, budget.train_rows, budget.eval_rows) == (4, 156, 32)
    assert budget.estimated_seconds <= 600
    assert "BENCHMARKS.md" in budget.derivation

    small_data = plan_budget(10, ["lora", "full"], train_rows=20, **smol)
    assert small_data.max_steps == 5 and small_data.train_rows == 20  # one pass: 20 rows / 4

    retrieval_only_trains = plan_budget(10, ["rag", "lora"], train_rows=10_000, **smol)
    assert retrieval_only_trains.max_steps > budget.max_steps  # rag's trial has no steps


def test_a_budget_that_pays_for_no_comparison_names_the_minutes_needed() -> None:
    with pytest.raises(AdvisorInputError) as refused:
        plan_budget(2, ["lora", "full"], num_params=135e6, seq_len=128, train_rows=99, eval_rows=32)
    assert refused.value.where == "--budget-minutes"
    assert "about 3.1 minutes at 2 steps each" in refused.value.message
    assert refused.value.fix == "give --budget-minutes 4 or more"


def test_disagreements_name_the_pairs_the_measurement_reorders() -> None:
    rows = [
        Measured("rag", rule_rank=3, score=0.81),
        Measured("full", rule_rank=2, score=0.70),
        Measured("lora", rule_rank=1, score=0.62),
        Measured("dora", rule_rank=4, score=None),
    ]
    assert disagreements(rows, direction="maximize") == [
        "rules rank lora over full; measured full 0.70 vs lora 0.62",
        "rules rank lora over rag; measured rag 0.81 vs lora 0.62",
        "rules rank full over rag; measured rag 0.81 vs full 0.70",
        "dora: no complete trial, so not compared",
    ]
    # a lower perplexity is better: the same scores then agree with the rules' order
    assert disagreements(rows[:3], direction="minimize") == []


def test_ties_and_agreement_are_no_disagreement() -> None:
    rows = [Measured("lora", 1, 0.5), Measured("rag", 2, 0.5), Measured("full", 3, 0.1)]
    assert disagreements(rows, direction="maximize") == []


def test_measured_rows_follow_the_report_and_keep_the_rule_ranks() -> None:
    candidates = [Candidate("lora", 1), Candidate("rag", 2), Candidate("full", 4)]
    summaries = [  # review.methods.method_summaries: best first, a method without trials absent
        SimpleNamespace(method="rag", score=0.8, best_trial=1, wall_seconds=3.0, cost_usd=0.0),
        SimpleNamespace(method="lora", score=0.4, best_trial=0, wall_seconds=9.0, cost_usd=0.0),
    ]
    rows = measured_rows(candidates, summaries)
    assert [(r.method, r.rule_rank, r.score, r.trial) for r in rows] == [
        ("rag", 2, 0.8, 1),
        ("lora", 1, 0.4, 0),
        ("full", 4, None, None),
    ]


def _verification(
    tmp_path, methods, *, recommended="lora", knowledge=False, recommendation=None, **hp
) -> dict:
    """The comparison study `--verify` would write for `methods` (data files in `tmp_path`),
    for `recommendation` or else one of `recommended` at `hp`."""
    from advisor.tuning.verify import Candidate, passage_context_of, verification_study
    from advisor.tuning.verify_budget import Budget

    for name in ("train.jsonl", "eval.jsonl"):
        (tmp_path / name).write_text('{"prompt": "p", "response": "r"}\n')
    (tmp_path / "kb.md").write_text("The lamp costs 49 euros.")
    source = tmp_path / "kb.md" if knowledge else None
    recommendation = recommendation or SimpleNamespace(
        method=recommended,
        hyperparameters={"r": 8, "lora_alpha": 16, **hp},
        traits={"seq_len": 64},
        starts={},
    )
    return verification_study(
        recommendation,
        [Candidate(m, i + 1) for i, m in enumerate(methods)],
        Budget(1.0, 4, 2, 8, 1, 30.0, "test"),
        model="smollm2-135m",
        train=tmp_path / "train.jsonl",
        eval_file=tmp_path / "eval.jsonl",
        knowledge=source,
        metric="exact_match",
        data={},
        context=passage_context_of("smollm2-135m", source, methods),
    )


@pytest.mark.parametrize(
    ("modules", "written"),
    [
        (["q_proj", "v_proj"], "attention_qv"),  # a preset's modules: the preset's name
        (["v_proj", "q_proj", "k_proj", "o_proj"], "attention"),
        (["q_proj", "up_proj"], [["q_proj", "up_proj"]]),  # explicit: one choice, wrapped once
        ("all_linear", "all_linear"),
    ],
)
def test_the_recommended_modules_are_one_fixed_value_that_validates(
    tmp_path, modules, written
) -> None:
    """Found on SmolLM2 (`recommend --verify` for the format demo): the modules were written as a
    plain list, which `search` reads as choices of presets, and the study did not validate."""
    import yaml

    from advisor.study import load_study

    study = _verification(tmp_path, ["lora", "full"], target_modules=modules)
    assert study["search"]["target_modules"] == written
    path = tmp_path / "verify.yaml"
    path.write_text(yaml.safe_dump({"name": "v", **study}))
    assert load_study(path).methods() == ("lora", "full")


def test_retrieval_candidates_get_room_for_their_passages(tmp_path) -> None:
    """Found on the catalogue demo: the verification study cut prompts at the data's 64 tokens,
    so the passages pushed every answer out and rag and rag_lora failed before training."""
    from advisor.study.knowledge import passage_room

    with_passages = _verification(
        tmp_path, ["rag", "rag_lora", "lora"], recommended="rag", knowledge=True
    )
    words = with_passages["search"]
    room = passage_room(
        "smollm2-135m", tmp_path / "kb.md", top_k=words["top_k"], chunk_size=words["chunk_size"]
    )
    assert room > 5  # the instruction and the 5-word passage
    assert with_passages["train"]["max_seq_length"] >= 64 + room
    assert with_passages["train"]["max_seq_length"] % 64 == 0
    nothing_retrieved = _verification(tmp_path, ["lora", "full"], knowledge=True)
    assert nothing_retrieved["train"]["max_seq_length"] == 64  # the data's


def test_knowledge_is_left_out_when_no_candidate_retrieves(tmp_path) -> None:
    """Found on the format demo (`--goal behaviour --knowledge DIR --verify`): the top three were
    lora, prompt_tuning and qlora, and the study refused the knowledge source none of them
    reads, so nothing was verified."""
    study = _verification(tmp_path, ["lora", "qlora"], knowledge=True)
    assert "knowledge" not in study["data"]
    assert "knowledge" in _verification(tmp_path, ["rag", "lora"], knowledge=True)["data"]


def test_passages_make_a_retrieval_methods_steps_cost_more() -> None:
    """Found on the catalogue demo: 400 tokens of passages on 48-token rows, priced as 48-token
    steps, made an 8-minute verification of rag_lora run past 20 minutes."""
    sizes = {"num_params": 135e6, "seq_len": 64, "train_rows": 240, "eval_rows": 40}
    methods = ["rag", "rag_lora", "lora"]
    bare = plan_budget(8, methods, **sizes)
    with_passages = plan_budget(8, methods, **sizes, context=400)
    assert with_passages.max_steps < bare.max_steps
    assert with_passages.estimated_seconds <= 8 * 60
    only_lora = plan_budget(8, ["lora", "full"], **sizes)
    assert plan_budget(8, ["lora", "full"], **sizes, context=400) == only_lora  # nothing retrieves


def test_a_rag_recommendation_s_trained_rivals_start_where_the_recommender_would(
    tmp_path,
) -> None:
    """Found on the catalogue demo: rag recommended (no rank, no rate), its trained rivals got
    the registry's r=8, q/v and 2e-4, and at 13 steps every method tied at 0. Each now starts
    at its own recommended point: the LoRA family at the rank, targets and rate `recommend`
    gives LoRA, full fine-tuning at its own (lower) rate."""
    from advisor.decide.recommend import recommend
    from advisor.decide.traits import Traits

    traits = Traits.from_options(
        goal="knowledge", model="smollm2-135m", examples=200, seq_len=64, data_format="pairs"
    )
    rec = recommend(traits, completion_per_example=12)
    assert rec.method == "rag" and "learning_rate" not in rec.hyperparameters
    lora = rec.starts["lora"]
    study = _verification(tmp_path, ["rag", "lora", "full"], recommendation=rec)
    search = study["search"]
    assert (search["r"], search["lora_alpha"]) == (lora["r"], lora["lora_alpha"]) != (8, 16)
    assert search["target_modules"] == "all_linear"
    assert search["per_method"]["lora"]["learning_rate"] == lora["learning_rate"]
    full = search["per_method"]["full"]["learning_rate"]
    assert full == rec.starts["full"]["learning_rate"] < lora["learning_rate"]
