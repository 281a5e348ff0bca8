"""The shape of the code (issues 14 and 28): no import circle among the project's modules nor
among its packages, and no module of any code folder too long to find one's way in."""

import ast
import subprocess
from pathlib import Path

from labctl.config import ROOT

# ~300 is the aim; 320 so that one whole thing (dashboard.py, jaeger.py) is not crammed to fit.
MAX_LINES = 320


def code_folders(root: Path = ROOT) -> tuple[str, ...]:
    """Every top-level folder that holds Python code git keeps (or would: not ignored, so no
    virtual environment or node_modules), the tests aside."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                            "--", "*.py"], cwd=root, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    return tuple(sorted({f.split("/")[0] for f in files if "/" in f and not f.startswith(".")}
                        - {"tests"}))


PACKAGES = code_folders()


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


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """top-level package -> the other top-level packages its modules import."""
    packages: dict[str, set[str]] = {}
    for module, deps in graph.items():
        top = module.split(".")[0]
        packages.setdefault(top, set()).update(d.split(".")[0] for d in deps)
        packages[top].discard(top)
    return packages


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


def test_the_cycle_finder_finds_a_circle_of_packages_no_module_circle_shows(tmp_path):
    """a.one imports b.two, and b.three imports a.four: no module circle, a package circle."""
    for module, text in {"a/one.py": "from b import two\n", "a/four.py": "",
                         "b/two.py": "", "b/three.py": "def f():\n    import a.four\n",
                         "c/five.py": "from a import one\n"}.items():
        (tmp_path / module).parent.mkdir(exist_ok=True)
        (tmp_path / module).write_text(text)
    graph = import_graph(tmp_path, ("a", "b", "c"))
    assert cycles(graph) == []
    assert package_graph(graph) == {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert cycles(package_graph(graph)) == [["a", "b"]]


def test_no_import_circle_among_the_projects_modules():
    graph = import_graph(ROOT, PACKAGES)
    assert {"labctl.stack", "labctl.cli", "bench.cli"} <= graph.keys()
    assert "labctl.stack" in graph["bench.stack"]
    assert cycles(graph) == []


def test_no_import_circle_among_the_projects_packages():
    assert {"labctl", "labkit", "bench", "harness", "scripts", "api", "worker", "recordstore",
            "tracestore", "alertreceiver", "exercises"} <= set(PACKAGES)
    packages = package_graph(import_graph(ROOT, PACKAGES))
    assert "labctl" in packages["bench"]
    assert cycles(packages) == []


def test_no_object_is_built_through_an_argparse_namespace():
    """A parsed command line is read where it is parsed; everything else has a constructor or
    keyword arguments of its own (labctl once built a Namespace to call compose, another to
    make labkit's Lab)."""
    built = [f"{p.relative_to(ROOT)}:{n}" for folder in PACKAGES
             for p in (ROOT / folder).rglob("*.py")
             for n, line in enumerate(p.read_text().splitlines(), 1) if "Namespace(" in line]
    assert built == []


def test_no_module_is_longer_than_it_takes_to_read():
    checked = [p for folder in PACKAGES for p in (ROOT / folder).rglob("*.py")]
    assert {"labctl/cli.py", "scripts/check_stack.py", "labkit/checks.py", "bench/report.py",
            "tracestore/store.py", "recordstore/migrations/env.py", "gameday/cli.py"} <= {
        str(p.relative_to(ROOT)) for p in checked}
    long = {str(p.relative_to(ROOT)): n for p in checked
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
