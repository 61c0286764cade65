"""Which backend a process uses: the one place that knows every backend.

Kept apart from :mod:`bot.store.base` (the interface every backend imports) so that no backend imports
the module that imports it.
"""

from __future__ import annotations

import os

from bot.store.base import Store


def open_store(path: str | os.PathLike[str]) -> Store:
    """Open the embedded store at ``path`` (``LINKPACT_DB``), synchronously, for start-up.

    A missing file is an empty database (the file is created on the first write); the directory must
    exist. Raises :class:`bot.store.base.StorageError` at once when the file is corrupt or unreadable.
    """
    # Imported on first use: the backend pulls in TinyDB, which `linkpact --help` never needs.
    from bot.store.tinydb import TinyStore

    return TinyStore(path)
