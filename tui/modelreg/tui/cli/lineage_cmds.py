"""lineage: where a version came from, what depends on it, who used a dataset."""

from __future__ import annotations

import click

from modelreg.shared.errors import InvalidInput
from modelreg.shared.names import parse_dataset_ref, parse_ref
from rich.tree import Tree

from .context import Context, json_option, pass_ctx
from .render import emit_json, out, stage, table, when


@click.command()
@click.argument("ref", required=False)
@click.option("--dataset", default=None, metavar="NAME[@VER]", help="List every version trained or evaluated on it.")
@click.option("--up", "direction", flag_value="up", help="Only upstream (datasets, run, parents).")
@click.option("--down", "direction", flag_value="down", help="Only downstream (derived versions).")
@json_option
@pass_ctx
def lineage(ctx: Context, ref: str | None, dataset: str | None, direction: str | None) -> None:
    """Lineage of REF both ways, or the users of a dataset with --dataset."""
    if bool(ref) == bool(dataset):
        raise InvalidInput("give either a REF or --dataset NAME@VER")
    c = ctx.client()
    if dataset:
        if "@" in dataset:
            parse_dataset_ref(dataset)
        result = c.dataset_versions(dataset)
        if ctx.as_json:
            return emit_json(result)
        if not result["items"]:
            out.print(f"no version was trained or evaluated on {dataset}"
                      + ("" if result["known"] else " (the registry has never seen this dataset)"))
            return
        t = table("version", "stage", "relation", "dataset", "created")
        for item in result["items"]:
            t.add_row(item["ref"], stage(item["stage"]), item["relation"].replace("_", " "), item["dataset"],
                      when(item["created_at"]))
        out.print(t)
        return
    parse_ref(ref)
    result = c.lineage(ref, direction or "both")
    if ctx.as_json:
        return emit_json(result)
    if "upstream" in result:
        out.print(_up_tree(result["upstream"], "[bold]upstream[/] (where it came from)"))
    if "downstream" in result:
        root = Tree("[bold]downstream[/] (derived from it)")
        _down(root, result["downstream"])
        out.print(root)


def _up_tree(node: dict, title: str) -> Tree:
    tree = Tree(title)
    _up(tree, node)
    return tree


def _up(parent: Tree, node: dict) -> None:
    branch = parent.add(f"[bold]{node['ref']}[/] {stage(node.get('stage') or '')}")
    for ds in node.get("datasets", []):
        branch.add(f"{ds['relation'].replace('_', ' ')} [cyan]{ds['dataset']}[/]")
    if node.get("run"):
        branch.add(f"produced by run [magenta]{node['run']['id']}[/]")
    for p in node.get("parents", []):
        if "datasets" in p:
            _up(branch.add("derived from"), p)
        else:
            branch.add(f"derived from [bold]{p['ref']}[/]" + (" (outside this registry)" if p.get("external") else ""))


def _down(parent: Tree, node: dict) -> None:
    branch = parent.add(f"[bold]{node['ref']}[/] {stage(node.get('stage') or '')}")
    for child in node.get("children", []):
        _down(branch, child)


COMMANDS = [lineage]
