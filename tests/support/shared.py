"""Locate ``../shared`` (test data beside the project). Skip with a reason when absent; fail in CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DIR = Path(__file__).resolve().parents[3] / "shared"


def shared_path(*parts: str) -> Path:
    """Return ``../shared/<parts>``; skip the test when it is missing, fail when ``CI=true``."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        message = (
            f"{path} is missing: these tests read the shared test data that sits beside the project "
            "(../shared), which a user's clone does not have"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
