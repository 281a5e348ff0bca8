"""`./lab test`'s command line (the suite itself is suite.py)."""

import argparse
import os


def configure_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("test", help="install what is missing and run the whole test suite")
    p.add_argument("--keep", action="store_true", help="leave the test stack running")
    p.add_argument("--no-lint", dest="lint", action="store_false", help="skip ruff (while editing)")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--compose", dest="phases", action="store_const", const=("compose",),
                      help="only the compose phase: docker-compose.yml up on a private engine "
                      "(the whole suite runs it after the native phases, unless pytest "
                      "arguments pick tests)")
    only.add_argument("--native", dest="phases", action="store_const", const=("native",),
                      help="only the native phases (no Docker engine)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER)
    return p


def run(args: argparse.Namespace) -> int:
    # Here, not above: the suite needs PyYAML, and ./lab's other commands run on a bare python3.
    from harness.suite import run_tests

    pytest_args = [a for a in args.pytest_args if a != "--"]
    phases = args.phases or (("native",) if pytest_args else ("native", "compose"))
    return run_tests(dict(os.environ), pytest_args, args.keep, args.lint, phases)
