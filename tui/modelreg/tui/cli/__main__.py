"""``python -m modelreg.tui.cli``: the same as the ``modelreg`` command."""

from .main import main

main()
