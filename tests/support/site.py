"""A real HTTP server on 127.0.0.1 (ephemeral port) running in its own thread and event loop.

Usable from sync tests, async tests and subprocess CLI tests alike, because it never shares the loop
of the code under test. Routes are aiohttp handlers; ``hits`` records every request the server saw.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from tests.support.server import ThreadedServer, serve_in_thread

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
    _server: ThreadedServer | None = None

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

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def start(self) -> LocalSite:
        self._server = serve_in_thread(self._make_app, self.host, self.port, name=f"LocalSite:{self.host}")
        self.port = self._server.port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> LocalSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
