"""Rollups of the record service: which rollups depend on which entity, and refreshing them.

A mixin of `RecordService` (engine/records/service.py); its methods read the service's
registry, schema and precomputed dependents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import sqlalchemy as sa

from engine.expr import EvaluationError, to_cel
from engine.records.access import SYSTEM
from engine.records.values import Invalid, coerce
from engine.registry.model import Entity, Field
from engine.storage.database import is_sqlite
from engine.storage.sqlexpr import to_sql


@dataclass(frozen=True)
class Dependent:
    """A rollup on `entity.field` that must be refreshed when records of another entity change;
    `link` is "parent_id" (lines) or the reference field pointing at `entity`, and `reads` the
    fields of the changing entity its value depends on (summed field, `where` names)."""

    entity: str
    field: str
    link: str
    reads: frozenset[str] = frozenset()


class Rollups:
    """The rollups of `RecordService`: their dependents, worked out once, and the SQL refresh
    of rollups and of the computed fields and rollups that read them."""

    def _rollup_dependents(self) -> dict[str, list[Dependent]]:
        deps: dict[str, list[Dependent]] = {}
        for entity in self.registry.entities.values():
            for fld in entity.fields.values():
                if fld.type != "rollup":
                    continue
                if "." in fld.rollup_of:
                    source, link = fld.rollup_of.split(".", 1)
                else:
                    source, link = entity.fields[fld.rollup_of].child_entity, "parent_id"
                reads = set(fld.rollup_where.names) if fld.rollup_where is not None else set()
                if fld.rollup_field:
                    reads.add(fld.rollup_field)
                deps.setdefault(source, []).append(
                    Dependent(entity.name, fld.name, link, frozenset(reads)))
        return deps

    def _chained_dependents(self) -> dict[str, list[Dependent]]:
        """The rollups that read a rollup or computed field of another entity (a customer's
        sum of its orders' totals, each the sum of the order's lines): when the engine
        refreshes those fields, it refreshes these next (see `_propagate`)."""
        chained: dict[str, list[Dependent]] = {}
        for source, deps in self._dependents.items():
            derived = {n for n, f in self.registry.entities[source].fields.items()
                       if f.type == "rollup" or f.compute is not None}
            found = [d for d in deps if d.reads & derived]
            if found:
                chained[source] = found
        return chained

    def _reaching_themselves(self) -> frozenset[str]:
        """The entities a write of which may change the written row itself through rollups:
        a rollup of the entity over itself, directly or along a chain of rollups."""
        result = set()
        for source, deps in self._dependents.items():
            reached: set[str] = set()
            todo = [d.entity for d in deps]
            while todo:
                name = todo.pop()
                if name in reached:
                    continue
                reached.add(name)
                todo.extend(d.entity for d in self._chained.get(name, []))
            if source in reached:
                result.add(source)
        return frozenset(result)

    def refresh_rollups(self, conn, entity: Entity, ids: Iterable[int],
                        only: str | None = None, _path: frozenset | None = None) -> None:
        """Recompute rollups of `entity` for `ids` in SQL, then computed fields using them,
        then the rollups of other records that read those (up a chain of rollups)."""
        table = self.schema.entities[entity.name]
        ids = sorted(ids)
        if not is_sqlite(conn):
            # lock the rows first: the UPDATE below then runs with a snapshot taken after any
            # concurrent writer of the same rows committed, so its sums include their rows
            conn.execute(sa.select(table.c.id).where(table.c.id.in_(ids)).with_for_update())
        changed = set()
        for fld in entity.fields.values():
            if fld.type != "rollup" or (only and fld.name != only):
                continue
            conn.execute(self._rollup_update(entity, fld), {"_ids": ids})
            changed.add(fld.name)
        if changed:
            self._recompute(conn, entity, ids)
            self._propagate(conn, entity, ids, changed, _path)

    def _rollup_update(self, entity: Entity, fld: Field):
        """The UPDATE that recomputes rollup `fld` for the ids bound as `_ids`. Built once
        (building it is most of a refresh's cost), unless its `where` reads the clock."""
        key = (entity.name, fld.name)
        statement = self._rollup_updates.get(key)
        if statement is not None:
            return statement
        table = self.schema.entities[entity.name]
        if "." in fld.rollup_of:
            source_name, link = fld.rollup_of.split(".", 1)
        else:
            source_name, link = entity.fields[fld.rollup_of].child_entity, "parent_id"
        source = self.registry.entities[source_name]
        stable = self.schema.entities[source_name].alias("src")
        column = stable.c[fld.rollup_field] if fld.rollup_field else stable.c.id
        agg = {"sum": sa.func.sum, "avg": sa.func.avg, "min": sa.func.min,
               "max": sa.func.max, "count": sa.func.count}[fld.rollup_agg](column)
        if fld.rollup_agg in ("sum", "count"):
            agg = sa.func.coalesce(agg, 0)
        where = [stable.c[link] == table.c.id, stable.c.deleted_at.is_(None)]
        clock = False
        if fld.rollup_where is not None:
            where.append(to_sql(fld.rollup_where.source, source, self.registry, self.schema,
                                table=stable))
            clock = "now(" in fld.rollup_where.source or "today(" in fld.rollup_where.source
        statement = table.update().where(
            table.c.id.in_(sa.bindparam("_ids", expanding=True))).values(
            {fld.name: sa.select(agg).where(*where).scalar_subquery()})
        if not clock:
            self._rollup_updates[key] = statement
        return statement

    def _propagate(self, conn, entity: Entity, ids: list[int], changed: set[str],
                   path: frozenset | None) -> None:
        """Refresh the rollups that read fields of `entity` just refreshed for `ids` (its
        rollups `changed` and the computed fields recomputed from them), in the same
        transaction. `path` holds the (entity, field, id) refreshed on the way here: a rollup
        over its own entity (an account's sum over its child accounts) climbs the tree and
        stops where the data loops back, while two ways up to the same record (a diamond)
        each refresh it."""
        derived = changed | {n for n, f in entity.fields.items() if f.compute is not None}
        deps = [d for d in self._chained.get(entity.name, []) if d.reads & derived]
        if not deps:
            return
        path = (path or frozenset()) | {(entity.name, name, i) for name in changed for i in ids}
        table = self.schema.entities[entity.name]
        links = sorted({d.link for d in deps})
        rows = conn.execute(sa.select(*[table.c[l] for l in links])
                            .where(table.c.id.in_(ids))).mappings().all()
        for dep in deps:
            targets = {row[dep.link] for row in rows if row[dep.link] is not None}
            targets = {t for t in targets if (dep.entity, dep.field, t) not in path}
            if targets:
                self.refresh_rollups(conn, self.registry.entities[dep.entity], targets,
                                     dep.field, path)

    def _recompute(self, conn, entity: Entity, ids: list[int]) -> None:
        computed = [f for f in entity.fields.values() if f.compute is not None]
        if not computed:
            return
        table = self.schema.entities[entity.name]
        rows = conn.execute(sa.select(table).where(table.c.id.in_(ids))).mappings().all()
        for row in rows:
            record = self._row(entity, row)
            scope = self._scope(conn, SYSTEM, entity, record)
            updates = {}
            for fld in computed:
                try:
                    value = coerce(fld, (fld.compute.evaluate(scope)))
                except (EvaluationError, Invalid):
                    value = None
                scope[fld.name] = to_cel(value)
                if value != record.get(fld.name):
                    updates[fld.name] = value
            if updates:
                conn.execute(table.update().where(table.c.id == record["id"]).values(updates))
