"""The PostgreSQL schema's migrations, applied by Alembic (``linkpact db upgrade``).

Kept inside the package so that an installed wheel carries them. Each file under ``versions/`` is one
schema version, written as plain SQL (``op.execute``): the schema is small and PostgreSQL-specific
(``jsonb`` expression indexes), so SQLAlchemy models would only hide it. Revisions are numbered
``0001``, ``0002``... and :data:`bot.store.schema.SCHEMA_REVISIONS` lists them in order.
"""
