"""card: a version's model card (its README.md), rendered on a terminal, raw otherwise."""

from __future__ import annotations

import click

from modelreg.shared.names import parse_ref

from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, out


def split_front_matter(text: str) -> tuple[str, str]:
    """A Hugging Face card starts with YAML between '---' lines; return (that block, the rest)."""
    if not text.startswith("---"):
        return "", text
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "".join(lines[1:i]), "".join(lines[i + 1:])
    return "", text


@click.command()
@click.argument("ref")
@click.option("--raw", is_flag=True, help="Print the Markdown source as stored (the default when piped).")
@json_option
@pass_ctx
def card(ctx: Context, ref: str, raw: bool) -> None:
    """Print the model card (README.md) of REF: rendered on a terminal, raw text when piped or --raw.

    Exit 4 when the version has no README.md. --json gives {"ref", "path", "text"}.
    """
    parse_ref(ref)
    c = ctx.client().card(ref)
    if ctx.as_json:
        return emit_json(c)
    if raw or not out.is_terminal:
        out.stream.write(c["text"] if c["text"].endswith("\n") or not c["text"] else c["text"] + "\n")
        return
    meta, body = split_front_matter(c["text"])
    out.line(Span(f"{c['ref']}  {c['path']}", "dim"))
    for line in meta.strip().splitlines():
        out.line(Span(line, "dim"))
    out.blank()
    out.markdown(body.strip() or "(empty)")


COMMANDS = [card]
