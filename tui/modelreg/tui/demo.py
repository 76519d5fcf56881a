"""`modelreg demo`: a throwaway registry that looks like a team's real one, then the TUI on it.

Everything goes through the public client, as a user's scripts would: small but real files
(safetensors written by hand, config.json, model cards), metrics from offline evaluation,
online shadow traffic and production monitoring (several records per key, so sparklines
have a history), datasets, runs, a derived model, gates — one of them failing — and a
history with promotions and a rollback. A watched drop folder inside the demo home lets
the user drop a model file in from another shell and watch it appear.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from modelreg.shared.client import Client
from modelreg.shared.config import Endpoint, read_token
from modelreg.shared.errors import GateFailed, ModelregError, NotFound, Unavailable
from modelreg.shared.launcher import spawn_daemon, stop_daemon, wait_for_daemon

DTYPES = {"F32": ("f", 4), "F16": ("e", 2), "I32": ("i", 4)}
DEMO_ACTOR = "demo@modelreg"


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], list[float]]],
                      metadata: dict[str, str] | None = None) -> None:
    """A valid safetensors file from plain Python: 8-byte header length, JSON header, raw data."""
    header: dict[str, Any] = {}
    blobs = []
    offset = 0
    for name, (dtype, shape, values) in tensors.items():
        code, width = DTYPES[dtype]
        count = math.prod(shape)
        data = struct.pack(f"<{count}{code}", *(values[i % len(values)] for i in range(count)))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def _wave(seed: int, n: int) -> list[float]:
    return [round(math.sin(seed * 0.7 + i * 0.37) * 0.5, 4) for i in range(n)]


# -- the registry's story -----------------------------------------------------------------------

FRAUD_AUC = [0.881, 0.889, 0.894, 0.901, 0.899, 0.907, 0.912, 0.915, 0.913, 0.921, 0.925, 0.931, 0.935, 0.928]
FRAUD_P99 = [52, 50, 48, 44, 45, 44, 43, 43, 42, 41, 37, 38, 41, 49]
FRAUD_CARD = """---
license: apache-2.0
datasets: [txns]
---
# fraud-detector v{v}

Gradient-boosted trees that score card-not-present transactions for fraud, trained on
**{dataset}**.

| metric | value |
|---|---|
| AUC (holdout) | {auc} |
| p99 latency | {p99} ms |

## Intended use
Real-time scoring in the payments path; scores above 0.82 go to manual review.

