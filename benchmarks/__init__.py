"""Benchmarks: `python -m benchmarks` (run.py) prints every figure next to its floor."""
