from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.config import FetchSettings, Limits, Settings, Timeout
from bot.engine import Engine
from tests.support.clock import Clock
from tests.support.site import LocalSite

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


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


def loopback_settings(tmp_path: Path) -> Settings:
    """Short timeouts, no retries, loopback allowed: local sites answer at once or never."""
    return Settings(
        fetch=FetchSettings(
            timeout=Timeout(connect_s=2, read_s=2, total_s=3),
            limits=Limits(retries=0),
            allow_networks=LOOPBACK,
        ),
        db_path=tmp_path / "linkpact.json",
    )


@pytest.fixture
async def engine(tmp_path: Path, clock: Clock) -> AsyncIterator[Engine]:
    """An engine on a real TinyDB file in tmp_path, reaching loopback, with the injected clock."""
    eng = Engine.create(loopback_settings(tmp_path), now=clock)
    try:
        yield eng
    finally:
        await eng.aclose()
