"""One adapter per task: multi-task study files, one study per task, bundles, `try --task`.

The end-to-end tests share one tuned two-task study on the tiny Llama: task `alpha` always
answers "AAAA", task `beta` "BBBB" (same prompts), learnt at a high learning rate in 40 steps
(measured: exact match 1.0 on the held-out prompts, 0.0 untuned), so each adapter's output
is unmistakable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support import write_task_study, write_tiny_study
from typer.testing import CliRunner

from advisor.cli import app
from advisor.errors import AdvisorInputError
from advisor.stores.keys import TASK, UMBRELLA
from advisor.study import load_study, spec_hash
from advisor.study.tasks import expand_tasks

ANSWERS = {"alpha": "AAAA", "beta": "BBBB"}
PROMPTS = ["The red cat.", "The blue owl.", "The green fox."]


def _study(tmp_path: Path, model: Path, **overrides) -> Path:
    return write_task_study(tmp_path, model, "multi", ANSWERS, **overrides)


def _edit(path: Path, change) -> Path:
    spec = yaml.safe_load(path.read_text())
    change(spec)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _line(path: Path, *keys: str | int) -> int:
    """The line of the key at `keys` in the YAML file (how a user finds the field)."""
    node, line = yaml.compose(path.read_text()), 0
    for key in keys:
        if isinstance(key, int):
            node = node.value[key]
            continue
        name, node = next((k, v) for k, v in node.value if k.value == key)
        line = name.start_mark.line + 1
    return line


# -- the study file -----------------------------------------------------------------------------
def test_task_names_are_unique_and_each_tasks_files_are_checked_at_their_line(
    tmp_path: Path, tiny_model: Path
) -> None:
    def break_it(spec: dict) -> None:
        spec["tasks"][1]["name"] = "alpha"
        spec["tasks"][1]["data"]["eval"] = "missing.jsonl"

    study = _edit(_study(tmp_path, tiny_model), break_it)
    with pytest.raises(AdvisorInputError) as caught:
        load_study(study)
    message = str(caught.value)
    name_line = _line(study, "tasks", 1, "name")
    eval_line = _line(study, "tasks", 1, "data", "eval")
    assert f"multi.yaml:{name_line}: tasks[1].name: task name 'alpha' is used twice" in message
    assert f"multi.yaml:{eval_line}: tasks[1].data.eval: data file" in message
    assert "does not exist" in message and "2 problems" in message


def test_a_study_declares_data_or_tasks_exactly_once(tmp_path: Path, tiny_model: Path) -> None:
    both = _edit(
        _study(tmp_path, tiny_model),
        lambda s: s.update(data={"train": "x.jsonl", "eval": "y.jsonl"}),
    )
    with pytest.raises(AdvisorInputError, match=r"tasks: the study declares both data and tasks"):
        load_study(both)
    neither = _edit(both, lambda s: (s.pop("data"), s.pop("tasks")))
    with pytest.raises(AdvisorInputError, match=r"data: Field required.*add `data:`"):
        load_study(neither)


def test_each_task_becomes_an_ordinary_study_named_study_dot_task(
    tmp_path: Path, tiny_model: Path
) -> None:
    from advisor.tuning.entry import tune

    def per_task(spec: dict) -> None:
        spec["tasks"][1]["metric"] = "exact_match"
        spec["tasks"][1]["data"]["system_prompt"] = "Answer B."

    spec = load_study(_edit(_study(tmp_path, tiny_model), per_task))
    alpha, beta = expand_tasks(spec)
    assert (alpha.name, beta.name) == ("multi.alpha", "multi.beta")
    assert (alpha.metric, beta.metric) == ("json_match", "exact_match")  # beta overrides it
    assert beta.data.system_prompt == "Answer B." and alpha.data.system_prompt is None
    assert alpha.data.train.endswith("alpha_train.jsonl") and alpha.tasks == []
    assert (alpha.tracking.experiment, beta.tracking.experiment) == ("multi.alpha", "multi.beta")
    assert spec.tracking.experiment == "multi"  # the copies are deep: the study is untouched
    assert spec_hash(alpha) != spec_hash(beta)
    # A task's study written out is a valid single-task study file (what `rerun` reads back).
    single = write_tiny_study(tmp_path / "single", tiny_model, "single")
    assert load_study(single).tasks == []
    with pytest.raises(AdvisorInputError, match="declares tasks"):
        tune(spec.source_file, root=tmp_path)


# -- tuned end to end ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    """`advisor tune multi.yaml --json` on two tasks, one trial each (stores under root)."""
    root = tmp_path_factory.mktemp("tasks")
    study = _study(
        root,
        tiny_model,
        metric="exact_match",
        search={"r": 4, "target_modules": "all_linear", "learning_rate": 1e-2},
        train={"max_steps": 40, "eval_steps": 40},
        eval={"max_new_tokens": 6, "forgetting": False},
        optuna={"n_trials": 1},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = CliRunner().invoke(app, ["tune", str(study), "--json"])
    assert result.exit_code == 0, result.output
    return {"root": root, "study": study, "summary": json.loads(result.stdout)}


def _cli(root: Path, *args: str):
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        return CliRunner().invoke(app, list(args))


@pytest.mark.system
def test_each_task_is_tuned_and_recorded_as_its_own_study(tuned) -> None:
    import optuna
    from mlflow import MlflowClient

    from advisor.stores.keys import PARENT, ROLE

    summary, root = tuned["summary"], tuned["root"]
    assert summary["study"] == "multi" and list(summary["tasks"]) == ["alpha", "beta"]
    client = MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    storage = f"sqlite:///{root / 'mlruns' / 'optuna.db'}"
    for task, one in summary["tasks"].items():
        assert one["study"] == f"multi.{task}"
        assert [row["score"] for row in one["rows"]] == [1.0], one["rows"]  # learnt its answer
        assert one["baseline_score"] == 0.0
        study = optuna.load_study(study_name=f"multi.{task}", storage=storage)
        assert study.user_attrs[UMBRELLA] == "multi" and study.user_attrs[TASK] == task
        experiment = client.get_experiment_by_name(f"multi.{task}")
        runs = client.search_runs([experiment.experiment_id])
        roles = sorted(r.data.tags[ROLE] for r in runs)
        assert roles == ["baseline", "study", "trial"]
        parent = next(r for r in runs if r.data.tags[ROLE] == "study")
        assert parent.info.run_id == one["parent_run_id"]
        assert parent.data.tags[UMBRELLA] == "multi" and parent.data.tags[TASK] == task
        children = [r for r in runs if r.info.run_id != parent.info.run_id]
        assert all(r.data.tags[PARENT] == parent.info.run_id for r in children)
    multi = optuna.get_all_study_summaries(storage, include_best_trial=False)
    assert sorted(s.study_name for s in multi) == ["multi.alpha", "multi.beta"]


@pytest.mark.system
def test_bundle_loads_the_base_once_and_switches_adapters_by_task(
    tuned, tmp_path: Path, tiny_model: Path
) -> None:
    import torch

    from advisor.export.bundle import load_bundle

    out = tmp_path / "bundle"
    result = _cli(tuned["root"], "export", "multi", "--bundle", str(out), "--json")
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    assert written["study"] == "multi" and written["tasks"] == ["alpha", "beta"]
    manifest = json.loads((out / "bundle.json").read_text())
    base_dir = manifest["base_model_dir"]
    assert base_dir == str(tiny_model.resolve())
    for task in ANSWERS:
        config = json.loads((out / "adapters" / task / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == base_dir
        assert manifest["tasks"][task]["facts"]["study"] == f"multi.{task}"
    assert "from advisor.export.bundle import load_bundle" in (out / "README.md").read_text()
    import advisor.bundle  # where bundles exported by 0.1 say load_bundle is

    assert advisor.bundle.load_bundle is load_bundle
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # built, then renamed

    bundle = load_bundle(out)
    assert set(bundle.model.peft_config) == set(ANSWERS)  # one base, both adapters on it
    for task in ("alpha", "beta", "alpha"):  # and back: switching really switches
        assert bundle.generate(task, PROMPTS, max_new_tokens=6) == [ANSWERS[task]] * 3
    with bundle.model.disable_adapter(), torch.no_grad():  # the base alone answers neither
        untuned = bundle.generate("alpha", PROMPTS[:1], max_new_tokens=6)
    assert untuned[0] not in ANSWERS.values()
    with pytest.raises(AdvisorInputError, match="use one of: alpha, beta"):
        bundle.generate("gamma", PROMPTS)


@pytest.mark.system
def test_try_task_answers_with_that_tasks_adapter(tuned) -> None:
    root = tuned["root"]
    for task, answer in ANSWERS.items():
        result = _cli(root, "try", "multi", "--task", task, "The black elk.", "--json")
        assert result.exit_code == 0, result.output
        shown = json.loads(result.stdout)
        assert (shown["answer"], shown["study"], shown["trial"]) == (answer, f"multi.{task}", 0)
    plain = _cli(root, "try", "multi.beta", "The black elk.")  # a task's study is a study
    assert plain.exit_code == 0 and plain.stdout.strip() == "BBBB", plain.output


@pytest.mark.system
@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("try", "multi", "--task", "gamma", "hi"), ["unknown task 'gamma'", "alpha, beta"]),
        (("try", "multi", "hi"), ["multi-task study with tasks", "--task NAME"]),
        (("export", "multi", "out"), ["multi-task study", "--bundle OUT_DIR"]),
        (("export", "multi"), ["give OUT_DIR", "neither"]),
        (("export", "multi", "--bundle", "b", "--trial", "0"), ["each task's best trial"]),
        (("try", "multi.alpha", "--task", "alpha", "hi"), ["has no tuned tasks"]),
    ],
    ids=[
        "unknown-task",
        "no-task",
        "export-without-bundle",
        "no-out-dir",
        "bundle-trial",
        "single",
    ],
)
def test_task_commands_refuse_bad_input_with_exit_2(tuned, args, expect) -> None:
    result = _cli(tuned["root"], *args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for part in expect:
        assert part in text, text
    assert not (tuned["root"] / "out").exists() and not (tuned["root"] / "b").exists()
