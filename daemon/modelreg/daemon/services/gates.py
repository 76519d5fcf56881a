"""Promotion gates (PRODUCT.md §4): parse rule text, evaluate it into a verdict.

Rule grammar, one rule per gate:

    auc >= 0.92                      threshold (>=, <=, >, <, ==)
    auc >= production - 0.002        versus production, absolute tolerance
    latency_p99_ms <= production * 1.05   versus production, relative tolerance
    auc ~ production [± 0.002 | ± 2%]     "no worse than production", direction from the key
    requires dataset, run, metric:auc, param:lr, source:online, tag:owner
    staged_for >= 24h                soak time in staging
    command: ./integration-tests.sh  external program; exit 0 passes
    by ci, release-bot               only these identities (token names) may make the move
    approvals >= 2                   distinct identities other than the requester approved it
    requires signature               a trusted key's signature matches the version's files
    signed_by release-key            ... and it is that trusted key's

``by`` and ``approvals`` are about who acts, not about the version: ``--force`` overrides
every other failed rule (audited) but never these (``WHO_RULES``). A metric cannot be named
``approvals`` or ``by``: those words start the rules above.

A versus-production rule passes when nothing is in production yet. A gate guards a stage or
an alias (``@champion``); for an alias gate, ``production`` in a rule means the version the
alias points at now (the one the move replaces), and the rule passes while the alias is unset.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from modelreg.shared.errors import InvalidInput
from modelreg.shared.names import METRIC_SOURCES, metric_direction, validate_alias, validate_key, validate_name
from modelreg.shared.timefmt import iso, parse_duration

from ..store import Store
from ..store.records import GateFacts, GateRecord

DEFAULT_COMMAND_TIMEOUT = 300.0
OUTPUT_TAIL = 4000
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_KEY = r"[A-Za-z0-9_][A-Za-z0-9_.:/-]*"
_THRESHOLD = re.compile(rf"^({_KEY})\s*(>=|<=|==|>|<)\s*({_NUM})$")
_VERSUS = re.compile(rf"^({_KEY})\s*(>=|<=|>|<)\s*production(?:\s*([-+*])\s*({_NUM})(%)?)?$")
_NO_WORSE = re.compile(rf"^({_KEY})\s*~\s*production(?:\s*(?:±|\+-|\+/-)\s*({_NUM})(%)?)?$")
_SOAK = re.compile(r"^staged_for\s*>=\s*(\S+)$")
_REQUIRES = re.compile(r"^(?:requires?|has)\s+(.+)$")
_COMMAND = re.compile(r"^(?:command|cmd)\s*:\s*(.+)$", re.S)
_BY = re.compile(r"^by\s+(.+)$")
_APPROVALS = re.compile(r"^approvals\s*>=\s*(\d{1,2})$")
_SIGNED_BY = re.compile(r"^signed_by\s+(\S+)$")
_IDENTITY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")  # a token name (services/tokens.py)
_FACTS = ("dataset", "run", "parent", "description", "signature")
WHO_RULES = frozenset({"by", "approvals"})  # never overridden by --force
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, "==": lambda a, b: a == b,
}


@dataclass(frozen=True)
class Rule:
    text: str
    kind: str  # threshold | versus | requires | soak | command | by | approvals | signed_by
    key: str = ""
    op: str = ""
    value: float = 0.0
    tolerance_op: str = ""   # - + * ± (for versus)
    tolerance: float = 0.0
    relative: bool = False
    facts: tuple[str, ...] = ()   # requires: the facts; by: the identities; signed_by: the key name
    command: str = ""


def parse_rule(text: str) -> Rule:
    """Parse one rule; raises InvalidInput that shows the grammar on a mistake."""
    if not isinstance(text, str) or not text.strip() or len(text) > 4000 or "\x00" in text:
        raise InvalidInput("a gate rule is a non-empty line of text")
    t = " ".join(text.split()) if not text.lstrip().startswith(("command", "cmd")) else text.strip()
    if m := _COMMAND.match(t):
        return Rule(t, "command", command=m.group(1).strip())
    if m := _APPROVALS.match(t):
        if int(m.group(1)) < 1:
            raise InvalidInput(f"gate rule {text!r}: approvals >= N needs N of at least 1")
        return Rule(t, "approvals", value=float(m.group(1)))
    if re.match(r"approvals\b", t):
        raise InvalidInput(f"cannot read gate rule {text!r}: write 'approvals >= 2' (a whole number of "
                           "distinct identities other than the requester)")
    if m := _BY.match(t):
        names = tuple(n.strip() for n in m.group(1).split(",") if n.strip())
        bad = [n for n in names if not _IDENTITY.match(n)]
        if not names or bad:
            raise InvalidInput(f"gate rule {text!r}: 'by' names identities, comma-separated token names "
                               f"(lowercase letters, digits, '.', '_', '-'), e.g. 'by ci, release-bot'"
                               + (f"; not {bad[0]!r}" if bad else ""))
        return Rule(t, "by", facts=names)
    if m := _SIGNED_BY.match(t):
        name = m.group(1)
        if not _IDENTITY.match(name):
            raise InvalidInput(f"gate rule {text!r}: signed_by names a trusted key (modelreg trust list)")
        return Rule(t, "signed_by", facts=(name,))
    if m := _SOAK.match(t):
        return Rule(t, "soak", value=parse_duration(m.group(1)))
    if m := _REQUIRES.match(t):
        facts = tuple(f.strip() for f in m.group(1).split(",") if f.strip())
        for f in facts:
            kind, _, arg = f.partition(":")
            if f in _FACTS:
                continue
            if kind in ("metric", "param", "tag") and arg:
                validate_key(arg, f"{kind} name")
            elif kind == "source" and arg in METRIC_SOURCES:
                pass
            else:
                raise InvalidInput(f"unknown required fact {f!r}: use dataset, run, parent, description, signature, "
                                   f"metric:KEY, param:KEY, tag:KEY or source:{'|'.join(METRIC_SOURCES)}")
        return Rule(t, "requires", facts=facts)
    if m := _NO_WORSE.match(t):
        return Rule(t, "versus", key=m.group(1), op="~", tolerance_op="±",
                    tolerance=float(m.group(2) or 0), relative=bool(m.group(3)))
    if m := _VERSUS.match(t):
        tol_op = m.group(3) or ""
        if tol_op == "*" and m.group(5):
            raise InvalidInput(f"gate rule {text!r}: write a factor, not a percentage, after '*' "
                               "(production * 1.05 for +5%), or use 'production + 5%'")
        return Rule(t, "versus", key=m.group(1), op=m.group(2), tolerance_op=tol_op,
                    tolerance=float(m.group(4) or 0), relative=bool(m.group(5)))
    if m := _THRESHOLD.match(t):
        return Rule(t, "threshold", key=m.group(1), op=m.group(2), value=float(m.group(3)))
    raise InvalidInput(
        f"cannot read gate rule {text!r}. Examples: 'auc >= 0.92', 'auc >= production - 0.002', "
        "'latency_p99_ms <= production * 1.05', 'auc ~ production ± 1%', 'requires dataset, metric:auc', "
        "'staged_for >= 24h', 'command: ./check.sh', 'by ci', 'approvals >= 2', 'requires signature', "
        "'signed_by release-key'")


def metric_keys_named(rule: Rule) -> list[str]:
    """The metric keys a rule reads (threshold, versus production, requires metric:KEY)."""
    if rule.kind in ("threshold", "versus"):
        return [rule.key]
    if rule.kind == "requires":
        return [f.partition(":")[2] for f in rule.facts if f.startswith("metric:")]
    return []


def unknown_metric_warnings(rule: Rule, known: list[str], model: str | None) -> list[str]:
    """A warning per metric the rule names that no version records: a typo fails every check later."""
    whose = f"no version of {model}" if model else "no version of any model"
    shown = ", ".join(known[:20]) + (", …" if len(known) > 20 else "") if known else "none yet"
    return [f"{key}: {whose} records it; known: {shown}" for key in metric_keys_named(rule) if key not in known]


@dataclass
class Candidate:
    """What the gates look at: the version, and the version it would replace (``baseline``
    names it in messages: ``production``, or ``@champion`` for an alias gate)."""

    model: str
    number: int
    stage: str
    metrics: dict[str, float]
    metric_sources: set[str]
    params: dict[str, str]
    tags: dict[str, str]
    has_dataset: bool
    has_run: bool
    has_parent: bool
    description: str
    staged_since: float | None
    directions: dict[str, str] = field(default_factory=dict)
    production: dict[str, Any] | None = None   # {"number": n, "metrics": {...}}
    artifacts: Callable[[], Awaitable[str]] | None = None
    env: dict[str, str] = field(default_factory=dict)
    baseline: str = "production"
    # Who asks (issue 12): the acting identity's name (None: the daemon itself, which no
    # ``by`` rule names), the distinct identities that approved the move, and the outcome of
    # the version's signature check (status signed | mismatch | untrusted | invalid, or None
    # when no bundle came with it; signer: the trusted key's name).
    identity: str | None = None
    approvals: tuple[str, ...] = ()
    signature: str | None = None
    signer: str | None = None


def _result(rule: Rule, status: str, observed: Any, message: str, **extra: Any) -> dict[str, Any]:
    return {"rule": rule.text, "kind": rule.kind, "status": status, "observed": observed, "message": message, **extra}


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def check_threshold(rule: Rule, c: Candidate) -> dict[str, Any]:
    value = c.metrics.get(rule.key)
    if value is None:
        return _result(rule, "fail", None, f"{c.model}@{c.number} has no {rule.key} metric")
    ok = _OPS[rule.op](value, rule.value)
    return _result(rule, "pass" if ok else "fail", value,
                   f"{rule.key} = {_fmt(value)} {'meets' if ok else 'misses'} {rule.op} {_fmt(rule.value)}")


def check_versus(rule: Rule, c: Candidate) -> dict[str, Any]:
    value = c.metrics.get(rule.key)
    prod = c.production
    if prod is None:
        return _result(rule, "pass", value, "nothing is in production yet" if c.baseline == "production"
                       else f"{c.baseline} points at no version yet")
    if prod["number"] == c.number:
        return _result(rule, "pass", value, f"this version is the {c.baseline} version")
    base = prod["metrics"].get(rule.key)
    if base is None:
        return _result(rule, "pass", value, f"{c.baseline} v{prod['number']} has no {rule.key} metric to compare with")
    if value is None:
        return _result(rule, "fail", None, f"{c.model}@{c.number} has no {rule.key} metric", production=base)
    op = rule.op
    if op == "~":  # no worse than production, in the key's direction
        op = ">=" if metric_direction(rule.key, c.directions) == "higher" else "<="
        tol = abs(base) * rule.tolerance / 100 if rule.relative else rule.tolerance
        bound = base - tol if op == ">=" else base + tol
    elif rule.tolerance_op == "*":
        bound = base * rule.tolerance
    elif rule.tolerance_op in ("-", "+"):
        tol = abs(base) * rule.tolerance / 100 if rule.relative else rule.tolerance
        bound = base - tol if rule.tolerance_op == "-" else base + tol
    else:
        bound = base
    ok = _OPS[op](value, bound)
    return _result(rule, "pass" if ok else "fail", value,
                   f"{rule.key} = {_fmt(value)} vs {c.baseline} v{prod['number']} {_fmt(base)}: "
                   f"needs {op} {_fmt(bound)}", production=base, bound=bound)


def check_requires(rule: Rule, c: Candidate) -> dict[str, Any]:
    missing = []
    for f in rule.facts:
        kind, _, arg = f.partition(":")
        present = {
            "dataset": c.has_dataset, "run": c.has_run, "parent": c.has_parent, "description": bool(c.description),
            "metric": arg in c.metrics, "param": arg in c.params, "tag": arg in c.tags,
            "source": arg in c.metric_sources, "signature": c.signature == "signed",
        }[kind if ":" in f else f]
        if not present:
            missing.append(f)
    if missing:
        message = f"missing: {', '.join(missing)}"
        if "signature" in missing:
            message += f" ({signature_words(c)})"
        return _result(rule, "fail", sorted(set(rule.facts) - set(missing)), message)
    return _result(rule, "pass", list(rule.facts), "all present")


def signature_words(c: Candidate) -> str:
    """The signature state in a person's words, as the version shows it."""
    return {"signed": f"signed by {c.signer}", "mismatch": "signature does not match",
            "untrusted": "signed by a key the registry does not trust", "invalid": "the signature bundle is unreadable",
            None: "no signature was given"}.get(c.signature, c.signature or "")


