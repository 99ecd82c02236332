"""Contract test over EVERY registered method, plus the registry's own rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from runners.config import MethodConfig, ModelRef, TrainConfig
from runners.data import load_datasets
from runners.errors import TrialInputError
from runners.methods import METHODS, Method, get_method, register_method
from runners.models import load_model_and_tokenizer
from runners.train import Placement, train
from runners.trial import count_params, seed_everything

CPU = Placement(device="cpu", precision="fp32")


def _method_config(name: str) -> MethodConfig:
    method = METHODS[name]
    targets = ("q_proj", "v_proj") if method.uses_target_modules else None
    return MethodConfig(name, r=4, lora_alpha=8, target_modules=targets)


@pytest.mark.parametrize("name", sorted(n for n, m in METHODS.items() if m.trains))
def test_every_method_prepares_trains_and_saves(
    name: str, tiny_model: Path, toy_files, tmp_path: Path, make_config
) -> None:
    import torch

    method = get_method(name)
    cfg = _method_config(name)
    extra = method.load_kwargs(cfg, device="cpu", dtype=torch.float32)
    model, tokenizer = load_model_and_tokenizer(
        ModelRef(str(tiny_model)), device="cpu", dtype=torch.float32, **extra
    )
    seed_everything(0)
    model = method.prepare(model, cfg, max_steps=2)
    trainable, total = count_params(model)
    if method.peft:
        assert 0 < trainable < total / 5
    else:
        assert trainable == total
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    train_ds, eval_ds = load_datasets(make_config().data, tokenizer, max_length=64)
    outcome = train(
        model,
        tokenizer,
        train_ds,
        eval_ds,
        TrainConfig(max_steps=2, learning_rate=1e-2, eval_steps=2, max_seq_length=64),
        seed=0,
        placement=CPU,
        output_dir=tmp_path / "t",
        callbacks=method.callbacks(model),
    )
    assert outcome.steps == 2 and outcome.eval_curve[0][0] == 2 and outcome.tokens > 0
    changed = [
        n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])
    ]
    assert changed, f"{name}: no trainable weight moved in 2 steps"

    if method.peft:
        from peft import PeftModel, get_peft_model_state_dict

        model.save_pretrained(tmp_path / "adapter")
        assert any((tmp_path / "adapter").glob("adapter_model.*"))
        base, _ = load_model_and_tokenizer(
            ModelRef(str(tiny_model)),
            device="cpu",
            dtype=torch.float32,
            **method.load_kwargs(cfg, device="cpu", dtype=torch.float32),
        )
        reloaded = PeftModel.from_pretrained(base, tmp_path / "adapter")
        # What must hold everywhere: the adapter comes back bit for bit.
        saved, loaded = get_peft_model_state_dict(model), get_peft_model_state_dict(reloaded)
        assert saved.keys() == loaded.keys()
        assert all(torch.equal(saved[k], loaded[k]) for k in saved), f"{name}: adapter changed"
        ids = torch.tensor([[1, 5, 9, 12, 2]])
        model.eval()
        reloaded.eval()
        with torch.no_grad():
            trained_logits = model(input_ids=ids).logits
            reloaded_logits = reloaded(input_ids=ids).logits
        # An fp32 base reloads exactly, so the logits agree to float rounding. A 4-bit base is
        # quantised anew, and bitsandbytes' CPU kernels leave the trained model's double-
        # quantised block scales (8-bit absmax) one step off a fresh quantisation on some CPU
        # families (measured: absmax +-1, logits 1.8e-3 apart on AMD EPYC): the logits then
        # agree within one 8-bit step of their own scale, 2**-7 relative.
        quantised = "quantization_config" in method.load_kwargs(
            cfg, device="cpu", dtype=torch.float32
        )
        scale = float(trained_logits.abs().max())
        atol = scale * 2**-7 if quantised else 1e-5
        assert torch.allclose(trained_logits, reloaded_logits, atol=atol, rtol=0), (
            f"{name}: logits {float((trained_logits - reloaded_logits).abs().max()):.2e} apart"
        )


@pytest.mark.parametrize("name", sorted(n for n, m in METHODS.items() if not m.trains))
def test_a_method_that_does_not_train_answers_with_the_base_model(
    name: str, tiny_model: Path
) -> None:
    """What the trial does not train must be the model as loaded: no adapter, no weight moved."""
    import torch

    model, _ = load_model_and_tokenizer(
        ModelRef(str(tiny_model)), device="cpu", dtype=torch.float32
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    prepared = METHODS[name].prepare(model, _method_config(name), max_steps=2)
    assert prepared is model and not METHODS[name].peft
    assert all(torch.equal(p, before[n]) for n, p in prepared.named_parameters())


def test_registry_rejects_duplicates_and_names_known_methods() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_method(dataclasses.replace(METHODS["lora"]))
    with pytest.raises(TrialInputError) as err:
        get_method("lorra")
    assert "method.name" in str(err.value)
    for name in ("lora", "dora", "qlora", "full", "adalora", "ia3", "prompt_tuning"):
        assert name in str(err.value)


def test_unknown_target_module_lists_the_real_ones(tiny_model: Path) -> None:
    import torch

    model, _ = load_model_and_tokenizer(
        ModelRef(str(tiny_model)), device="cpu", dtype=torch.float32
    )
    cfg = MethodConfig("lora", r=4, target_modules=("q_proj", "query_key_value"))
    with pytest.raises(TrialInputError) as err:
        get_method("lora").prepare(model, cfg)
    assert "query_key_value" in str(err.value) and "'v_proj'" in str(err.value)


def test_method_entries_are_frozen() -> None:
    assert all(isinstance(m, Method) for m in METHODS.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        METHODS["lora"].peft = False  # type: ignore[misc]


def test_adalora_reallocates_ranks_through_the_shared_loop(
    tiny_model: Path, tmp_path: Path, make_config
) -> None:
    """Without the method's callback AdaLoRA would silently train as a fixed-rank LoRA."""
    import torch

    method = get_method("adalora")
    model, tokenizer = load_model_and_tokenizer(
        ModelRef(str(tiny_model)), device="cpu", dtype=torch.float32
    )
    cfg = MethodConfig("adalora", r=4, target_modules=("q_proj", "v_proj"))
    model = method.prepare(model, cfg, max_steps=12)
    assert model.peft_config["default"].rank_pattern is None
    train_ds, eval_ds = load_datasets(make_config().data, tokenizer, max_length=64)
    train(
        model,
        tokenizer,
        train_ds,
        eval_ds,
        TrainConfig(max_steps=12, learning_rate=1e-2, eval_steps=12, max_seq_length=64),
        seed=0,
        placement=CPU,
        output_dir=tmp_path / "t",
        callbacks=method.callbacks(model),
    )
    pattern = model.peft_config["default"].rank_pattern
    assert pattern, "update_and_allocate never ran"
    kept = sum(sum(bool(x) for x in mask) for mask in pattern.values())
    assert kept <= 4 * len(pattern)  # budget pruned from init_r=6 towards target_r=4


