"""The library's shape, checked on its source: nothing imports upward (no import cycle, function-level
imports included, TYPE_CHECKING blocks excluded), no function grows past 50 lines, no module past 400, and the
training loop stays a spine one reads in one sitting."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

LNL = REPO / "lnl"


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The lnl modules ``path`` imports anywhere (top level or in a function), except under TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module, *(f"{node.module}.{a.name}" for a in node.names)] \
            if isinstance(node, ast.ImportFrom) and node.module else []
        for name in names:
            while name and name not in modules:  # lnl.search.grid_runs -> lnl.search
                name = name.rpartition(".")[0]
            if name and name != "lnl":  # the package's lazy __getattr__ is not an import
                found.add(name)
    return found - {_module(path)}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycle_in_lnl():
    paths = {_module(p): p for p in LNL.rglob("*.py")}
    graph = {m: _imports(p, set(paths)) for m, p in paths.items()}
    assert graph["lnl.losses"] >= {"lnl.accel.kernels"} and "lnl.losses" not in graph["lnl.accel.kernels"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the check can fail


MAX_FUNCTION, MAX_MODULE, MAX_LOOP = 50, 400, 200


def test_no_function_over_50_lines_and_no_module_over_400():
    long = []
    for path in LNL.rglob("*.py"):
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE:
            long.append(f"{path.relative_to(REPO)} ({len(text.splitlines())} lines)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.end_lineno - node.lineno + 1 > MAX_FUNCTION:
                long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} "
                            f"({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long


def test_the_loop_reads_in_one_sitting_and_reaches_speed_code_at_one_place():
    """lnl/training/loop.py is the spine (at most 200 lines); lnl.accel is imported there once, as a whole,
    and no other training module imports speed code, so with the fast path off the loop is plain PyTorch."""
    loop = LNL / "training" / "loop.py"
    assert len(loop.read_text().splitlines()) <= MAX_LOOP
    paths = {_module(p): p for p in LNL.rglob("*.py")}
    accel = {m for m in paths if m == "lnl.accel" or m.startswith("lnl.accel.")}
    imports = {m: _imports(p, set(paths)) & accel for m, p in paths.items() if m.startswith("lnl.training")}
    assert imports.pop("lnl.training.loop") == {"lnl.accel"}
    assert not any(imports.values()), imports
    lines = [n for n in ast.walk(ast.parse(loop.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))
             and "accel" in ast.unparse(n)]
    assert len(lines) == 1, [ast.unparse(n) for n in lines]
