"""A real HTTP server on 127.0.0.1 (ephemeral port) running in its own thread and event loop.

Usable from sync tests, async tests and subprocess CLI tests alike, because it never shares the loop
of the code under test. Routes are aiohttp handlers; ``hits`` records every request the server saw.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class LocalSite:
    host: str = "127.0.0.1"
    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    _routes: dict[str, Handler] = field(default_factory=dict)
    # Serves paths with no route of their own (default: 404).
    fallback: Handler | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    # -- routes -------------------------------------------------------------------------------------
    def route(self, path: str, handler: Handler) -> None:
        """Serve ``handler`` for every method on ``path`` (exact match, query ignored)."""
        self._routes[path] = handler

    def html(self, path: str, body: str, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(
                text=body, status=status, content_type="text/html", charset="utf-8", headers=headers
            )

        self.route(path, handler)

    def status(self, path: str, status: int, *, headers: dict[str, str] | None = None) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers=headers, text="" if status >= 200 else None)

        self.route(path, handler)

    def redirect(self, path: str, location: str, *, status: int = 301) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": location})

        self.route(path, handler)

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def hits_for(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    # -- lifecycle ----------------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(Hit(request.method, request.path, dict(request.headers)))
        handler = self._routes.get(request.path) or self.fallback
        if handler is None:
            return web.Response(status=404, text="not found")
        return await handler(request)

    def start(self) -> LocalSite:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._dispatch)
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self.port)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None and server.sockets  # type: ignore[union-attr]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._runner = runner
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"LocalSite:{self.host}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("local site did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> LocalSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