def test_adalora_needs_a_step_budget(tiny_model: Path) -> None:
    import torch

    model, _ = load_model_and_tokenizer(
        ModelRef(str(tiny_model)), device="cpu", dtype=torch.float32
    )
    with pytest.raises(TrialInputError, match=r"train\.max_steps"):
        get_method("adalora").prepare(model, MethodConfig("adalora", r=4), max_steps=1)


def test_train_seconds_count_the_steps_not_the_evaluations(
    tiny_model: Path, tmp_path: Path, make_config
) -> None:
    """transformers evaluates inside `train()` (every eval_steps, and after a last step that is
    not one of them): those evaluations are timed apart, so tokens/s measures training."""
    import time

    import torch

    method = get_method("lora")
    cfg = _method_config("lora")
    model, tokenizer = load_model_and_tokenizer(
        ModelRef(str(tiny_model)), device="cpu", dtype=torch.float32
    )
    seed_everything(0)
    model = method.prepare(model, cfg, max_steps=3)
    train_ds, eval_ds = load_datasets(make_config().data, tokenizer, max_length=64)
    started = time.perf_counter()
    outcome = train(
        model, tokenizer, train_ds, eval_ds,
        TrainConfig(max_steps=3, learning_rate=1e-2, eval_steps=2, max_seq_length=64),
        seed=0, placement=CPU, output_dir=tmp_path / "t",
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert [step for step, _ in outcome.eval_curve] == [2, 3]  # step 3: transformers' final eval
    assert outcome.eval_loss_seconds > 0 and outcome.train_seconds > 0
    assert outcome.train_seconds + outcome.eval_loss_seconds <= elapsed
    assert outcome.final_eval_loss == outcome.eval_curve[-1][1]  # no third evaluation


def test_a_preset_is_named_by_its_modules_in_any_order_and_no_other_list_is() -> None:
    """`--write-study` and `--verify` write a recommendation's modules as the preset's name
    (one vocabulary for every Llama-style model); an explicit list that is no preset stays one."""
    from runners.methods.targets import TARGET_MODULE_PRESETS, preset_name

    for name, modules in TARGET_MODULE_PRESETS.items():
        assert preset_name(list(reversed(modules))) == name
    assert preset_name(["q_proj", "up_proj"]) is None
    assert preset_name(["q_proj"]) is None  # a part of a preset is not the preset
