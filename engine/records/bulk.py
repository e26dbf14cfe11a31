"""Creating many records at once (import, seeding) with the same rules as one at a time.

Each row goes through the record service's own `_prepare` (types, required, defaults,
computed fields, validation rules), so a row is accepted or refused exactly as the API would.
What differs is only how the work reaches the database: the checks that need a query
(references, owners, unique values) run once per batch instead of once per row, ids and
autonumbers are claimed as a block, and rows, audit entries and search entries are written
with one executemany each.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Mapping

import sqlalchemy as sa

from engine.errors import Forbidden, NotFound, RecordError, ValidationFailed
from engine.records.access import Caller
from engine.records.assignment import assign_owner
from engine.records.messages import Message, text
from engine.records.numbering import bump, counter_name, render
from engine.records.service import RecordService, now
from engine.records.rollups import StaleRollups
from engine.records.rowplan import RowPlan
from engine.registry.model import Entity
from engine.storage.database import is_sqlite
from engine.storage.driver import write_rows
from engine.storage.search import fts_table


@dataclass(slots=True)
class Outcome:
    """What happened to one row: its new record id, or the error that refused it."""

    record_id: int | None = None
    error: RecordError | None = None
    errors: dict = field(default_factory=dict)  # field -> messages, while the batch is checked


def create_many(service: RecordService, caller: Caller, entity_name: str,
                rows: list[Mapping[str, Any]], conn) -> list[Outcome]:
    """Create one record per valid row inside `conn`'s transaction; report the others."""
    with _no_cycle_collection():
        return _create_many(service, caller, entity_name, rows, conn)


