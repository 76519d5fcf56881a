"""(issue 12: being written)."""

COMMANDS: list = []
