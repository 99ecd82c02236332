"""The shape of the house, asserted: what the rebuild established stays true as the code grows.

- no import circle among the modules of advisor/ and runners/: module-level imports, imports
  inside functions and imports under TYPE_CHECKING all count;
- the layers: every import goes down (ARCHITECTURE.md), never up or sideways between the
  packages of one layer; runners/ never imports advisor/ (a trial runs from a TrialConfig);
- no module over 500 lines, at most 8 modules directly in advisor/;
- an import of the project's own code inside a function says why it is there (`# lazy: ...`);
- only advisor/stores/ imports MLflow or Optuna's storage; review/ may use Optuna's analysis
  (importances, plots); nothing reads Optuna's private storage attributes;
- the light commands (`--help`, recommend, estimate, the service's app) import neither torch,
  transformers, peft, trl, bitsandbytes, optuna nor mlflow.

The import graph is read from the source with `ast`, nothing is imported: a circle that only
shows at run time in one branch is still a circle here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("advisor", "runners")
MAX_LINES = 500
MAX_TOP_LEVEL = 8
LAZY = "# lazy:"
OPTUNA_ANALYSIS = ("optuna.importance", "optuna.visualization", "optuna.exceptions")
PRIVATE_STORE_ATTRS = {"_storage", "_trial_id", "_study_id", "_backend"}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    end_line: int
    local: bool


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> Iterator[str]:
    """The modules of this tree an import statement names (a package face, or its module)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        parts = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*parts, base] if base else parts)
    for alias in node.names:
        yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def _imports() -> list[Import]:
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        local_nodes = {
            id(node)
            for function in ast.walk(tree)
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(function)
        }
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            for target in _resolve(module, node):
                end = node.end_lineno or node.lineno
                found.append(Import(module, target, node.lineno, end, id(node) in local_nodes))
    return found


IMPORTS = _imports()


def _own(target: str) -> str | None:
    """The module of this tree that `target` names (or lies in), None for third-party code."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for imp in IMPORTS:
        target = _own(imp.target)
        # A package's face importing its own modules is how a face works, not a loop.
        if target and target != imp.source and not target.startswith(imp.source + "."):
            graph[imp.source].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    assert _cycles(_graph()) == []


LAYERS: tuple[tuple[str, ...], ...] = (
    ("runners",),
    ("advisor", "advisor.errors", "advisor.redact", "advisor.provenance", "advisor.directions"),
    ("advisor.decide",),
    ("advisor.study",),
    ("advisor.scan", "advisor.stores"),
    ("advisor.tuning", "advisor.export"),
    ("advisor.review",),
    ("advisor.serve",),
    ("advisor.cli",),
)
"""Bottom to top, as ARCHITECTURE.md draws them."""
BELONGS = {"advisor.bundle": "advisor.export", "advisor.__main__": "advisor.cli"}
"""Top-level modules that are part of a package: the 0.1 bundle shim, `python -m advisor`."""


def _unit(module: str) -> tuple[int, str]:
    """(layer, package) of a module: its longest prefix named in LAYERS."""
    module = BELONGS.get(module, module)
    best = max(
        (
            name
            for layer in LAYERS
            for name in layer
            if module == name or module.startswith(name + ".")
        ),
        key=len,
    )
    return next(i for i, layer in enumerate(LAYERS) if best in layer), best


def test_every_module_has_a_layer() -> None:
    assert all(_unit(module) for module in MODULES)


def _layer_violations(imports: list[Import]) -> list[str]:
    wrong = []
    for imp in imports:
        target = _own(imp.target)
        if target is None:
            continue
        (low, here), (high, there) = _unit(target), _unit(imp.source)
        if here != there and low >= high:
            wrong.append(f"{imp.source}:{imp.line} -> {target} ({there} -> {here})")
    return wrong


def test_the_layer_check_catches_upward_and_sideways_imports() -> None:
    up = Import("advisor.decide.rules", "advisor.stores.keys", 1, 1, False)
    sideways = Import("advisor.tuning.session", "advisor.export.adapter", 1, 1, True)
    down = Import("advisor.review.build", "advisor.stores.records", 1, 1, False)
    assert len(_layer_violations([up, sideways, down])) == 2


def test_imports_go_down_the_layers() -> None:
    assert _layer_violations(IMPORTS) == []


def test_runners_never_imports_advisor() -> None:
    upward = [
        f"{imp.source}:{imp.line} -> {imp.target}"
        for imp in IMPORTS
        if imp.source.split(".")[0] == "runners" and imp.target.split(".")[0] == "advisor"
    ]
    assert upward == []


def test_no_module_over_500_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_at_most_8_modules_directly_in_advisor() -> None:
    top = sorted(p.name for p in (ROOT / "advisor").glob("*.py"))
    modules = [name for name in top if name not in ("__init__.py", "__main__.py")]
    assert len(modules) <= MAX_TOP_LEVEL, modules


def test_a_local_import_of_own_code_says_why() -> None:
    """Inside a function, `advisor`/`runners` code is imported only to keep something heavy off
    a light path, and the import says so (`# lazy: ...` on its lines or the line above)."""
    unexplained = []
    for imp in IMPORTS:
        if not imp.local or _own(imp.target) is None:
            continue
        lines = MODULES[imp.source].read_text(encoding="utf-8").splitlines()
        said = lines[max(0, imp.line - 2) : imp.end_line]  # the line above, then the statement
        if not any(LAZY in line for line in said):
            unexplained.append(f"{imp.source}:{imp.line} imports {imp.target}")
    assert unexplained == []


def test_only_the_stores_use_optuna_and_mlflow() -> None:
    outside = []
    for imp in IMPORTS:
        root = imp.target.split(".")[0]
        if root not in ("optuna", "mlflow") or imp.source.startswith("advisor.stores"):
            continue
        analysis = imp.target.startswith(OPTUNA_ANALYSIS)
        if not (analysis and imp.source.startswith("advisor.review")):
            outside.append(f"{imp.source}:{imp.line} imports {imp.target}")
    assert outside == []


def test_nothing_reads_optuna_s_private_storage_attributes() -> None:
    """`Study._storage`, `Trial._trial_id` and the like: the stores keep the storage they open
    and look trial ids up through the storage's public API (`advisor.stores.coordination`)."""
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Attribute) and node.attr in PRIVATE_STORE_ATTRS):
                continue
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                continue  # our own classes' attributes of that name
            found.append(f"{module}:{node.lineno} .{node.attr}")
    assert found == []


HEAVY = ("torch", "transformers", "peft", "trl", "bitsandbytes", "mlflow", "optuna")

PROBE = textwrap.dedent(
    """
    import json, sys
    from typer.testing import CliRunner
    from advisor.cli import app

    HEAVY = set(sys.argv[1:])
    runner = CliRunner()
    codes = [
        runner.invoke(app, ["--help"]).exit_code,
        runner.invoke(app, ["recommend", "--model", "llama-2-7b", "--json"]).exit_code,
        runner.invoke(app, ["estimate", "--model", "llama-3-8b", "--method", "qlora",
                            "--json"]).exit_code,
    ]
    # The service's app (recommend and estimate over HTTP) is built from the same light path.
    from advisor.serve import ServeSettings, create_app

    create_app(ServeSettings())
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
    print(json.dumps({"codes": codes, "heavy": heavy}))
    """
)


def test_the_light_commands_stay_light() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *HEAVY],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["codes"] == [0, 0, 0]
    assert out["heavy"] == [], f"heavy modules imported: {out['heavy']}"
