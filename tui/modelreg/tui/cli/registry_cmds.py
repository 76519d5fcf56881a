"""models, versions, show, metric, resolve, export (register: register_cmds.py)."""

from __future__ import annotations

from pathlib import Path

import click

from modelreg.shared.errors import InvalidInput, ModelregError
from modelreg.shared.filters import parse_metric_filter
from modelreg.shared.names import parse_dataset_ref, parse_ref, validate_relpath

from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, err, metric, out, page_total, plural, progress, size, table, when
from .render import stage as stage_cell
from .render import status as status_cell


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    result = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--{what} {item!r}: expected KEY=VALUE")
        result[key] = value
    return result


def _numbers(values: tuple[str, ...], what: str = "metric") -> dict[str, float]:
    result = {}
    for key, value in _pairs(values, what).items():
        try:
            result[key] = float(value)
        except ValueError:
            raise InvalidInput(f"--{what} {key}={value!r}: the value must be a number") from None
    return result


@click.command()
@click.option("--filter", "query", default=None, help="Only names containing this text.")
@json_option
@pass_ctx
def models(ctx: Context, query: str | None) -> None:
    """List models."""
    items = ctx.client().all_models(query)
    if ctx.as_json:
        return emit_json(items)
    if not items:
        out.line("no models yet: `modelreg register PATH --name NAME` adds one")
        return
    t = table("model", "versions", "production", "staging", "latest", "updated")
    for m in items:
        t.add_row(m["name"], str(m["version_count"]), _v(m["production"]), _v(m["staging"]), _v(m["latest"]),
                  when(m["updated_at"]))
    out.table(t)


def _v(n: int | None) -> str | Span:
    return f"v{n}" if n else Span("-", "dim")


@click.command()
@click.argument("name")
@click.option("--stage", default=None, type=click.Choice(["none", "staging", "production", "archived"]))
@click.option("--status", default=None, type=click.Choice(["pending", "ready", "failed"]))
@click.option("--tag", "tags", multiple=True, metavar="K[=V]")
@click.option("--metric", "metric_filters", multiple=True, metavar="EXPR", help="e.g. 'auc>=0.9'.")
@click.option("--order", default="-number", show_default=True, help="number, created, size or metric:KEY; '-' = descending.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--all", "all_pages", is_flag=True, help="Every version, not just one page.")
@json_option
@pass_ctx
def versions(ctx: Context, name: str, stage: str | None, status: str | None, tags: tuple[str, ...],
             metric_filters: tuple[str, ...], order: str, limit: int, all_pages: bool) -> None:
    """List the versions of model NAME, newest first."""
    for flt in metric_filters:
        parse_metric_filter(flt)  # the daemon's grammar: refused here without a round trip
    c = ctx.client()
    filters = dict(stage=stage, status=status, tags=list(tags), metrics=list(metric_filters), order=order)
    if all_pages:
        items = list(_iter_sync(c, name, filters))
        page = {"total": len(items)}
    else:
        page = c.versions(name, limit=limit, **filters)
        items = page["items"]
    if ctx.as_json:
        return emit_json(items)
    keys = sorted({k for v in items for k in v["metrics"]})[:6]
    t = table("v", "stage", "status", "created", "source", *keys, "size")
    for v in items:
        t.add_row(str(v["version"]), stage_cell(v["stage"]), status_cell(v["status"]), when(v["created_at"]), v["source"],
                  *[metric(v["metrics"].get(k)) for k in keys], size(v["total_size"]))
    if not items:
        out.line(f"no versions of {name} match" if any((stage, status, tags, metric_filters)) else f"{name} has no versions")
    else:
        out.table(t)
    if len(items) < page["total"] or not page.get("total_exact", True):
        err.line(Span(f"{len(items)} of {page_total(page, 'version')} shown; --limit N or --all for more", "dim"))


def _iter_sync(c, name: str, filters: dict):
    cursor = None
    while True:
        page = c.versions(name, limit=1000, cursor=cursor, **filters)
        yield from page["items"]
        cursor = page["next"]
        if not cursor:
            return


@click.command()
@click.argument("ref")
@json_option
@pass_ctx
def show(ctx: Context, ref: str) -> None:
    """Everything about one version: metrics, params, files, lineage."""
    parse_ref(ref)
    v = ctx.client().version(ref)
    if ctx.as_json:
        return emit_json(v)
    from .version_view import print_version

    print_version(out, v)


@click.command("metric")
@click.argument("ref")
@click.argument("values", nargs=-1, required=True, metavar="K=V...")
@click.option("--source", default="offline", type=click.Choice(["offline", "online", "monitoring"]), show_default=True)
@click.option("--dataset", default=None, metavar="NAME@VER", help="Dataset the values were measured on.")
@click.option("--step", type=click.IntRange(0), default=None, help="Step / epoch of these values.")
@json_option
@pass_ctx
def metric_cmd(ctx: Context, ref: str, values: tuple[str, ...], source: str, dataset: str | None, step: int | None) -> None:
    """Record metric values on a version (every record is kept)."""
    parse_ref(ref)
    if dataset:
        parse_dataset_ref(dataset)
    records = [{"key": k, "value": v, "source": source, **({"step": step} if step is not None else {}),
                **({"dataset": dataset} if dataset else {})} for k, v in _numbers(values).items()]
    v = ctx.client().record_metrics(ref, records)
    if ctx.as_json:
        return emit_json(v)
    recorded = ", ".join(f"{r['key']}={metric(r['value'])}" for r in records)
    out.line(f"recorded {recorded} on {v['model']}@{v['version']} ({source})")


@click.command()
@click.argument("ref")
@click.option("--path", "want_path", is_flag=True, help="Print a read-only folder holding the version's files.")
@json_option
@pass_ctx
def resolve(ctx: Context, ref: str, want_path: bool) -> None:
    """Print the version a ref names (what CI/CD deploys), e.g. `fraud@3`."""
    parse_ref(ref)
    c = ctx.client()
    if want_path and c.endpoint.explicit_url:
        # The daemon's folder is on its own machine: download the files into a local cache.
        from .version_cache import cached_version

        r = c.resolve(ref)
        r["path"] = str(cached_version(c, r))
    else:
        r = c.resolve(ref, path=want_path)
    if ctx.as_json:
        return emit_json(r)
    out.line(r["path"] if want_path else r["ref"])


@click.command()
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files already in DEST.")
@json_option
@pass_ctx
def export(ctx: Context, ref: str, dest: Path, force: bool) -> None:
    """Copy a version's files into DEST (checked against their digests)."""
    parse_ref(ref)
    c = ctx.client()
    v = c.resolve(ref)
    targets = []
    for f in v["files"]:
        rel = validate_relpath(f["path"])  # never trust a manifest path with the filesystem
        target = dest / rel
        if target.exists() and not force:
            raise ModelregError(f"{target} exists; pass --force to overwrite")
        targets.append((f, target))
    total = sum(f["size"] for f, _ in targets)
    with progress(total, f"exporting {v['ref']}", not ctx.as_json) as advance:
        for f, target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            c.download(v["ref"], f["path"], target, progress=advance)
    if ctx.as_json:
        return emit_json({"ref": v["ref"], "dest": str(dest), "files": len(targets), "bytes": total})
    out.line(f"exported {v['ref']}: {plural(len(targets), 'file')}, {size(total)} → {dest}")


COMMANDS = [models, versions, show, metric_cmd, resolve, export]
