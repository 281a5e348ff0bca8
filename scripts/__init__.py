"""The learner-facing scripts; their toolkit is imported by one name only: `scripts.labkit`."""
