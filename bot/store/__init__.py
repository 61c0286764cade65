"""The store: where every document Linkpact keeps is read and written.

Owns the backend-neutral :class:`~bot.store.base.Store` interface (``base``), the embedded TinyDB backend
(``tinydb``), the PostgreSQL backend (``postgres``; its schema versions in ``schema`` and ``migrations``;
copying an embedded database into it in ``copy``) and the factory that picks a backend (``factory``).
May import only the shared floor (:mod:`bot.config`, :mod:`bot.models`, :mod:`bot.errors`,
:mod:`bot.urls`); nothing above it.
"""

from bot.store.base import (
    ConflictError,
    Document,
    ReadTx,
    StorageError,
    Store,
    StoreUnavailable,
    Tx,
    new_doc_id,
)
from bot.store.factory import open_store

__all__ = [
    "ConflictError",
    "Document",
    "ReadTx",
    "StorageError",
    "Store",
    "StoreUnavailable",
    "Tx",
    "new_doc_id",
    "open_store",
]
