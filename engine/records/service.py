"""The record service: the one way records are created, read, changed and deleted.

Every path (JSON API, web forms, import, seeding, automations) calls these methods, so every
rule holds on every path: permissions, value checks, defaults, computed fields, rollups,
autonumbers, lines, optimistic locking, soft delete and the audit trail, all in the caller's
transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from contextlib import nullcontext
from typing import Any, Iterable, Mapping

import sqlalchemy as sa

from engine.errors import (BadRequest, Conflict, NotFound, PreconditionRequired,
                           ValidationFailed)
from engine.expr import EvaluationError, Expression, to_cel
from engine.records.access import SYSTEM, Access, Caller
from engine.records.assignment import assign_owner
from engine.records.history import History
from engine.records.jobsink import UNSENT, JobSink
from engine.records.lookups import Lookups, ParentView
from engine.records.messages import Message, text
from engine.records.numbering import next_number
from engine.records.permissions import Permissions
from engine.records.rollups import Rollups
from engine.records.uploads import same_file, store_pending
from engine.records.values import Invalid, coerce, from_storage, to_json
from engine.registry.fieldtypes import FIELD_KINDS
from engine.registry.labels import Label
from engine.registry.model import SYSTEM_FIELDS, Entity, Field, FieldLookup, Registry
from engine.storage.database import is_sqlite, write_transaction
from engine.storage.driver import DriverStatement, driver_insert
from engine.storage.files import LocalFileStore, files_folder
from engine.storage.search import fts_table
from engine.storage.sharing import ShareRows
from engine.storage.tables import Schema, build_schema

UTC = dt.timezone.utc
READABLE_SYSTEM = ("id", "version", "created_at", "updated_at", "created_by", "updated_by",
                   "owner")
# the key, in a connection's `info`, of the referenced rows read while a write is prepared
REFERENCE_ROWS = "crm_reference_rows"


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


class RecordService(Permissions, Rollups, History):
    """Create, read, list, change and delete records of any entity of one registry."""

    def __init__(self, registry: Registry, engine: sa.Engine, schema: Schema | None = None):
        self.registry = registry
        self.engine = engine
        self.schema = schema or build_schema(registry)
        # background work is asked for here after a commit (engine/runtime plugs in its queue)
        self.queue: JobSink = UNSENT
        self.audit = self.schema.engine["audit"]
        self.users = self.schema.engine["user"]
        app = registry.app
        # the bytes of file fields and attachments (a FileStore: tests and deployments may
        # put another implementation here before serving)
        self.files = LocalFileStore(files_folder(app.folder if app else None,
                                                 app.files_dir if app else None))
        self._dependents = self._rollup_dependents()
        self._expression_refs = {name: self._references_in_expressions(e, registry)
                                 for name, e in registry.entities.items()}
        self._referrers = self._reference_index()
        self._uses_expressions = {name: self._has_expressions(e)
                                  for name, e in registry.entities.items()}
        self.lookups = Lookups(self)
        for name, deep in self.lookups.deep_references.items():
            self._expression_refs[name] = self._expression_refs[name] | deep
        # statements built once: SQLAlchemy then only looks their compiled form up
        self._audit_insert = driver_insert(
            self.audit, ["entity", "record_id", "action", "user_id", "at", "changes"],
            engine.dialect)
        self._driver: dict[tuple, DriverStatement] = {}  # hot statements, compiled on first use
        self._access: dict[tuple, Access] = {}
        self._rollup_updates: dict[tuple, Any] = {}
        self._stored = {name: [(n, f) for n, f in entity.fields.items() if f.kind.stored]
                        for name, entity in registry.entities.items()}
        self._lines = {name: [(n, f) for n, f in entity.fields.items() if f.type == "lines"]
                       for name, entity in registry.entities.items()}
        self._updates = {
            name: table.update().where(table.c.id == sa.bindparam("_id"),
                                       table.c.version == sa.bindparam("_version"),
                                       table.c.deleted_at.is_(None))
            for name, table in self.schema.entities.items()}
        self._get_any = {
            name: sa.select(table).where(table.c.id == sa.bindparam("_id"),
                                         table.c.deleted_at.is_(None))
            for name, table in self.schema.entities.items()}
        self._get_own = {
            name: self._get_any[name].where(table.c.owner == sa.bindparam("_owner"))
            for name, table in self.schema.entities.items()}
        self._unique_columns = {
            name: bool(entity.unique or any(f.unique for f in entity.fields.values()))
            for name, entity in registry.entities.items()}
        self._chained = self._chained_dependents()
        self.shares = ShareRows(registry, self.schema)  # sharing rules kept as rows
        self._self_dependent = self._reaching_themselves()
        self._rollup_rank = self._rollup_ranks()
        self._rollups_of = self._own_rollups()
        self._recompute_updates: dict[tuple, Any] = {}  # by entity and recomputed fields
        from engine.records.automations import Automations
        from engine.records.transitions import Transitions
        from engine.records.webhooks import Webhooks
        self._transitions = Transitions(self)
        self.webhooks = Webhooks(self)
        self.automations = Automations(self)
        from engine.records.attachments import Attachments
        self.attachments = Attachments(self)

    # ----------------------------------------------------------------- precomputed views

    def _reference_index(self) -> dict[str, list[tuple[Entity, Field]]]:
        index: dict[str, list[tuple[Entity, Field]]] = {}
        for entity in self.registry.entities.values():
            for fld in entity.fields.values():
                if fld.type == "reference" and fld.to != "user":
                    index.setdefault(fld.to, []).append((entity, fld))
        return index

    @staticmethod
    def _has_expressions(entity: Entity) -> bool:
        return bool(entity.validations) or any(
            f.compute or f.default_expr or f.required_if or f.read_only_if
            for f in entity.fields.values())

    @staticmethod
    def _references_in_expressions(entity: Entity, registry: Registry) -> frozenset[str]:
        """The reference fields whose record an expression about `entity` may look into
        (`campaign.budget`): its fields' and sections' rules, its validations, its workflow's
        guards and assignments, and its automations. Only those are read for a scope."""
        sources = [entity, registry.workflow_by_entity.get(entity.name)] + [
            a for a in registry.automations.values() if a.entity == entity.name]
        names: set[str] = set()
        for expression in _expressions_in(sources):
            names |= expression.names
        return frozenset(n for n in names if n in entity.fields
                         and entity.fields[n].type == "reference")

    # ----------------------------------------------------------------- helpers

    def entity(self, name: str, caller: Caller | None = None) -> Entity:
        entity = self.registry.entities.get(name)
        if entity is None:
            raise NotFound(f"no entity '{name}'")
        return entity

    def _row(self, entity: Entity, row: Mapping) -> dict[str, Any]:
        record = {c: row[c] for c in READABLE_SYSTEM}
        for name, fld in self._stored[entity.name]:
            value = row[name]
            record[name] = None if value is None else from_storage(fld, value)
        if entity.parent:
            record["parent_id"] = row["parent_id"]
        return record

    # ----------------------------------------------------------------- reading

    def get(self, caller: Caller, entity_name: str, record_id, *, conn=None,
            with_lines: bool = True) -> dict[str, Any]:
        """Return one readable record; unreadable or deleted ones do not exist (NotFound)."""
        entity = self.entity(entity_name)
        try:
            record_id = int(record_id)
        except (TypeError, ValueError):
            raise self._not_found(caller, entity, record_id) from None
        if not 0 < record_id < 2 ** 63:
            raise self._not_found(caller, entity, record_id)
        if conn is None:
            with self.engine.connect() as conn:
                return self.get(caller, entity_name, record_id, conn=conn, with_lines=with_lines)
        read = self.access(caller, entity).read
        if read is None:
            raise self._not_found(caller, entity, record_id)
        if read == "own" and not entity.parent:
            row = self._statement("get_own", entity.name).first(
                conn, {"_id": record_id, "_owner": caller.user_id})
        elif read == "rule" and not entity.parent:
            table = self.schema.entities[entity.name]
            row = conn.execute(sa.select(table).where(
                table.c.id == record_id, self.read_condition(caller, entity, table, record_id))
            ).mappings().first()
        else:
            row = self._statement("get_any", entity.name).first(conn, {"_id": record_id})
        if row is None:
            raise self._not_found(caller, entity, record_id)
        record = self._row(entity, row)
        if with_lines:
            self._attach_lines(conn, caller, entity, [record])
        return self._visible(caller, entity, record)

    def get_many(self, caller: Caller, entity_name: str, ids, *, conn=None) -> dict[int, dict]:
        """Return the readable records among `ids`, by id, without their lines: one query."""
        entity = self.entity(entity_name)
        ids = sorted({int(i) for i in ids if i is not None})
        if not ids or self.access(caller, entity).read is None:
            return {}
        if conn is None:
            with self.engine.connect() as conn:
                return self.get_many(caller, entity_name, ids, conn=conn)
        table = self.schema.entities[entity.name]
        rows = conn.execute(sa.select(table).where(
            table.c.id.in_(ids), self.read_condition(caller, entity, table))).mappings()
        return {row["id"]: self._visible(caller, entity, self._row(entity, row)) for row in rows}

    def note(self, caller: Caller, entity_name: str, record_id: int, action: str) -> None:
        """Audit something done with a record that changes nothing in it (a document printed)."""
        entity = self.entity(entity_name)
        with self.engine.begin() as conn:
            self._audit(conn, caller, entity, int(record_id), action, {}, now())

    def _statement(self, kind: str, entity_name: str, columns: tuple = ()) -> DriverStatement:
        """A statement of the record paths, compiled for the driver once (storage/driver.py):
        reading, inserting and updating one record, its search entry."""
        key = (kind, entity_name, columns)
        statement = self._driver.get(key)
        if statement is None:
            statement = DriverStatement(self._record_statement(kind, entity_name),
                                        self.engine.dialect,
                                        column_keys=list(columns) if columns else None)
            self._driver[key] = statement
        return statement

    def _record_statement(self, kind: str, entity_name: str):
        table = self.schema.entities[entity_name]
        if kind == "get_any":
            return self._get_any[entity_name]
        if kind == "get_own":
            return self._get_own[entity_name]
        if kind == "get_row":  # deleted or not: what an expression sees of a reference
            return sa.select(table).where(table.c.id == sa.bindparam("_id"))
        if kind == "update":
            return self._updates[entity_name]
        if kind == "insert":
            return table.insert().returning(table.c.id)
        search = fts_table(self.registry.entities[entity_name])
        if kind == "search_delete":
            return sa.delete(search).where(search.c.rowid == sa.bindparam("_id"))
        if kind == "search_insert":
            return sa.insert(search)
        raise ValueError(f"no record statement '{kind}'")

    def _visible(self, caller: Caller, entity: Entity, record: dict) -> dict:
        hidden = self.access(caller, entity).hidden
        return {k: v for k, v in record.items() if k not in hidden} if hidden else record

    def _attach_lines(self, conn, caller, entity: Entity, records: list[dict]) -> None:
        ids = [r["id"] for r in records]
        for name, fld in self._lines[entity.name]:
            child = self.registry.entities[fld.child_entity]
            table = self.schema.entities[child.name]
            by_parent: dict[int, list] = {i: [] for i in ids}
            if ids:
                rows = conn.execute(sa.select(table).where(
                    table.c.parent_id.in_(ids), table.c.deleted_at.is_(None))
                    .order_by(table.c.id)).mappings()
                for row in rows:
                    line = self._row(child, row)
                    by_parent[line.pop("parent_id")].append(line)
            hidden = self.access(caller, child).hidden
            for record in records:
                lines = by_parent.get(record["id"], [])
                record[name] = [{k: v for k, v in line.items() if k not in hidden}
                                for line in lines] if hidden else lines

    def list(self, caller: Caller, entity_name: str, query=None):
        """Return a Page of readable records (see engine.records.listing)."""
        from engine.records.listing import Lister, ListQuery
        return Lister(self).list(caller, entity_name, query or ListQuery())

    def transition(self, caller: Caller, entity_name: str, record_id, name: str,
                   data: Mapping[str, Any] | None = None, version=None, *, conn=None) -> dict:
        """Fire a workflow transition (see engine.records.transitions)."""
        return self._transitions.fire(caller, entity_name, record_id, name, data, version,
                                      conn=conn)

    def transitions(self, caller: Caller, entity_name: str, record_id) -> list[dict]:
        """The transitions the caller may fire on a record now."""
        return self._transitions.available(caller, entity_name, record_id)

    def notifications(self, caller: Caller, *, limit: int = 50, unread_only: bool = False,
                      cursor: str | None = None) -> tuple[list[dict], str | None]:
        """The caller's notifications, newest first, with their message in every language."""
        table = self.schema.engine["notification"]
        query = sa.select(table).where(table.c.user_id == caller.user_id)
        if unread_only:
            query = query.where(table.c.read_at.is_(None))
        if cursor:
            try:
                query = query.where(table.c.id < int(cursor))
            except ValueError:
                raise BadRequest("cursor: is not a cursor of this list",
                                 {"cursor": ["is not a cursor of this list"]}) from None
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(table.c.id.desc()).limit(limit + 1)).all()
        loc = caller.locale
        data = [{"id": r.id, "title": (r.title or {}).get(loc) or (r.title or {}).get("en"),
                 "message": (r.message or {}).get(loc) or (r.message or {}).get("en"),
                 "entity": r.entity, "record_id": r.record_id,
                 "created_at": to_json(None, r.created_at), "read": r.read_at is not None}
                for r in rows[:limit]]
        return data, (str(rows[limit - 1].id) if len(rows) > limit else None)

    def mark_read(self, caller: Caller, ids: Iterable[int] | None = None) -> int:
        """Mark the caller's notifications read (all of them when `ids` is None)."""
        table = self.schema.engine["notification"]
        query = table.update().where(table.c.user_id == caller.user_id,
                                     table.c.read_at.is_(None))
        if ids is not None:
            query = query.where(table.c.id.in_(list(ids)))
        with write_transaction(self.engine) as conn:
            return conn.execute(query.values(read_at=now())).rowcount


    def create(self, caller: Caller, entity_name: str, data: Mapping[str, Any], *,
               conn=None, allow_state: bool = False) -> dict[str, Any]:
        """Create a record from `data`; raise a RecordError naming every bad field."""
        entity = self.entity(entity_name)
        access = self.access(caller, entity)
        if entity.parent:
            raise NotFound(f"no entity '{entity_name}'")
        if access.create is None:
            if access.read is None:
                raise NotFound(f"no entity '{entity_name}'")
            raise self._deny(caller, entity, "create")
        if conn is None:
            with write_transaction(self.engine) as conn:
                return self.create(caller, entity_name, data, conn=conn, allow_state=allow_state)
        # only the engine itself (seeding sample data) may place a record in a state directly
        values, lines, errors = self._prepare(conn, caller, entity, access, data, current=None,
                                              allow_state=allow_state and caller.system)
        self._raise(caller, errors)
        stamp = now()
        table = self.schema.entities[entity.name]
        for name, fld in entity.fields.items():
            if fld.type == "autonumber":
                values[name] = next_number(conn, self.schema, entity, fld, stamp)
        owner = values.pop("owner", None) or assign_owner(self, conn, caller, entity, values) \
            or caller.user_id
        row = {**{k: v for k, v in values.items() if entity.fields[k].kind.stored},
               "version": 1, "created_at": stamp, "updated_at": stamp,
               "created_by": caller.user_id, "updated_by": caller.user_id, "owner": owner}
        record_id = self._insert(conn, entity, table, row)
        for name, items in lines.items():
            self._write_lines(conn, caller, entity, entity.fields[name], record_id, items, {})
        self._after_write(conn, entity, {**row, "id": record_id}, None, created=True)
        record = self.get(SYSTEM, entity.name, record_id, conn=conn)
        self._audit(conn, caller, entity, record_id, "create", {}, stamp)
        if self.automations.on_event(conn, caller, entity, "created", record):
            record = self.get(SYSTEM, entity.name, record_id, conn=conn)  # it may have changed
        return self._visible(caller, entity, record)

    def _insert(self, conn, entity: Entity, table: sa.Table, row: dict) -> int:
        store_pending(self.files, row)  # the file first, then the row naming it
        insert = self._statement("insert", entity.name, tuple(row))
        try:
            if self._unique_columns[entity.name]:  # a savepoint only where a write can clash
                with conn.begin_nested():
                    inserted = insert.first(conn, row)
            else:
                inserted = insert.first(conn, row)
        except (sa.exc.IntegrityError, conn.dialect.dbapi.IntegrityError) as exc:
            raise self._unique_violation(entity, exc) from None
        return int(inserted["id"])

    def _unique_violation(self, entity: Entity, exc) -> ValidationFailed:
        message = str(getattr(exc, "orig", exc))
        for name in entity.fields:
            if f".{name}" in message or f"_{name}" in message or f'"{name}"' in message:
                return ValidationFailed("1 field is invalid", {name: [text("not_unique")]})
        return ValidationFailed("a unique rule was broken", {"__all__": [text("not_unique")]})

    def update(self, caller: Caller, entity_name: str, record_id, data: Mapping[str, Any],
               version=None, *, conn=None, allow_state: bool = False) -> dict[str, Any]:
        """Change fields of a record read at `version`; a stale version is a Conflict."""
        entity = self.entity(entity_name)
        if entity.parent:
            raise NotFound(f"no entity '{entity_name}'")
        if conn is None:
            with write_transaction(self.engine) as conn:
                return self.update(caller, entity_name, record_id, data, version, conn=conn,
                                   allow_state=allow_state)
        data = dict(data)
        version = data.pop("version", version)
        current = self._current(conn, caller, entity, record_id, "update", version)
        access = self.access(caller, entity)
        values, lines, errors = self._prepare(conn, caller, entity, access, data, current,
                                              allow_state=allow_state)
        self._raise(caller, errors)
        return self._save(conn, caller, entity, current, values, lines, "update")

    def _save(self, conn, caller, entity: Entity, current: dict, values: dict, lines: dict,
              action: str, stamp: dt.datetime | None = None) -> dict:
        stamp = stamp or now()
        table = self.schema.entities[entity.name]
        stored = {k: v for k, v in values.items()
                  if (k in entity.fields and entity.fields[k].kind.stored) or k == "owner"}
        stored.update(version=current["version"] + 1, updated_at=stamp,
                      updated_by=caller.user_id)
        store_pending(self.files, stored)  # the file first, then the row naming it
        params = {**stored, "_id": current["id"], "_version": current["version"]}
        update = self._statement("update", entity.name, tuple(stored))
        try:
            if self._unique_columns[entity.name]:  # a savepoint only where a write can clash
                with conn.begin_nested():
                    count = update.rowcount(conn, params)
            else:
                count = update.rowcount(conn, params)
        except (sa.exc.IntegrityError, conn.dialect.dbapi.IntegrityError) as exc:
            raise self._unique_violation(entity, exc) from None
        if count != 1:
            latest = conn.execute(sa.select(table.c.version).where(
                table.c.id == current["id"])).scalar()
            raise Conflict(text("conflict", caller.locale, current=latest), current_version=latest)
        existing_lines = {name: {line["id"]: line for line in current.get(name, [])}
                          for name in lines}
        for name, items in lines.items():
            self._write_lines(conn, caller, entity, entity.fields[name], current["id"], items,
                              existing_lines[name])
        self._after_write(conn, entity, {**current, **stored}, current)
        if lines or entity.name in self._self_dependent:
            record = self.get(SYSTEM, entity.name, current["id"], conn=conn)
        else:  # nothing else wrote this row: what was stored is what a read would return
            record = {**current, **{k: v for k, v in stored.items() if k != "updated_by"},
                      "updated_by": caller.user_id}
        changes = self._changes(entity, current, record)
        self._audit(conn, caller, entity, current["id"], action, changes, stamp)
        event = action if action.startswith("transition:") else "updated"
        if self.automations.on_event(conn, caller, entity, event, record):
            record = self.get(SYSTEM, entity.name, current["id"], conn=conn)
        return self._visible(caller, entity, record)

    def _current(self, conn, caller: Caller, entity: Entity, record_id, action: str,
                 version) -> dict:
        """Read the record a change applies to, checking access and the version sent."""
        current = self.get(SYSTEM, entity.name, record_id, conn=conn)
        self._check_row_access(caller, entity, current, action, conn)
        if self._version(caller, version) != current["version"]:
            raise Conflict(text("conflict", caller.locale, current=current["version"]),
                           current_version=current["version"])
        return current

    def _version(self, caller: Caller, version) -> int:
        if version is None or version == "":
            raise PreconditionRequired(text("version_required", caller.locale))
        if isinstance(version, float) and version.is_integer():
            version = int(version)
        try:
            return int(str(version).strip().strip('"').removeprefix('W/').strip('"'))
        except ValueError:
            raise ValidationFailed("version must be a whole number",
                                   {"version": [text("not_integer", caller.locale)]}) from None

    def delete(self, caller: Caller, entity_name: str, record_id, version=None, *,
               conn=None) -> None:
        """Soft-delete a record read at `version`, applying `on_delete` of references to it."""
        entity = self.entity(entity_name)
        if entity.parent:
            raise NotFound(f"no entity '{entity_name}'")
        if conn is None:
            with write_transaction(self.engine) as conn:
                return self.delete(caller, entity_name, record_id, version, conn=conn)
        current = self._current(conn, caller, entity, record_id, "delete", version)
        self._soft_delete(conn, caller, entity, current, now())

    def _soft_delete(self, conn, caller: Caller, entity: Entity, current: dict,
                     stamp: dt.datetime, deleting: set | None = None) -> None:
        deleting = set() if deleting is None else deleting
        deleting.add((entity.name, current["id"]))  # cascades may lead back here: stop there
        for referrer, fld in self._referrers.get(entity.name, []):
            rtable = self.schema.entities[referrer.name]
            where = sa.and_(rtable.c[fld.name] == current["id"], rtable.c.deleted_at.is_(None))
            if referrer.name == entity.name:
                where = sa.and_(where, rtable.c.id != current["id"])  # a record naming itself
            if fld.on_delete == "restrict":
                count = conn.execute(sa.select(sa.func.count()).select_from(rtable)
                                     .where(where)).scalar()
                if count:
                    raise Conflict(text("restricted", caller.locale, count=count,
                                        entity=referrer.label.get(caller.locale)),
                                   referencing_entity=referrer.name, count=count)
            elif fld.on_delete == "set_null":
                for row in conn.execute(sa.select(rtable).where(where)).mappings().all():
                    before = self._row(referrer, row)
                    self._save(conn, SYSTEM, referrer, before, {fld.name: None}, {}, "update",
                               stamp)
            else:
                for row in conn.execute(sa.select(rtable).where(where)).mappings().all():
                    if (referrer.name, row["id"]) not in deleting:
                        self._soft_delete(conn, caller, referrer, self._row(referrer, row),
                                          stamp, deleting)
        table = self.schema.entities[entity.name]
        result = conn.execute(table.update().where(
            table.c.id == current["id"], table.c.version == current["version"],
            table.c.deleted_at.is_(None)).values(
            deleted_at=stamp, version=current["version"] + 1, updated_at=stamp,
            updated_by=caller.user_id))
        if result.rowcount != 1:
            latest = conn.execute(sa.select(table.c.version).where(
                table.c.id == current["id"])).scalar()
            raise Conflict(text("conflict", caller.locale, current=latest),
                           current_version=latest)
        for fld in entity.fields.values():
            if fld.type == "lines":
                child = self.schema.entities[fld.child_entity]
                conn.execute(child.update().where(child.c.parent_id == current["id"],
                                                  child.c.deleted_at.is_(None))
                             .values(deleted_at=stamp))
        self._after_write(conn, entity, None, current)
        self._audit(conn, caller, entity, current["id"], "delete",
                    {"deleted_at": [None, to_json(None, stamp)]}, stamp)
        self.automations.on_event(conn, caller, entity, "deleted", current)

    # ----------------------------------------------------------------- form states

    def new_values(self, caller: Caller, entity_name: str) -> dict[str, Any]:
        """The values a new record starts with for `caller`: the fields' defaults (expressions
        evaluated now) and the workflow's initial state. A form shows them, so that what a
        person sees is what is saved: a form sends every field, an unticked box included."""
        entity = self.entity(entity_name)
        values: dict[str, Any] = {}
        with self.engine.connect() as conn:
            self._merge(conn, caller, entity, values, None, allow_state=False)
        return values

    def field_states(self, caller: Caller, entity_name: str, data: Mapping[str, Any],
                     record_id=None) -> dict[str, dict[str, bool]]:
        """Return {field: {"visible", "required", "read_only"}} for every field the caller
        may see, for a record holding `data`: a new one, or record `record_id` with `data`
        over it. `data` is read as `create`/`update` would read it, and the answers are the
        ones their checks would act on; values they would refuse are left out, not reported.

        `visible` is the field's `visible_if` and that of the form section showing it; the
        service stores the values of invisible fields like any other. `read_only` is
        judged on the record as stored (as `update` does), so it never depends on `data`.
        """
        entity = self.entity(entity_name)
        access = self.access(caller, entity)
        if entity.parent:
            raise NotFound(f"no entity '{entity_name}'")
        with self.engine.connect() as conn:
            if record_id is None:
                if access.create is None:
                    if access.read is None:
                        raise NotFound(f"no entity '{entity_name}'")
                    raise self._deny(caller, entity, "create")
                current = None
            else:
                current = self.get(SYSTEM, entity.name, record_id, conn=conn)
                self._check_row_access(caller, entity, current, "update", conn)
            # a refused value is left out here; saving the form reports it
            values, _ = self._convert(caller, entity, access, data, current, allow_state=False,
                                      trusted=False, fail=lambda name, message: None)
            merged = self._merge(conn, caller, entity, values, current, allow_state=False)
            scope = self._scope(conn, caller, entity, merged)
            entered = {name for name, value in values.items() if value is not None}
            if self.lookups.has(entity.name):
                self.lookups.derive(conn, entity, scope, values, merged, current,
                                    lambda name, message: None)
            else:
                self._compute(entity, scope, values, merged)
            before = self._scope(conn, caller, entity, current) if current is not None else None
        workflow = self.registry.workflow_by_entity.get(entity.name)
        section_of: dict[str, Any] = {}
        for section in entity.form_sections:
            for name in section.fields:
                section_of.setdefault(name, section)  # a field shows in its first section
        states = {}
        for name, fld in entity.fields.items():
            if name in access.hidden:
                continue
            section = section_of.get(name)
            visible = (fld.visible_if is None or _holds(fld.visible_if, scope)) and (
                section is None or section.visible_if is None or
                _holds(section.visible_if, scope))
            read_only = not fld.writable or name in access.read_only \
                or (workflow is not None and name == workflow.field) \
                or (before is not None and fld.read_only_if is not None and
                    _holds(fld.read_only_if, before))
            # a field its lookup fills may be left empty: saving fills it the same way
            filled = fld.lookup is not None and name not in entered and \
                merged.get(name) is not None
            states[name] = {"visible": visible,
                            "required": self._requires(fld, scope) and not filled,
                            "read_only": read_only}
        return states

    # ----------------------------------------------------------------- preparing values

    def _prepare(self, conn, caller: Caller, entity: Entity, access: Access,
                 data: Mapping[str, Any], current: dict | None, allow_state: bool = False,
                 prefix: str = "", deferred: list | None = None,
                 trusted: bool = False, parent: ParentView | None = None,
                 cache: dict | None = None) -> tuple[dict, dict, dict]:
        """Check and convert input; return (values to store, lines by field, errors).

        With `deferred`, the checks that need a query (references, owner, unique values) are
        appended to it for the caller to run once for a whole batch (see engine.records.bulk).
        `parent` is what a line's lookups see of its record; `cache` keeps lookup answers
        for a batch (see engine.records.lookups).
        """
        if REFERENCE_ROWS not in conn.info:
            # the outermost preparation of a write writes nothing, so each record it refers
            # to is read once in it, however many defaults, computed fields, lookups and checks
            # read it (see _reference_scope); the next preparation reads them afresh
            conn.info[REFERENCE_ROWS] = {}
            try:
                return self._prepare(conn, caller, entity, access, data, current, allow_state,
                                     prefix, deferred, trusted, parent, cache)
            finally:
                del conn.info[REFERENCE_ROWS]
        errors: dict[str, list[str]] = {}
        loc = caller.locale

        def fail(name: str, message: Message) -> None:
            errors.setdefault(prefix + name, []).append(message.render(loc))

        values, lines = self._convert(caller, entity, access, data, current, allow_state,
                                      trusted, fail)
        if any(not k.startswith(prefix) or k[len(prefix):] not in entity.fields
               for k in errors):
            return values, lines, errors  # unknown or protected names: nothing else is checked

        merged = self._merge(conn, caller, entity, values, current, allow_state)
        cache = {} if cache is None else cache
        looked_up, line_parent = False, None
        if lines and (self.lookups.has(entity.name) or entity.name in self.lookups.read_by_lines):
            # this record's lookups and computed fields before its lines, whose lookups may
            # read them (`parent.channel`); computed fields are evaluated again after the lines
            early = self._scope(conn, caller, entity, merged)
            self.lookups.derive(conn, entity, early, values, merged, current, fail,
                                parent=parent, cache=cache)
            looked_up = True
            line_parent = ParentView(early, None if current is None else frozenset(
                n for n in entity.fields if merged.get(n) != current.get(n)))

        # lines first: their computed amounts feed the parent's rollups and checks
        line_values = {}
        for name, items in lines.items():
            child = self.registry.entities[entity.fields[name].child_entity]
            existing = {l["id"]: l for l in (current or {}).get(name, [])}
            prepared = []
            for i, item in enumerate(items):
                item = dict(item)
                line_id = item.pop("id", None)
                item.pop("version", None)
                before = None
                if line_id is not None:
                    before = existing.get(_int_or_none(line_id))
                    if before is None:
                        fail(f"{name}[{i}]", Message("bad_line_id", id=line_id))
                        continue
                child_access = self.access(caller, child)
                v, _, e = self._prepare(conn, caller, child, child_access, item, before,
                                        prefix=f"{prefix}{name}[{i}].", deferred=deferred,
                                        parent=line_parent, cache=cache)
                errors.update(e)
                prepared.append((before, v))
            line_values[name] = prepared
        lines = line_values

        has_lookups = self.lookups.has(entity.name)
        scope = self._scope(conn, caller, entity, merged) \
            if self._uses_expressions[entity.name] or has_lookups else {}
        if has_lookups:
            self.lookups.derive(conn, entity, scope, values, merged, current, fail,
                                lookups=not looked_up, parent=parent, cache=cache)
        else:
            self._compute(entity, scope, values, merged)
        self._validate(conn, caller, entity, merged, values, current, scope, fail,
                       lambda name: prefix + name in errors, deferred, prefix, trusted)
        return values, lines, errors

    def _convert(self, caller: Caller, entity: Entity, access: Access, data: Mapping[str, Any],
                 current: dict | None, allow_state: bool, trusted: bool,
                 fail) -> tuple[dict, dict]:
        """Convert each input value to its field's type, refusing (through `fail`) the names
        the caller may not write; return (values, lines by field)."""
        if not isinstance(data, Mapping):
            raise ValidationFailed("the body must be an object of field values")
        workflow = self.registry.workflow_by_entity.get(entity.name)
        values: dict[str, Any] = {}
        lines: dict[str, list] = {}
        for name, raw in data.items():
            fld = entity.fields.get(name)
            if name == "owner" and not entity.parent:
                if access.change_owner is None and not (current is None and raw in
                                                        (None, caller.user_id)):
                    fail(name, Message("owner_change"))
                    continue
                try:
                    values["owner"] = coerce(_USER_REF, raw)
                except Invalid as exc:
                    fail(name, exc.message)
                continue
            if name in SYSTEM_FIELDS or name == "parent_id":
                fail(name, Message("system_field"))
                continue
            if fld is None or name in access.hidden:
                fail(name, Message("unknown_field", entity=entity.name))
                continue
            if workflow is not None and name == workflow.field and not allow_state:
                fail(name, Message("state_field"))
                continue
            if not fld.kind.writable or fld.compute is not None:
                fail(name, Message("not_writable"))
                continue
            if not trusted and (fld.read_only or name in access.read_only):
                fail(name, Message("read_only"))
                continue
            if fld.type == "file" and current is not None and same_file(raw, current.get(name)):
                continue  # the stored file sent back as read: unchanged
            if fld.type == "lines":
                if not isinstance(raw, list) or not all(isinstance(i, Mapping) for i in raw):
                    fail(name, Message("not_lines"))
                    continue
                lines[name] = list(raw)
                continue
            try:
                values[name] = coerce(fld, raw)
            except Invalid as exc:
                fail(name, exc.message)
        return values, lines

    def _merge(self, conn, caller: Caller, entity: Entity, values: dict, current: dict | None,
               allow_state: bool) -> dict:
        """Return the record as it would be stored: `current` with `values` over it and, on
        create, the initial state and defaults of the fields not given (added to `values`)."""
        workflow = self.registry.workflow_by_entity.get(entity.name)
        merged = dict(current or {})
        merged.update(values)
        if current is None:
            for name, fld in entity.fields.items():
                if name in values or not fld.kind.stored:
                    continue
                if fld.lookup is not None:
                    continue  # its default is the fallback when no candidate matches
                if workflow is not None and name == workflow.field:
                    values[name] = workflow.initial
                elif fld.default is not None:
                    values[name] = fld.default
                elif fld.default_expr is not None:
                    scope = self._scope(conn, caller, entity, merged)
                    try:
                        values[name] = coerce(fld, (fld.default_expr.evaluate(scope)))
                    except (EvaluationError, Invalid):
                        values[name] = None
                if name in values:
                    merged[name] = values[name]
        if workflow is not None and allow_state and workflow.field in values:
            merged[workflow.field] = values[workflow.field]
        return merged

    @staticmethod
    def _compute(entity: Entity, scope: dict, values: dict, merged: dict) -> None:
        """Evaluate the computed fields in declaration order into values, merged and scope."""
        for name, fld in entity.fields.items():
            if fld.compute is not None:
                try:
                    result = coerce(fld, (fld.compute.evaluate(scope)))
                except (EvaluationError, Invalid):
                    result = None
                values[name] = merged[name] = result
                scope[name] = to_cel(result)

    def _validate(self, conn, caller, entity: Entity, merged: dict, values: dict,
                  current: dict | None, scope: dict, fail, failed, deferred=None,
                  prefix: str = "", trusted: bool = False) -> None:
        # read_only_if locks a field against people; what the engine itself sets (a
        # transition's `set`, checked as `trusted`) is the process, and may change it
        locks = not trusted and current is not None and any(
            f.read_only_if is not None for f in entity.fields.values())
        before_scope = self._scope(conn, caller, entity, current) if locks else scope
        for name, fld in entity.fields.items():
            if not fld.kind.stored and fld.type != "lines":
                continue
            value = merged.get(name)
            empty = value is None or value == "" or value == []
            if empty and self._requires(fld, scope) and not failed(name):
                fail(name, Message("required"))
            if locks and fld.read_only_if is not None and name in values \
                    and values[name] != current.get(name) and _holds(fld.read_only_if,
                                                                     before_scope):
                fail(name, Message("read_only"))
            if fld.type == "date" and value is not None and name in values:
                for bound, key in ((fld.min, "min"), (fld.max, "max")):
                    if hasattr(bound, "evaluate"):  # min: "today()" and the like
                        try:
                            limit = bound.evaluate(scope or self._scope(conn, caller, entity,
                                                                        merged))
                        except EvaluationError:
                            continue
                        day = limit.date() if hasattr(limit, "date") else None
                        if day is not None and ((key == "min" and value < day) or
                                                (key == "max" and value > day)):
                            fail(name, Message(key, n=day.isoformat()))
            if fld.type == "reference" and name in values and values[name] is not None:
                if deferred is not None:
                    deferred.append(("reference", prefix + name, fld, values[name]))
                elif not self._reference_ok(conn, caller, fld, values[name]):
                    fail(name, Message("no_such_record"))
        if "owner" in values and values["owner"] is not None:
            if deferred is not None:
                deferred.append(("reference", prefix + "owner", _USER_REF, values["owner"]))
            else:
                exists = conn.execute(sa.select(self.users.c.id).where(
                    self.users.c.id == values["owner"], self.users.c.active)).first()
                if exists is None:
                    fail("owner", Message("no_such_record"))
        if not entity.parent and deferred is None:
            self._check_unique(conn, entity, merged, current, fail)
        for validation in entity.validations:
            try:
                ok = validation.rule.test(scope)
            except EvaluationError:
                ok = False
            if not ok:
                fail("__all__", Message("rule_failed", rule=validation.message))

    @staticmethod
    def _requires(fld: Field, scope: Mapping) -> bool:
        """Whether an empty value of `fld` is refused for the record `scope` describes."""
        required = fld.required or (fld.required_if is not None and
                                    _holds(fld.required_if, scope))
        return required and fld.kind.writable and fld.compute is None

    def _reference_ok(self, conn, caller: Caller, fld: Field, target_id: int) -> bool:
        read = conn.info.get(REFERENCE_ROWS, {}).get((fld.to, target_id), False)
        if read is None:
            return False  # no such record: this preparation looked it up already
        if fld.to == "user":
            return read is not False or conn.execute(sa.select(self.users.c.id).where(
                self.users.c.id == target_id)).first() is not None
        target = self.registry.entities[fld.to]
        if self.access(caller, target).read == "all":  # any live record: no rule to apply
            if read is not False:
                return read[1] is None  # read by this preparation: is it deleted?
            return self._statement("get_any", target.name).first(
                conn, {"_id": target_id}) is not None
        table = self.schema.entities[target.name]
        return conn.execute(sa.select(table.c.id).where(
            table.c.id == target_id, self.read_condition(caller, target, table, target_id))
        ).first() is not None

    def _check_unique(self, conn, entity: Entity, merged: dict, current, fail) -> None:
        table = self.schema.entities[entity.name]
        groups = [(f.name,) for f in entity.fields.values() if f.unique and f.kind.stored]
        groups += list(entity.unique)
        for group in groups:
            values = [merged.get(c) for c in group]
            if any(v is None for v in values):
                continue
            where = [table.c[c] == v for c, v in zip(group, values)]
            where.append(table.c.deleted_at.is_(None))
            if current is not None:
                where.append(table.c.id != current["id"])
            if conn.execute(sa.select(table.c.id).where(*where).limit(1)).first():
                if len(group) == 1:
                    fail(group[0], Message("not_unique"))
                else:
                    fail(group[-1], Message("not_unique_together", fields=", ".join(group)))

    def _scope(self, conn, caller: Caller, entity: Entity, record: Mapping | None) -> dict:
        """Return the names an expression about `record` sees (CEL-ready values)."""
        record = record or {}
        scope: dict[str, Any] = {}
        for name, fld in entity.fields.items():
            value = record.get(name)
            if fld.type == "reference":
                scope[name] = self._reference_scope(conn, fld, value) \
                    if name in self._expression_refs[entity.name] else \
                    ({"id": value} if value is not None else None)
            elif fld.type == "lines":
                scope[name] = [{k: to_cel(v) for k, v in line.items()}
                               for line in (value or []) if isinstance(line, Mapping)]
            else:
                scope[name] = to_cel(value)
        for name in ("id", "version", "created_at", "updated_at"):
            scope[name] = to_cel(record.get(name))
        for name in ("created_by", "updated_by", "owner"):
            value = record.get(name, caller.user_id if name == "owner" else None)
            scope[name] = {"id": value} if value is not None else None
        scope["user"] = caller.scope()
        return scope

    def _reference_scope(self, conn, fld: Field, value) -> dict | None:
        if value is None:
            return None
        read = conn.info.get(REFERENCE_ROWS)  # while a write is prepared: {(entity, id): ...}
        key = (fld.to, value)
        if read is not None and isinstance(value, int) and key in read:
            return None if read[key] is None else dict(read[key][0])
        if fld.to == "user":
            row = conn.execute(sa.select(self.users.c.id, self.users.c.username,
                                         self.users.c.display_name, self.users.c.email)
                               .where(self.users.c.id == value)).mappings().first()
            result, deleted = (dict(row), None) if row else (None, None)
        else:
            target = self.registry.entities[fld.to]
            row = self._statement("get_row", target.name).first(conn, {"_id": value})
            result, deleted = None, None
            if row is not None:
                deleted, result = row["deleted_at"], {}
                for name, item in self._row(target, row).items():
                    tf = target.fields.get(name)
                    result[name] = {"id": item} if tf is not None and tf.type == "reference" \
                        and item is not None else to_cel(item)
        if read is not None and isinstance(value, int):
            read[key] = None if result is None else (dict(result), deleted)
        return result

    def _raise(self, caller: Caller, errors: dict[str, list[str]]) -> None:
        if errors:
            n = len(errors)
            message = text("invalid_field", caller.locale) if n == 1 else \
                text("invalid_fields", caller.locale, n=n)
            raise ValidationFailed(message, errors)

    # ----------------------------------------------------------------- lines and rollups

    def _write_lines(self, conn, caller, entity: Entity, fld: Field, parent_id: int,
                     items: list, existing: dict[int, dict]) -> None:
        child = self.registry.entities[fld.child_entity]
        table = self.schema.entities[child.name]
        stamp = now()
        kept = {before["id"] for before, _ in items if before is not None}
        gone = [line_id for line_id in existing if line_id not in kept]
        if gone:  # first, so a new line may take the unique value of one it replaces
            conn.execute(table.update().where(table.c.id.in_(gone)).values(deleted_at=stamp))
        for position, (before, values) in enumerate(items):
            stored = {k: v for k, v in values.items() if child.fields[k].kind.stored}
            try:
                # a savepoint only where a line can clash (as `_insert` does for records)
                with conn.begin_nested() if self._unique_columns[child.name] \
                        else nullcontext():
                    if before is None:  # compiled once per set of columns, as records are
                        row = {**stored, "parent_id": parent_id, "version": 1,
                               "created_at": stamp, "updated_at": stamp,
                               "created_by": caller.user_id, "updated_by": caller.user_id,
                               "owner": None}
                        self._statement("insert", child.name, tuple(row)).first(conn, row)
                    elif any(before.get(k) != v for k, v in stored.items()):
                        conn.execute(table.update().where(table.c.id == before["id"]).values(
                            **stored, version=table.c.version + 1, updated_at=stamp,
                            updated_by=caller.user_id))
            except (sa.exc.IntegrityError, conn.dialect.dbapi.IntegrityError) as exc:
                error = self._unique_violation(child, exc)
                raise ValidationFailed(error.message, {
                    f"{fld.name}[{position}].{name}": messages
                    for name, messages in error.fields.items()}) from None

    def _after_write(self, conn, entity: Entity, new: Mapping | None,
                     old: Mapping | None, created: bool = False) -> None:
        """Keep rollups, search, share rows and dependent computed fields current after a
        write."""
        self._sync_search(conn, entity, new, old)
        self.shares.written(conn, entity.name, new, old)
        # the rollups it made stale, each stale record recomputed once (engine/records/rollups.py)
        self.rollups_after_write(conn, entity, new, old, created)

    def _sync_search(self, conn, entity: Entity, new: Mapping | None, old: Mapping | None):
        if not entity.search_fields or not is_sqlite(conn):
            return
        if new is not None and old is not None and all(
                new.get(f) == old.get(f) for f in entity.search_fields):
            return
        record_id = (new or old)["id"]
        if old is not None:
            self._statement("search_delete", entity.name).rowcount(conn, {"_id": record_id})
        if new is not None:
            self._statement("search_insert", entity.name, ("rowid", *entity.search_fields)) \
                .rowcount(conn, {"rowid": record_id, **{f: _search_text(new.get(f))
                                                          for f in entity.search_fields}})

    # ----------------------------------------------------------------- audit

    def _changes(self, entity: Entity, before: Mapping, after: Mapping) -> dict:
        changes = {}
        for name, fld in entity.fields.items():
            if not fld.track:
                continue
            old, new = before.get(name), after.get(name)
            if fld.type == "lines":
                old = [to_json_line(self.registry.entities[fld.child_entity], l) for l in old or []]
                new = [to_json_line(self.registry.entities[fld.child_entity], l) for l in new or []]
                if old != new:
                    changes[name] = [old, new]
                continue
            if old != new:
                changes[name] = [to_json(fld, old), to_json(fld, new)]
        if before.get("owner") != after.get("owner"):
            changes["owner"] = [before.get("owner"), after.get("owner")]
        return changes

    def _audit(self, conn, caller: Caller, entity: Entity, record_id: int, action: str,
               changes: dict, stamp: dt.datetime) -> None:
        self._audit_insert.rowcount(conn, {"entity": entity.name, "record_id": record_id,
                                          "action": action, "user_id": caller.user_id,
                                          "at": stamp, "changes": changes})


def to_json_line(entity: Entity, line: Mapping) -> dict:
    return {k: to_json(entity.fields.get(k), v) for k, v in line.items()
            if k in entity.fields or k == "id"}


def _search_text(value) -> str | None:
    return None if value is None else str(value)


def _holds(condition, scope: Mapping) -> bool:
    """Whether a condition is true for `scope`; one that fails to evaluate does not hold."""
    try:
        return condition.test(scope)
    except EvaluationError:
        return False


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_USER_REF = Field(name="owner", kind=FIELD_KINDS["reference"], label=Label.of(None, "owner"),
                  to="user")


def _expressions_in(value):
    """Every Expression inside registry objects (dataclasses, mappings, sequences)."""
    if isinstance(value, Expression):
        yield value
    elif isinstance(value, FieldLookup):
        return  # a lookup's match on a bare reference needs only its id: see deep_references
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from _expressions_in(getattr(value, item.name))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _expressions_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _expressions_in(item)
