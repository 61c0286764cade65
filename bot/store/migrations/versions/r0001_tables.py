"""One table per logical table of the product, with indexes for the product's lookups.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Every table has the same shape: ``seq`` (insertion order, for "oldest first"), ``id`` (the document's
id) and ``doc`` (the fields but ``id``, as ``jsonb``). Lookups are equality filters on one or two fields
(``doc -> 'field' = $1``, jsonb equality); each field the product filters on gets an expression index.
Hash indexes, not B-trees: they serve exactly this equality, and a B-tree would refuse a value larger
than about 2.7 kB (a long URL) at insert time. Tables the product does not know yet share
``other_documents`` (keyed by table name and id), so a new table works before it gets its own.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# table -> the fields the product looks documents up by (bot/, handlers/: find, count, remove, upsert).
TABLES: dict[str, tuple[str, ...]] = {
    "runs": ("url", "final_url"),
    # by target page (every /linkcheck), by source page, by referring domain (the source's host), by
    # import, by last verdict
    "backlinks": ("target_key", "source_key", "referring_domain", "import_id", "last_verdict"),
    # state is derived (never stored); owner, partner domain and kind are what lists filter on
    "agreements": ("owner", "partner_domain", "kind"),
    "agreement_history": ("agreement_id",),
    "counters": (),
    "changes": ("agreement_id", "kind", "referring_domain"),
    "snapshots": ("week",),
    "prune_proposals": ("agreement_id", "status"),
    "digests": ("period", "channel", "status"),
    "linking_sites": ("import_id",),
    "imports": (),
    "slack_audits": (),
}


def upgrade() -> None:
    for table, fields in TABLES.items():
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
        for field in fields:
            op.execute(f"CREATE INDEX {table}_{field} ON {table} USING hash ((doc -> '{field}'))")
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
