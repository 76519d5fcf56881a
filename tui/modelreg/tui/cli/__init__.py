"""The ``modelreg`` command line (PRODUCT.md §8)."""

from .main import main

__all__ = ["main"]
