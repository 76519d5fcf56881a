"""Screens of the modelreg TUI, one per file."""