def check_by(rule: Rule, c: Candidate) -> dict[str, Any]:
    allowed = ", ".join(rule.facts)
    if c.identity is not None and c.identity in rule.facts:
        return _result(rule, "pass", c.identity, f"made by {c.identity}")
    who = c.identity if c.identity is not None else "the daemon itself"
    return _result(rule, "fail", c.identity, f"only {allowed} may make this move, not {who}")


def check_approvals(rule: Rule, c: Candidate) -> dict[str, Any]:
    need, have = int(rule.value), len(c.approvals)
    by = f" ({', '.join(c.approvals)})" if c.approvals else ""
    return _result(rule, "pass" if have >= need else "fail", have,
                   f"{have} of {need} approvals{by}" + ("" if have >= need else "; waiting for approval"))


def check_signed_by(rule: Rule, c: Candidate) -> dict[str, Any]:
    key = rule.facts[0]
    ok = c.signature == "signed" and c.signer == key
    return _result(rule, "pass" if ok else "fail", c.signer if c.signature == "signed" else c.signature,
                   signature_words(c) + ("" if ok else f"; needs a signature by {key}"))


def check_soak(rule: Rule, c: Candidate, now: float) -> dict[str, Any]:
    if c.stage != "staging" or c.staged_since is None:
        return _result(rule, "fail", 0, f"{c.model}@{c.number} is not in staging (stage: {c.stage})")
    staged = now - c.staged_since
    ok = staged >= rule.value
    return _result(rule, "pass" if ok else "fail", round(staged, 1),
                   f"in staging for {_human(staged)}, needs {_human(rule.value)}")


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


