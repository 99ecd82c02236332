"""Write a ready study file for the method `advisor recommend` chose.

The recommender suggests one starting point (r, alpha, target modules, learning rate); the study
searches around it — half and double the rank, alpha = r and 2r, the suggested modules against all
linear layers, a learning-rate range of 9x around the suggestion — so the first study a team runs
already tests the blog-post defaults against their neighbours. For a large rank the recommender
advises rsLoRA (the update scaled by alpha/sqrt(r), not alpha/r): the study then trains with
`use_rslora: true`, and its alphas keep that scaling's reasoning (`_alphas`).

The study starts from that point: `optuna: {warm_start: true, start: ..., start_source:
recommended}` holds the recommended values that lie in the written space (only the searched
ones; `study.start.inside`), so `tune` runs it as the first trial, marked `recommended`, before
the sampler takes over. The source is a field, not a YAML comment, because the trial's mark is
read from the study file. The micro-batch and gradient accumulation the recommender chose to fit
the card are the study's train settings.

The data decide what is trained and scored: the layout `advisor recommend` read from --train is
written as `data.format`; conversations and pairs are scored by the task metric (rouge_l unless
--metric says otherwise), a raw-text corpus by `perplexity` on the held-out text, trained as
continued pre-training with packing (full fine-tuning or a LoRA-family method, as recommended).

A retrieval method (`rag`, `rag_lora`) is written with its documents, `--knowledge` as
`data.knowledge` (refused without it: a retrieval study cannot run without documents, and a
placeholder path would only fail later, in `tune`), and searches `top_k` around the
recommended one (1, k, 2k). `rag` trains nothing, so it also searches `chunk_size` (half, the
recommended, double) on a grid of those nine points (no warm start: the grid tries the
recommended point anyway), with no learning rate. `rag_lora` keeps the recommended chunk size
(each doubling doubles its training sequences). Both write a `train.max_seq_length` that holds
the most passages searched besides the example: prompts are cut there, at eval too, and the
default (128 tokens) would cut every answer of a prompt with three passages.
`--knowledge` with a method that does not retrieve is refused: the study would refuse
`data.knowledge` as an input with no effect.

Nothing is written until the study is known good: the data files named by --train and --eval
are checked first, then the study is validated with the loader `advisor tune` uses, as a draft
in a temporary folder read as if it lay where it will be written. Only then are its folder and
the file created (atomically: a temporary sibling renamed into place). Every problem names the
option that caused it (--train, --prompt-field, ...), not a key of a file the user never wrote.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from advisor.decide.estimate import TRAINS_AS
from advisor.errors import AdvisorInputError
from runners.datafiles import file_problem
from runners.knowledge import MIN_CHUNK_SIZE
from runners.layouts import LAYOUTS
from runners.methods import METHODS
from runners.methods.targets import TARGET_MODULE_PRESETS, preset_name

from .knowledge import passage_context
from .loading import load_study
from .sections import known_model_presets
from .space import SearchSpec
from .start import inside, searched_space

ALL_LINEAR = list(TARGET_MODULE_PRESETS["all_linear"])
"""Target modules when the recommendation names none: all linear layers, as the evidence says
(attention-only LoRA underperforms; `decide.hyperparams`)."""
CHAT_METRIC = "rouge_l"
CORPUS_METRIC = "perplexity"

WHERE = "--write-study"
OPTION_OF = {
    "data.train": "--train",
    "data.eval": "--eval",
    "data.prompt_field": "--prompt-field",
    "data.response_field": "--response-field",
    "model.source": "--study-model",
    "metric": "--metric",
    "name": "--write-study",
    "data.format": "--format",
    "data.knowledge": "--knowledge",
}
"""The study's keys -> the `advisor recommend` options that set them, for its errors (the
dotted ones are also replaced in messages and fixes: `set data.prompt_field to ...`)."""


def _trained_method(plan: list[str], method: str) -> str:
    """The runner method a study runs for the recommendation: the chosen method when it
    retrieves (`rag`, `rag_lora`), else the chosen method or the last trained step of the plan;
    a LoRA-family or full fine-tuning method of the registry."""
    if method in METHODS and METHODS[method].retrieval:
        return method
    for name in [method, *reversed(plan)]:
        trained = TRAINS_AS.get(name, name)
        if trained in METHODS and METHODS[trained].family in ("lora", "full"):
            return trained
    if method == "prompt_tuning":
        raise AdvisorInputError(
            "the recommendation is prompt tuning of a model behind an API: there are no local "
            "weights to train, so there is no study to write",
            where=WHERE,
            fix="run without --write-study, or recommend for open weights (--weights open)",
        )
    raise AdvisorInputError(
        f"the plan {plan} trains nothing (RAG retrieves facts; it has no hyperparameters to tune)",
        where=WHERE,
        fix="run without --write-study; for a format or style to learn, use --goal both",
    )


def _neighbours(r: int) -> list[int]:
    return sorted({max(2, r // 2), r, r * 2})


def _knowledge(method: str, knowledge: str | None) -> str | None:
    """`--knowledge` for a method that retrieves; refused when missing or when it would be
    ignored (the module docstring)."""
    if METHODS[method].retrieval and knowledge is None:
        raise AdvisorInputError(
            f"the recommendation is {method}, which answers from retrieved documents, and the "
            "study needs them as data.knowledge",
            where="--knowledge",
            fix="add --knowledge PATH: a .txt, .md, .jsonl or .parquet file (a `text` field per "
            "record), or a folder of them",
        )
    if not METHODS[method].retrieval and knowledge is not None:
        raise AdvisorInputError(
            f"--knowledge names documents to retrieve from, but the recommendation ({method}) "
            "does not retrieve: its study would refuse data.knowledge",
            where="--knowledge",
            fix="run without --knowledge, or recommend for facts (--goal knowledge or both)",
        )
    problem = None if knowledge is None else file_problem(knowledge, noun="knowledge source")
    if problem is not None and problem.kind != "folder":  # a folder's documents: read later
        raise AdvisorInputError(problem.message, fix=problem.fix, where="--knowledge")
    return knowledge


def _retrieval_search(method: str, hp: dict[str, Any]) -> dict[str, Any]:
    """`top_k` around the recommended one; `chunk_size` too for `rag` (module docstring)."""
    k, words = int(hp.get("top_k", 3)), int(hp.get("chunk_size", 64))
    search: dict[str, Any] = {"top_k": sorted({1, k, 2 * k})}
    if METHODS[method].trains:
        search["chunk_size"] = words
    else:
        search["chunk_size"] = sorted({max(MIN_CHUNK_SIZE, words // 2), words, 2 * words})
    return search


def _rag_study(study: dict[str, Any], search: dict[str, Any]) -> dict[str, Any]:
    """`study` for `rag`: nothing is trained, so no rate and of the train section only
    max_seq_length (the eval prompts, passages included, are cut there); the grid of its
    retrieval parameters, nothing to prune."""
    study = {**study, "train": {"max_seq_length": study["train"]["max_seq_length"]}}
    grid = math.prod(len(v) if isinstance(v, list) else 1 for v in search.values())
    study["search"] = search
    study["optuna"] = {"sampler": "grid", "pruner": "none", "n_trials": grid}
    return study


def _alphas(hp: dict[str, Any], r: int, rslora: bool) -> dict[str, Any]:
    """The alpha search around the recommendation: scale 1 and 2 (the recommended one).

    With plain scaling the scale is alpha/r at every rank, which `alpha_ratio: [1, 2]` says. With
    rsLoRA the scale is alpha/sqrt(r), which no alpha_ratio (alpha/r) holds: the recommended
    alpha = 2 sqrt(r) is a ratio below 1 that fits one rank only (23/128 at r=128). So the study
    names the alphas, scale 1 and 2 at the recommended rank (e.g. r=64: lora_alpha [8, 16]),
    the recommended alpha among them for the warm start; at the half and double ranks the
    same alphas give scales within a factor sqrt(2) of those.
    """
    if not rslora:
        return {"alpha_ratio": [1, 2]}
    alphas = {round(scale * math.sqrt(r)) for scale in (1, 2)}
    if hp.get("lora_alpha"):
        alphas.add(hp["lora_alpha"])
    return {"lora_alpha": sorted(alphas)}


def _target_choices(suggested: list[str]) -> list[Any]:
    name = preset_name(suggested)
    if name is not None:
        return sorted({name, "all_linear"}, key=["attention_qv", name, "all_linear"].index)
    return [list(suggested), "all_linear"]


def study_for_recommendation(
    recommendation: Any,
    *,
    name: str,
    model: str,
    train: str,
    eval_file: str,
    prompt_field: str = "prompt",
    response_field: str = "response",
    metric: str | None = None,
    layout: str | None = None,
    n_trials: int = 12,
    knowledge: str | None = None,
) -> dict[str, Any]:
    """The study (as plain data) that searches around the recommendation's hyperparameters.

    `layout` is the data's (`runners.layouts`; None: left to detection); `metric` None picks
    one that fits it (perplexity for raw text). The data files must be readable regular files
    (named by their option when not). `knowledge`: the documents of a retrieval method (the
    module docstring)."""
    for option, value in (("--train", train), ("--eval", eval_file)):
        problem = file_problem(value)
        if problem is not None:
            raise AdvisorInputError(problem.message, fix=problem.fix, where=option)
    if not os.path.exists(model) and model not in known_model_presets():
        raise AdvisorInputError(
            f"the study needs a model the tuner can load locally, and {model!r} is only a shape "
            "preset (the tuner never downloads weights)",
            where="--study-model",
            fix="pass --study-model DIR (a local HF model directory or .gguf file), or "
            f"--model {' / '.join(known_model_presets())}",
        )
    method = _trained_method(list(recommendation.plan), recommendation.method)
    knowledge = _knowledge(method, knowledge)
    hp = recommendation.hyperparameters
    lr = float(hp.get("learning_rate", 2e-4))
    traits = recommendation.traits
    examples = int(traits.get("examples", 1000))
    batch = int(hp.get("batch_size", 4))
    accumulation = int(hp.get("gradient_accumulation_steps", 1))
    epochs = float(hp.get("epochs", 1))
    steps = max(20, min(2000, round(examples * epochs / (batch * accumulation))))
    low, high = float(f"{lr / 3:.2g}"), float(f"{lr * 3:.2g}")
    search: dict[str, Any] = {"learning_rate": {"low": low, "high": high, "log": True}}
    retrieval = _retrieval_search(method, hp) if knowledge is not None else {}
    if method not in ("full", "rag"):
        r = int(hp.get("r", 8))
        # AdaLoRA's layers never read use_rslora (its study refuses it): plain alphas for it
        rslora = bool(hp.get("use_rslora")) and "use_rslora" in METHODS[method].search
        search.update(
            r=_neighbours(r),
            **_alphas(hp, r, rslora),
            target_modules=_target_choices(list(hp.get("target_modules", ALL_LINEAR))),
            lora_dropout=0.05,
        )
        if rslora:
            search["use_rslora"] = True
    corpus = layout is not None and LAYOUTS[layout].kind == "text"
    data: dict[str, Any] = {"train": train, "eval": eval_file}
    if layout in (None, "prompt_response"):
        data.update(prompt_field=prompt_field, response_field=response_field)
    if layout is not None:
        data["format"] = layout
    if corpus:
        data["packing"] = True  # documents cut into max_seq_length blocks: no padding trained
    if knowledge is not None:
        data["knowledge"] = knowledge
    search.update(retrieval)
    seq_len = int(traits.get("seq_len", 512))
    if retrieval:  # prompts are cut at max_seq_length: room for the most passages searched
        words = retrieval["chunk_size"]
        most = max(words) if isinstance(words, list) else words
        context = passage_context(
            method, model, knowledge, top_k=max(retrieval["top_k"]), chunk_size=most
        )
        seq_len = math.ceil((seq_len + context) / 64) * 64
    what = "continued pre-training on a corpus, plan" if corpus else "plan"
    study = {
        "name": name,
        "description": f"Written by `advisor recommend` for {recommendation.model.get('name')}: "
        f"{what} {' -> '.join(recommendation.plan)}; searches around its starting point.",
        "seed": 0,
        "model": {"source": model},
        "data": data,
        "metric": metric or (CORPUS_METRIC if corpus else CHAT_METRIC),
        "method": method,
        "search": search,
        "train": {
            "max_steps": steps,
            "batch_size": batch,
            "gradient_accumulation_steps": accumulation,
            "max_seq_length": seq_len,
            "eval_steps": max(10, steps // 5),
        },
        "optuna": {
            "sampler": "tpe",
            "pruner": "median",
            "n_trials": n_trials,
            **_warm_start(search, hp),
        },
        "objectives": ["metric"],
    }
    return _rag_study(study, retrieval) if method == "rag" else study


def _warm_start(search: dict[str, Any], hp: dict[str, Any]) -> dict[str, Any]:
    """`optuna`'s warm start from the recommended point: its values that lie in the written
    space (`study.start.inside`: a searched parameter, a choice or inside the range), target
    modules as the preset the space names. The alpha is offered both ways, lora_alpha and the
    ratio lora_alpha / r: the space holds the one its scaling searches (`_alphas`)."""
    point: dict[str, Any] = {
        "learning_rate": hp.get("learning_rate"),
        "r": hp.get("r"),
        "lora_alpha": hp.get("lora_alpha"),
        "top_k": hp.get("top_k"),
        "chunk_size": hp.get("chunk_size"),
    }
    if hp.get("r") and hp.get("lora_alpha"):
        ratio = hp["lora_alpha"] / hp["r"]
        point["alpha_ratio"] = int(ratio) if float(ratio).is_integer() else ratio
    if "target_modules" in hp:
        named = preset_name(hp["target_modules"])
        point["target_modules"] = named or list(hp["target_modules"])
    space = searched_space(SearchSpec.model_validate(search))
    start = inside(space, {name: value for name, value in point.items() if value is not None})
    if not start:
        return {"warm_start": True}
    return {"warm_start": True, "start": start, "start_source": "recommended"}


def _portable(path: str, study_dir: Path) -> str:
    """Relative to the study file when both lie in the project (cwd), else absolute."""
    resolved, project = Path(path).resolve(), Path.cwd().resolve()
    if resolved.is_relative_to(project) and study_dir.resolve().is_relative_to(project):
        return os.path.relpath(resolved, study_dir.resolve())
    return str(resolved)


def write_study_file(path: str | Path, study: dict[str, Any]) -> Path:
    """Validate `study` like `advisor tune` would, then write it as YAML at `path` atomically.

    Relative data paths are written relative to the study file's folder, as the loader reads
    them. An invalid study raises its problems, each named by its option, and writes nothing:
    no file, no folder.
    """
    target = Path(path)
    if os.path.lexists(target):
        raise AdvisorInputError(
            f"{target} already exists", where=WHERE, fix="choose another path or remove the file"
        )
    existing = next(folder for folder in target.parents if os.path.lexists(folder))
    if not os.path.isdir(existing):
        raise AdvisorInputError(
            f"{existing} is a file, so {target} cannot be created",
            where=WHERE,
            fix="choose a path inside a folder",
        )
    _validate_draft(_placed(study, target, portable=False), target)
    header = "# Written by `advisor recommend --write-study`; check it with `advisor validate`.\n"
    text = header + yaml.safe_dump(_placed(study, target, portable=True), sort_keys=False)
    created = [folder for folder in target.parents if not folder.exists()]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        for folder in created:  # deepest first; only the empty folders made here
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    return target


def _placed(study: dict[str, Any], target: Path, *, portable: bool) -> dict[str, Any]:
    """A copy of `study` as it lies at `target`: local paths relative to its folder where they
    can be (`portable`, what is written) or absolute (what is validated before that folder
    exists: `out/..` cannot be resolved then). data.root is declared when the data lies outside
    the study's folder, which is its default."""
    placed = copy.deepcopy(study)
    data, folder = placed["data"], target.parent

    def place(path: str) -> str:
        return _portable(path, folder) if portable else str(Path(path).resolve())

    keys = [key for key in ("train", "eval", "knowledge") if key in data]
    files = [Path(data[key]).resolve() for key in keys]
    for key in keys:
        data[key] = place(data[key])
    if any(not f.is_relative_to(folder.resolve()) for f in files):
        data["root"] = place(os.path.commonpath([f.parent for f in files]))
    if os.path.exists(placed["model"]["source"]):
        placed["model"]["source"] = place(placed["model"]["source"])
    return placed


