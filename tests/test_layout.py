"""The shape of the code: bench/ imports without a circle, no module is longer than 400 lines, and every
module says in its docstring what it holds. Imports inside functions count: a circle broken only by
deferring an import is still two modules that need each other."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(BENCH.rglob("*.py")):
        parts = path.relative_to(BENCH.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The bench modules that ``name`` imports, anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target in known and target != name:
                found.add(target)
    return found


def _package_of(module: str, known: set[str]) -> set[str]:
    """Importing a.b.c runs a/__init__ and a/b/__init__ first: those edges count too."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(2, len(parts)) if ".".join(parts[:i]) in known}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_bench_has_no_import_circle():
    modules = _modules()
    known = set(modules)
    # A package's __init__ that only re-exports its own modules is the package's face, not a circle.
    graph = {name: {t for t in _imports(name, path, known) if not name.startswith(t + ".")} for name, path in
             modules.items()}
    assert _cycles(graph) == []


def _package(module: str) -> str:
    """The package of bench that a module belongs to: bench.train.engine → bench.train."""
    return ".".join(module.split(".")[:2])


def test_bench_packages_import_one_another_without_a_circle():
    """One level up: the stages of the pipeline (bench.data, bench.methods, bench.train, ...) each
    import only stages below them. Data does not reach up into training, and the method table has
    one owner: the run description reads it, never the other way round."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name == "bench":
            continue
        edges = {_package(t) for t in _imports(name, path, known) | _package_of(name, known)}
        graph.setdefault(_package(name), set()).update(e for e in edges if e not in ("bench", _package(name)))
    for targets in list(graph.values()):
        for target in targets:
            graph.setdefault(target, set())
    assert _cycles(graph) == []
    # The two that once needed each other, named so that a failure says which edge came back.
    assert "bench.train" not in graph["bench.data"]
    assert "bench.experiment" not in graph["bench.methods"]


def test_the_circle_check_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_longer_than_400_lines():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_every_module_says_what_it_holds():
    missing = [name for name, path in _modules().items()
               if path.read_text().strip() and not ast.get_docstring(ast.parse(path.read_text()))]
    assert missing == []
