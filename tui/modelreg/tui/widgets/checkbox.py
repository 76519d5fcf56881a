"""A checkbox that reads without colour: ``[x] force`` when ticked, ``[ ] force`` when not."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class TextCheckbox(Checkbox):
    """Textual's checkbox shows the same ``X`` in both states and tells them apart by colour
    only; this one draws the state as text, for monochrome terminals and colour-blind users."""

    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--button")
        return Content.assemble("[", ("x" if self.value else " ", style), "]")