async def check_command(rule: Rule, c: Candidate, timeout: float | None) -> dict[str, Any]:
    """Run an external gate in its own process group; kill the whole group on timeout."""
    timeout = timeout or DEFAULT_COMMAND_TIMEOUT
    env = {**os.environ, **c.env, "MODELREG_MODEL": c.model, "MODELREG_VERSION": str(c.number)}
    if c.artifacts is not None:
        try:
            env["MODELREG_ARTIFACTS"] = await c.artifacts()
        except Exception as exc:  # noqa: BLE001 - reported in the verdict
            return _result(rule, "error", None, f"could not materialise the artifacts: {exc}")
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", rule.command, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        return _result(rule, "error", None, f"could not start: {exc}")
    output = bytearray()

    async def drain() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            output.extend(chunk)
            del output[:-OUTPUT_TAIL]

    reader = asyncio.create_task(drain())
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except asyncio.TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        reader.cancel()
        return _result(rule, "fail", None, f"timed out after {timeout:g}s; process group killed",
                       output=output.decode(errors="replace"), duration_s=round(time.monotonic() - started, 2))
    except asyncio.CancelledError:
        _kill_group(proc.pid)
        raise
    try:
        await asyncio.wait_for(reader, 2)
    except asyncio.TimeoutError:
        reader.cancel()
    # Children the gate left running in its group do not outlive the verdict.
    _kill_group(proc.pid)
    code = proc.returncode
    tail = output.decode(errors="replace")
    return _result(rule, "pass" if code == 0 else "fail", code,
                   f"exit {code}" + (f": {tail.strip().splitlines()[-1][:200]}" if tail.strip() else ""),
                   output=tail, duration_s=round(time.monotonic() - started, 2))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def check_rule(rule: Rule, c: Candidate, now: float) -> dict[str, Any]:
    """One non-command rule's result (synchronous: it reads only the candidate)."""
    try:
        if rule.kind == "threshold":
            return check_threshold(rule, c)
        if rule.kind == "versus":
            return check_versus(rule, c)
        if rule.kind == "requires":
            return check_requires(rule, c)
        if rule.kind == "soak":
            return check_soak(rule, c, now)
        if rule.kind == "by":
            return check_by(rule, c)
        if rule.kind == "approvals":
            return check_approvals(rule, c)
        if rule.kind == "signed_by":
            return check_signed_by(rule, c)
        raise ValueError(f"a {rule.kind} rule is not evaluated synchronously")
    except Exception as exc:  # noqa: BLE001 - one broken rule must not hide the others
        return _result(rule, "error", None, f"{type(exc).__name__}: {exc}")


