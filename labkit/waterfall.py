"""A span tree as a text waterfall, and where a trace's time went.

ASCII only, so it prints the same in any terminal and in a log file.
"""

import re
from dataclasses import dataclass

from . import rules
from .jaeger import DB_QUERY, Span, SpanTree
from .rules import short_service


def component(span: Span) -> str:
    """Which part of the system a span stands for (rules.component)."""
    return rules.component(span.tags, span.service)


def _ms(us: float) -> str:
    return f"{us / 1000:.1f} ms" if us >= 100 or us == 0 else f"{us:.0f} us"


def label(span: Span) -> str:
    """The operation, plus the table an SQL span touched ("SELECT recordstore" says little)."""
    statement = str(span.tags.get(DB_QUERY, ""))
    table = _TABLE.search(statement)
    return f"{span.operation} ({table.group(1)})" if table else span.operation


_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?([A-Za-z_][A-Za-z0-9_.]*)", re.IGNORECASE)


def _bar(span: Span, tree: SpanTree, width: int) -> str:
    total = max(tree.duration_us, 1)
    begin = min(width - 1, int((span.start_us - tree.start_us) / total * width))
    length = max(1, min(width - begin, round(span.duration_us / total * width)))
    mark = "X" if span.error else "#"
    return "|" + " " * begin + mark * length + " " * (width - begin - length) + "|"


def _notes(span: Span) -> str:
    notes = []
    if span.error:
        first_line = span.error_message.strip().split("\n", 1)[0][:120]
        notes.append("ERROR" + (f": {first_line}" if first_line else ""))
    if span.missing_parent:
        notes.append(f"parent {span.missing_parent} not in the trace (yet)")
    notes.extend(w for w in span.warnings if w.startswith(("duplicate", "reference")))
    other = sorted({r.trace_id for r in span.links if r.trace_id != span.trace_id})
    if other:
        notes.append("links to trace " + ", ".join(other))
    return "  [" + "; ".join(notes) + "]" if notes else ""


def render(tree: SpanTree, width: int = 120) -> list[str]:
    """One line per span: start offset, duration, service, component, the tree, a timeline."""
    rows = [(prefix + label(span), span) for prefix, span in _tree_prefixes(tree)]
    service_w = max([7, *(len(short_service(s.service)) for _, s in rows)])
    op_w = min(60, max([9, *(len(text) for text, _ in rows)]))
    bar_w = max(10, width - (11 + 1 + 10 + 2 + service_w + 1 + 9 + 1 + op_w + 1 + 2))
    lines = [f"{'start':>11} {'duration':>10}  {'service':<{service_w}} {'component':<9} "
             f"{'operation':<{op_w}} timeline"]
    for text, span in rows:
        if len(text) > op_w:
            text = text[: op_w - 3] + "..."
        lines.append(
            f"{'+' + _ms(span.start_us - tree.start_us):>11} {_ms(span.duration_us):>10}  "
            f"{short_service(span.service):<{service_w}} {component(span):<9} {text:<{op_w}} "
            f"{_bar(span, tree, bar_w)}{_notes(span)}"
        )
    return lines


def _tree_prefixes(tree: SpanTree) -> list[tuple[str, Span]]:
    rows: list[tuple[str, Span]] = []

    def visit(span: Span, lead: str, last: bool | None) -> None:
        rows.append((lead + ("" if last is None else "`-" if last else "|-"), span))
        below = lead + ("" if last is None else "  " if last else "| ")
        for i, child in enumerate(span.children):
            visit(child, below, i == len(span.children) - 1)

    for root in tree.roots:
        visit(root, "", None)
    return rows


@dataclass
class Breakdown:
    user_facing_us: int  # the first root span: what the person waited for
    end_to_end_us: int  # the first span's start to the last span's end
    steps: list[tuple[str, int]]  # named slices of the background work, in time order


def breakdown(tree: SpanTree, operations: list[str]) -> Breakdown:
    """User-facing versus end-to-end time, with queue waits and the named operations between."""
    steps: list[tuple[int, str, int]] = []
    for span in tree.spans:
        parent = span.parent
        if span.kind == "consumer" and parent is not None and parent.kind == "producer":
            task = span.operation.split("/", 1)[-1]
            steps.append((span.start_us, f"queue wait before {task}",
                          max(0, span.start_us - parent.end_us)))
        elif span.operation in operations:
            steps.append((span.start_us, span.operation, span.duration_us))
    user_facing = tree.roots[0].duration_us if tree.roots else 0
    return Breakdown(user_facing, tree.duration_us,
                     [(label, us) for _, label, us in sorted(steps)])


def render_breakdown(b: Breakdown, root_name: str, client_ms: float | None = None) -> list[str]:
    measured = f"   (the script measured {client_ms:,.1f} ms)" if client_ms is not None else ""
    share = b.user_facing_us / b.end_to_end_us * 100 if b.end_to_end_us else 100.0
    lines = [f"  {'user-facing':<12} {root_name + ' answered':<44} {_ms(b.user_facing_us):>12}"
             f"{measured}"]
    for i, (label, us) in enumerate(b.steps):
        lines.append(f"  {'background' if i == 0 else '':<12} {label:<44} {_ms(us):>12}")
    lines.append(f"  {'end to end':<12} {'first span to last span':<44} "
                 f"{_ms(b.end_to_end_us):>12}   (user-facing is {share:.1f} % of it)")
    return lines