## Limitations
Under-represents merchants onboarded after the training window. Re-train monthly.
"""

CHURN_F1 = [0.66, 0.69, 0.72, 0.71, 0.75, 0.74]
RANKER_NDCG = [0.412, 0.431, 0.428, 0.447, 0.452, 0.466, 0.461, 0.473]

LLM_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 512, "torch_dtype": "float16"}


class DemoBuilder:
    def __init__(self, client: Client, root: Path, log=print) -> None:  # noqa: ANN001 - a print-like callable
        # The daemon refuses to register or watch paths inside its home, so the demo folder
        # holds the home, the drop folder and the source files side by side.
        self.c, self.root, self.log = client, root, log
        self.work = root / "files"
        self.drop = root / "drop"
        self.notes: list[str] = []
        self.watching = False

    async def build(self) -> list[str]:
        self.work.mkdir(parents=True, exist_ok=True)
        self.drop.mkdir(parents=True, exist_ok=True)
        await self._models()
        lifecycle = await self._gates()
        await self._fraud(lifecycle)
        await self._churn(lifecycle)
        await self._ranker(lifecycle)
        await self._watch()
        await self._llms(lifecycle)
        if not lifecycle:
            self.notes.append("the daemon has no lifecycle endpoints yet: stages, gates and rollback were skipped")
        return self.notes

    # -- pieces ---------------------------------------------------------------------------------

    async def _models(self) -> None:
        for name, description, tags in (
            ("fraud-detector", "Card-not-present fraud scorer for the payments path", {"team": "risk", "owner": "ana"}),
            ("churn", "Monthly subscriber churn propensity", {"team": "growth", "owner": "li"}),
            ("ranker", "Search results re-ranker (cross-encoder distilled to GBDT)", {"team": "search"}),
            ("llm-base", "Small in-house base language model", {"team": "ml-platform"}),
            ("llm-qlora", "Support-assistant fine-tune of llm-base (QLoRA)", {"team": "support-ai"}),
        ):
            try:
                await self.c.create_model(name, description=description, tags=tags)
            except ModelregError:
                pass

    async def _gates(self) -> bool:
        rules = [
            ("requires dataset", "staging", None),
            ("auc >= production - 0.002", "production", "fraud-detector"),
            ("latency_p99_ms <= 45", "production", "fraud-detector"),
            ("requires dataset, run", "production", "fraud-detector"),
            ("f1 >= 0.70", "production", "churn"),
            ("ndcg_10 ~ production ± 1%", "production", "ranker"),
            ("requires parent", "production", "llm-qlora"),
        ]
        try:
            for rule, stage, model in rules:
                await self.c.add_gate(rule, stage=stage, model=model)
        except NotFound:
            return False
        return True

    def _files(self, model: str, v: int, *, card: str | None = None, tensors: dict | None = None,
               config: dict | None = None) -> Path:
        folder = self.work / model / f"v{v}"
        folder.mkdir(parents=True, exist_ok=True)
        write_safetensors(folder / "model.safetensors", tensors or {
            "trees.leaf_values": ("F32", [48 + 8 * v], _wave(v, 64)),
            "feature_importance": ("F32", [32], _wave(v + 100, 32)),
        }, {"framework": "demo", "version": str(v)})
        (folder / "config.json").write_text(json.dumps(config or {"threshold": round(0.5 - v * 0.005, 3),
                                                                  "features": 32}, indent=2) + "\n")
        if card:
            (folder / "README.md").write_text(card)
        return folder

    async def _register(self, model: str, folder: Path, **metadata: Any) -> dict[str, Any]:
        result = await self.c.register(model, path=folder, wait=True, **metadata)
        return result["version"]

    async def _move(self, ref: str, to: str, reason: str, *, expect_refusal: bool = False) -> None:
        try:
            await self.c.transition(ref, to, reason=reason)
        except GateFailed as exc:
            if not expect_refusal:
                self.log(f"  gate refused {ref} → {to}: {exc.message}")

    async def _fraud(self, lifecycle: bool) -> None:
        self.log("fraud-detector: 14 versions")
        for i, (auc, p99) in enumerate(zip(FRAUD_AUC, FRAUD_P99)):
            v = i + 1
            dataset = f"txns@2026-{(v + 1) // 2 + 3:02d}"
            folder = self._files("fraud-detector", v, card=FRAUD_CARD.format(v=v, dataset=dataset, auc=auc, p99=p99)
                                 if v >= 10 else None)
            losses = [round(0.42 - 0.015 * v - 0.03 * math.log(step), 4) for step in range(1, 9)]
            await self._register(
                "fraud-detector", folder,
                description=["baseline GBM", "more trees", "tuned depth", "merchant features", "drop stale features",
                             "device fingerprint", "velocity features", "class weights", "smaller model",
                             "retrained on October", "latency work: pruning", "retrained on November",
                             "graph features", "wider ensemble"][i],
                params={"max_depth": 6 + v // 4, "learning_rate": round(0.1 - v * 0.004, 3),
                        "n_estimators": 300 + 50 * v, "features": 32 + v},
                tags={"framework": "xgboost", "owner": "ana" if v % 3 else "bo"},
                metrics=[{"key": "auc", "value": auc, "dataset": "txns-holdout@2026-10"},
                         {"key": "latency_p99_ms", "value": p99},
                         {"key": "precision", "value": round(auc - 0.09 + (v % 3) * 0.004, 3)},
                         {"key": "recall_at_1pct", "value": round(auc - 0.21, 3)},
                         *[{"key": "val_loss", "value": loss, "step": s + 1} for s, loss in enumerate(losses)]],
                datasets=[dataset, {"ref": "txns-holdout@2026-10", "relation": "evaluated_on"}],
                run={"id": f"run-{480 + v}", "experiment": "fraud-gbm", "started_at": 1790000000 + v * 86400,
                     "ended_at": 1790000000 + v * 86400 + 2400 + 60 * v, "hardware": "1x A10G",
                     "code_revision": f"{0x3f2c1d9 + v * 4099:07x}",
                     "hyperparameters": {"subsample": 0.8, "colsample_bytree": 0.7}},
                parent=f"fraud-detector@{v - 1}" if v in (11, 14) else None)
        # Production telemetry and shadow traffic: several records per key, for the sparklines.
        await self.c.record_metrics("fraud-detector@12", [
            {"key": "auc", "value": x} for x in (0.931, 0.930, 0.932, 0.929, 0.927, 0.926, 0.924)],
            source="monitoring", dataset="txns-live@2026-11")
        await self.c.record_metrics("fraud-detector@12", [
            {"key": "latency_p99_ms", "value": x} for x in (38, 39, 37, 40, 41, 39)], source="monitoring")
        await self.c.record_metrics("fraud-detector@13", [
            {"key": "auc", "value": x} for x in (0.934, 0.936, 0.935)], source="online",
            dataset="txns-shadow@2026-11")
        await self.c.record_metrics("fraud-detector@13", {"approval_rate": 0.962}, source="online")
        if not lifecycle:
            return
        f = "fraud-detector@"
        await self._move(f + "1", "archived", "superseded before launch")
        await self._move(f + "2", "archived", "superseded before launch")
        await self._move(f + "4", "staging", "first candidate")
        await self._move(f + "4", "production", "launch")
        await self._move(f + "7", "staging", "velocity features")
        await self._move(f + "7", "production", "beats v4 offline and in shadow")
        await self._move(f + "10", "staging", "monthly retrain")
        await self._move(f + "10", "production", "monthly retrain")
        await self._move(f + "11", "staging", "latency work")
        await self._move(f + "11", "production", "p99 down 4 ms")
        await self.c.rollback("fraud-detector", reason="v11 false positives doubled for new merchants (INC-2291)")
        await self._move(f + "12", "staging", "November retrain")
        await self._move(f + "12", "production", "fixes the v11 regression; +0.006 AUC")
        await self._move(f + "13", "staging", "graph features, in shadow since Monday")
        # v14 is slower than the production gate allows: its promotion is refused (and logged).
        await self._move(f + "14", "staging", "wider ensemble")
        await self._move(f + "14", "production", "try the wider ensemble", expect_refusal=True)
        await self.c.set_alias("fraud-detector", "champion", 12)

    async def _churn(self, lifecycle: bool) -> None:
        self.log("churn: 6 versions")
        for i, f1 in enumerate(CHURN_F1):
            v = i + 1
            folder = self._files("churn", v)
            await self._register("churn", folder, description=f"logistic regression, {8 + 4 * v} features",
                                 params={"C": round(1.0 / v, 3), "penalty": "l2", "class_weight": "balanced"},
                                 metrics={"f1": f1, "auc": round(f1 + 0.12, 3), "log_loss": round(0.52 - f1 / 3, 3)},
                                 datasets=[f"subscribers@2026-{v + 4:02d}"], run=f"churn-{v:03d}")
        await self.c.record_metrics("churn@5", [{"key": "f1", "value": x} for x in (0.75, 0.74, 0.745, 0.73)],
                                    source="monitoring")
        if lifecycle:
            await self._move("churn@3", "production", "first model that clears f1 0.70")
            await self._move("churn@5", "production", "better recall on annual plans")
            await self._move("churn@6", "staging", "candidate")

    async def _ranker(self, lifecycle: bool) -> None:
        self.log("ranker: 8 versions")
        for i, ndcg in enumerate(RANKER_NDCG):
            v = i + 1
            folder = self._files("ranker", v)
            await self._register("ranker", folder, description=f"LambdaMART, {200 + 25 * v} trees",
                                 params={"objective": "lambdarank", "num_leaves": 31 + v, "learning_rate": 0.05},
                                 metrics={"ndcg_10": ndcg, "mrr": round(ndcg + 0.11, 3),
                                          "latency_p99_ms": 12 + (v % 4)},
                                 datasets=[f"clicks@2026-w{40 + v}"], run=f"rank-{v}")
        if lifecycle:
            await self._move("ranker@4", "production", "launch")
            await self._move("ranker@6", "production", "+1.9 ndcg")
            await self._move("ranker@7", "staging", "A/B")
            await self._move("ranker@7", "archived", "lost the A/B test")
            await self._move("ranker@8", "staging", "A/B round 2")

    async def _watch(self) -> None:
        try:
            await self.c.add_watch(self.drop, mode="move", settle=1.0)
            self.watching = True
        except NotFound:
            self.notes.append(f"the daemon does not watch drop folders yet; {self.drop} is not watched")
        except ModelregError as exc:
            self.notes.append(f"could not watch {self.drop}: {exc.message}")

    def _llm_folder(self, model: str, v: int, sidecar: dict[str, Any]) -> Path:
        folder = self.work / model / f"v{v}"
        folder.mkdir(parents=True, exist_ok=True)
        layers = 2 if model == "llm-base" else 2
        tensors: dict[str, tuple[str, list[int], list[float]]] = {"model.embed_tokens.weight": ("F16", [512, 64], _wave(v, 97))}
        for layer in range(layers):
            for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
                tensors[f"model.layers.{layer}.self_attn.{proj}.weight"] = ("F16", [64, 64], _wave(v + layer, 53))
        if model == "llm-qlora":
            rank = 8 if v < 3 else 16
            for layer in range(layers):
                tensors[f"base_model.layers.{layer}.lora_A.weight"] = ("F32", [rank, 64], _wave(v, 31))
                tensors[f"base_model.layers.{layer}.lora_B.weight"] = ("F32", [64, rank], _wave(v + 1, 29))
        write_safetensors(folder / "model.safetensors", tensors, {"format": "pt"})
        (folder / "config.json").write_text(json.dumps(LLM_CONFIG, indent=2) + "\n")
        (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab_size": 512}}))
        card = ("---\nlicense: apache-2.0\n---\n"
                f"# {model} v{v}\n\n{sidecar.get('description', '')}.\n\n"
                "Evaluated on the internal support-questions set (perplexity) and a 5-shot MMLU subset.\n")
        (folder / "README.md").write_text(card)
        (folder / "modelreg.json").write_text(json.dumps({"name": model, **sidecar}, indent=2))
        return folder

    async def _llms(self, lifecycle: bool) -> None:
        self.log("llm-base: 3 versions, llm-qlora: 4 versions derived from it"
                 + (" (through the drop folder)" if self.watching else ""))
        base = [(9.8, 0.41), (8.9, 0.45), (9.1, 0.44)]
        for i, (ppl, mmlu) in enumerate(base):
            v = i + 1
            await self._drop_or_register("llm-base", v, {
                "description": ["first pretrain, 2B tokens", "continued pretrain, 6B tokens", "new tokenizer"][i],
                "params": {"tokens": ["2B", "6B", "6B"][i], "context": 2048, "lr": 3e-4},
                "metrics": {"perplexity": ppl, "mmlu_5shot": mmlu},
                "datasets": [f"web-corpus@v{v}"], "run": f"pretrain-{v}"})
        qlora = [(7.4, 0.61), (6.9, 0.66), (6.6, 0.69), (6.7, 0.71)]
        for i, (ppl, win) in enumerate(qlora):
            v = i + 1
            await self._drop_or_register("llm-qlora", v, {
                "description": f"QLoRA rank {8 if v < 3 else 16} on support tickets",
                "params": {"lora_rank": 8 if v < 3 else 16, "lora_alpha": 16, "epochs": 2 + v % 2, "lr": 2e-4},
                "metrics": {"perplexity": ppl, "win_rate": win},
                "datasets": [f"support-tickets@2026-{8 + v:02d}"], "run": f"qlora-{v}", "parent": "llm-base@2"})
        await self.c.record_metrics("llm-qlora@3", [{"key": "win_rate", "value": x} for x in (0.68, 0.70, 0.69, 0.71)],
                                    source="online")
        if lifecycle:
            await self._move("llm-base@2", "production", "best perplexity")
            await self._move("llm-qlora@3", "production", "support pilot")
            await self._move("llm-qlora@4", "staging", "candidate")

    async def _drop_or_register(self, model: str, v: int, sidecar: dict[str, Any]) -> None:
        folder = self._llm_folder(model, v, sidecar)
        if self.watching:
            before = (await self.c.model(model)).get("version_count", 0)
            target = self.drop / f"{model}-v{v}"
            os.rename(folder, target)  # an atomic rename-in: the watcher takes it at once
            if await self._wait_for_version(model, before + 1):
                return
            self.notes.append(f"the drop folder did not pick up {target.name} in time; registered it directly")
            if target.exists():
                folder = target
        meta = {k: v for k, v in sidecar.items() if k != "stage"}
        await self._register(model, folder, **meta)

    async def _wait_for_version(self, model: str, count: int, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = await self.c.model(model)
            if info.get("version_count", 0) >= count and info.get("latest", 0) >= count:
                return True
            await asyncio.sleep(0.1)
        return False


# -- running it ----------------------------------------------------------------------------------

def start_demo_daemon(home: Path, timeout: float = 20.0) -> tuple[subprocess.Popen, Endpoint]:
    """A daemon of our own on a free loopback port: never the user's registry on :7311."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    proc = spawn_daemon(home, "127.0.0.1:0", env=env)
    try:
        url = wait_for_daemon(home, proc, timeout, probe=False, kill=True)
    except Unavailable as exc:
        raise Unavailable(f"the demo daemon did not start: {exc.message}") from None
    return proc, Endpoint(url=url, token=read_token(home), home=home, explicit_url=False)


