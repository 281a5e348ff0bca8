"""`./lab`: runs the lab natively. Standard library only: it runs before the venv exists."""
