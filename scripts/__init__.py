"""The learner-facing scripts, run with a plain `python3`; their toolkit is `labkit` (top level)."""