async def fill(endpoint: Endpoint, root: Path, log=print) -> tuple[Path, list[str]]:  # noqa: ANN001
    async with Client(endpoint, actor=DEMO_ACTOR) as client:
        builder = DemoBuilder(client, root, log)
        notes = await builder.build()
    return builder.drop, notes


def make_demo_home(base: Path | None = None) -> Path:
    return Path(tempfile.mkdtemp(prefix="modelreg-demo-", dir=base))


def stop(proc: subprocess.Popen, home: Path) -> None:
    """Stop the demo daemon, and the one the user may have restarted on the same home."""
    try:
        stop_daemon(home, proc, timeout=10)
    except ModelregError:
        pass  # none left running, or one that would not stop: the demo is over either way


async def _until(pilot, condition, timeout: float = 30.0) -> None:  # noqa: ANN001 - a Pilot, a callable
    """Until ``condition()`` holds and the app is idle (no worker but the connection's, no
    queued event, animations done): what a screenshot shows is then the data, not timing."""
    from textual.worker import WorkerState

    app = pilot.app
    deadline = time.monotonic() + timeout

    def idle() -> bool:
        busy = [w for w in app.workers if w.group != "daemon" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)]
        return not busy and not app._pending

    while time.monotonic() < deadline:
        if condition() and idle():
            await pilot.wait_for_scheduled_animations()
            if condition() and idle():
                return
        await pilot.pause(0.05)
    raise TimeoutError("the demo screens did not load in time")


