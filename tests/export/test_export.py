"""Adapters out of a recorded study: export (plain and merged), try, and the model registry.

All tests use the session's `recorded_study` (trial 0 complete with an adapter, 1 and 2 pruned,
3 failed). Exports go to tmp_path; tests that register copy the study's stores first.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from advisor.errors import AdvisorInputError


@pytest.fixture(scope="module")
def recorded(recorded_study):
    from advisor.stores.records import open_recorded_study

    return open_recorded_study("recorded", root=recorded_study["root"])


@pytest.fixture(scope="module")
def exported(recorded, tmp_path_factory):
    """The best trial exported once, unmerged, shared by the tests below (read-only)."""
    from advisor.export.adapter import export_trial

    return export_trial(recorded, "best", tmp_path_factory.mktemp("export") / "adapter")


def _inputs(directory: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    return tokenizer(
        ["red cat 3 dog", "Extract the order: blue fox"], return_tensors="pt", padding=True
    )


def _logits(model, inputs):
    import torch

    model.eval()
    with torch.no_grad():
        return model(**inputs).logits


def test_export_loads_offline_and_matches_the_adapter_by_hand(
    recorded, exported, tiny_model, tmp_path
):
    import torch
    from peft import AutoPeftModelForCausalLM, PeftModel
    from transformers import AutoModelForCausalLM

    out = exported.out_dir
    assert exported.facts.trial == 0 and not exported.merged
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model.resolve())
    inputs = _inputs(out)

    loaded = AutoPeftModelForCausalLM.from_pretrained(out, local_files_only=True)
    run_id = recorded.trial_run_id(0)
    by_hand_adapter = recorded.tracker.download_artifact(run_id, "adapter", tmp_path / "dl")
    base = AutoModelForCausalLM.from_pretrained(tiny_model, local_files_only=True)
    base_logits = _logits(base, inputs)
    by_hand = PeftModel.from_pretrained(base, str(by_hand_adapter))

    exported_logits = _logits(loaded, inputs)
    assert torch.equal(exported_logits, _logits(by_hand, inputs))
    # The adapter trained at lr 1e-2: it must change the output, or the test proves nothing.
    assert not torch.allclose(exported_logits, base_logits, atol=1e-4)


def test_merged_export_gives_the_same_logits_as_the_adapter(recorded, exported, tmp_path):
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    from advisor.export.adapter import export_trial

    merged = export_trial(recorded, 0, tmp_path / "merged", merge=True)
    assert merged.merged and not (merged.out_dir / "adapter_config.json").exists()
    inputs = _inputs(merged.out_dir)
    plain = AutoModelForCausalLM.from_pretrained(merged.out_dir, local_files_only=True)
    adapter = AutoPeftModelForCausalLM.from_pretrained(exported.out_dir, local_files_only=True)
    merged_logits, adapter_logits = _logits(plain, inputs), _logits(adapter, inputs)
    # Merging rounds each weight W + s*BA once in fp32; a dot product over k terms then moves by
    # at most ~k ulps of its scale. Two linear layers per block (attention, MLP) with k at most
    # the MLP width bound the logits' drift by layers * 2 * width * 2**-23 of their scale, on
    # any CPU (measured on the tiny Llama: 2.4e-7 at scale 1.1, the bound 6.6e-5).
    config = plain.config
    bound = config.num_hidden_layers * 2 * config.intermediate_size * 2**-23
    atol = float(adapter_logits.abs().max()) * bound
    assert torch.allclose(merged_logits, adapter_logits, atol=atol, rtol=0)
    card = (merged.out_dir / "README.md").read_text()
    assert yaml.safe_load(card.split("---")[1])["library_name"] == "transformers"


def test_model_card_and_export_json_hold_the_trials_facts(recorded, exported):
    out = exported.out_dir
    trial = next(t for t in recorded.study.get_trials() if t.number == 0)
    run_id = recorded.trial_run_id(0)
    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "peft"
    assert front["base_model"] == exported.facts.base_model_dir
    assert "lora" in front["tags"]
    body = card.split("---", 2)[2]
    for fact in (
        "recorded",
        "trial 0",
        run_id,
        recorded.tracker.tracking_uri,
        "json_match",
        "learning_rate",
        "gain over baseline",
        "AutoPeftModelForCausalLM",
    ):
        assert fact in body, fact
    facts = json.loads((out / "advisor_export.json").read_text())
    assert facts["trial"] == 0 and facts["run_id"] == run_id and facts["method"] == "lora"
    assert facts["params"] == trial.params
    assert facts["results"]["score"] == trial.user_attrs["score"]
    assert facts["results"]["eval_loss"] == pytest.approx(trial.user_attrs["eval_loss"])
    assert facts["gain_over_baseline"] == pytest.approx(
        trial.user_attrs["score"] - recorded.baseline_score
    )
    assert facts["settings"]["r"] == 4


@pytest.mark.parametrize(("trial", "reason"), [(1, "pruned"), (3, "failed")])
def test_exporting_a_trial_without_adapter_exits_2_with_the_reason(
    recorded_study, tmp_path, monkeypatch, trial, reason
):
    from typer.testing import CliRunner

    from advisor.cli import app

    monkeypatch.chdir(recorded_study["root"])
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["export", "recorded", str(out), "--trial", str(trial)])
    assert result.exit_code == 2, result.output
    assert reason in result.output and "[0]" in result.output
    assert not out.exists()


def test_existing_out_dir_is_refused_and_a_failure_leaves_nothing_behind(
    recorded, tmp_path, monkeypatch
):
    import advisor.export.adapter as export
    from advisor.export.output import MARKER

    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    for force in (False, True):  # not written by advisor: --force does not replace it either
        with pytest.raises(AdvisorInputError, match=f"no {MARKER} file"):
            export.export_trial(recorded, 0, mine, force=force)
    assert [p.name for p in mine.iterdir()] == ["keep.txt"]

    out = tmp_path / "out"
    export.export_trial(recorded, 0, out)
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert MARKER in first
    with pytest.raises(AdvisorInputError, match="--force"):
        export.export_trial(recorded, 0, out)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "write_card", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_trial(recorded, 0, out, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "out"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    with pytest.raises(RuntimeError):
        export.export_trial(recorded, 0, tmp_path / "new" / "deep")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "out"]

    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    (out / "added.txt").write_text("gone after --force: the directory is advisor's")
    export.export_trial(recorded, 0, out, force=True)
    names = sorted(p.name for p in out.iterdir())
    assert "added.txt" not in names and "adapter_model.safetensors" in names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "out"]


def test_a_bundle_carries_the_marker_so_force_replaces_it_and_nothing_else(
    recorded, tmp_path, monkeypatch
):
    """Bundles go through the same rules as exports: the recorded study stands in for two
    tasks (one base model, so the bundle is valid)."""
    from advisor.export.adapter import export_bundle
    from advisor.export.bundle import BUNDLE_FILE
    from advisor.export.output import MARKER

    monkeypatch.chdir(tmp_path)
    tasks = {"alpha": recorded, "beta": recorded}
    out = tmp_path / "bundle"
    export_bundle(tasks, out, study="recorded")
    marker = json.loads((out / MARKER).read_text())
    assert marker["kind"] == "bundle" and marker["study"] == "recorded"
    assert (out / BUNDLE_FILE).is_file()

    with pytest.raises(AdvisorInputError, match="pass --force"):
        export_bundle(tasks, out, study="recorded")
    (out / "stale.txt").write_text("replaced with the directory")
    export_bundle(tasks, out, study="recorded", force=True)
    assert not (out / "stale.txt").exists() and (out / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no build or old sibling

    (out / "study.yaml").write_text("name: mine\n")  # a study file put there by hand
    with pytest.raises(AdvisorInputError, match=r"--force will not replace .*study\.yaml"):
        export_bundle(tasks, out, study="recorded", force=True)
    assert (out / "study.yaml").read_text() == "name: mine\n"


def test_try_returns_deterministic_text_and_refuses_pruned_trials(recorded):
    from advisor.export.trying import try_trial

    first = try_trial(recorded, 0, "Extract the order: two red cats to Graz", max_new_tokens=8)
    second = try_trial(
        recorded, "best", "Extract the order: two red cats to Graz", max_new_tokens=8
    )
    assert isinstance(first, str) and first == second
    with pytest.raises(AdvisorInputError, match="pruned"):
        try_trial(recorded, 2, "hello")


def test_register_best_adds_a_version_per_call(recorded_study, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from advisor.cli import app
    from advisor.stores.records import open_recorded_study
    from advisor.stores.registry import register_best

    root = tmp_path / "copy"
    shutil.copytree(recorded_study["root"], root)
    recorded = open_recorded_study("recorded", root=root)
    # `advisor tune` registered the best adapter as version 1 when the study ended.
    assert recorded_study["summary"].registered_model == "recorded-adapter/1"
    assert register_best(recorded) == ("recorded-adapter", "2")
    assert register_best(recorded) == ("recorded-adapter", "3")
    run_id = recorded.trial_run_id(0)
    versions = recorded.tracker.client.search_model_versions("name='recorded-adapter'")
    assert sorted(str(v.version) for v in versions) == ["1", "2", "3"]
    assert {v.run_id for v in versions} == {run_id}
    assert all(v.source.endswith("/adapter") for v in versions)
    assert {v.tags["advisor.trial"] for v in versions} == {"0"}

    monkeypatch.chdir(root)
    result = CliRunner().invoke(
        app, ["export", "recorded", str(tmp_path / "out"), "--register", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["registered"] == ["recorded-adapter", "4"] and payload["trial"] == 0
