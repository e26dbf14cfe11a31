"""Throwaway PostgreSQL databases for tests: each gets its own, named at random so that
parallel test workers never meet, and dropped afterwards even with connections left open."""

from __future__ import annotations

import contextlib
import uuid
from typing import Callable, Iterator


def create_database(server_url: str, prefix: str = "crm_test") -> tuple[str, Callable[[], None]]:
    """Create an empty database on the server; return its URL and the function that drops it."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = :n"), {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    url = sa.engine.make_url(server_url).set(database=name)
    return url.render_as_string(hide_password=False), drop


@contextlib.contextmanager
def temporary_database(server_url: str, prefix: str = "crm_test") -> Iterator[str]:
    url, drop = create_database(server_url, prefix)
    try:
        yield url
    finally:
        drop()
