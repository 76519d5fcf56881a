"""lineage: where a version came from, what depends on it, who used a dataset."""

from __future__ import annotations

import click

from modelreg.shared.errors import InvalidInput
from modelreg.shared.names import parse_dataset_ref, parse_ref

from .context import Context, json_option, pass_ctx
from .render import Output, Part, Span, emit_json, out, table, when
from .render import stage as stage_cell


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
            out.line(f"no version was trained or evaluated on {dataset}"
                      + ("" if result["known"] else " (the registry has never seen this dataset)"))
            return
        t = table("version", "stage", "relation", "dataset", "created")
        for item in result["items"]:
            t.add_row(item["ref"], stage_cell(item["stage"]), item["relation"].replace("_", " "), item["dataset"],
                      when(item["created_at"]))
        out.table(t)
        return
    parse_ref(ref)
    result = c.lineage(ref, direction or "both")
    if ctx.as_json:
        return emit_json(result)
    if "upstream" in result:
        out.line(Span("upstream", "bold"), " (where it came from)")
        print_tree(out, _up(result["upstream"]))
    if "downstream" in result:
        if "upstream" in result:
            out.blank()
        out.line(Span("downstream", "bold"), " (derived from it)")
        down = _down(result["downstream"])
        print_tree(out, down)
        if not down[1]:
            out.line("    ", Span("nothing is derived from it yet", "dim"))


# A tree node: its label (parts of one line) and its children.
Node = tuple[list[Part], list["Node"]]


def print_tree(o: Output, node: Node, prefix: str = "", last: bool = True) -> None:
    """Draw a tree with box characters, the same on a terminal and in a pipe."""
    label, children = node
    o.line(Span(prefix + ("└── " if last else "├── "), "dim"), *label)
    inner = prefix + ("    " if last else "│   ")
    for i, child in enumerate(children):
        print_tree(o, child, inner, i == len(children) - 1)


def _version_label(node: dict) -> list[Part]:
    return [Span(node["ref"], "bold"), "  ", stage_cell(node.get("stage"))]


def _up(node: dict) -> Node:
    children: list[Node] = []
    for ds in node.get("datasets", []):
        children.append(([f"{ds['relation'].replace('_', ' ')} ", Span(ds["dataset"], "cyan")], []))
    if node.get("run"):
        run = node["run"]
        label = ["produced by run ", Span(str(run["id"]), "magenta")]
        # As the TUI's lineage screen shows it: where the run was tracked, and how it was trained.
        extra = [str(x) for x in (run.get("experiment"), run.get("hardware"), run.get("code_revision")) if x]
        if extra:
            label.append(Span("  " + " · ".join(extra), "dim"))
        params = run.get("hyperparameters") or {}
        children.append((label, [([f"{k} = {v}"], []) for k, v in list(params.items())[:20]]))
    for p in node.get("parents", []):
        if "datasets" in p:
            children.append((["derived from"], [_up(p)]))
        else:
            label: list[Part] = ["derived from ", Span(p["ref"], "bold")]
            if p.get("external"):
                label.append(Span(" (outside this registry)", "dim"))
            children.append((label, []))
    return _version_label(node), children


def _down(node: dict) -> Node:
    return _version_label(node), [_down(child) for child in node.get("children", [])]


COMMANDS = [lineage]
