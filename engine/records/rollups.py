"""Rollups of the record service: which rollups depend on which entity, and refreshing them.

A mixin of `RecordService` (engine/records/service.py); its methods read the service's
registry, schema and precomputed dependents.

A write does not refresh each rollup it touches on the spot: it notes which rollups of which
records it made stale (`StaleRollups`) and refreshes them together at its end
(`flush_rollups`). So a record is recomputed once per write (one UPDATE for its stale rollups,
one load of its references for its computed fields), however many of its rollups the write
changed and however many ways lead to it: an order and its lines, then its customer, then the
customer's region. Entities are refreshed in the order the rollups read each other
(`_rollup_ranks`), so a customer is refreshed after all its orders were. The one exception is
a rollup over its own entity (a customer's sum over its child customers): such a tree is
climbed level by level, so a write reaching it at two levels refreshes the upper ones once per
level reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import sqlalchemy as sa

from engine.expr import EvaluationError, to_cel
from engine.records.access import SYSTEM
from engine.records.values import Invalid, coerce
from engine.registry.model import Entity, Field
from engine.storage.database import is_sqlite
from engine.storage.sqlexpr import to_sql


class StaleRollups:
    """The rollups a write made stale: {entity: {id: [fields, path]}}. `path` holds the
    (entity, id) whose refresh led to the record; a record is not refreshed again on behalf of
    a path through itself (a loop in the data, an account its own parent's parent), which
    makes a refresh end."""

    def __init__(self):
        self.entities: dict[str, dict[int, list]] = {}

    def add(self, entity: str, ids: Iterable[int], fields: Iterable[str],
            path: frozenset = frozenset()) -> None:
        records = self.entities.setdefault(entity, {})
        for record_id in ids:
            item = records.get(record_id)
            if item is None:
                records[record_id] = [set(fields), path]
            else:
                item[0].update(fields)
                if path:
                    item[1] = item[1] | path

    def __bool__(self) -> bool:
        return bool(self.entities)


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

    def _rollup_ranks(self) -> dict[str, tuple[int, str]]:
        """The order entities are refreshed in: an entity after every entity whose derived
        fields its rollups read, directly or along a chain (the number of such entities that
        it does not reach back comes first). Entities reading each other share a number and
        are refreshed in turns until nothing is stale (see `flush_rollups`)."""
        reach: dict[str, set[str]] = {}
        for name in self.registry.entities:
            seen: set[str] = set()
            todo = [d.entity for d in self._chained.get(name, [])]
            while todo:
                target = todo.pop()
                if target not in seen:
                    seen.add(target)
                    todo.extend(d.entity for d in self._chained.get(target, []))
            reach[name] = seen
        return {name: (sum(1 for other, reached in reach.items()
                           if name in reached and other not in reach[name]), name)
                for name in self.registry.entities}

    def _own_rollups(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """For each entity, (its rollups, its rollups over its lines): what creating a record
        and writing its lines make stale."""
        result = {}
        for name, entity in self.registry.entities.items():
            every = tuple(n for n, f in entity.fields.items() if f.type == "rollup")
            lines = tuple(dep.field for _, fld in self._lines[name]
                          for dep in self._dependents.get(fld.child_entity, [])
                          if dep.entity == name)
            result[name] = (every, lines)
        return result

    def rollups_after_write(self, conn, entity: Entity, new: Mapping | None,
                            old: Mapping | None, created: bool = False) -> None:
        """Refresh the rollups a write of a record of `entity` made stale: those over it of
        the records it names now (`new`) and named before (`old`), and its own over its lines
        (all of its own when `created`)."""
        stale = StaleRollups()
        self.stale_after_write(stale, entity, new, old, created)
        self.flush_rollups(conn, stale)

    def stale_after_write(self, stale: StaleRollups, entity: Entity, new: Mapping | None,
                          old: Mapping | None, created: bool = False) -> None:
        """Add to `stale` the rollups a write of `entity` made stale (see above)."""
        for dep in self._dependents.get(entity.name, []):
            ids = {record[dep.link] for record in (new, old)
                   if record is not None and record.get(dep.link) is not None}
            if ids:
                stale.add(dep.entity, ids, (dep.field,))
        if new is not None and new.get("id") is not None:
            every, lines = self._rollups_of[entity.name]
            fields = every if created else lines
            if fields:
                stale.add(entity.name, (new["id"],), fields)

    def refresh_rollups(self, conn, entity: Entity, ids: Iterable[int],
                        only: str | None = None) -> None:
        """Recompute rollups of `entity` for `ids` in SQL (all of them, or `only` one), then
        computed fields using them, then the rollups of other records that read those (up a
        chain of rollups)."""
        fields = (only,) if only else self._rollups_of[entity.name][0]
        if fields:
            stale = StaleRollups()
            stale.add(entity.name, ids, fields)
            self.flush_rollups(conn, stale)

    def flush_rollups(self, conn, stale: StaleRollups) -> None:
        """Refresh everything `stale` holds, entity by entity in rank order, adding the
        records each refresh makes stale in turn, until nothing is left."""
        while stale:
            name = min(stale.entities, key=self._rollup_rank.__getitem__)
            records = stale.entities.pop(name)
            if records:
                self._refresh_records(conn, self.registry.entities[name], records, stale)

    def _refresh_records(self, conn, entity: Entity, records: dict[int, list],
                         stale: StaleRollups) -> None:
        """Recompute the stale rollups of `records` ({id: [fields, path]}) of `entity`, then
        each record's computed fields (one load of its references), then note in `stale`
        the rollups of other records that read what was refreshed."""
        table = self.schema.entities[entity.name]
        ids = sorted(records)
        if not is_sqlite(conn):
            # lock the rows first: the UPDATE below then runs with a snapshot taken after any
            # concurrent writer of the same rows committed, so its sums include their rows
            lock = self._rollup_updates.get((entity.name, "lock"))
            if lock is None:
                lock = self._rollup_updates[(entity.name, "lock")] = sa.select(table.c.id).where(
                    table.c.id.in_(sa.bindparam("_ids", expanding=True))).with_for_update()
            conn.execute(lock, {"_ids": ids})
        computed = [f for f in entity.fields.values() if f.compute is not None]
        deps = self._chained.get(entity.name, [])
        read_back = bool(computed or deps)  # the rows as updated are needed then
        # in the UPDATE itself where the database can (PostgreSQL, SQLite 3.35+)
        returning = read_back and conn.dialect.update_returning
        groups: dict[frozenset, list[int]] = {}
        for record_id in ids:
            groups.setdefault(frozenset(records[record_id][0]), []).append(record_id)
        rows = []
        for fields, group in groups.items():  # one UPDATE per set of stale rollups
            result = conn.execute(self._rollup_update(entity, fields, returning),
                                  {"_ids": group})
            if returning:
                rows.extend(result.mappings().all())
        if read_back and not returning:
            table_rows = sa.select(table).where(table.c.id.in_(ids))
            rows = conn.execute(table_rows).mappings().all()
        computed_names = {f.name for f in computed}
        for row in sorted(rows, key=lambda row: row["id"]):
            record = self._row(entity, row)
            if computed:
                self._recompute(conn, entity, table, record, computed)
            fields, path = records[record["id"]]
            derived = fields | computed_names
            path = path | {(entity.name, record["id"])}
            for dep in deps:
                target = record.get(dep.link)
                if target is not None and dep.reads & derived \
                        and (dep.entity, target) not in path:
                    stale.add(dep.entity, (target,), (dep.field,), path)

    def _rollup_update(self, entity: Entity, fields: frozenset[str], returning: bool):
        """The UPDATE that recomputes the rollups `fields` for the ids bound as `_ids`
        (`returning` the updated rows). Built once (building it is most of a refresh's cost),
        unless a `where` reads the clock."""
        key = (entity.name, fields, returning)
        statement = self._rollup_updates.get(key)
        if statement is not None:
            return statement
        table = self.schema.entities[entity.name]
        values, clock = {}, False
        for name in sorted(fields):
            values[name], reads_clock = self._rollup_value(entity, entity.fields[name])
            clock = clock or reads_clock
        statement = table.update().where(
            table.c.id.in_(sa.bindparam("_ids", expanding=True))).values(values)
        if returning:
            statement = statement.returning(*table.c)
        if not clock:
            self._rollup_updates[key] = statement
        return statement

    def _rollup_value(self, entity: Entity, fld: Field):
        """The scalar subquery computing rollup `fld` of the updated row, and whether its
        `where` reads the clock."""
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
        return sa.select(agg).where(*where).scalar_subquery(), clock

    def _recompute(self, conn, entity: Entity, table: sa.Table, record: dict,
                   computed: list[Field]) -> None:
        """Evaluate the computed fields of `record` again and store (and set in `record`)
        those whose value changed."""
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
            key = (entity.name, tuple(updates))
            statement = self._recompute_updates.get(key)
            if statement is None:  # built once per set of changed fields
                statement = self._recompute_updates[key] = table.update().where(
                    table.c.id == sa.bindparam("_record_id"))
            conn.execute(statement, {**updates, "_record_id": record["id"]})
            record.update(updates)
