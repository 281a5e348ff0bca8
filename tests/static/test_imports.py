"""The shape of the code (issue 14): no import circle among the project's own packages, and no
module of ./lab or of the learner scripts too long to find one's way in."""

import ast
from pathlib import Path

from labctl.config import ROOT

PACKAGES = ("labctl", "labkit", "bench", "harness", "scripts", "api", "worker", "recordstore")
# ~300 is the aim; 320 so that one whole thing (dashboard.py, jaeger.py) is not crammed to fit.
MAX_LINES = 320
LENGTH_CHECKED = ("labctl", "scripts", "labkit", "harness")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """module -> the project modules it imports, anywhere in it (a lazy import is still an edge)."""
    files = {module_name(p, root): p for pkg in packages for p in (root / pkg).rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            edges |= {t for t in map(resolve, targets) if t and t != name}
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in graph.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_lazy_circle(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from pkg import b\n")
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (tmp_path / "pkg" / "c.py").write_text("from . import a\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.c"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_import_circle_among_the_projects_packages():
    graph = import_graph(ROOT, PACKAGES)
    assert {"labctl.stack", "labctl.cli", "bench.cli"} <= graph.keys()
    assert "labctl.stack" in graph["bench.stack"]
    assert cycles(graph) == []


def test_no_module_is_longer_than_it_takes_to_read():
    checked = [p for folder in LENGTH_CHECKED for p in (ROOT / folder).glob("*.py")]
    assert {"labctl/cli.py", "scripts/check_stack.py", "labkit/checks.py"} <= {
        str(p.relative_to(ROOT)) for p in checked}
    long = {str(p.relative_to(ROOT)): n for p in checked
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
