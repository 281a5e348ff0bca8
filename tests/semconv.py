"""The attribute keys of OpenTelemetry's semantic conventions, read from the pinned
opentelemetry-semantic-conventions package, and whether each is current."""

import ast
from functools import cache
from pathlib import Path

import opentelemetry.semconv


@cache
def registry() -> dict[str, bool]:
    """Every attribute key the package names, True where it is current: stable (in
    opentelemetry.semconv.attributes) or incubating without a deprecation. The generated
    modules mark a deprecated key in the docstring under its constant ("Deprecated: Replaced
    by ..."); an incubating copy of a stable key says "Deprecated in favor of stable ...", and
    the stable module names the key as current."""
    root = Path(opentelemetry.semconv.__file__).parent
    keys: dict[str, bool] = {}
    folders = ((root / "attributes", True), (root / "_incubating" / "attributes", False))
    for folder, stable in folders:
        for module in sorted(folder.glob("*_attributes.py")):
            body = ast.parse(module.read_text()).body
            for statement, after in zip(body, [*body[1:], None], strict=True):
                if not (isinstance(statement, ast.AnnAssign)
                        and isinstance(statement.value, ast.Constant)
                        and isinstance(statement.value.value, str)):
                    continue
                doc = (after.value.value if isinstance(after, ast.Expr)
                       and isinstance(after.value, ast.Constant) else "")
                current = stable or not str(doc).lstrip().startswith("Deprecated")
                keys[statement.value.value] = keys.get(statement.value.value, False) or current
    return keys
