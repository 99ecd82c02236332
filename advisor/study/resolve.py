"""From a study and one trial's sampled values to a fully resolved `TrialConfig`.

The tuner (which owns Optuna) asks `search_parameters(spec)` what to sample, turns each
`ParamSpec` into a `trial.suggest_*` call, and hands the sampled dict to `resolve_trial_config`.
Optuna categorical choices must be str/int/float, so a target-modules choice travels as a string:
a preset name (`attention_qv`) or explicit names joined by `+` (`q_proj+k_proj`); see
`encode_choice` / `decode_choice` in `advisor.study.presets`.

A study that searches the method (`search.method`) has a conditional space: `method` first, then
each parameter under the condition of the methods that take it (`Param.methods`), each method's
own parameters as `method_view` shows them (`advisor.study.method_search`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from runners.config import (
    DataConfig,
    EvalConfig,
    MethodConfig,
    ModelRef,
    TrainConfig,
    TrialConfig,
)
from runners.methods import METHODS

from .method_search import (
    method_view,
    optuna_name,
    searched_methods,
    searches_method,
    trial_values,
)
from .presets import encode_choice, resolve_target_modules
from .space import NUMERIC_PARAMS, PARAM_NAMES, FloatRange, IntRange, Param, is_searched
from .spec import StudySpec

ParamSpec = Param
"""The name this type had in 0.1 (`advisor.study.ParamSpec`)."""


def _values(spec: StudySpec) -> dict[str, Any]:
    """Each parameter as written: fixed, choices or range (None when it does not apply).

    The replay fraction is a search parameter like the others; fixed in data.replay.fraction it
    is one more fixed parameter (the spec refuses it in both places)."""
    search = spec.search
    values: dict[str, Any] = {name: getattr(search, name) for name in NUMERIC_PARAMS}
    replay = spec.data.replay if spec.data is not None else None  # None: a multi-task umbrella
    if values["replay_fraction"] is None and replay is not None:
        values["replay_fraction"] = replay.fraction
    choices = search.target_choices()
    values["target_modules"] = [encode_choice(c) for c in choices] if choices else None
    return values


def search_parameters(spec: StudySpec) -> list[ParamSpec]:
    """The searched parameters (lists of two or more choices, and ranges), in a stable order.

    With a searched method: `method` first (the sampler draws it before anything it decides),
    then each method's parameters in the listed methods' order, one Param per Optuna name with
    the methods that sample it; a parameter shared by several methods (r by lora and qlora,
    learning_rate by the methods without their own) is one dimension the sampler learns across
    them."""
    if not searches_method(spec):
        return _own_parameters(spec)
    methods = searched_methods(spec)
    params: dict[str, ParamSpec] = {"method": ParamSpec("method", "categorical", choices=methods)}
    for method in methods:
        for p in _own_parameters(method_view(spec, method)):
            name = optuna_name(spec, method, p.name)
            known = params.get(name)
            takers = (*known.methods, method) if known is not None else (method,)
            params[name] = replace(p, name=name, methods=takers)
    return list(params.values())


def _own_parameters(spec: StudySpec) -> list[ParamSpec]:
    params: list[ParamSpec] = []
    for name, value in _values(spec).items():
        if value is None or not is_searched(value):
            continue
        if isinstance(value, IntRange):
            params.append(
                ParamSpec(
                    name, "int", low=value.low, high=value.high, log=value.log, step=value.step
                )
            )
        elif isinstance(value, FloatRange):
            params.append(ParamSpec(name, "float", low=value.low, high=value.high, log=value.log))
        else:
            params.append(ParamSpec(name, "categorical", choices=tuple(value)))
    return params


def fixed_parameters(spec: StudySpec) -> dict[str, Any]:
    """Parameters with one value (a scalar or a one-element list); target_modules encoded.
    With a searched method: each listed method's, under their Optuna names (a value two
    methods share once)."""
    if searches_method(spec):
        fixed: dict[str, Any] = {}
        for method in searched_methods(spec):
            for name, value in fixed_parameters(method_view(spec, method)).items():
                fixed[optuna_name(spec, method, name)] = value
        return fixed
    fixed = {}
    for name, value in _values(spec).items():
        if value is None or is_searched(value):
            continue
        fixed[name] = value[0] if isinstance(value, list) else value
    return fixed


def representative_parameters(spec: StudySpec) -> dict[str, Any]:
    """A value for every searched parameter without sampling: first choice, or the range's low.

    Used for the baseline run, which applies no method but still needs a complete config
    (of a searched method's study: the first listed method's).
    """
    if searches_method(spec):
        method = searched_methods(spec)[0]
        own = representative_parameters(method_view(spec, method))
        return {"method": method, **{optuna_name(spec, method, k): v for k, v in own.items()}}
    return {
        p.name: p.choices[0]
        if p.kind == "categorical"
        else (int(p.low) if p.kind == "int" else p.low)
        for p in search_parameters(spec)
    }


def resolve_trial_config(
    spec: StudySpec,
    params: dict[str, Any],
    *,
    trial_number: int,
    output_dir: str,
    available_modules: list[str] | None = None,
    baseline: bool = False,
    cuda: bool | None = None,
) -> TrialConfig:
    """The `TrialConfig` of one trial: the spec's fixed values overridden by `params`.

    `params` holds the sampled values by name (`r`, `lora_alpha` or `alpha_ratio`,
    `target_modules` as an encoded string, `learning_rate`, `lora_dropout`, `replay_fraction`,
    `use_rslora`).
    Every searched parameter must be present unless `baseline` is True (then the first choice /
    low end is used). alpha_ratio becomes lora_alpha = ratio * r. With `available_modules`, target
    modules are checked against the model's names (AdvisorInputError with the closest match).
    `cuda`: whether the trial will train on CUDA, for `train.optimizer: auto`; None: ask this
    machine (`trains_on_cuda`), which is where a worker resolves its own trials.
    A study that searches the method takes `params["method"]` (the baseline: the first listed
    method) and resolves the trial as that method's view of the study (`method_view`).
    """
    if searches_method(spec):
        values = {**(representative_parameters(spec) if baseline else {}), **params}
        if "method" not in values:
            raise ValueError(f"trial {trial_number} lacks a value for the searched `method`")
        method = values["method"]
        if method not in searched_methods(spec):
            raise ValueError(f"trial {trial_number}: method {method!r} is not searched")
        return resolve_trial_config(
            method_view(spec, method),
            trial_values(spec, method, values),
            trial_number=trial_number,
            output_dir=output_dir,
            available_modules=available_modules,
            baseline=baseline,
            cuda=cuda,
        )
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise ValueError(f"unknown trial parameters {unknown}; known: {', '.join(PARAM_NAMES)}")
    values = {**fixed_parameters(spec), **(representative_parameters(spec) if baseline else {})}
    values.update(params)
    missing = [p.name for p in search_parameters(spec) if p.name not in values]
    if missing:
        raise ValueError(f"trial {trial_number} lacks values for the searched parameters {missing}")
    return TrialConfig(
        study=spec.name,
        trial_number=trial_number,
        seed=spec.seed,
        model=ModelRef(
            source=spec.model.source,
            trust_remote_code=spec.model.trust_remote_code,
            gguf_file=spec.model.gguf_file,
            chat_template=spec.model.chat_template,
        ),
        data=DataConfig(
            train_path=spec.data.train,
            eval_path=spec.data.eval,
            prompt_field=spec.data.prompt_field,
            response_field=spec.data.response_field,
            system_prompt=spec.data.system_prompt,
            max_train_examples=spec.data.max_train_examples,
            max_eval_examples=spec.data.max_eval_examples,
            format=spec.data.format,
            packing=spec.data.packing,
            knowledge_path=spec.data.knowledge,
            **_replay(spec, values),
        ),
        method=_method(spec, values, available_modules),
        train=TrainConfig(
            max_steps=spec.train.max_steps,
            learning_rate=_learning_rate(values),
            batch_size=spec.train.batch_size,
            gradient_accumulation_steps=spec.train.gradient_accumulation_steps,
            max_seq_length=spec.train.max_seq_length,
            eval_steps=spec.train.eval_steps,
            warmup_ratio=spec.train.warmup_ratio,
            weight_decay=spec.train.weight_decay,
            gradient_checkpointing=spec.train.gradient_checkpointing,
            optimizer=resolve_optimizer(spec, cuda=cuda),
        ),
        eval=EvalConfig(
            metric=spec.metric,
            max_new_tokens=spec.eval.max_new_tokens,
            batch_size=spec.eval.batch_size,
            samples_to_log=spec.eval.samples_to_log,
            forgetting=spec.eval.forgetting,
            forgetting_text_tokens=spec.eval.forgetting_text_tokens,
            forgetting_prompts=spec.eval.forgetting_prompts,
        ),
        output_dir=output_dir,
        device=spec.device,
        precision=spec.precision,
        baseline=baseline,
        processes=spec.trial.processes,
    )


def trains_on_cuda(device: str) -> bool:
    """Whether this machine's trials train on CUDA: the study's `device`, or for `auto` whether
    a GPU is visible (CUDA_VISIBLE_DEVICES, set by `advisor worker --gpus`, included).

    `torch.cuda.device_count()` asks NVML first, so the orchestrator creates no CUDA context
    (the runner decides `auto` the same way, with `torch.cuda.is_available()`).
    """
    if device != "auto":
        return device == "cuda"
    import torch

    return torch.cuda.device_count() > 0


def resolve_optimizer(spec: StudySpec, *, cuda: bool | None = None) -> str:
    """`train.optimizer` as set, or its `auto` default (the method's registry entry) for this
    study on this machine; CUDA is only probed (importing torch) when the answer depends on it,
    as for qlora (paged 8-bit AdamW on CUDA, plain AdamW on the CPU)."""
    chosen = spec.train.optimizer
    if chosen != "auto":
        return chosen
    method = METHODS[spec.method]
    if method.optimizer(cuda=False) == method.optimizer(cuda=True):
        return method.optimizer(cuda=False)
    on_cuda = trains_on_cuda(spec.device) if cuda is None else cuda
    return method.optimizer(cuda=on_cuda)


def _replay(spec: StudySpec, values: dict[str, Any]) -> dict[str, Any]:
    """DataConfig's replay fields: the file and its fields from data.replay, the fraction from
    the trial's values (sampled or fixed)."""
    replay = spec.data.replay
    if replay is None:
        return {}
    return {
        "replay_path": replay.path,
        "replay_fraction": float(values.get("replay_fraction") or 0.0),
        "replay_prompt_field": replay.prompt_field,
        "replay_response_field": replay.response_field,
    }


def _method(spec: StudySpec, values: dict[str, Any], available: list[str] | None) -> MethodConfig:
    r = int(values["r"]) if values.get("r") is not None else None
    alpha = values.get("lora_alpha")
    if alpha is None and values.get("alpha_ratio") is not None and r is not None:
        alpha = float(values["alpha_ratio"]) * r
    targets = None
    if values.get("target_modules") is not None:
        targets = resolve_target_modules(
            values["target_modules"], available, where="search.target_modules"
        )
    return MethodConfig(
        name=spec.method,
        r=r,
        lora_alpha=float(alpha) if alpha is not None else None,
        target_modules=targets,
        lora_dropout=float(values.get("lora_dropout") or 0.0),
        use_rslora=bool(values.get("use_rslora") or False),
        top_k=_whole(values.get("top_k")),
        chunk_size=_whole(values.get("chunk_size")),
    )


def _whole(value: Any) -> int | None:
    return None if value is None else int(value)


def _learning_rate(values: dict[str, Any]) -> float:
    """The trial's learning rate; 0.0 for a method that trains nothing (`rag`), whose study
    has none (a TrainConfig always holds one)."""
    rate = values.get("learning_rate")
    return 0.0 if rate is None else float(rate)