def verdict(results: list[dict[str, Any]], c: Candidate, target: str, now: float) -> dict[str, Any]:
    return {
        "passed": all(r["status"] == "pass" for r in results),
        "target": target,
        "ref": f"{c.model}@{c.number}",
        "production": c.production["number"] if c.production else None,
        "rules": results,
        "checked_at": iso(now),
    }


def evaluate_now(rules: list[tuple[Rule, float | None]], c: Candidate, target: str) -> dict[str, Any]:
    """The verdict of the non-command rules, synchronously (run inside a write, on fresh state)."""
    now = time.time()
    return verdict([check_rule(rule, c, now) for rule, _ in rules if rule.kind != "command"], c, target, now)


async def evaluate(rules: list[tuple[Rule, float | None]], c: Candidate, target: str) -> dict[str, Any]:
    """Every rule's result, in order; the verdict passes when none failed or errored."""
    now = time.time()
    results = []
    for rule, timeout in rules:
        if rule.kind != "command":
            results.append(check_rule(rule, c, now))
            continue
        try:
            results.append(await check_command(rule, c, timeout))
        except Exception as exc:  # noqa: BLE001 - one broken rule must not hide the others
            results.append(_result(rule, "error", None, f"{type(exc).__name__}: {exc}"))
    return verdict(results, c, target, now)