async def save_screenshots(home: Path, drop: Path, out: Path, size: tuple[int, int] = (130, 36)) -> list[Path]:
    """SVGs of the models screen and of fraud-detector's model screen, for the README."""
    from .app import DemoInfo, ModelregApp
    from .screens.model import ModelScreen

    app = ModelregApp(home=home, demo=DemoInfo(home=home, drop=drop), start_daemon=False, keymap={},
                      cursor_blink=False, url_label="127.0.0.1:7311")
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    async with app.run_test(size=size) as pilot:
        await _until(pilot, lambda: getattr(app.screen, "loaded", False))
        saved.append(Path(app.save_screenshot("models.svg", str(out))))
        app.open_model("fraud-detector")
        await _until(pilot, lambda: isinstance(app.screen, ModelScreen) and app.screen.loaded)
        screen = app.screen
        screen.table.move_cursor(row=1, animate=False)  # v13, in staging
        await _until(pilot, lambda: (screen.detail.detail or {}).get("version") == 13 and screen.history_loaded
                     and screen.table.layout_width == screen.table.size.width)
        saved.append(Path(app.save_screenshot("model.svg", str(out))))
        screen.query_one("#detail-tabs").active = "metrics"
        # still v13, in staging: the tab shows its deltas against production v12
        await _until(pilot, lambda: (screen.detail.detail or {}).get("version") == 13
                     and screen.query_one("#metrics-table").row_count > 0)
        saved.append(Path(app.save_screenshot("model-metrics.svg", str(out))))
    return saved


