"""The game day (`./lab gameday`, exercise 15): one hidden fault, found from the signals.
causes.py the causes and how each shows, games.py the pick, the grading and the record,
hints.py the hints, cli.py the command that switches a game's fault on and off. Standard
library only, like labctl and labkit, on which it builds."""
