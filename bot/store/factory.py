"""Which backend a process uses: the one place that knows every backend.

Kept apart from :mod:`bot.store.base` (the interface every backend imports) so that no backend imports
the module that imports it.
"""

from __future__ import annotations

import os

from bot.store.base import Store
from bot.store.schema import is_postgres_url


def open_store(path: str | os.PathLike[str], *, database_url: str | None = None) -> Store:
    """Open the store, synchronously, for start-up: PostgreSQL when ``database_url`` is a
    ``postgresql://`` URL (``LINKPACT_DATABASE_URL``), else the embedded file at ``path`` (``LINKPACT_DB``).

    Embedded: a missing file is an empty database (the file is created on the first write); the directory
    must exist. Raises :class:`bot.store.base.StorageError` at once when the file is corrupt or unreadable.

    PostgreSQL: raises :class:`bot.store.base.StoreUnavailable` when the server cannot be reached and
    :class:`bot.store.schema.SchemaMismatch` when the schema is not the one this Linkpact needs (run
    ``linkpact db upgrade``). Raises :class:`ValueError` for a URL of another kind.
    """
    if database_url:
        if not is_postgres_url(database_url):
            raise ValueError("LINKPACT_DATABASE_URL must be a postgresql:// URL")
        # Imported on first use: psycopg is not needed by the embedded backend.
        from bot.store.postgres import PgStore

        return PgStore(database_url)
    # Imported on first use: the backend pulls in TinyDB, which `linkpact --help` never needs.
    from bot.store.tinydb import TinyStore

    return TinyStore(path)
