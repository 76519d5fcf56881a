"""compare, search, update, rename, delete: looking across the registry and changing what exists."""

from __future__ import annotations

from typing import Any

import click

from modelreg.shared.errors import InvalidInput
from modelreg.shared.filters import parse_metric_filter
from modelreg.shared.names import parse_ref, validate_key, validate_name

from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, err, metric, out, page_total, plural, size, table, when
from .render import stage as stage_cell

JUDGED_STYLE = {"better": "green", "worse": "red", "same": "dim"}
FILE_STYLE = {"added": "green", "removed": "red", "changed": "yellow", "same": "dim", "absent": "dim"}
MAX_TENSOR_ROWS = 500


def _delta(value: float | None, judged: str | None) -> list[Span]:
    if value is None or judged is None:
        return []
    return [Span(" "), Span(f"{'+' if value > 0 else ''}{metric(float(value))}", JUDGED_STYLE[judged])]


def _dash() -> Span:
    return Span("-", "dim")


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="REF REF...")
@json_option
@pass_ctx
def compare(ctx: Context, refs: tuple[str, ...]) -> None:
    """Versions side by side; the first REF is the baseline (refs may be of different models).

    Metrics show each version's latest value and its delta to the baseline, green when
    better and red when worse for that metric's direction; then params that differ,
    files added/removed/changed (by sha256) and safetensors tensors whose dtype or shape changed.
    """
    if len(refs) < 2:
        raise click.UsageError("compare needs at least two refs, e.g. fraud@2 fraud@3")
    for ref in refs:
        parse_ref(ref)
    c = ctx.client().compare(*refs)
    if ctx.as_json:
        return emit_json(c)
    heads = [v["ref"] for v in c["versions"]]
    out.line("baseline ", Span(c["baseline"], "bold"), "; deltas against it, ", Span("green", "green"),
             " is better, ", Span("red", "red"), " worse for the metric's direction")

    out.blank()
    out.heading("metrics")
    if c["metrics"]:
        t = table("metric", "better", *heads, indent=2)
        for row in c["metrics"]:
            cells = [[metric(v), *_delta(d, j)] if v is not None else _dash()
                     for v, d, j in zip(row["values"], row["deltas"], row["judged"])]
            t.add_row(row["key"], "↑ higher" if row["direction"] == "higher" else "↓ lower", *cells)
        out.table(t)
    else:
        out.line("  ", Span("no metrics on these versions", "dim"))

    params = c["params"]
    out.blank()
    out.heading("params")
    if params["differ"]:
        t = table("param", *heads, indent=2)
        for row in params["differ"]:
            t.add_row(row["key"], *[v if v is not None else _dash() for v in row["values"]])
        out.table(t)
    out.line("  ", Span(f"{plural(params['same'], 'identical param')}", "dim"))

    files = c["files"]
    out.blank()
    out.heading("files")
    if files["differ"]:
        t = table("path", *heads, indent=2)
        for row in files["differ"]:
            cells = []
            for i, (sha, sz) in enumerate(zip(row["sha256"], row["size"])):
                status = row["status"][i]
                label = Span(sha[:12] if sha else "-", "" if sha else "dim") if i == 0 \
                    else Span(status, FILE_STYLE[status])
                cells.append([label, f" {size(sz)}" if sz is not None else ""])
            t.add_row(row["path"], *cells)
        out.table(t)
    out.line("  ", Span(plural(files["same"], "identical file"), "dim"))

    tensors = c["tensors"]
    if any(tensors["available"]):
        out.blank()
        out.line(Span("tensors", "bold"), " (safetensors)")
        if tensors["differ"]:
            t = table("tensor", *heads, indent=2)
            for row in tensors["differ"][:MAX_TENSOR_ROWS]:
                cells = []
                for i, v in enumerate(row["values"]):
                    text = f"{v['dtype']} {v['shape']}" if v else "absent"
                    cells.append(text if i == 0 else Span(text, FILE_STYLE[row["status"][i]]))
                t.add_row(row["tensor"], *cells)
            out.table(t)
            if len(tensors["differ"]) > MAX_TENSOR_ROWS:
                out.line(f"  … and {len(tensors['differ']) - MAX_TENSOR_ROWS} more (--json for all)")
        out.line("  ", Span(f"{plural(tensors['same'], 'tensor')} with the same dtype and shape", "dim"))
        if tensors["truncated"]:
            out.line("  ", Span("a file has more than 1000 tensors: only its first 1000 were recorded and compared",
                                "yellow"))


@click.command()
@click.option("--name", "name", default=None, metavar="GLOB", help="Model name glob, e.g. 'fraud*' (any case).")
@click.option("--tag", "tags", multiple=True, metavar="K[=V]", help="On the version or its model.")
@click.option("--metric", "metrics", multiple=True, metavar="EXPR", help="Latest value, e.g. 'auc>=0.9'.")
@click.option("--stage", default=None, type=click.Choice(["none", "staging", "production", "archived"]))
@click.option("--status", default=None, type=click.Choice(["pending", "ready", "failed"]))
@click.option("--dataset", "datasets", multiple=True, metavar="NAME[@VER]", help="Trained or evaluated on it.")
@click.option("--fact", "facts", multiple=True, metavar="K[=V]",
              help="A format fact anywhere in the version's facts, e.g. architecture=llama.")
@click.option("--order", default="-created", show_default=True,
              help="created, name, size or metric:KEY; '-' = descending.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", default=None, help="The 'next' of a previous page (with --json).")