def run_demo(root: Path | None = None, keep: bool = False, open_tui: bool = True, log=print,  # noqa: ANN001
             screenshots: Path | None = None) -> Path:
    """Build the demo under ``root`` (a new temporary folder by default) and open the TUI on it.

    ``root/registry`` is the registry home, ``root/drop`` the watched drop folder. When the
    TUI closes, the demo daemon stops and a temporary folder is deleted unless ``keep``.
    Returns the registry home.
    """
    fresh = root is None
    root = make_demo_home() if root is None else root
    home = root / "registry"
    for var in ("MODELREG_URL", "MODELREG_TOKEN"):  # the demo talks to its own daemon only
        os.environ.pop(var, None)
    log(f"demo registry in {home}")
    proc, endpoint = start_demo_daemon(home)
    ok = False
    try:
        started = time.monotonic()
        drop, notes = asyncio.run(fill(endpoint, root, log))
        log(f"filled in {time.monotonic() - started:.1f}s")
        for note in notes:
            log(f"note: {note}")
        ok = True
        if screenshots is not None:
            for path in asyncio.run(save_screenshots(home, drop, screenshots)):
                log(f"saved {path}")
        elif open_tui:
            from .app import DemoInfo, ModelregApp

            ModelregApp(home=home, demo=DemoInfo(home=home, drop=drop, command=cli_command()),
                        start_daemon=False).run()
    finally:
        if open_tui or screenshots is not None or not ok:
            stop(proc, home)
            if fresh and not keep:
                shutil.rmtree(root, ignore_errors=True)
            else:
                log(f"kept {root}")
    return home


def cli_command() -> str:
    """`modelreg` when that is what the shell finds, else the full path of this one."""
    import shutil
    import sys

    this = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    found = shutil.which("modelreg")
    if this is None or not this.name.startswith("modelreg") or (found and Path(found).resolve() == this):
        return "modelreg"
    return str(this)
