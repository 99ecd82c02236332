"""The memory estimator against measurement on CPU: tensor bytes and process peak RSS.

Issue goal: predicted vs measured peak memory within 15%. For each model (the tiny test Llama,
SmolLM2-135M), method (lora r=8 all linear, full, qlora r=8 all linear on bitsandbytes' CPU
kernels) and batch x sequence shape, a fresh process imports the training stack, loads and
prepares the model through the runner (`runners.models`, `runners.methods`: what a trial does),
then runs two AdamW steps (adamw_torch, fp32) on random tokens without padding:

* tensors, counted after the second backward from the tensors themselves: parameters (4-bit
  packed weights and their quantisation constants included), gradients, Adam's m and v;
  predicted by `advisor.decide.estimate.estimate_memory(..., precision="fp32")`: weights + adapter +
  gradients + optimizer states + quantisation overhead;
* activations: the bytes autograd saves for the backward during the second forward
  (`torch.autograd.graph.saved_tensors_hooks`, one count per storage, weights left out);
  predicted: the estimator's activations;
* process peak: the kernel's RSS high-water mark during step 2 (reset just before it through
  `/proc/self/clear_refs`); predicted: the process's RSS after the imports (the CPU counterpart
  of the estimator's fixed CUDA allowance, measured) + tensors + activations. The last column
  shows `advisor estimate`'s own total (with its fixed 0.5 GB) against it.

GPU rows (LoRA, full, QLoRA at a few shapes, `torch.cuda.max_memory_allocated`) need a lent
device; without one they stay "not yet measured".

    .venv/bin/python bench/memory.py [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import calm_threads, provenance, table, write_section

TITLE = "Memory: estimator vs measured (CPU)"
GOAL = 0.15
MB = 2**20
METHODS = ("lora", "full", "qlora")
SHAPES = ((1, 128), (4, 128), (4, 256))
QUICK_SHAPES = ((2, 64),)
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
R = 8
SMOL = "SmolLM2-135M"
RETURN_FREED = {"ADVISOR_MMAP_THRESHOLD": "65536"}
"""The comparison rows: the runner's opt-in allocator setting (`runners.allocator`: blocks over
64 KiB come from mmap and go back to the kernel when freed; by default glibc's threshold grows to
32 MiB as large blocks are freed and freed activations stay in the heap)."""


# --- the child: one configuration per process ---------------------------------------------------
def rss_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1))  # type: ignore[union-attr]


def reset_peak() -> None:
    """Reset the kernel's high-water mark of this process (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def nbytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def quant_state_bytes(model: Any) -> int:
    """Every tensor the 4-bit layers keep beside their packed weights (absmax, codes, offset)."""
    import torch

    total = 0
    for param in model.parameters():
        state = getattr(param, "quant_state", None)
        while state is not None:
            found = [getattr(state, k, None) for k in ("absmax", "code", "offset")]
            total += nbytes(t for t in found if isinstance(t, torch.Tensor))
            state = getattr(state, "state2", None)
    return total


class SavedForBackward:
    """Bytes autograd keeps for the backward pass: each tensor saved during a forward, counted
    once per storage; parameters and quantisation constants are left out (autograd keeps a
    reference to a weight, not a copy)."""

    def __init__(self, model: Any) -> None:
        tensors = [*model.parameters(), *model.buffers()]
        self.skip = {t.untyped_storage().data_ptr() for t in tensors}
        self.storages: dict[int, int] = {}

    def pack(self, tensor: Any) -> Any:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.skip:
            self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    @property
    def nbytes(self) -> int:
        return sum(self.storages.values())


