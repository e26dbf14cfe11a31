"""Plan and apply the database changes a configuration needs (DSL §7).

The planner compares the registry with the live database (reflected with SQLAlchemy's
inspector) and with the configuration applied last (a snapshot kept in `crm_config`), and
classifies every step: additive and widening steps are applied; a step that could lose or
reject existing data is refused with the number of rows affected, unless the caller allows
data loss. Alembic's operations carry out the DDL (batch mode on SQLite), all in one
transaction, under a lock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from engine.registry.model import Entity, Field, Registry
from engine.storage.database import is_sqlite, write_transaction
from engine.storage.search import search_steps
from engine.storage.sharing import share_steps
from engine.storage.tables import Schema, build_schema, column_type, table_name

UTC = dt.timezone.utc
MIGRATION_LOCK = 72_616_001  # PostgreSQL advisory lock key shared by every `crm migrate`
WIDENINGS = {("integer", "decimal"), ("integer", "money"), ("integer", "percent"),
             ("decimal", "money"), ("money", "decimal"), ("string", "text"),
             ("email", "string"), ("phone", "string"), ("url", "string"), ("enum", "string"),
             ("percent", "decimal"), ("percent", "money")}
TEXTUAL = {"string", "email", "phone", "url", "enum", "autonumber"}


@dataclass
class Step:
    """One change of a migration plan."""

    description: str
    apply: Callable[[Operations, sa.Connection], None] | None = None
    refused: bool = False
    rows: int = 0

    def line(self) -> str:
        return ("REFUSED: " if self.refused else "") + self.description


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    snapshot: dict = field(default_factory=dict)

    @property
    def refused(self) -> list[Step]:
        return [s for s in self.steps if s.refused]

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.apply is not None or s.refused]

    def lines(self) -> list[str]:
        return [s.line() for s in self.steps]


def snapshot_of(registry: Registry) -> dict:
    """Return what later migrations need to know of this configuration, as JSON data."""
    entities = {}
    for entity in registry.entities.values():
        fields = {}
        for fld in list(entity.fields.values()) + list(entity.removed_fields.values()):
            fields[fld.name] = {
                "type": fld.type, "removed": fld.removed, "required": fld.required,
                "unique": fld.unique, "max_length": fld.max_length, "precision": fld.precision,
                "scale": fld.scale, "options": list(fld.option_values),
                "min": fld.min if isinstance(fld.min, (int, float)) else None,
                "max": fld.max if isinstance(fld.max, (int, float)) else None,
            }
        entities[entity.name] = {"fields": fields, "search": list(entity.search_fields)}
    return {"entities": entities}


def latest_snapshot(connection: sa.Connection, schema: Schema) -> dict:
    if not sa.inspect(connection).has_table("crm_config"):
        return {"entities": {}}
    table = schema.engine["config"]
    row = connection.execute(sa.select(table.c.snapshot).order_by(table.c.id.desc())
                             .limit(1)).first()
    return row[0] if row else {"entities": {}}


@dataclass(frozen=True)
class AppliedVersion:
    """The configuration `crm migrate` applied last: its version number and fingerprint."""

    version: int
    fingerprint: str | None
    applied_at: dt.datetime


def applied_version(connection: sa.Connection, schema: Schema) -> AppliedVersion | None:
    """Return the configuration applied last, or None before the first migration."""
    table = schema.engine["config"]
    try:
        row = connection.execute(sa.select(table.c.id, table.c.fingerprint, table.c.applied_at)
                                 .order_by(table.c.id.desc()).limit(1)).first()
    except sa.exc.DBAPIError:  # no crm_config yet, or from before fingerprints: not migrated
        return None
    return AppliedVersion(row[0], row[1], row[2]) if row else None


def plan_migration(connection: sa.Connection, registry: Registry,
                   schema: Schema | None = None, allow_data_loss: bool = False) -> Plan:
    """Return the steps that bring the database to `registry`, classified."""
    schema = schema or build_schema(registry)
    inspector = sa.inspect(connection)
    existing = set(inspector.get_table_names())
    old = latest_snapshot(connection, schema)["entities"]
    plan = Plan(snapshot=snapshot_of(registry))

    for table in schema.engine.values():
        if table.name not in existing:
            plan.steps.append(Step(f"create engine table {table.name}", _create_table(table)))
        else:  # a column or index added to an engine table in a later version
            plan.steps.extend(_engine_column_steps(inspector, table))
            plan.steps.extend(_index_steps(inspector, table))

    for name, table in schema.entities.items():
        entity = registry.entities[name]
        if table.name not in existing:
            plan.steps.append(Step(f"create table {table.name} for entity {name}",
                                   _create_table(table)))
            continue
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        rows = _count(connection, table.name)
        old_fields = old.get(name, {}).get("fields", {})
        for fld in list(entity.fields.values()) + list(entity.removed_fields.values()):
            plan.steps.extend(_field_steps(connection, entity, fld, table, columns, old_fields,
                                           rows, allow_data_loss))
        renamed = {f.renamed_from for f in entity.fields.values() if f.renamed_from}
        for fname, spec in old_fields.items():
            if not spec.get("removed") and fname not in entity.fields and fname not in renamed:
                plan.steps.append(Step(f"keep column {table.name}.{fname}: field {name}.{fname} "
                                       "is no longer used; its data is kept"))
        plan.steps.extend(_index_steps(inspector, table))
    for name in sorted(set(old) - set(registry.entities)):
        plan.steps.append(Step(f"keep table {table_name(name)}: entity {name} is no longer "
                               "configured; its data is kept"))
    plan.steps.extend(search_steps(connection, registry, schema, old))
    plan.steps.extend(share_steps(connection, registry, schema))
    return plan


def _engine_column_steps(inspector, table: sa.Table) -> list[Step]:
    """Add the columns a later engine version gave one of its own tables (always nullable:
    the rows written before have no value for them)."""
    existing = {c["name"] for c in inspector.get_columns(table.name)}
    steps = []
    for column in table.columns:
        if column.name in existing:
            continue

        def add(ops, conn, col=column):
            ops.add_column(table.name, sa.Column(col.name, col.type, nullable=True))
        steps.append(Step(f"add column {table.name}.{column.name} (engine)", add))
    return steps


def _create_table(table: sa.Table):
    def apply(ops: Operations, connection: sa.Connection) -> None:
        table.create(connection)
    return apply


def _count(connection, tname: str, where=None) -> int:
    query = sa.select(sa.func.count()).select_from(sa.table(tname))
    if where is not None:
        query = query.where(where)
    return int(connection.execute(query).scalar() or 0)


def _field_steps(connection, entity: Entity, fld: Field, table: sa.Table, columns: dict,
                 old_fields: dict, rows: int, allow_data_loss: bool) -> list[Step]:
    type_ = column_type(fld)
    if type_ is None:
        return []
    tname, cname = table.name, fld.name
    where = f"{entity.name}.{fld.name}"
    old = old_fields.get(fld.name)
    column = sa.column(cname)
    live = sa.column("deleted_at").is_(None)

    def refusal(reason: str, affected: int, apply) -> Step:
        if affected == 0 or allow_data_loss:
            return Step(f"{reason.split(':')[0]} ({affected} rows affected)", apply)
        return Step(f"{where}: {reason}; {affected} rows affected", None, refused=True,
                    rows=affected)

    if cname not in columns:
        renamed = fld.renamed_from
        if renamed and renamed in columns and renamed not in table.c:
            def rename(ops, conn, old_name=renamed):
                ops.alter_column(tname, old_name, new_column_name=cname)
            return [Step(f"rename column {tname}.{renamed} to {cname} (data kept)", rename)]
        steps = []
        new_column = table.c[cname]

        def add(ops, conn, col=new_column):
            ops.add_column(tname, sa.Column(col.name, col.type, nullable=True))
        steps.append(Step(f"add column {tname}.{cname} ({fld.type})", add))
        if fld.required and not fld.removed and rows:
            if fld.default is not None:
                def backfill(ops, conn, value=fld.default):
                    conn.execute(sa.update(table).values({cname: value}))
                steps.append(Step(f"fill {tname}.{cname} with its default in {rows} existing "
                                  "rows", backfill))
            else:
                steps.append(refusal("new required field on a table with rows that would be "
                                     "empty (give it a default)", rows, None))
        return steps

    if old is None or fld.removed:
        return []
    steps = []
    old_type = old["type"]
    if old_type != fld.type and (old_type, fld.type) not in WIDENINGS and \
            not (old_type in TEXTUAL and fld.type in TEXTUAL):
        affected = _count(connection, tname, column.is_not(None))
        steps.append(refusal(f"alter {tname}.{cname} from {old_type} to {fld.type}: the type "
                             "change could lose data", affected, _alter(tname, cname, type_)))
    elif old_type != fld.type or _length_grew(old, fld) or _numeric_grew(old, fld):
        steps.append(Step(f"alter {tname}.{cname} from {old_type} to {fld.type} (widening)",
                          _alter(tname, cname, type_)))
    if fld.max_length and old.get("max_length") and fld.max_length < old["max_length"] \
            and fld.type in TEXTUAL:
        affected = _count(connection, tname, sa.func.length(column) > fld.max_length)
        steps.append(refusal(f"shorten {tname}.{cname} to {fld.max_length} characters: longer "
                             "values exist", affected, _alter(tname, cname, type_)))
    if fld.type in ("decimal",) and old_type == "decimal" and (
            (fld.scale or 0) < (old.get("scale") or 0) or
            (fld.precision or 0) < (old.get("precision") or 0)):
        limit = 10 ** ((fld.precision or 18) - (fld.scale or 0))
        affected = _count(connection, tname, sa.or_(
            column != sa.func.round(column, fld.scale or 0), sa.func.abs(column) >= limit))
        steps.append(refusal(f"narrow {tname}.{cname} to numeric({fld.precision}, {fld.scale}): "
                             "values do not fit", affected, _alter(tname, cname, type_)))
    removed_options = set(old.get("options") or []) - set(fld.option_values)
    if fld.type == "enum" and removed_options:
        affected = _count(connection, tname, column.in_(sorted(removed_options)))
        steps.append(refusal(f"remove options {', '.join(sorted(removed_options))} of {where}: "
                             "rows still use them", affected, None))
    if fld.required and not old.get("required"):
        empty = column.is_(None)
        if fld.type in TEXTUAL or fld.type == "text":
            empty = sa.or_(empty, column == "")
        affected = _count(connection, tname, sa.and_(live, empty))
        steps.append(refusal(f"make {where} required: rows have it empty", affected, None))
    if fld.unique and not old.get("unique"):
        source = sa.table(tname, sa.column(cname), sa.column("deleted_at"))
        value, alive = source.c[cname], source.c.deleted_at.is_(None)
        shared = sa.select(value).where(alive, value.is_not(None)).group_by(value) \
            .having(sa.func.count() > 1)
        affected = _count(connection, tname, sa.and_(live, column.in_(shared)))
        steps.append(refusal(f"make {where} unique: rows share a value", affected, None))
    for bound, op in (("min", "__lt__"), ("max", "__gt__")):
        new_value = getattr(fld, bound)
        if isinstance(new_value, (int, float)) and fld.kind.numeric and new_value != old.get(bound):
            old_value = old.get(bound)
            tighter = old_value is None or (new_value > old_value if bound == "min"
                                            else new_value < old_value)
            if tighter:
                affected = _count(connection, tname, sa.and_(live, getattr(column, op)(new_value)))
                steps.append(refusal(f"set {bound} {new_value} on {where}: rows are outside it",
                                     affected, None))
    return steps


def _length_grew(old: dict, fld: Field) -> bool:
    return bool(fld.max_length and old.get("max_length") and fld.max_length > old["max_length"]
                and fld.type in TEXTUAL)


def _numeric_grew(old: dict, fld: Field) -> bool:
    return fld.type == "decimal" and old["type"] == "decimal" and (
        (fld.precision or 0) > (old.get("precision") or 0) or
        (fld.scale or 0) > (old.get("scale") or 0)) and not (
        (fld.scale or 0) < (old.get("scale") or 0) or
        (fld.precision or 0) < (old.get("precision") or 0))


def _shared_values(connection, tname: str, columns: list[str]) -> int:
    source = sa.table(tname, *[sa.column(c) for c in columns], sa.column("deleted_at"))
    cols = [source.c[c] for c in columns]
    alive = source.c.deleted_at.is_(None)
    groups = sa.select(*cols, sa.func.count().label("n")).where(
        alive, *[c.is_not(None) for c in cols]).group_by(*cols).having(sa.func.count() > 1) \
        .subquery()
    return int(connection.execute(sa.select(sa.func.coalesce(sa.func.sum(groups.c.n), 0)))
               .scalar() or 0)


def _alter(tname: str, cname: str, type_):
    def apply(ops: Operations, connection: sa.Connection) -> None:
        if is_sqlite(connection):
            with ops.batch_alter_table(tname) as batch:
                batch.alter_column(cname, type_=type_, existing_nullable=True)
        else:
            ops.alter_column(tname, cname, type_=type_, existing_nullable=True,
                             postgresql_using=f'"{cname}"::{type_.compile(connection.dialect)}')
    return apply


def _index_steps(inspector, table: sa.Table) -> list[Step]:
    have = {ix["name"] for ix in inspector.get_indexes(table.name)}
    existing = {c["name"] for c in inspector.get_columns(table.name)}
    want = {ix.name: ix for ix in table.indexes}
    steps = []
    for name, index in sorted(want.items()):
        if name in have:
            continue
        # a column this plan adds is empty everywhere: no two rows can share its value yet
        if index.unique and all(c.name in existing for c in index.columns):
            shared = _shared_values(inspector.bind, table.name, [c.name for c in index.columns])
            if shared:
                # only reachable with --allow-data-loss: the rule still holds for every new
                # or changed value (the record service checks it); the index waits for clean data
                steps.append(Step(f"unique index {name} not built yet: {shared} rows share a "
                                  "value"))
                continue
        steps.append(Step(f"create index {name}", lambda ops, conn, ix=index: ix.create(conn)))
    for name in sorted(have - set(want)):
        if name and name.startswith(("ix_e_", "uq_e_")):
            steps.append(Step(f"drop index {name} (no longer configured)",
                              lambda ops, conn, n=name, t=table.name: ops.drop_index(n, t)))
    return steps


class MigrationRefused(Exception):
    """A migration that would lose or reject data; nothing was changed."""

    def __init__(self, plan: Plan):
        self.plan = plan
        super().__init__("; ".join(s.description for s in plan.refused))


def migrate(engine: sa.Engine, registry: Registry, allow_data_loss: bool = False,
            on_applied: Callable[[sa.Connection, Plan], None] | None = None) -> Plan:
    """Apply the plan in one transaction under the migration lock; raise if refused.

    `on_applied(connection, plan)` runs last in that transaction (the admin console writes
    its audit entry there, so the entry exists exactly when the migration committed).
    """
    schema = build_schema(registry)
    with write_transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                               {"k": MIGRATION_LOCK})
        plan = plan_migration(connection, registry, schema, allow_data_loss)
        if plan.refused:
            raise MigrationRefused(plan)
        ops = Operations(MigrationContext.configure(connection))
        for step in plan.steps:
            if step.apply is not None:
                step.apply(ops, connection)
        applied = applied_version(connection, schema)
        if plan.changes or latest_snapshot(connection, schema) != plan.snapshot or \
                applied is None or applied.fingerprint != registry.fingerprint:
            # a new version of the configuration: every process of the site follows it
            connection.execute(schema.engine["config"].insert().values(
                applied_at=dt.datetime.now(UTC), snapshot=plan.snapshot,
                fingerprint=registry.fingerprint))
        if on_applied is not None:
            on_applied(connection, plan)
    return plan
