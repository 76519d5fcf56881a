"""How fast the TUI opens a model with 100,000 versions (PRODUCT.md §11: ≤ 1 s), and how
long paging further takes.

    .venv/bin/python benchmarks/tui_open.py [--versions 100000] [--home DIR]

Registers metadata-only versions through the API (one uploaded blob, 16 requests in
flight), then drives the real app headless: time from opening the model screen to the
first page and the highlighted version's detail on screen, then the time to load the
next page after jumping to the end, and the time to move the cursor 1,000 rows.
With --home, an existing benchmark registry there is reused (registration is skipped
when the model already has the versions).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from daemon_process import start_daemon  # noqa: E402

from modelreg.shared.client import Client  # noqa: E402
from modelreg.shared.errors import NotFound  # noqa: E402

MODEL = "bench-big"


async def fill(url: str, token: str, home: Path, count: int) -> None:
    async with Client(url=url, token=token, home=home) as c:
        try:
            have = (await c.model(MODEL))["version_count"]
        except NotFound:
            have = 0
        if have >= count:
            print(f"{MODEL} already has {have:,} versions")
            return
        blob_path = home.parent / "bench-weights.bin"
        blob_path.write_bytes(b"\0" * 4096)
        blob = await c.upload_blob(blob_path)
        files = [{"path": "model.bin", "sha256": blob["sha256"], "size": blob["size"]}]
        started, sem, done = time.perf_counter(), asyncio.Semaphore(16), 0

        async def one(i: int) -> None:
            nonlocal done
            async with sem:
                await c.register(MODEL, files=files, metrics={"auc": 0.8 + (i % 1000) / 10000,
                                                               "latency_p99_ms": 30 + i % 17})
                done += 1
                if done % 10000 == 0:
                    print(f"  registered {done:,} ({done / (time.perf_counter() - started):,.0f}/s)", flush=True)

        await asyncio.gather(*(one(i) for i in range(have, count)))
        print(f"registered {count - have:,} versions in {time.perf_counter() - started:.1f}s")


async def drive(home: Path, url: str) -> None:
    from modelreg.tui.app import ModelregApp
    from modelreg.tui.screens.model import ModelScreen

    app = ModelregApp(home=home, url=url, keymap={}, start_daemon=False)
    async with app.run_test(size=(160, 48)) as pilot:
        while not getattr(app.screen, "loaded", False):
            await pilot.pause(0.01)
        started = time.perf_counter()
        app.open_model(MODEL)
        while not (isinstance(app.screen, ModelScreen) and app.screen.loaded):
            await asyncio.sleep(0.005)
        first_page = time.perf_counter() - started
        screen = app.screen
        while (screen.detail.detail or {}).get("version") != screen.table.current_version():
            await asyncio.sleep(0.005)
        opened = time.perf_counter() - started
        print(f"open {MODEL} ({screen.table.total:,} versions): first page {first_page * 1000:.0f} ms, "
              f"with the detail pane {opened * 1000:.0f} ms")

        loaded = len(screen.table.summaries)
        started = time.perf_counter()
        await pilot.press("end")
        while len(screen.table.summaries) == loaded:
            await asyncio.sleep(0.005)
        print(f"next page after End: {(time.perf_counter() - started) * 1000:.0f} ms "
              f"({len(screen.table.summaries):,} rows loaded)")

        await pilot.press("home")
        started, slowest = time.perf_counter(), 0.0
        for _ in range(100):
            t = time.perf_counter()
            await pilot.press("pagedown")
            slowest = max(slowest, time.perf_counter() - t)
        total = time.perf_counter() - started
        print(f"100 × PageDown: {total * 1000:.0f} ms, slowest key {slowest * 1000:.0f} ms; "
              f"{len(screen.table.summaries):,} rows loaded, cursor on v{screen.table.current_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="modelreg-tui-bench-")) / "registry"
    daemon = start_daemon(home)
    try:
        asyncio.run(fill(daemon.url, daemon.token, home, args.versions))
        asyncio.run(drive(home, daemon.url))
    finally:
        daemon.stop()


if __name__ == "__main__":
    main()
