# Shortcuts for ./lab (the real entry point; see README.md).
.PHONY: up down status test lint

up:
	./lab up

down:
	./lab down

status:
	./lab status

test:
	./lab test

lint:
	.venv/bin/ruff check .
