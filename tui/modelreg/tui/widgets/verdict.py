"""A gate verdict, one line per rule: ✓/✗, the rule, what was observed, the message."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from .formatting import Palette, anchored, number

MARKS = {"pass": "✓", "fail": "✗", "error": "!"}


def observed_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, float):
        return number(value)
    return "-" if value is None else str(value)


def verdict_text(verdict: dict[str, Any] | None, palette: Palette, target: str) -> Text:
    if verdict is None:
        return Text(f"checking the {target} gates…", style="italic")
    rules = verdict.get("rules") or []
    if not rules:
        return Text(f"no gates for {target}: nothing to check", style=palette.muted)
    out = Text()
    ok = verdict.get("passed")
    out.append(f"{target} gates: ", style="bold")
    out.append("passed" if ok else "FAILED", style=palette.better if ok else palette.error)
    if verdict.get("production"):  # for an alias's gates: the version the alias points at now
        baseline = target if target.startswith("@") else "production"
        out.append(f"  (vs {baseline} v{verdict['production']})", style=palette.muted)
    for rule in rules:
        status = rule.get("status", "error")
        style = palette.better if status == "pass" else palette.worse
        out.append("\n")
        out.append(f" {MARKS.get(status, '?')} ", style=f"bold {style}")
        out.append(rule.get("rule", ""), style="bold")
        out.append(f"  observed {observed_text(rule.get('observed'))}", style=palette.muted)
        if rule.get("message"):
            out.append(f"\n     {rule['message']}", style=style if status != "pass" else palette.muted)
        if rule.get("output"):
            tail = str(rule["output"]).strip().splitlines()[-3:]
            for line in tail:
                out.append(f"\n     │ {line[:200]}", style=palette.muted)
    return anchored(out)  # no styled run starts with the blanks that separate it (see formatting.anchored)


class VerdictView(Static):
    """Shows the verdict for one target (a stage, or ``@ALIAS``); ``None`` means it is still being checked."""

    def __init__(self, target: str, palette: Palette, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.palette = palette
        self.verdict: dict[str, Any] | None = None

    def on_mount(self) -> None:
        self.update(verdict_text(None, self.palette, self.target))

    def show(self, verdict: dict[str, Any] | None, error: str | None = None) -> None:
        self.verdict = verdict
        if error:
            self.update(Text(error, style=self.palette.error))
        else:
            self.update(verdict_text(verdict, self.palette, self.target))
