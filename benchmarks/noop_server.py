"""The floor: a no-op aiohttp app in its own process (issue 9 item 6).

    python benchmarks/noop_server.py        # prints the port it listens on, then serves

Every POST reads its body and answers 201 with a tiny msgpack body; every GET answers 200
with one. It runs the same way the daemon does (an AppRunner, no access log), so the
benchmark's client, driving both with the same code, measures what aiohttp itself costs.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

from aiohttp import web

BODY = b"\x81\xa2ok\xc3"  # msgpack {"ok": true}
MSGPACK = "application/msgpack"


async def post(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=BODY, status=201, content_type=MSGPACK)


async def get(request: web.Request) -> web.Response:
    return web.Response(body=BODY, status=200, content_type=MSGPACK)


async def main() -> None:
    app = web.Application(client_max_size=1024**3)
    app.router.add_route("POST", "/{tail:.*}", post)
    app.router.add_route("GET", "/{tail:.*}", get)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    print(sock.getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