@contextmanager
def _no_cycle_collection():
    """Pause Python's cycle collector for one batch.

    A batch allocates a few objects per row (values, outcome, driver row), none of them in a
    cycle; each allocation burst would otherwise start collections that walk every live
    object, the caller's whole file of rows included: a tenth of the import's time. Nothing
    is lost: what a batch leaves behind is collected when the collector runs again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _create_many(service: RecordService, caller: Caller, entity_name: str,
                 rows: list[Mapping[str, Any]], conn) -> list[Outcome]:
    entity = service.entity(entity_name)
    access = service.access(caller, entity)
    if entity.parent:
        raise NotFound(f"no entity '{entity_name}'")
    if access.create is None:
        raise Forbidden(text("forbidden", caller.locale, action="create",
                             entity=entity.label.get(caller.locale)))
    outcomes = [Outcome() for _ in rows]
    prepared: list[tuple[int, dict, dict, list]] = []
    fast = [None] * len(rows) if service._uses_expressions[entity.name] else \
        RowPlan(entity, access, service.registry.workflow_by_entity.get(entity.name)).check(rows)
    cache: dict = {}  # lookup candidates and answers, shared by the rows of the batch
    if service.lookups.has(entity.name):
        if service._uses_expressions[entity.name]:
            service.lookups.prefetch(conn, entity, rows, cache)
        else:
            _look_up(service, conn, caller, entity, fast, cache)
    for i, row in enumerate(rows):
        if fast[i] is not None:
            values, deferred = fast[i]
            prepared.append((i, values, {}, deferred))
            continue
        deferred: list = []
        try:
            values, lines, errors = service._prepare(conn, caller, entity, access, row, None,
                                                     deferred=deferred, cache=cache)
        except RecordError as exc:
            outcomes[i].error = exc
            continue
        outcomes[i].errors = errors
        prepared.append((i, values, lines, deferred))

    _check_references(service, conn, caller, prepared, outcomes)
    _check_unique(service, conn, entity, prepared, outcomes)

    valid = []
    for i, values, lines, _ in prepared:
        if outcomes[i].errors:
            errors = outcomes[i].errors
            n = len(errors)
            message = text("invalid_field", caller.locale) if n == 1 else \
                text("invalid_fields", caller.locale, n=n)
            outcomes[i].error = ValidationFailed(message, errors)
        else:
            valid.append((i, values, lines))
    if valid:
        _insert(service, conn, caller, entity, valid, outcomes)
    return outcomes


def _look_up(service, conn, caller, entity: Entity, fast: list, cache: dict) -> None:
    """Fill the looked-up fields of the rows the row plan took, from candidates read once
    for the batch; a row left incomplete goes to the full path, which words its refusal."""
    taken = [i for i, result in enumerate(fast) if result is not None]
    complete = service.lookups.fill_rows(conn, caller, entity, [fast[i][0] for i in taken],
                                         cache)
    for i, ok in zip(taken, complete):
        if not ok:
            fast[i] = None


def _check_references(service, conn, caller, prepared, outcomes) -> None:
    wanted: dict[str, set[int]] = {}
    for _, _, _, deferred in prepared:
        for _, _, fld, value in deferred:
            wanted.setdefault(fld.to, set()).add(value)
    found: dict[str, set[int]] = {}
    for target, ids in wanted.items():
        if target == "user":
            users = service.users
            query = sa.select(users.c.id).where(users.c.id.in_(ids), users.c.active)
        else:
            entity = service.registry.entities[target]
            table = service.schema.entities[target]
            query = sa.select(table.c.id).where(table.c.id.in_(ids),
                                                service.read_condition(caller, entity))
        found[target] = {row[0] for row in conn.execute(query)}
    for i, _, _, deferred in prepared:
        for _, name, fld, value in deferred:
            if value not in found.get(fld.to, ()):
                outcomes[i].errors.setdefault(name, []).append(
                    Message("no_such_record").render(caller.locale))


def _check_unique(service, conn, entity: Entity, prepared, outcomes) -> None:
    table = service.schema.entities[entity.name]
    groups = [(f.name,) for f in entity.fields.values() if f.unique and f.kind.stored
              and f.type != "autonumber"] + list(entity.unique)
    for group in groups:
        keys: dict[tuple, int] = {}
        for i, values, _, _ in prepared:
            key = tuple(values.get(c) for c in group)
            if any(v is None for v in key):
                continue
            if key in keys:  # the same value twice in one batch: the later row is refused
                _unique_error(outcomes[i], group)
            else:
                keys[key] = i
        if not keys:
            continue
        columns = [table.c[c] for c in group]
        taken = set()
        items = list(keys)
        for start in range(0, len(items), 500):
            chunk = items[start:start + 500]
            condition = columns[0].in_([k[0] for k in chunk]) if len(group) == 1 else \
                sa.tuple_(*columns).in_(chunk)
            taken.update(tuple(r) for r in conn.execute(
                sa.select(*columns).where(condition, table.c.deleted_at.is_(None))))
        for key in taken:
            if key in keys:
                _unique_error(outcomes[keys[key]], group)


def _unique_error(outcome: Outcome, group: tuple) -> None:
    if len(group) == 1:
        outcome.errors.setdefault(group[0], []).append(text("not_unique"))
    else:
        outcome.errors.setdefault(group[-1], []).append(
            text("not_unique_together", fields=", ".join(group)))


def _claim_ids(conn, table: sa.Table, count: int) -> list[int]:
    if is_sqlite(conn):
        # the transaction holds SQLite's write lock (BEGIN IMMEDIATE): nobody else inserts
        start = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar()
        return list(range(int(start) + 1, int(start) + 1 + count))
    sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"),
                            {"t": table.name}).scalar()
    return [row[0] for row in conn.execute(
        sa.text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)"),
        {"s": sequence, "n": count})]


def _claim_numbers(service, conn, entity: Entity, count: int, stamp) -> dict[str, list[str]]:
    numbers = {}
    for fld in entity.fields.values():
        if fld.type != "autonumber":
            continue
        last = bump(conn, service.schema, counter_name(entity, fld, stamp), count)
        pattern = fld.number_pattern or "{seq:6}"
        numbers[fld.name] = [render(pattern, stamp, n) for n in range(last - count + 1, last + 1)]
    return numbers


def _insert(service, conn, caller, entity: Entity, valid, outcomes) -> None:
    stamp = now()
    table = service.schema.entities[entity.name]
    ids = _claim_ids(conn, table, len(valid))
    numbers = _claim_numbers(service, conn, entity, len(valid), stamp)
    stored_names = [n for n, f in entity.fields.items() if f.kind.stored]
    system = {"version": 1, "created_at": stamp, "updated_at": stamp,
              "created_by": caller.user_id, "updated_by": caller.user_id}
    records, line_rows = [], {}
    for position, ((i, values, lines), record_id) in enumerate(zip(valid, ids)):
        for name, claimed in numbers.items():
            values[name] = claimed[position]
        if not values.get("owner"):
            values["owner"] = (entity.assignment and assign_owner(
                service, conn, caller, entity, values)) or caller.user_id
        values["id"] = record_id
        records.append(values)
        outcomes[i].record_id = record_id
        for name, items in lines.items():
            child = service.registry.entities[entity.fields[name].child_entity]
            for _, line in items:
                line_rows.setdefault(child.name, []).append({
                    **{n: line.get(n) for n, f in child.fields.items() if f.kind.stored},
                    "parent_id": record_id, "owner": None})
    write_rows(conn, table, records, ["id", "owner", *stored_names], system)
    for child_name, rows in line_rows.items():
        write_rows(conn, service.schema.entities[child_name], rows, None, system)
    _audit_and_index(service, conn, caller, entity, table, ids, stamp)
    service.shares.created(conn, entity.name, ids, records)
    _refresh(service, conn, entity, records, ids)


def _audit_and_index(service, conn, caller, entity: Entity, table: sa.Table, ids: list[int],
                     stamp) -> None:
    """One creation entry per new record (it stores no values: RecordService._creation_values
    shows them), and on SQLite the search entries, each written by one statement."""
    shared = {"entity": entity.name, "action": "create", "user_id": caller.user_id,
              "at": stamp, "changes": {}}
    if not is_sqlite(conn):  # sequence ids from a block need not be consecutive
        write_rows(conn, service.audit, [{"record_id": i} for i in ids], None, shared)
        return
    # SQLite: this transaction holds the write lock, so the new ids are exactly this range
    new_rows = table.c.id.between(ids[0], ids[-1])
    conn.execute(sa.insert(service.audit).from_select(
        ["record_id", *shared],
        sa.select(table.c.id, *[sa.literal(v, service.audit.c[k].type) for k, v in shared.items()])
        .where(new_rows)))
    if entity.search_fields:
        conn.execute(sa.insert(fts_table(entity)).from_select(
            ["rowid", *entity.search_fields],
            sa.select(table.c.id, *[table.c[f] for f in entity.search_fields]).where(new_rows)))


def _refresh(service, conn, entity: Entity, records: list[dict], ids: list[int]) -> None:
    # one refresh for the whole batch: each record it makes stale is recomputed once
    stale = StaleRollups()
    for dep in service._dependents.get(entity.name, []):
        targets = {r[dep.link] for r in records if r.get(dep.link) is not None}
        if targets:
            stale.add(dep.entity, targets, (dep.field,))
    own = service._rollups_of[entity.name][0]
    if own:
        stale.add(entity.name, ids, own)
    service.flush_rollups(conn, stale)
