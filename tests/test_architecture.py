"""The layering of loadbench, checked from the source (docs/architecture.md).

Every module under loadbench/ is parsed with `ast`; every import counts, at any depth
(lazy imports inside functions too: a lazy import hides a dependency from start-up time,
not from the design). Three rules:

- no import circle between loadbench modules;
- reporters (`loadbench.report.*`) and saved models (`loadbench.result*`) import nothing
  that measures: they must render or load an old result file without the load generator;
- module size: no module outside `engines/` over 450 lines. The modules still over it are
  listed in `KNOWN_OVER` with their size today: that list may only shrink (a listed module
  must not grow, and one that got under the limit must be removed from the list).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "loadbench"
MAX_LINES = 450

# modules that generate or judge load: a reporter or a result model importing one of them
# would drag the load generator (and its dependencies) into rendering an old file
MEASURING = (
    "loadbench.runner",
    "loadbench.shard",
    "loadbench.engines",
    "loadbench.executors",
    "loadbench.preflight",
    "loadbench.url_scenario",
    "loadbench.session",
    "loadbench.target",
    "loadbench.sweep",  # the search; its models live in loadbench.result
    "loadbench.load",
    "loadbench.plan",
    "loadbench.merge",
    "loadbench.pacing",
)

# still over MAX_LINES: each may only shrink; remove an entry once it is under the limit
KNOWN_OVER: dict[str, int] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".")
    is_package = MODULES[module].name == "__init__.py"
    base = package if is_package else package[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str) -> str | None:
    """The loadbench module `name` refers to (a module, or a name inside one), if any."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    """Every loadbench module `module` imports, at any depth, lazily or not."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    # `if TYPE_CHECKING:` imports are annotations only: never executed, not a dependency
    typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                   for inner in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            # `from loadbench.report import sweep` imports the submodule sweep
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            target = _known(name) if name.startswith("loadbench") else None
            if target and target != module:
                found.add(target)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def _is_package_of(package: str, module: str) -> bool:
    """`loadbench.report` (its __init__) is imported by Python for any submodule; such an
    edge is not a dependency the design chose, so circles through it are not circles."""
    return module.startswith(package + ".")


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def edges(module: str) -> list[str]:
        return [t for t in sorted(GRAPH[module]) if not _is_package_of(t, module)]

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges(module):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return components


def _measuring(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in MEASURING)


def _is_presentation(module: str) -> bool:
    return module.startswith("loadbench.report") or module.startswith("loadbench.result")


def test_the_checker_sees_lazy_imports():
    """A function-level import is an edge: the checker must not only read the top."""
    source = "def f():\n    from loadbench.result import Result\n"
    tree = ast.parse(source)
    lazy = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert lazy and lazy[0].module == "loadbench.result"
    assert any(GRAPH.values()), "no imports found at all: the checker is broken"


def test_no_import_circle():
    assert _cycles() == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _is_presentation(m)))
def test_reporters_and_results_import_nothing_that_measures(module):
    bad = sorted(target for target in GRAPH[module] if _measuring(target))
    assert bad == [], f"{module} imports measuring modules {bad}"


# what a reporter may read: saved models, the metric table and how its endpoints and flows
# are named (record_names: `run[name]`, file slugs), histograms, other reporters
REPORTER_MAY_IMPORT = ("loadbench.result", "loadbench.metrics", "loadbench.record_names",
                       "loadbench.stats", "loadbench.errors", "loadbench.registry",
                       "loadbench.report")


@pytest.mark.parametrize("module", sorted(m for m in MODULES
                                          if m.startswith("loadbench.report")))
def test_reporters_import_only_models(module):
    """Stricter than "nothing that measures": a reporter renders a saved document, so it
    needs the models and nothing that computes them (no compare, no sweep, no thresholds)."""
    bad = sorted(target for target in GRAPH[module]
                 if not any(target == allowed or target.startswith(allowed + ".")
                            or target.startswith(allowed + "_")
                            for allowed in REPORTER_MAY_IMPORT))
    assert bad == [], f"{module} imports {bad}"


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("module", sorted(m for m in MODULES
                                          if not m.startswith("loadbench.engines")))
def test_module_size(module):
    lines = _lines(MODULES[module])
    if module in KNOWN_OVER:
        assert lines <= KNOWN_OVER[module], (
            f"{module} grew to {lines} lines (was {KNOWN_OVER[module]}): it may only shrink")
        assert lines > MAX_LINES, (
            f"{module} is {lines} lines now: remove it from KNOWN_OVER")
    else:
        assert lines <= MAX_LINES, f"{module} is {lines} lines (limit {MAX_LINES})"


def test_known_over_lists_only_existing_modules():
    assert sorted(set(KNOWN_OVER) - set(MODULES)) == []