def child(model_dir: str, method_name: str, batch: int, seq: int) -> dict[str, float]:
    import peft  # noqa: F401
    import torch
    import transformers  # noqa: F401  (the runtime a trial imports, before the baseline)

    from runners.allocator import return_freed_memory
    from runners.config import MethodConfig, ModelRef
    from runners.methods import get_method
    from runners.models import load_model_and_tokenizer

    return_freed_memory()  # as the runner does on CPU (runners.trial): only with RETURN_FREED
    measured: dict[str, float] = {"runtime": rss_kib("VmRSS") * 1024}
    libraries = rss_kib("RssFile") * 1024  # the shared libraries mapped so far
    method = get_method(method_name)
    cfg = MethodConfig(name=method_name, r=R, lora_alpha=2 * R, target_modules=TARGETS)
    extra = method.load_kwargs(cfg, device="cpu", dtype=torch.float32)
    model, _ = load_model_and_tokenizer(
        ModelRef(model_dir), device="cpu", dtype=torch.float32, **extra
    )
    torch.manual_seed(0)
    model = method.prepare(model, cfg, max_steps=2)
    model.train()
    measured["mapped_file"] = rss_kib("RssFile") * 1024 - libraries  # the model's files
    trainable = [p for p in model.parameters() if p.requires_grad]
    frozen = [p for p in model.parameters() if not p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    vocab = model.config.vocab_size
    for step in (1, 2):
        ids = torch.randint(0, vocab, (batch, seq))
        saved = SavedForBackward(model)
        if step == 2:
            measured["before_step"] = rss_kib("VmRSS") * 1024
            measured["load_peak"] = rss_kib("VmHWM") * 1024  # loading and the first step
            reset_peak()
        started = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
            loss = model(input_ids=ids, labels=ids).loss  # the output (logits) is dropped here
        loss.backward()
        if step == 2:
            measured["activations"] = saved.nbytes
            measured["weights"] = nbytes(frozen) + quant_state_bytes(model)
            measured["adapter_params"] = nbytes(trainable) if method.peft else 0
            if not method.peft:
                measured["weights"] += nbytes(trainable)
            measured["gradients"] = nbytes(p.grad for p in trainable)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        measured["step_seconds"] = time.perf_counter() - started
        del loss, saved
        if step == 2:
            measured["peak"] = rss_kib("VmHWM") * 1024
    moments = [s[k] for s in optimizer.state.values() for k in ("exp_avg", "exp_avg_sq")]
    measured["optimizer_states"] = nbytes(moments)
    measured["trainable_params"] = sum(p.numel() for p in trainable)
    return measured


# --- the driver ----------------------------------------------------------------------------------
def predict(model_dir: Path, method: str, batch: int, seq: int) -> dict[str, Any]:
    from advisor.decide.estimate import estimate_memory
    from advisor.decide.shapes import resolve_model

    shape = resolve_model(str(model_dir))
    common = {"r": R, "target_modules": TARGETS, "batch_size": batch, "seq_len": seq}
    cpu = estimate_memory(shape, method, device="cpu", **common)  # `advisor estimate --device cpu`
    parts = cpu.breakdown_bytes
    tensors = ("weights", "quantization_overhead", "adapter_params", "gradients")
    tensors += ("optimizer_states",)
    return {
        "tensors": sum(parts.get(k, 0.0) for k in tensors),
        "activations": parts["activations"],
        "runtime": parts["runtime"],
        "mapped_file": parts.get("mapped_checkpoint", 0.0),
        "malloc_slack": parts.get("malloc_slack", 0.0),
        "peak": cpu.total_gb * 1e9,
        "trainable_params": cpu.trainable_params,
    }


def run_child(
    model_dir: Path, method: str, batch: int, seq: int, env: dict[str, str] | None = None
) -> dict[str, float]:
    argv = [sys.executable, __file__, "--child", str(model_dir), method, str(batch), str(seq)]
    environ = {**os.environ, **(env or {})}
    done = subprocess.run(argv, check=True, capture_output=True, text=True, env=environ)
    return json.loads(done.stdout.strip().splitlines()[-1])


def model_dirs(scratch: Path) -> dict[str, Path]:
    from runners.config import ModelRef
    from runners.models import resolve_model_dir
    from runners.testing import build_tiny_llama

    return {
        "tiny Llama (h64, 2 layers, vocab 384)": build_tiny_llama(scratch / "tiny"),
        SMOL: resolve_model_dir(ModelRef("smollm2-135m")),
    }


def err(predicted: float, measured: float) -> float:
    return 100.0 * (predicted - measured) / measured if measured else float("nan")


def measure(args: argparse.Namespace, scratch: Path) -> list[dict[str, Any]]:
    """One record per configuration: what the child measured and what the estimator says; then
    SmolLM2 again with the opt-in allocator setting (RETURN_FREED), to show what it saves and
    what it costs."""
    shapes = QUICK_SHAPES if args.quick else SHAPES
    dirs = model_dirs(scratch)
    plan = [(n, d, m, shape, {}) for n, d in dirs.items() for m in METHODS for shape in shapes]
    plan += [(SMOL, dirs[SMOL], m, shape, RETURN_FREED) for m in METHODS for shape in shapes]
    records = []
    for name, directory, method, (batch, seq), env in plan:
        got = run_child(directory, method, batch, seq, env)
        got["tensors"] = sum(got[k] for k in ("weights", "adapter_params", "gradients"))
        got["tensors"] += got["optimizer_states"]
        want = predict(directory, method, batch, seq)
        allocator = "return freed" if env else "default"
        record = {"model": name, "method": method, "batch": batch, "seq": seq}
        records.append({**record, "allocator": allocator, "got": got, "want": want})
        print(json.dumps(records[-1]), flush=True)
    return records


RECORDS = Path(__file__).with_name("memory_records.jsonl")
"""The last full run's measurements (one JSON record per line after a header line), kept so that
an estimator change can be checked against them without measuring again (`--rerender`)."""


def save_records(records: list[dict[str, Any]], load: float) -> None:
    import datetime as dt

    header = {"measured": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "load_average": load}
    lines = [json.dumps(header), *(json.dumps(r) for r in records)]
    RECORDS.write_text("\n".join(lines) + "\n")


def rerender_records(scratch: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The saved measurements with the current estimator's predictions."""
    header, *records = [json.loads(line) for line in RECORDS.read_text().splitlines() if line]
    dirs = model_dirs(scratch)
    for record in records:
        record["want"] = predict(dirs[record["model"]], *(record[k] for k in KEY))
    return header, records


KEY = ("method", "batch", "seq")


def pair(want: float, got: float, digits: int = 1) -> str:
    return f"{want / MB:.{digits}f} / {got / MB:.{digits}f} ({err(want, got):+.1f}%)"


def row(record: dict[str, Any]) -> list[str]:
    got, want = record["got"], record["want"]
    method = record["method"]
    if want["trainable_params"] != got["trainable_params"]:
        method += f" (trainable {want['trainable_params']} vs {got['trainable_params']:.0f})"
    return [
        record["model"], method, f"{record['batch']} x {record['seq']}",
        pair(want["tensors"], got["tensors"]),
        pair(want["activations"], got["activations"]),
        f"{want['runtime'] / MB:.0f} / {got['runtime'] / MB:.0f}",
        f"{want['mapped_file'] / MB:.0f} / {got['mapped_file'] / MB:.0f}",
        pair(want["peak"], got["peak"], 0),
    ]  # fmt: skip


HEADERS = [
    "model", "method", "batch x seq", "tensors MiB pred / meas (err)",
    "activations MiB pred / meas (err)", "runtime RSS MiB pred / meas",
    "model file mapped MiB pred / meas", "peak RSS MiB pred / meas (err)",
]  # fmt: skip
GPU_ROWS = [
    [model, method, shape, "not yet measured (no device lent)"]
    for model in ("SmolLM2-135M",)
    for method in ("lora", "full", "qlora")
    for shape in ("1 x 512", "4 x 512", "8 x 1024")
]


def worst(records: list[dict[str, Any]], key: str, model: str) -> str:
    errors = [err(r["want"][key], r["got"][key]) for r in records if r["model"] == model]
    return f"{min(errors):+.1f}% to {max(errors):+.1f}%" if errors else "-"


def allocator_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """Each SmolLM2 configuration twice: glibc's default malloc against RETURN_FREED."""
    default = {
        (r["model"], r["method"], r["batch"], r["seq"]): r
        for r in records
        if r["allocator"] == "default"
    }
    rows = []
    for other in (r for r in records if r["allocator"] != "default"):
        base = default[(other["model"], other["method"], other["batch"], other["seq"])]
        want, got, freed = base["want"], base["got"], other["got"]
        no_slack = want["peak"] - want["malloc_slack"]
        rows.append(
            [
                other["model"], other["method"], f"{other['batch']} x {other['seq']}",
                f"{got['before_step'] / MB:.0f} / {freed['before_step'] / MB:.0f}",
                f"{got['peak'] / MB:.0f} / {freed['peak'] / MB:.0f}",
                f"{1 - freed['peak'] / got['peak']:.0%}",
                f"{no_slack / MB:.0f} ({err(no_slack, freed['peak']):+.1f}%)",
                f"{got['step_seconds']:.1f} / {freed['step_seconds']:.1f}",
            ]
        )  # fmt: skip
    return rows


ALLOCATOR_HEADERS = [
    "model", "method", "batch x seq", "RSS before step 2 MiB, default / returned",
    "peak MiB, default / returned", "peak saved", "pred without malloc slack (err vs returned)",
    "step 2 s, default / returned",
]  # fmt: skip


def render(records: list[dict[str, Any]], args: argparse.Namespace) -> str:
    plain = [r for r in records if r["allocator"] == "default"]
    models = sorted({r["model"] for r in plain}, reverse=True)
    summary = [
        f"- {model}: tensors {worst(plain, 'tensors', model)}, activations"
        f" {worst(plain, 'activations', model)}, peak RSS {worst(plain, 'peak', model)}."
        for model in models
    ]
    measured = getattr(args, "measured", None)
    lines = [
        *provenance(args.load),
        *(
            [
                f"- measured: {measured['measured']} (1-minute load average"
                f" {measured['load_average']:.2f}) by `.venv/bin/python bench/memory.py`, saved in"
                f" `bench/{RECORDS.name}`; the predictions are the current estimator's"
            ]
            if measured
            else []
        ),
        "- what: per row a fresh process; model loaded and prepared by the runner (fp32, LoRA /"
        " QLoRA r=8 on all linear layers, QLoRA = NF4 + double quantisation on bitsandbytes' CPU"
        " kernels), two AdamW steps on random tokens, glibc's malloc as the runner leaves it."
        " pred = `advisor estimate --device cpu`"
        " (`estimate_memory(device='cpu')`); err = (pred - meas) / meas. Goal: within 15%.",
        "- tensors: parameters (packed 4-bit weights and quantisation constants included),"
        " gradients and Adam's m and v, counted from the tensors after the second backward."
        " activations: what autograd saved for the backward during the second forward, one count"
        " per storage, weights excluded (`saved_tensors_hooks`). peak RSS: the kernel's"
        " high-water mark during step 2 (reset just before it), predicted as the estimator's CPU"
        " total: runtime (the process after importing torch/transformers/peft/trl, the CPU"
        " counterpart of the fixed CUDA allowance) + tensors + activations + malloc slack (0.8x"
        " the activations with a frozen base; for QLoRA 0.8x the larger of the activations and"
        " its dequantised fp32 weights) + for QLoRA the fp32 checkpoint pages it quantised from."
        " model file mapped: resident pages of the model's safetensors file"
        " after loading.",
        "",
        *table(HEADERS, [row(r) for r in plain]),
        "",
        "Error ranges:",
        "",
        *summary,
        "",
        "What was learnt and fed back into `advisor/decide/estimate.py` (first run of this bench:"
        " peak RSS predicted 25-47% low for LoRA and QLoRA on SmolLM2). (1) glibc's malloc keeps"
        " freed activations in its heap (its mmap threshold grows to 32 MiB as large blocks are"
        " freed), so RSS before step 2 already holds step 1's activations and the step's"
        " allocations fragment around them; with a frozen base that cost ~0.8x the activations"
        " on top (full fine-tuning's weight gradients reuse the space), now the estimator's"
        " `malloc_slack`; QLoRA also churns each weight's dequantised fp32 copy per matmul,"
        " which dominates its slack at batch 1. Trimming the heap after each step did not help"
        " (the excess is inside a"
        " step); fixing the mmap threshold at 64 KiB did, at a cost in step time, so it is"
        " opt-in (`ADVISOR_MMAP_THRESHOLD=65536`, `runners.allocator`). (2) QLoRA on CPU keeps"
        " the fp32 checkpoint it quantised from mapped (clean page cache, reclaimable, but"
        " resident and inside the address space `trial.max_memory_gb` caps): now the"
        " estimator's `mapped_checkpoint`. (3) CPU runs are fp32 and a process holds ~430 MiB"
        " after its imports: `--device cpu`. The same SmolLM2 runs with the opt-in setting:",
        "",
        *table(ALLOCATOR_HEADERS, allocator_rows(records)),
        "",
        "GPU (peak `torch.cuda.max_memory_allocated`, bf16):",
        "",
        *table(["model", "method", "batch x seq", "result"], GPU_ROWS),
    ]
    return "\n".join(lines)


def main() -> int:
    calm_threads()
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        model_dir, method, batch, seq = sys.argv[2:6]
        print(json.dumps(child(model_dir, method, int(batch), int(seq))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"one shape {QUICK_SHAPES[0]}")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--rerender",
        action="store_true",
        help=f"no measuring: the current estimator against the saved {RECORDS.name}",
    )
    args = parser.parse_args()
    args.load = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="advisor-bench-memory-"))
    try:
        if args.rerender:
            header, records = rerender_records(scratch)
            args.measured = header
        else:
            records = measure(args, scratch)
            if not args.quick:
                save_records(records, args.load)
        body = render(records, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(body)
    if not args.no_write:
        write_section(TITLE, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