def candidate(facts: GateFacts, artifacts: Callable[[], Awaitable[str]] | None = None,
              env: dict[str, str] | None = None, baseline: str = "production", identity: str | None = None,
              approvals: tuple[str, ...] = ()) -> Candidate:
    """The gates' view of a version, from the facts the store read in one hop (``baseline``: what
    the facts' production version is, ``@ALIAS`` when they describe an alias's current version)."""
    v = facts.version
    relations = set(facts.relations)
    return Candidate(
        model=v.model_name, number=v.number, stage=v.stage, metrics=dict(facts.metrics),
        metric_sources=set(facts.metric_sources), params=dict(facts.params), tags=dict(facts.tags),
        has_dataset=bool(relations & {"trained_on", "evaluated_on"}), has_run="produced_by" in relations,
        has_parent="derived_from" in relations, description=v.description,
        staged_since=v.stage_changed_at if v.stage == "staging" else None, directions=dict(facts.directions),
        production=({"number": facts.production_number, "metrics": dict(facts.production_metrics)}
                    if facts.production_number is not None else None),
        artifacts=artifacts, env=dict(env or {}), baseline=baseline, identity=identity, approvals=tuple(approvals),
        signature=facts.signature_status, signer=facts.signer)


def rules_of(gates: list[GateRecord]) -> list[tuple[Rule, float | None]]:
    return [(parse_rule(g.rule), g.timeout) for g in gates]


# -- the gate rules resource ------------------------------------------------------------------------


def gate_view(g: GateRecord) -> dict[str, Any]:
    """A gate as the API shows it: ``stage`` or ``alias`` set (the other null), and ``target``
    (``production``, ``@champion``) for display."""
    return {"id": g.id, "model": g.model, "stage": g.stage, "alias": g.alias, "target": gate_target(g),
            "rule": g.rule, "timeout": g.timeout, "created_at": iso(g.created_at), "created_by": g.created_by}


def gate_target(g: GateRecord) -> str:
    return f"@{g.alias}" if g.alias is not None else g.stage or ""


class GateService:
    """List, add and remove gate rules (per model and target stage or alias, or registry-wide)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def list(self, model: str | None, stage: str | None, alias: str | None = None) -> dict[str, Any]:
        if model:
            validate_name(model)
        if alias:
            validate_alias(alias)
        gates = await self.store.gates.list(model or None, stage or None, alias or None)
        return {"items": [gate_view(g) for g in gates]}

    async def add(self, model: str | None, stage: str | None, rule_text: str | None, timeout: float | None,
                  actor: str, alias: str | None = None) -> dict[str, Any]:
        """A checked body (payloads.parse_gate: exactly one of stage and alias) in; the rule's grammar is read here."""
        rule = parse_rule(rule_text)
        gate, known = await self.store.gates.add(model or None, stage, rule.text, timeout, actor, alias)
        return {**gate_view(gate), "warnings": unknown_metric_warnings(rule, known, gate.model)}

    async def remove(self, gate_id: int, actor: str) -> dict[str, Any]:
        return gate_view(await self.store.gates.remove(gate_id, actor))
