"""`advisor try`: answer a prompt with a trial's adapter, or with a task's, as a bundle would.

The prompt is formatted as in training: the study's system prompt, then the user turn, through
the tokenizer's chat template; the answer is greedy.
"""

from __future__ import annotations

from advisor.errors import AdvisorInputError
from advisor.stores.records import RecordedStudy
from runners.evaluate import generate
from runners.models import load_model_and_tokenizer

from .adapter import Progress, cached_adapter, task_adapter, trial_config, trial_dtype
from .bundle import open_adapters


def try_trial(
    recorded: RecordedStudy,
    trial: int | str,
    prompt: str,
    *,
    max_new_tokens: int = 64,
    progress: Progress | None = None,
) -> str:
    """Answer `prompt` with the base model plus trial `trial`'s adapter (greedy decoding).

    The prompt is formatted as in training: the study's system prompt, then the user turn,
    through the tokenizer's chat template.
    """
    import torch
    from peft import PeftModel

    if max_new_tokens < 1:
        raise AdvisorInputError(
            f"must be >= 1, got {max_new_tokens}",
            where="--max-new-tokens",
            fix="give how many tokens to generate, e.g. --max-new-tokens 64",
        )
    say = progress or (lambda _msg: None)
    number, run_id = recorded.adapter_run(trial)
    config = trial_config(recorded, run_id)
    say(f"fetching the adapter of trial {number}")
    adapter = cached_adapter(recorded, run_id)
    say("loading the base model and the adapter")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, trial_dtype(recorded, number))
    base, tokenizer = load_model_and_tokenizer(config.model, device=device, dtype=dtype)
    model = PeftModel.from_pretrained(base, str(adapter))
    messages = []
    if config.data.system_prompt:
        messages.append({"role": "system", "content": config.data.system_prompt})
    messages.append({"role": "user", "content": prompt})
    say("generating")
    return generate(model, tokenizer, [messages], max_new_tokens=max_new_tokens, batch_size=1)[0]


def try_task(
    tasks: dict[str, RecordedStudy],
    task: str,
    prompt: str,
    *,
    trial: int | str = "best",
    max_new_tokens: int = 64,
    progress: Progress | None = None,
) -> tuple[int, str]:
    """(trial number, answer): `prompt` answered by task `task`'s adapter, loaded the way a
    bundle loads it (base once, the adapter by task name, the task's system prompt)."""
    if task not in tasks:
        raise AdvisorInputError(
            f"unknown task {task!r}", where="--task", fix=f"use one of: {', '.join(tasks)}"
        )
    if max_new_tokens < 1:
        raise AdvisorInputError(
            f"must be >= 1, got {max_new_tokens}",
            where="--max-new-tokens",
            fix="give how many tokens to generate, e.g. --max-new-tokens 64",
        )
    say = progress or (lambda _msg: None)
    say(f"fetching the adapter of task {task}")
    adapter, facts, dtype = task_adapter(tasks[task], trial)
    say("loading the base model and the adapter")
    bundle = open_adapters(
        facts.base_model_dir,
        {task: adapter},
        {task: {"system_prompt": facts.system_prompt}},
        study=facts.study,
        dtype=dtype,
    )
    say("generating")
    return facts.trial, bundle.generate(task, [prompt], max_new_tokens=max_new_tokens)[0]