@click.option("--all", "all_pages", is_flag=True, help="Every match, not just one page.")
@json_option
@pass_ctx
def search(ctx: Context, name: str | None, tags: tuple[str, ...], metrics: tuple[str, ...], stage: str | None,
           status: str | None, datasets: tuple[str, ...], facts: tuple[str, ...], order: str, limit: int,
           cursor: str | None, all_pages: bool) -> None:
    """Versions across every model that match every filter given.

    With --json: {"items", "next", "total"}; pass "next" back with --cursor for the next page.
    """
    for flt in metrics:
        parse_metric_filter(flt)  # the daemon's grammar: refused here without a round trip
    c = ctx.client()
    filters = dict(name=name, tags=list(tags), metrics=list(metrics), facts=list(facts), datasets=list(datasets),
                   stage=stage, status=status, order=order)
    page = c.search(limit=1000 if all_pages else limit, cursor=cursor, **filters)
    if all_pages:
        items = list(page["items"])
        while page["next"]:
            page = c.search(limit=1000, cursor=page["next"], **filters)
            items.extend(page["items"])
        page = {"items": items, "next": None, "total": len(items)}
    if ctx.as_json:
        return emit_json(page)
    items = page["items"]
    if not items:
        out.line("no versions match")
        return
    keys = sorted({k for v in items for k in v["metrics"]})[:4]
    t = table("ref", "stage", "status", "created", *keys, "size")
    for v in items:
        t.add_row(f"{v['model']}@{v['version']}", stage_cell(v["stage"]), v["status"], when(v["created_at"]),
                  *[metric(v["metrics"].get(k)) for k in keys], size(v["total_size"]))
    out.table(t)
    if len(items) < page["total"] or not page.get("total_exact", True):
        err.line(Span(f"{len(items)} of {page_total(page, 'match', 'matches')} shown; --limit N or --all for more",
                      "dim"))


def _tags(values: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput(f"--tag {item!r}: expected KEY=VALUE (--untag KEY removes one)")
        tags[validate_key(key, "tag key")] = value
    return tags


@click.command()
@click.argument("target", metavar="REF|NAME")
@click.option("--description", default=None, help="New description ('' clears it).")
@click.option("--tag", "tags", multiple=True, metavar="K=V", help="Set a tag (repeatable).")
@click.option("--untag", "untag", multiple=True, metavar="K", help="Remove a tag (repeatable).")
@json_option
@pass_ctx
def update(ctx: Context, target: str, description: str | None, tags: tuple[str, ...], untag: tuple[str, ...]) -> None:
    """Change a version's (NAME@N) or a model's (NAME) description and tags."""
    tag_map = _tags(tags)
    keys = [validate_key(k, "tag key") for k in untag]
    if description is None and not tag_map and not keys:
        raise click.UsageError("nothing to change: give --description, --tag K=V or --untag K")
    c = ctx.client()
    if "@" in target:
        parse_ref(target)
        result = c.update_version(target, description=description, tags=tag_map, untag=keys)
        shown = f"{result['model']}@{result['version']}"
    else:
        fields: dict[str, Any] = {}
        if description is not None:
            fields["description"] = description
        if tag_map:
            fields["tags"] = tag_map
        if keys:
            fields["untag"] = keys
        result = c.update_model(validate_name(target), **fields)
        shown = result["name"]
    if ctx.as_json:
        return emit_json(result)
    out.line(f"updated {shown}")
    rows = []
    if description is not None:
        rows.append(("description", result["description"] or Span("(none)", "dim")))
    if tag_map or keys:
        rows.append(("tags", "  ".join(f"{k}={v}" for k, v in result["tags"].items()) or Span("(none)", "dim")))
    out.fields(rows)


@click.command()
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@click.option("--reason", default=None, help="Why (recorded in the audit log).")
@json_option
@pass_ctx
def rename(ctx: Context, old: str, new: str, reason: str | None) -> None:
    """Rename model OLD to NEW; versions, refs, aliases, gates, history and HOME/serving/NEW follow."""
    m = ctx.client().rename_model(validate_name(old), validate_name(new, "new model name"), reason=reason)
    if ctx.as_json:
        return emit_json(m)
    out.line(f"renamed {old} → {m['name']}; {old} is free for a new model")


@click.command()
@click.argument("target", metavar="REF|NAME")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@click.option("--force", is_flag=True,
              help="Also delete a production version or a rollback target / a model with versions in use.")
@json_option
@pass_ctx
def delete(ctx: Context, target: str, reason: str, force: bool) -> None:
    """Delete a version (NAME@N) or a whole model (NAME).

    \b
    A deleted version's number is never reused and `modelreg gc` removes its files. The
    production version and rollback targets need --force; so does a model with a version
    in production or staging. A deleted model's name is free again; its events stay.
    """
    c = ctx.client()
    if "@" in target:
        parse_ref(target)
        result = c.delete_version(target, reason=reason, force=force)
        shown = f"{result['model']}@{result['version']}"
        note = "its number is not reused; `modelreg gc` removes its files"
    else:
        result = c.delete_model(validate_name(target), reason=reason, force=force)
        shown = result["model"]
        n = len(result["versions"])
        note = f"{n} version{'s' if n != 1 else ''} with it; the name is free again"
    if ctx.as_json:
        return emit_json(result)
    out.line(f"deleted {shown} ({note})")


COMMANDS = [compare, search, update, rename, delete]
