"""One table per logical table of the product, with indexes for the product's lookups.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Every table has the same shape: ``seq`` (insertion order, for "oldest first"), ``id`` (the document's
id) and ``doc`` (the fields but ``id``, as ``jsonb``). Lookups are equality filters on one or two fields
(``doc -> 'field' = $1``, jsonb equality); each field the product filters on gets an expression index
(see ``TABLES`` for which kind and why). Tables the product does not know yet share
``other_documents`` (keyed by table name and id), so a new table works before it gets its own.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# table -> (fields with a hash index, fields with a B-tree index): the fields the product looks documents
# up by (find, count, remove, upsert in bot/ and handlers/). Hash for URLs: a B-tree refuses a value over
# about 2.7 kB (a long URL would fail the insert), and the keys are near unique, where hash indexes are
# compact and quick. B-tree for short values that repeat (a status, an agreement id, an import id): a
# hash index degrades into long overflow chains on repeated values (an import's 100,000 rows share one
# import_id: measured 10 s against 2 s for the same insert without it).
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "runs": ((), ()),  # written on every check, read whole: an index would only slow the writes
    # by target page (every /linkcheck), by source page (track, untrack), by import (the import summary)
    "backlinks": (("target_key", "source_key"), ("import_id",)),
    # state is derived and never stored; owner and partner domain are what lists narrow agreements by
    "agreements": ((), ("owner", "partner_domain")),
    "agreement_history": ((), ("agreement_id",)),
    "counters": ((), ()),
    "changes": ((), ("agreement_id", "kind")),
    "snapshots": ((), ("week",)),
    "prune_proposals": ((), ("agreement_id", "status")),
    "digests": ((), ("period", "status")),
    "linking_sites": ((), ()),
    "imports": ((), ()),
    "slack_audits": ((), ()),
    # the version of the stored link keys (bot/backlinks/registry.py): a handful of documents by id
    "meta": ((), ()),
    # Slack event ids already handled (handlers/event_ledger.py): looked up by id, removed by expiry
    "slack_events": ((), ()),
}


def upgrade() -> None:
    for table, (hashed, ordered) in TABLES.items():
        op.execute(
            f"""
            CREATE TABLE {table} (
                seq bigint GENERATED ALWAYS AS IDENTITY,
                id text PRIMARY KEY CHECK (id <> '' AND length(id) <= 200),
                doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object')
            )
            """
        )
        op.execute(f"CREATE UNIQUE INDEX {table}_seq ON {table} (seq)")
        for field in hashed:
            op.execute(f"CREATE INDEX {table}_{field} ON {table} USING hash ((doc -> '{field}'))")
        for field in ordered:
            op.execute(f"CREATE INDEX {table}_{field} ON {table} ((doc -> '{field}'))")
    # One tracked backlink per (source page, target page): the registry and imports check before they
    # insert; the index makes the database refuse a duplicate too. md5 of the two keys' JSON text keeps
    # the index entry small however long the URLs; a document lacking either key is not constrained.
    op.execute(
        "CREATE UNIQUE INDEX backlinks_source_target ON backlinks "
        "(md5((doc -> 'source_key')::text || ' ' || (doc -> 'target_key')::text))"
    )
    op.execute(
        """
        CREATE TABLE other_documents (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            tbl text NOT NULL CHECK (tbl ~ '^[a-z][a-z0-9_]{0,62}$'),
            id text NOT NULL CHECK (id <> '' AND length(id) <= 200),
            doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
            PRIMARY KEY (tbl, id)
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX other_documents_seq ON other_documents (tbl, seq)")


def downgrade() -> None:
    for table in (*TABLES, "other_documents"):
        op.execute(f"DROP TABLE {table}")
