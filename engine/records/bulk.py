"""Creating many records at once (import, seeding) with the same rules as one at a time.

Each row goes through the record service's own `_prepare` (types, required, defaults,
computed fields, validation rules), so a row is accepted or refused exactly as the API would.
What differs is only how the work reaches the database: the checks that need a query
(references, owners, unique values) run once per batch instead of once per row, ids and
autonumbers are claimed as a block, and rows, audit entries and search entries are written
with one executemany each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import sqlalchemy as sa

from engine.errors import Forbidden, NotFound, RecordError, ValidationFailed
from engine.records.access import Caller
from engine.records.assignment import assign_owner
from engine.records.messages import Message, text
from engine.records.numbering import bump, counter_name, render
from engine.records.service import RecordService, now
from engine.records.values import Invalid, coerce, to_json
from engine.registry.model import Entity
from engine.storage.database import is_sqlite
from engine.storage.search import fts_table


@dataclass
class Outcome:
    """What happened to one row: its new record id, or the error that refused it."""

    record_id: int | None = None
    error: RecordError | None = None
    errors: dict = field(default_factory=dict)


def create_many(service: RecordService, caller: Caller, entity_name: str,
                rows: list[Mapping[str, Any]], conn) -> list[Outcome]:
    """Create one record per valid row inside `conn`'s transaction; report the others."""
    entity = service.entity(entity_name)
    access = service.access(caller, entity)
    if entity.parent:
        raise NotFound(f"no entity '{entity_name}'")
    if access.create is None:
        raise Forbidden(text("forbidden", caller.locale, action="create",
                             entity=entity.label.get(caller.locale)))
    outcomes = [Outcome() for _ in rows]
    prepared: list[tuple[int, dict, dict, list]] = []
    fast = _fast_plan(service, caller, entity, access)
    for i, row in enumerate(rows):
        if fast is not None:
            checked = fast(row)
            if checked is not None:
                outcomes[i].errors = {}
                prepared.append((i, checked[0], {}, checked[1]))
                continue
        deferred: list = []
        try:
            values, lines, errors = service._prepare(conn, caller, entity, access, row, None,
                                                     deferred=deferred)
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


def _fast_plan(service, caller: Caller, entity: Entity, access):
    """Return a checker for the common row, or None when the entity needs the full path.

    The checker accepts a row only if every key is a field this caller may write and every
    value passes the same `coerce` the record service uses, then applies the same defaults and
    required rule; it returns None for anything else (an unknown key, a bad value, an empty
    required field, lines), and that row goes through `RecordService._prepare`, which finds
    and words every problem. Entities with expressions always take the full path.
    """
    if service._uses_expressions[entity.name]:
        return None
    workflow = service.registry.workflow_by_entity.get(entity.name)
    state_field = workflow.field if workflow else None
    accepted = {}
    defaults = []
    required = []
    references = []
    for name, fld in entity.fields.items():
        if not fld.kind.stored:
            continue
        if name == state_field:
            defaults.append((name, workflow.initial))
            continue
        if fld.kind.writable and fld.compute is None and not fld.read_only \
                and name not in access.read_only and name not in access.hidden:
            accepted[name] = fld
            if fld.required:
                required.append(name)
            if fld.type == "reference":
                references.append((name, fld))
        if fld.default is not None:
            defaults.append((name, fld.default))
    empty = (None, "", [])

    def check(row: Mapping[str, Any]):
        values = {}
        try:
            for key, raw in row.items():
                fld = accepted.get(key)
                if fld is None:
                    return None
                values[key] = coerce(fld, raw)
        except Invalid:
            return None
        for name, value in defaults:
            if name not in values:
                values[name] = value
        for name in required:
            if values.get(name) in empty:
                return None
        deferred = [("reference", name, fld, values[name]) for name, fld in references
                    if values.get(name) is not None]
        return values, deferred
    return check


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
    creation_changes = _creation_changes(entity)
    records, audit_rows, line_rows = [], [], {}
    for position, ((i, values, lines), record_id) in enumerate(zip(valid, ids)):
        for name, claimed in numbers.items():
            values[name] = claimed[position]
        owner = values.pop("owner", None) or assign_owner(service, conn, caller, entity,
                                                          values) or caller.user_id
        record = {name: values.get(name) for name in stored_names}
        record.update(id=record_id, version=1, created_at=stamp, updated_at=stamp,
                      created_by=caller.user_id, updated_by=caller.user_id, owner=owner)
        records.append(record)
        outcomes[i].record_id = record_id
        changes = creation_changes(record)
        audit_rows.append({"entity": entity.name, "record_id": record_id, "action": "create",
                           "user_id": caller.user_id, "at": stamp, "changes": changes})
        for name, items in lines.items():
            child = service.registry.entities[entity.fields[name].child_entity]
            for _, line in items:
                line_rows.setdefault(child.name, []).append({
                    **{n: line.get(n) for n, f in child.fields.items() if f.kind.stored},
                    "parent_id": record_id, "version": 1, "created_at": stamp,
                    "updated_at": stamp, "created_by": caller.user_id,
                    "updated_by": caller.user_id, "owner": None})
    write_rows(conn, table, records)
    for child_name, rows in line_rows.items():
        write_rows(conn, service.schema.entities[child_name], rows)
    write_rows(conn, service.audit, audit_rows)
    if entity.search_fields and is_sqlite(conn):
        fts = fts_table(entity)
        conn.execute(sa.insert(fts).from_select(
            ["rowid", *entity.search_fields],
            sa.select(table.c.id, *[table.c[f] for f in entity.search_fields])
            .where(table.c.id.between(ids[0], ids[-1]))))
    _refresh(service, conn, entity, records, ids)


