"""How `advisor recommend` prints for people: the ranking, the reasons, the hyperparameters with
their rules and sources, the past studies it learnt from and what the data said.

Kept apart from the commands (advisor/cli/decide.py) so that each stays readable; like them it
imports only typer and rich at module level (`advisor --help` pays for nothing else).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from advisor.cli._common import console

if TYPE_CHECKING:  # pragma: no cover
    from advisor.decide.traits import DataTraits


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _count(n: int | None) -> str:
    """16.8M rather than 16,777,216: the ranking table must fit 80 columns."""
    if n is None:
        return "-"
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return str(n)


def render_recommendation(rec: Any) -> None:
    """Rich rendering for people: method and plan, ranking table, reasons, hyperparameters."""
    from rich.table import Table  # not at module level: `advisor --help` does not need it

    model = rec.model.get("name", "?")
    if rec.fits_nowhere:
        console.print(f"[bold red]No method fits[/] (model {model}); best if it did: {rec.method}")
    else:
        console.print(f"[bold]Recommended:[/] [green]{rec.method}[/]  (model {model})")
    steps = " -> ".join(
        f"{s.method}" + (f" x{s.count}" if s.count > 1 else "") for s in rec.plan_steps
    )
    console.print(f"[bold]Plan:[/] {steps}")
    for step in rec.plan_steps:
        console.print(f"  - {step.method}: {step.what}")
    if rec.fits_nowhere:
        console.print("[bold red]Nothing fits this hardware.[/] What would fit:")
        for hint in rec.what_would_fit:
            console.print(f"  - {hint}")
    table = Table(title="Ranking", show_lines=False)
    for column in (
        "method",
        "score",
        "fits",
        "memory GB",
        "trainable",
        "artefact MB",
        "hours",
        "USD",
    ):
        table.add_column(column, justify="left" if column in ("method", "fits") else "right")
    for c in rec.ranking:
        fits = "[green]yes[/]" if c.fits else "[red]no[/]"
        table.add_row(
            c.method,
            f"{c.score:g}",
            fits,
            _fmt(c.memory_gb, ".1f"),
            _count(c.trainable_params),
            _fmt(c.adapter_mb, ",.1f"),
            _fmt(c.hours, ".2f"),
            _fmt(c.cost_usd, ",.2f"),
        )
    console.print(table)
    console.print("[bold]Why:[/]")
    for reason in rec.reasons:
        console.print(f"  - {reason}", highlight=False)
    if rec.fit and rec.fit["levers"]:
        console.print("[bold]Levers[/] (each alone, estimated):")
        for lever in rec.fit["levers"]:
            fits = "fits" if lever["fits"] else "does not fit"
            console.print(
                f"  - {lever['change']}: {lever['memory_gb']:.2f} GB ({fits})", highlight=False
            )
    render_evidence(rec.evidence)
    if rec.hyperparameters:
        console.print("[bold]Starting hyperparameters[/] (value: why; source):")
        for key, value in rec.hyperparameters.items():
            why = rec.hyperparameter_reasons.get(key)
            said = f" -- {why['reason']}" if why else ""  # the sources: --json
            if why and why.get("evidence"):  # a past study moved it off the rule's value
                said = f" -- {why['evidence']}; the rule:{said[3:]}"
            console.print(f"  {key}: {value}{said}", highlight=False, markup=False)


def render_evidence(evidence: list[dict[str, Any]]) -> None:
    """The finished studies weighed: what each found, how alike it is, and what it moved."""
    if not evidence:
        return
    console.print("[bold]Evidence[/] (finished studies, most alike first):")
    for used in sorted(evidence, key=lambda u: -u["similarity"]):
        found = used["found"]
        figures = [f"best trial {found['best_trial']}: {found['metric']} {found['best_score']:.3g}"]
        if found["gain"] is not None:
            figures.append(f"gain {found['gain']:+.3g}")
        if found["cost_usd"] is not None:
            figures.append(f"${found['cost_usd']:.3g}")
        figures += [f"{k} {v:.3g}" for k, v in found.get("forgetting", {}).items()]
        params = ", ".join(f"{k}={v}" for k, v in found["best_params"].items())
        line = (
            f"  - {used['name']} ({found['method']} on {found['model']}, similarity "
            f"{used['similarity']:g}): {'; '.join(figures)}; {params}; moved: "
            + ", ".join(used["contributed"])
        )
        console.print(line, highlight=False, markup=False)


def render_data_traits(data: DataTraits, from_data: list[str]) -> None:
    """What the data said, and which traits it set."""
    console.print(f"[bold]From the data[/] ({data.path}, {data.layout} layout):", highlight=False)
    languages = ", ".join(f"{code} {share:.0%}" for code, share in list(data.languages.items())[:4])
    lines = [
        f"examples: {data.examples}",
        f"{data.unit} per example (formatted): mean {data.length_mean:g}, p95 {data.length_p95}"
        f" -> seq_len {data.seq_len}",
        f"completion {data.unit} (assistant turns): mean {data.completion_mean:g}",
        f"data format: {data.data_format}",
        f"languages: {languages or '-'}",
        f"counted by: {data.counted_by}",
    ]
    for line in lines:
        console.print(f"  {line}", highlight=False)
    taken = ", ".join(from_data) or "none (options given explicitly win)"
    console.print(f"  traits taken from the data: {taken}", highlight=False)
