"""modelreg.tui"""
