"""Run an aiohttp app on 127.0.0.1 in its own thread and event loop (shared by the test servers).

A server in its own loop serves sync tests, async tests and subprocesses alike, and never shares the
loop of the code under test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

START_TIMEOUT_S = 10


@dataclass
class ThreadedServer:
    port: int
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(START_TIMEOUT_S)


def serve_in_thread(
    make_app: Callable[[], web.Application], host: str, port: int, *, name: str, shutdown_timeout_s: float = 1
) -> ThreadedServer:
    """Start ``make_app()`` on ``host:port`` (0 = an ephemeral port); returns once it accepts connections."""
    ready = threading.Event()
    started: dict[str, object] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(
            make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=shutdown_timeout_s
        )
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, host, port).start())
        started.update(loop=loop, port=int(runner.addresses[0][1]))
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    if not ready.wait(START_TIMEOUT_S):
        raise RuntimeError(f"{name} did not start")
    loop = started["loop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)
    return ThreadedServer(port=int(str(started["port"])), loop=loop, thread=thread)
