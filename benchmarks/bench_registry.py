"""Registry throughput and latency against a real daemon process (PRODUCT.md §11).

    .venv/bin/python benchmarks/bench_registry.py [--versions 20000]

Prints: registrations/s from 1 and 16 clients (metadata + one uploaded blob, the
"register" call CI makes), get-version and resolve-production latency percentiles, and a
page of 100 versions, all with N versions stored.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from daemon_process import start_daemon  # noqa: E402

from modelreg.shared.client import Client  # noqa: E402


def pct(samples: list[float], p: float) -> float:
    samples = sorted(samples)
    return samples[min(len(samples) - 1, int(len(samples) * p))] * 1000


async def register_many(url: str, token: str, name: str, files: list[dict], count: int, clients: int) -> tuple[float, int]:
    errors = 0

    async def worker(n: int) -> None:
        nonlocal errors
        async with Client(url=url, token=token) as c:
            for i in range(n):
                try:
                    await c.register(name, files=files, metrics={"auc": 0.9 + (i % 100) / 1000}, params={"lr": "0.01"})
                except Exception:  # noqa: BLE001 - counted
                    errors += 1

    per = count // clients
    start = time.perf_counter()
    await asyncio.gather(*(worker(per) for _ in range(clients)))
    return per * clients / (time.perf_counter() - start), errors


async def latency(url: str, token: str, call, n: int = 2000) -> list[float]:
    async with Client(url=url, token=token) as c:
        out = []
        for i in range(n):
            t = time.perf_counter()
            await call(c, i)
            out.append(time.perf_counter() - t)
        return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=20000)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="modelreg-bench-"))
    d = start_daemon(home)
    try:
        blob = home.parent / f"{home.name}-weights.bin"
        blob.write_bytes(os.urandom(1024))
        async with Client(url=d.url, token=d.token) as c:
            up = await c.upload_blob(blob)
        files = [{"path": "model.safetensors", "sha256": up["sha256"], "size": up["size"]}]
        rate1, e1 = await register_many(d.url, d.token, "bench-one", files, 2000, 1)
        print(f"register, 1 client:   {rate1:8.0f} versions/s  ({e1} errors)")
        rate16, e16 = await register_many(d.url, d.token, "bench-many", files, 4000, 16)
        print(f"register, 16 clients: {rate16:8.0f} versions/s  ({e16} errors)")
        remaining = max(0, args.versions - 6000)
        if remaining:
            t = time.perf_counter()
            await register_many(d.url, d.token, "bench-many", files, remaining, 16)
            print(f"(filled to {args.versions} versions in {time.perf_counter() - t:.1f} s)")
        async with Client(url=d.url, token=d.token) as c:
            await c.promote("bench-many@5", reason="bench")
        total = 2000 + 4000 + remaining
        get = await latency(d.url, d.token, lambda c, i: c.version(f"bench-many@{1 + (i * 7919) % (total - 2000)}"))
        print(f"get version:          p50 {pct(get, .5):6.2f} ms  p99 {pct(get, .99):6.2f} ms  ({total} versions stored)")
        res = await latency(d.url, d.token, lambda c, i: c.resolve("bench-many@production"))
        print(f"resolve production:   p50 {pct(res, .5):6.2f} ms  p99 {pct(res, .99):6.2f} ms")
        page = await latency(d.url, d.token, lambda c, i: c.versions("bench-many", limit=100,
                                                                       cursor=f"n:{total - 2000 - (i * 97) % 3000}"), 500)
        print(f"page of 100 versions: p50 {pct(page, .5):6.2f} ms  p99 {pct(page, .99):6.2f} ms")
        rss = int(next(line.split()[1] for line in open(f"/proc/{d.proc.pid}/status") if line.startswith("VmRSS")))
        print(f"daemon RSS:           {rss / 1024:.0f} MB")
    finally:
        d.stop()


if __name__ == "__main__":
    asyncio.run(main())
