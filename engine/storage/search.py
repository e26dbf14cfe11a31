"""Text search over an entity's `search` fields: `q=` in lists, the same answer on both databases.

Search means "every word of the query appears, case-insensitively, as a substring of one of
the search fields". Word-based full text (tsvector, FTS5's default tokenizer) cannot find 客户
inside 重点客户 because Chinese has no spaces; trigram indexes can, on both databases:
SQLite FTS5 with the `trigram` tokenizer (a separate table the record service keeps current,
one row per record), and PostgreSQL `pg_trgm` with a GIN index on the searched text.
Words shorter than three characters are matched with LIKE, which the trigram index cannot serve.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.registry.model import Entity, Registry
from engine.storage.tables import Schema, short_name


def fts_table_name(entity: str) -> str:
    return short_name(f"s_{entity}")


def pg_index_name(entity: str) -> str:
    return short_name(f"sx_e_{entity}")


def search_document(table: sa.Table, fields: tuple[str, ...]):
    """The text PostgreSQL indexes and searches: the search fields joined, lower-cased."""
    parts = [sa.func.coalesce(sa.cast(table.c[f], sa.Text), "") for f in fields]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.op("||")(" ").op("||")(part)
    return sa.func.lower(joined)


def fts_table(entity: Entity, metadata: sa.MetaData | None = None) -> sa.Table:
    """A lightweight description of the SQLite FTS table, for inserts and queries."""
    return sa.table(fts_table_name(entity.name), sa.column("rowid"),
                    *[sa.column(f) for f in entity.search_fields])


def _quote(connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def _create_sqlite(connection, entity: Entity, schema: Schema) -> None:
    q = lambda n: _quote(connection, n)  # noqa: E731 - identifiers from the registry, quoted
    name = fts_table_name(entity.name)
    columns = ", ".join(q(f) for f in entity.search_fields)
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {q(name)}")
    connection.exec_driver_sql(
        f"CREATE VIRTUAL TABLE {q(name)} USING fts5({columns}, tokenize='trigram')")
    base = schema.entities[entity.name]
    connection.exec_driver_sql(
        f"INSERT INTO {q(name)} (rowid, {columns}) SELECT id, {columns} FROM {q(base.name)} "
        "WHERE deleted_at IS NULL")


def _create_postgres(connection, entity: Entity, schema: Schema) -> None:
    table = schema.entities[entity.name]
    name = pg_index_name(entity.name)
    with connection.begin_nested():
        connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    document = search_document(table, entity.search_fields).compile(
        dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    connection.exec_driver_sql(f"DROP INDEX IF EXISTS {_quote(connection, name)}")
    connection.exec_driver_sql(
        f"CREATE INDEX {_quote(connection, name)} ON {_quote(connection, table.name)} "
        f"USING gin (({document}) gin_trgm_ops) WHERE deleted_at IS NULL")


def search_steps(connection, registry: Registry, schema: Schema, old: dict) -> list:
    """Return the migration steps that create or rebuild search indexes."""
    from engine.storage.migrate import Step

    inspector = sa.inspect(connection)
    sqlite = connection.dialect.name == "sqlite"
    existing_tables = set(inspector.get_table_names())
    steps = []
    for entity in registry.entities.values():
        if not entity.search_fields:
            continue
        table = schema.entities[entity.name]
        changed = old.get(entity.name, {}).get("search") != list(entity.search_fields)
        if sqlite:
            missing = fts_table_name(entity.name) not in existing_tables
        else:
            missing = table.name not in existing_tables or pg_index_name(entity.name) not in {
                ix["name"] for ix in inspector.get_indexes(table.name)}
        if not (missing or changed):
            continue
        create = _create_sqlite if sqlite else _create_postgres
        fields = ", ".join(entity.search_fields)
        steps.append(Step(f"build search index for {entity.name} ({fields})",
                          lambda ops, conn, e=entity, c=create: c(conn, e, schema)))
    return steps
