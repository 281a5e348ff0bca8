"""docs/how-it-is-built.md draws the layout (issue 28): its tables name every folder at the top
of the repository, what each holds and which of the project's packages its code may import;
these tests hold the tables to the tree and to the imports the code really makes."""

import re
import subprocess

from labctl.config import ROOT
from tests.static.test_imports import PACKAGES, import_graph, package_graph

DOC = ROOT / "docs" / "how-it-is-built.md"
ROW = re.compile(r"^\| `([\w-]+)/` \| .+ \| (.+) \|$", re.M)


def documented(text: str) -> dict[str, str]:
    """folder -> its "may import" cell, from every row of the layout's tables."""
    layout = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return dict(ROW.findall(layout))


def allowed(cell: str) -> set[str]:
    return set(re.findall(r"`(\w+)`", cell))


def tracked_folders() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    return {f.split("/")[0] for f in files if "/" in f and not f.startswith(".")}


def test_the_reader_finds_a_row_and_its_imports():
    text = "## Layout\n\n| `a/` | holds `b/x.py` | `b`, `c` |\n| `d/` | docs | — |\n\n## Next\n"
    assert documented(text) == {"a": "`b`, `c`", "d": "—"}
    assert allowed("`b`, `c`") == {"b", "c"} and allowed("—") == set()


def test_every_folder_at_the_top_is_in_the_layout_and_nothing_more():
    assert set(documented(DOC.read_text())) == tracked_folders()


def test_each_folder_imports_exactly_the_packages_the_layout_allows():
    graph = package_graph(import_graph(ROOT, PACKAGES))
    rows = documented(DOC.read_text())
    assert set(PACKAGES) <= set(rows), "a code folder the layout does not draw"
    assert {p: allowed(rows[p]) for p in PACKAGES} == {p: graph.get(p, set()) for p in PACKAGES}
    assert rows["tests"] == "any"
    assert {p: rows[p] for p in rows if p not in PACKAGES and p != "tests"} == {
        p: "—" for p in rows if p not in PACKAGES and p != "tests"}, "a folder with no code"
