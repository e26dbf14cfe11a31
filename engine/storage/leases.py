"""Claims on work, held in the database: who may do it, until when.

A row of work (a webhook message, a schedule tick, an import) is claimed by setting its
`lease_owner` to the worker's identity and `lease_until` a little into the future, in one
statement that skips rows another worker holds (`FOR UPDATE SKIP LOCKED` on PostgreSQL;
SQLite has one writer at a time, so the statement alone is enough). Every write of the work's
result checks that the lease is still its own, in the same transaction as the result, so a
worker that stalled past its lease and came back cannot write over the one that took over.
A worker that dies simply stops renewing: when `lease_until` passes, the row is free again.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

import sqlalchemy as sa
from engine.storage.database import insert_or_merge, is_sqlite, write_transaction

UTC = dt.timezone.utc
LEASE_ENV = "CRM_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 60.0


def lease_seconds() -> float:
    """How long a claim lasts without renewal ($CRM_LEASE_SECONDS, default 60)."""
    try:
        return max(1.0, float(os.environ.get(LEASE_ENV) or DEFAULT_LEASE_SECONDS))
    except ValueError:
        return DEFAULT_LEASE_SECONDS


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def lease_end(at: dt.datetime | None = None, seconds: float | None = None) -> dt.datetime:
    """When a claim made (or renewed) at `at` runs out."""
    return (at or now()) + dt.timedelta(seconds=seconds or lease_seconds())


def new_identity() -> str:
    """A name for this process that no other process, here or elsewhere, will have."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:10]}"


def free(table: sa.Table, at: dt.datetime):
    """The condition "nobody holds this row" at `at`."""
    return sa.or_(table.c.lease_until.is_(None), table.c.lease_until < at)


def claim_rows(conn: sa.Connection, table: sa.Table, conditions: list, owner: str,
               at: dt.datetime, limit: int, order_by=None) -> list[dict]:
    """Claim up to `limit` free rows of `table` matching `conditions`; return them claimed.

    Rows another transaction has locked are skipped, not waited for, so N workers claiming
    at once each get different rows."""
    until = lease_end(at)
    pick = sa.select(table.c.id).where(*conditions, free(table, at)) \
        .order_by(order_by if order_by is not None else table.c.id).limit(limit)
    if not is_sqlite(conn):
        pick = pick.with_for_update(skip_locked=True)
    claimed = conn.execute(table.update().where(table.c.id.in_(pick.scalar_subquery()))
                           .values(lease_owner=owner, lease_until=until)
                           .returning(*table.c)).mappings().all()
    return sorted((dict(r) for r in claimed), key=lambda r: r["id"])


def claim_job(engine: sa.Engine, table: sa.Table, job_id, owner: str, **values) -> bool:
    """Claim one job row (an import, an export) that is queued, or running with nobody
    holding it (its worker died), and mark it running; False when it is not free."""
    at = now()
    with write_transaction(engine) as conn:
        return conn.execute(table.update().where(
            table.c.id == job_id, table.c.status.in_(("queued", "running")), free(table, at))
            .values(status="running", lease_owner=owner,
                    lease_until=lease_end(at), updated_at=at,
                    **values)).rowcount == 1


def renew(conn: sa.Connection, table: sa.Table, ids: list, owner: str) -> int:
    """Extend this owner's leases on `ids`; return how many it still held."""
    if not ids:
        return 0
    until = lease_end()
    return conn.execute(table.update().where(table.c.id.in_(ids), table.c.lease_owner == owner)
                        .values(lease_until=until)).rowcount


class Singleton:
    """A lease on work only one process may do at a time (`crm_lease`), by name."""

    def __init__(self, engine: sa.Engine, table: sa.Table):
        self.engine, self.table = engine, table

    def take(self, name: str, owner: str, seconds: float | None = None) -> bool:
        """Take (or renew) the lease `name` for `owner`; False while another holds it."""
        at = now()
        until = lease_end(at, seconds)
        table = self.table
        with write_transaction(self.engine) as conn:
            taken = conn.execute(table.update().where(
                table.c.name == name, sa.or_(table.c.until < at, table.c.owner == owner))
                .values(owner=owner, until=until)).rowcount
            if taken:
                return True
            insert = insert_or_merge(conn, table)
            # RETURNING, not rowcount: an INSERT's rowcount is -1 through psycopg's batches
            return conn.execute(insert.values(name=name, owner=owner, until=until)
                                .on_conflict_do_nothing().returning(table.c.name)).first() \
                is not None

    def give_back(self, name: str, owner: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(self.table.delete().where(self.table.c.name == name,
                                                   self.table.c.owner == owner))
