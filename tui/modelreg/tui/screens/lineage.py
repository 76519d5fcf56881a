"""`l`: where a version came from (datasets, run, parents, recursively) and what was derived
from it. Enter on a version opens it."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import Footer, Tree

from ..messages import LineageLoaded
from ..widgets.formatting import Palette, stage_badge
from ..widgets.header import StatusHeader
from .base import LoadingScreen


def _version_label(node: dict[str, Any], palette: Palette) -> Text:
    label = Text(node["ref"], style="bold")
    if node.get("external"):
        label.append("  outside this registry", style="dim")
    elif node.get("stage"):
        label.append("  ")
        label.append_text(stage_badge(node["stage"], palette))
    if node.get("cycle"):
        label.append("  (shown above)", style="dim")
    if node.get("truncated"):
        label.append("  …", style="dim")
    return label


class LineageScreen(LoadingScreen):

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref

    def compose(self) -> ComposeResult:
        yield StatusHeader(f"lineage · {self.ref}")
        tree: Tree[str | None] = Tree(Text(self.ref, style="bold"), id="lineage")
        tree.show_root = True
        yield tree
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # LoadingScreen.on_mount runs too (Textual calls each class's handler) and loads.
        self.query_one(Tree).focus()

    @work(exclusive=True, exit_on_error=False, group="lineage")
    async def load(self) -> None:
        self.post_message(LineageLoaded(self.ref, await self.client.lineage(self.ref, "both")))

    def on_lineage_loaded(self, message: LineageLoaded) -> None:
        self.loaded = True
        tree = self.query_one(Tree)
        tree.clear()
        up = message.lineage.get("upstream") or {}
        down = message.lineage.get("downstream") or {}
        p = self.palette
        root_label = _version_label({"ref": self.ref, "stage": up.get("stage") or down.get("stage")}, p)
        tree.root.set_label(root_label)
        tree.root.data = self.ref
        upstream = tree.root.add(Text("⬆ upstream: where it came from", style=p.accent), expand=True)
        self._upstream(upstream, up, top=True)
        if not upstream.children:
            upstream.add_leaf(Text("no datasets, run or parents recorded", style="dim"))
        downstream = tree.root.add(Text("⬇ downstream: derived from it", style=p.accent), expand=True)
        for child in down.get("children") or []:
            self._downstream(downstream, child)
        if not downstream.children:
            downstream.add_leaf(Text("nothing derived from it yet", style="dim"))
        tree.root.expand()

    def _upstream(self, parent: Any, node: dict[str, Any], top: bool = False) -> None:
        p = self.palette
        for ds in node.get("datasets") or []:
            label = Text.assemble((f"{ds.get('relation', 'trained_on').replace('_', ' ')} ", p.muted),
                                  ("dataset ", p.muted), ds["dataset"])
            if ds.get("uri"):
                label.append(f"  {ds['uri']}", style="dim")
            parent.add_leaf(label)
        if run := node.get("run"):
            label = Text.assemble(("produced by ", p.muted), ("run ", p.muted), run["id"])
            extra = [x for x in (run.get("experiment"), run.get("hardware"), run.get("code_revision")) if x]
            if extra:
                label.append(f"  {' · '.join(extra)}", style="dim")
            parent.add_leaf(label)
        for par in node.get("parents") or []:
            label = Text.assemble(("derived from ", p.muted), _version_label(par, p))
            if par.get("external") or par.get("cycle") or not (par.get("datasets") or par.get("run")
                                                                  or par.get("parents")):
                parent.add_leaf(label, data=None if par.get("external") else par["ref"])
            else:
                branch = parent.add(label, data=par["ref"], expand=True)
                self._upstream(branch, par)

    def _downstream(self, parent: Any, node: dict[str, Any]) -> None:
        label = _version_label(node, self.palette)
        if node.get("children"):
            branch = parent.add(label, data=node["ref"], expand=True)
            for child in node["children"]:
                self._downstream(branch, child)
        else:
            parent.add_leaf(label, data=node["ref"])

    @on(Tree.NodeSelected)
    def _open(self, event: Tree.NodeSelected) -> None:
        ref = event.node.data
        if isinstance(ref, str) and "@" in ref and ref != self.ref:
            name, _, number = ref.partition("@")
            self.app.open_model(name, int(number) if number.isdigit() else None)
