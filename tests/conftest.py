from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.site import LocalSite


@pytest.fixture
def site() -> Iterator[LocalSite]:
    """A real HTTP server on 127.0.0.1 with an ephemeral port."""
    with LocalSite() as s:
        yield s
