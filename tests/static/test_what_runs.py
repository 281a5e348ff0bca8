"""What the tests prove is what runs (issue 24, part 7): no function of the core exists only for
its tests, and no test depends on files outside the repository (a skip would hide it)."""

import ast
import re
from pathlib import Path

from labctl.config import ROOT
from tests.static.test_imports import code_folders

# The code that runs: every code folder but the tests.
RUNTIME = code_folders()


def runtime_sources() -> dict[Path, str]:
    return {p: p.read_text() for pkg in RUNTIME if (ROOT / pkg).is_dir()
            for p in (ROOT / pkg).rglob("*.py")}


def test_every_function_of_the_core_is_called_by_code_that_runs():
    sources = runtime_sources()
    unused = []
    for path in sorted((ROOT / "recordstore").glob("*.py")):
        for node in ast.parse(sources[path]).body:
            if not isinstance(node, ast.FunctionDef | ast.ClassDef):
                continue
            if isinstance(node, ast.ClassDef) and any(
                    getattr(b, "id", "") == "Base" for b in node.bases):
                continue  # a table: the ORM and the migrations use it by being declared
            word = re.compile(rf"\b{node.name}\b")
            if sum(len(word.findall(text)) for text in sources.values()) <= 1:
                unused.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert unused == [], "defined, and called only by tests (or by nothing)"


def test_tests_read_fixtures_from_the_repository():
    outside = [f"{p.relative_to(ROOT)}:{n}" for p in (ROOT / "tests").rglob("*.py")
               if p != Path(__file__) for n, line in enumerate(p.read_text().splitlines(), 1)
               if "ROOT.parent" in line or "../shared" in line]
    assert outside == []
