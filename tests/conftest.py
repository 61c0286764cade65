from __future__ import annotations

import ipaddress
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.config import FetchSettings, Limits, Settings, Timeout
from bot.engine import Engine
from tests.support.clock import Clock
from tests.support.postgres import create_database, drop_database, empty_database, require_postgres
from tests.support.site import LocalSite

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
BACKENDS = ("tinydb", "postgres")
# The backend of the `engine` fixture in modules without a `backends` mark: the embedded one, unless
# LINKPACT_TEST_ENGINE_BACKEND=postgres (then the whole product suite runs on PostgreSQL).
DEFAULT_ENGINE_BACKEND = os.environ.get("LINKPACT_TEST_ENGINE_BACKEND") or "tinydb"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``pytestmark = pytest.mark.backends("tinydb", "postgres")`` runs a module's engine tests once per
    backend."""
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is not None and "engine_backend" in metafunc.fixturenames:
        metafunc.parametrize("engine_backend", marker.args, indirect=True)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of its own for this test run (``linkpact_test_<random>``), migrated; dropped at the end."""
    require_postgres()
    name = f"linkpact_test_{os.urandom(6).hex()}"
    url = create_database(name)
    try:
        yield url
    finally:
        drop_database(name)


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The run's PostgreSQL database, emptied for this test."""
    empty_database(pg_database)
    return pg_database


@pytest.fixture
def engine_backend(request: pytest.FixtureRequest) -> str:
    backend = getattr(request, "param", DEFAULT_ENGINE_BACKEND)
    assert backend in BACKENDS, f"unknown backend {backend!r} (LINKPACT_TEST_ENGINE_BACKEND)"
    return str(backend)


@pytest.fixture
def site() -> Iterator[LocalSite]:
    """A real HTTP server on 127.0.0.1 with an ephemeral port ("our" site in agreement tests)."""
    with LocalSite() as s:
        yield s


@pytest.fixture
def ours(site: LocalSite) -> LocalSite:
    return site


@pytest.fixture
def partner() -> Iterator[LocalSite]:
    """A second site on another loopback address, so links to it are external."""
    with LocalSite(host="127.0.0.2") as s:
        yield s


@pytest.fixture
def third() -> Iterator[LocalSite]:
    with LocalSite(host="127.0.0.3") as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


def loopback_settings(tmp_path: Path, database_url: str | None = None) -> Settings:
    """Short timeouts, no retries, loopback allowed: local sites answer at once or never. The data goes to
    a TinyDB file in ``tmp_path``, or to PostgreSQL at ``database_url``."""
    return Settings(
        fetch=FetchSettings(
            timeout=Timeout(connect_s=2, read_s=2, total_s=3),
            limits=Limits(retries=0),
            allow_networks=LOOPBACK,
        ),
        db_path=tmp_path / "linkpact.json",
        database_url=database_url,
    )


@pytest.fixture
async def engine(
    tmp_path: Path, clock: Clock, engine_backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[Engine]:
    """An engine on a real TinyDB file in tmp_path (or a real PostgreSQL database, see ``backends``),
    reaching loopback, with the injected clock."""
    url = request.getfixturevalue("pg_url") if engine_backend == "postgres" else None
    eng = Engine.create(loopback_settings(tmp_path, url), now=clock)
    try:
        yield eng
    finally:
        await eng.aclose()
