"""Autonumbers: `QT-{YYYY}{MM}-{seq:5}`, unique and never reused, also under concurrency.

Each pattern prefix (the pattern with its date tokens filled in) has its own counter row in
`crm_sequence`, incremented inside the creating transaction: a rolled-back create gives its
number back to no one else (the row lock serialises writers), a committed one keeps it.
"""

from __future__ import annotations

import datetime as dt
import re
import weakref

import sqlalchemy as sa

from engine.registry.model import Entity, Field
from engine.storage.tables import Schema

_TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|seq)(?::(\d+))?\}")
# sequence table -> (its counter UPDATE, the same RETURNING the new value)
_claims: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def render(pattern: str, stamp: dt.datetime, seq: int | None) -> str:
    def replace(match: re.Match) -> str:
        token, width = match.group(1), match.group(2)
        if token == "seq":
            return "{seq}" if seq is None else str(seq).zfill(int(width or 1))
        return {"YYYY": f"{stamp.year:04d}", "YY": f"{stamp.year % 100:02d}",
                "MM": f"{stamp.month:02d}", "DD": f"{stamp.day:02d}"}[token]
    return _TOKEN.sub(replace, pattern)


def bump(conn, schema: Schema, counter: str, by: int = 1) -> int:
    """Add `by` to a named counter in `crm_sequence` (creating it) and return its new value.

    The row lock taken by the UPDATE serialises concurrent writers; two transactions creating
    the same counter at once collide on its key, and the loser increments the winner's row.
    """
    table = schema.engine["sequence"]
    # the new value comes back with the UPDATE where the database can (PostgreSQL, SQLite
    # 3.35+): one statement per number claimed instead of two
    returning = conn.dialect.update_returning
    claims = _claims.get(table)
    if claims is None:  # built once: every record with a number runs one
        update = table.update().where(table.c.name == sa.bindparam("_counter")).values(
            value=table.c.value + sa.bindparam("_by"))
        claims = _claims[table] = (update, update.returning(table.c.value))
    params = {"_counter": counter, "_by": by}
    for _ in range(3):
        if returning:
            row = conn.execute(claims[1], params).first()
            if row is not None:
                return int(row[0])
        elif conn.execute(claims[0], params).rowcount:
            return int(conn.execute(sa.select(table.c.value).where(table.c.name == counter))
                       .scalar())
        try:
            with conn.begin_nested():
                conn.execute(table.insert().values(name=counter, value=by))
        except sa.exc.IntegrityError:
            continue
        return by
    raise RuntimeError(f"could not claim from counter {counter}")


def counter_name(entity: Entity, field: Field, stamp: dt.datetime) -> str:
    pattern = field.number_pattern or "{seq:6}"
    return f"{entity.name}.{field.name}:{render(pattern, stamp, None)}"


def next_number(conn, schema: Schema, entity: Entity, field: Field, stamp: dt.datetime) -> str:
    """Claim the next number of `field` for a record created at `stamp`."""
    value = bump(conn, schema, counter_name(entity, field, stamp))
    return render(field.number_pattern or "{seq:6}", stamp, value)
