"""The Model card tab shows the version's README.md, rendered; a version without one says so."""

from __future__ import annotations

from textual.widgets import Markdown

from conftest import make_app, wait_for
from modelreg.tui.screens.model import ModelScreen

SIZE = (160, 48)


async def open_card(pilot, version: int) -> ModelScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.connection == "connected" and getattr(app.screen, "loaded", False),
                   what="the models screen")
    app.open_model("fraud-detector")
    screen = await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen) and app.screen.loaded and app.screen,
                            what="the model screen")
    screen.table.move_cursor(row=screen.table.get_row_index(str(version)), animate=False)
    screen.query_one("#detail-tabs").active = "card"
    await wait_for(pilot, lambda: screen.detail.card_ref == f"fraud-detector@{version}", what="the card")
    return screen


def blocks(screen: ModelScreen) -> list[str]:
    """What the Markdown widget rendered: one entry per block, its type and its text."""
    md = screen.query_one("#card-md", Markdown)
    return [f"{type(block).__name__}: {block.source or ''}".strip() for block in md.children]


async def test_a_version_with_readme_shows_its_rendered_card(demo_registry):
    app = make_app(demo_registry)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_card(pilot, 13)
        md = screen.query_one("#card-md", Markdown)
        assert "# fraud-detector v13" in md.source and "## Intended use" in md.source
        assert "has no model card" not in md.source
        assert "license: apache-2.0" not in md.source  # the YAML front matter is metadata, not prose
        await wait_for(pilot, lambda: any(b.startswith("MarkdownH1: # fraud-detector v13") for b in blocks(screen)),
                       what="the rendered heading")
        assert any(b.startswith("MarkdownTable") for b in blocks(screen))  # the metrics table is a table
        # the next version's card replaces it
        screen.table.move_cursor(row=screen.table.get_row_index("12"), animate=False)
        await wait_for(pilot, lambda: screen.detail.card_ref == "fraud-detector@12"
                       and "# fraud-detector v12" in md.source, what="v12's card")


async def test_a_version_without_readme_says_it_has_no_card(demo_registry):
    app = make_app(demo_registry)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_card(pilot, 9)  # v1-v9 of the demo's fraud-detector have no README.md
        assert "fraud-detector@9 has no model card" in screen.query_one("#card-md", Markdown).source
