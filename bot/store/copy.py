"""Copy an embedded database (the TinyDB file) into PostgreSQL, all or nothing, and verify the copy.

Used by ``linkpact db migrate --from linkpact.json``. The file is read through the embedded backend (so a
corrupt file is refused with the same message as at start-up), every table is written in one PostgreSQL
transaction, and before that transaction commits every document is read back and compared with its
source (JSON equality, ids and insertion order included): a difference rolls everything back.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.store.base import Document, StorageError, json_equal
from bot.store.postgres import PgStore, storable
from bot.store.tablefiles import parse_database
from bot.store.tinydb import TinyStore

__all__ = ["CopiedTable", "TargetNotEmpty", "copy_into_postgres", "read_embedded"]


class TargetNotEmpty(StorageError):
    """The PostgreSQL database already holds documents (the message names the tables)."""


@dataclass(frozen=True, slots=True)
class CopiedTable:
    """One table's outcome: documents read from the file, written, and read back equal to the source.
    ``replaced_text``: documents with text PostgreSQL cannot hold (NUL, lone surrogates), stored with
    U+FFFD in its place."""

    table: str
    copied: int
    verified: int
    replaced_text: int = 0


async def read_embedded(path: str | os.PathLike[str]) -> dict[str, list[Document]]:
    """Every table of the database at ``path``, its documents in insertion order. Raises
    :class:`StorageError` when the file is missing, corrupt or unreadable. Opening it with the embedded
    backend first brings a single-file database of format 1 to the current layout (docs/storage.md)."""
    if not await asyncio.to_thread(os.path.isfile, path):
        raise StorageError(f"{os.fspath(path)} does not exist (or is not a file): nothing to copy")
    async with TinyStore(path) as store:
        await store.count("runs")  # opened, checked and (if old) migrated before the catalogue is read
        names = await asyncio.to_thread(_table_names, path)
        return await store.view(lambda tx: {name: tx.find(name) for name in names})


def _table_names(path: str | os.PathLike[str]) -> list[str]:
    """The database's table names, from its catalogue (read with the embedded backend's checked parser)."""
    data = parse_database(Path(path).read_bytes(), Path(path))
    tables = data.get("tables")
    return sorted(tables) if isinstance(tables, dict) else sorted(data)


async def copy_into_postgres(
    source: Mapping[str, list[Document]], target: PgStore, *, replace: bool = False
) -> list[CopiedTable]:
    """Write every document of ``source`` into ``target`` in one transaction and verify it there.

    Refuses with :class:`TargetNotEmpty` when ``target`` already holds documents, unless ``replace``
    (then they are deleted first, in the same transaction). Raises :class:`StorageError` when the
    verification finds a difference (nothing is written then). Returns one entry per non-empty table.
    """

    def copy(tx: Any) -> list[CopiedTable]:
        present = {name: n for name in tx.table_names() if (n := tx.count(name))}
        if present and not replace:
            listed = ", ".join(f"{name} ({n})" for name, n in sorted(present.items()))
            raise TargetNotEmpty(
                f"the database {target.where} already holds documents: {listed}; nothing was copied "
                "(use --replace to delete them first)"
            )
        for name in present:
            tx.delete_all(name)
        out = []
        for name, docs in source.items():
            if not docs:
                continue
            tx.insert_many(name, docs)
            expected = [storable(doc) for doc in docs]
            stored = tx.find(name)
            verified = sum(
                1 for want, got in zip(expected, stored, strict=False) if _same_document(want, got)
            )
            if len(stored) != len(docs) or verified != len(docs):
                raise StorageError(
                    f"{name}: {len(docs)} documents copied but {verified} of {len(stored)} read back equal; "
                    "nothing was written"
                )
            replaced = sum(1 for doc, want in zip(docs, expected, strict=True) if doc != want)
            out.append(CopiedTable(name, len(docs), verified, replaced))
        return out

    return await target.transact(copy)


def _same_document(want: Document, got: Document) -> bool:
    return want.get("id") == got.get("id") and json_equal(want, got)