def _validate_draft(study: dict[str, Any], target: Path) -> None:
    """Load `study` as the file at `target` would load (its folder the base of relative paths)
    from a draft in a temporary folder; raise its problems named by their options."""
    with tempfile.TemporaryDirectory(prefix="advisor-study-") as folder:
        draft = Path(folder) / target.name
        draft.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
        try:
            load_study(draft, base_dir=target.parent.resolve())
        except AdvisorInputError as error:
            problems = getattr(error, "problems", None)
            if not problems:
                raise AdvisorInputError(
                    _in_options(error.message), fix=_in_options(error.fix or ""), where=WHERE
                ) from None
            named = [
                (OPTION_OF.get(dotted, dotted), message, fix)
                for _, dotted, message, fix in problems
            ]
            raise AdvisorInputError(
                "the study would not validate: "
                + "; ".join(f"{option}: {_in_options(message)}" for option, message, _ in named),
                fix="; ".join(f"{option}: {_in_options(fix)}" for option, _, fix in named),
                where=", ".join(dict.fromkeys(option for option, _, _ in named)),
            ) from None


def _in_options(text: str) -> str:
    """`text` with the study's dotted keys (data.prompt_field, ...) said as their options."""
    for key, option in OPTION_OF.items():
        if "." in key:
            text = text.replace(key, option)
    return text
