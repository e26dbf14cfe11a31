"""Connecting to the database: SQLite (embedded default) and PostgreSQL, with one behaviour.

SQLite's Python driver starts transactions lazily and never around DDL; the engine needs real
transactions (a migration applies completely or not at all, an autonumber is claimed under a
write lock), so it takes over BEGIN itself, as SQLAlchemy's documentation recommends.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import sqlalchemy as sa
from sqlalchemy import event

# the key, in a pooled SQLite connection's `info`, that asks its next BEGIN to be IMMEDIATE
WRITE_INTENT = "crm_write_intent"
# the key, in a connection's `info`, of what to run after its write transaction commits
AFTER_COMMIT = "crm_after_commit"


def database_url(explicit: str | None, site: Path | None, app_database: str | None) -> str:
    """Resolve the database URL: --database, $CRM_DATABASE_URL, app.yaml, <site>/crm.db."""
    url = explicit or os.environ.get("CRM_DATABASE_URL") or app_database
    if not url:
        folder = Path(site) if site is not None else Path("site")
        return f"sqlite:///{(folder / 'crm.db').resolve()}"
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and site is not None:
        relative = url[len("sqlite:///"):]
        if relative and relative != ":memory:" and not Path(relative).is_absolute():
            return f"sqlite:///{(Path(site) / relative).resolve()}"
    return url


def connect(url: str, **options) -> sa.Engine:
    """Create an SQLAlchemy engine for `url` with the engine's connection settings."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **options)
        _sqlite_settings(engine)
        return engine
    # JIT compilation pays off for long analytic queries; for a CRM's short ones its start-up
    # (hundreds of ms when the planner's estimate is high) is pure latency
    connect_args = dict(options.pop("connect_args", {}))
    connect_args.setdefault("options", "-c jit=off")
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args, **options)


def _sqlite_settings(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        # foreign keys stay off on SQLite: a migration in batch mode copies and drops tables,
        # and with enforcement on, dropping a parent table would cascade-delete its children
        # (the pragma cannot change inside the migration's transaction)
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    def do_begin(connection_fairy) -> None:
        # a writing transaction takes the write lock at its start (IMMEDIATE), so two writers
        # queue instead of one failing halfway with "database is locked"; readers do not.
        # Emitted by the dialect rather than from a "begin" event listener: any engine-level
        # listener makes SQLAlchemy dispatch every connection event of every transaction
        # (measured 15-20 us a transaction, a sixth of a workflow transition)
        immediate = connection_fairy.info.pop(WRITE_INTENT, False)
        connection_fairy.dbapi_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    engine.dialect.do_begin = do_begin  # this engine's own dialect instance


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """Yield a connection inside a transaction that will write (see `on_begin`); run what
    `after_commit` registered once it has committed."""
    with engine.connect() as connection:
        info = connection.info
        info.pop(AFTER_COMMIT, None)  # left by a transaction that was not ours
        if engine.dialect.name == "sqlite":  # read once by `do_begin`, for this transaction only
            connection.connection.info[WRITE_INTENT] = True
        try:
            with connection.begin():
                yield connection
        except BaseException:
            info.pop(AFTER_COMMIT, None)
            raise
        callbacks = info.pop(AFTER_COMMIT, ())
    for callback in callbacks:
        try:
            callback()
        except Exception:  # noqa: BLE001 - the change committed; a hint that fails is only logged
            logging.getLogger("crm.storage").exception("after-commit callback failed")


def after_commit(connection: sa.Connection, callback: Callable[[], None]) -> None:
    """Run `callback` once the write transaction `connection` is in has committed, never if
    it rolls back (a job is enqueued only for work that exists)."""
    connection.info.setdefault(AFTER_COMMIT, []).append(callback)


def insert_or_merge(connection: sa.Connection, table: sa.Table):
    """An INSERT of the connection's dialect, which has `on_conflict_do_nothing` and
    `on_conflict_do_update` (both databases spell them alike)."""
    from sqlalchemy.dialects import postgresql, sqlite
    return (sqlite.insert if is_sqlite(connection) else postgresql.insert)(table)


def is_sqlite(engine: sa.Engine | sa.Connection) -> bool:
    return engine.dialect.name == "sqlite"