def _creation_changes(entity: Entity):
    """Return a function giving a new record's audit changes, as RecordService._changes would
    (every tracked field with a value, as [null, value], and the owner), without its
    per-field generality."""
    plain = (str, int, bool)
    tracked = [(name, fld) for name, fld in entity.fields.items()
               if fld.track and fld.kind.stored]

    def changes(record: dict) -> dict:
        out = {}
        for name, fld in tracked:
            value = record.get(name)
            if value is not None:
                out[name] = [None, value if type(value) in plain else to_json(fld, value)]
        if record.get("owner") is not None:
            out["owner"] = [None, record["owner"]]
        return out
    return changes


def write_rows(conn, table: sa.Table, rows: list[dict]) -> None:
    """Insert already-validated rows at driver speed: COPY on PostgreSQL, executemany on SQLite.

    Values pass through each column type's own bind processor first, so they are stored
    exactly as a normal SQLAlchemy insert would store them.
    """
    if not rows:
        return
    columns = list(rows[0])
    dialect = conn.dialect
    processors = [(i, proc) for i, proc in enumerate(
        table.c[c].type._cached_bind_processor(dialect) for c in columns) if proc is not None]
    data = []
    for row in rows:
        values = [row[c] for c in columns]
        for i, proc in processors:
            if values[i] is not None:
                values[i] = proc(values[i])
        data.append(values)
    if dialect.name == "postgresql":
        quote = dialect.identifier_preparer.quote
        cursor = conn.connection.driver_connection.cursor()
        names = ", ".join(quote(c) for c in columns)
        with cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
            for row in data:
                copy.write_row(row)
        return
    compiled = table.insert().compile(dialect=dialect, column_keys=columns)
    order = [columns.index(name) for name in compiled.positiontup]
    conn.exec_driver_sql(compiled.string, [tuple(row[i] for i in order) for row in data])


def _refresh(service, conn, entity: Entity, records: list[dict], ids: list[int]) -> None:
    for dep in service._dependents.get(entity.name, []):
        targets = {r[dep.link] for r in records if r.get(dep.link) is not None}
        if targets:
            service.refresh_rollups(conn, service.registry.entities[dep.entity], targets,
                                    dep.field)
    if any(f.type == "rollup" for f in entity.fields.values()):
        service.refresh_rollups(conn, entity, ids)
