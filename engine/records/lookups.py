"""Lookups: fill an empty field from the best matching record of another entity.

A field with `lookup` (docs/language.md, "Lookups") takes, when it is left empty, the `take`
field of the best candidate record of the `from` entity: candidates whose `match` fields are
empty (a wildcard) or equal the values of the match expressions, valid on the `on` date, for
which `where` holds; the best has the most non-empty match fields, then comes first by `order`,
then has the highest id.

The record service calls `derive` where it evaluates computed fields, so one write fills its
lookups and its computed fields in dependency order (a lookup may read a computed field, a
computed field the looked-up value), on every path: API, forms, import, lines, transitions.

Candidates are read as the system: a price list is reference data, and a person who may not
browse it still gets its price. They are read in the database with every match field
narrowed to the wanted values or empty, then ranked here; a batch (import) asks once per few
hundred distinct keys, and every answer is kept for the rest of the batch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import sqlalchemy as sa

from engine.expr import EvaluationError, to_cel
from engine.records.values import Invalid, coerce, from_storage
from engine.registry.derivation import derivation_order
from engine.registry.model import Entity, Field, FieldLookup
from engine.storage.sqlexpr import to_sql

UTC = dt.timezone.utc
PARENT = "parent"
CHUNK = 200  # distinct keys per candidate query: keeps each IN list short on both databases
_NOTHING = object()  # "not resolved yet" in a cache
_POOL = "prefetched"  # cache key of a batch's candidates (Lookups.prefetch)


@dataclass(frozen=True)
class ParentView:
    """What a line's lookups see of the record it belongs to: its scope (`parent.x`) and the
    names of its fields this write changes (all, for a new record)."""

    scope: Mapping[str, Any]
    changed: frozenset[str] | None  # None: a new record, everything is new


class Lookups:
    """The record service's lookups: which entities have them, and filling them."""

    def __init__(self, service):
        self.service = service
        registry = service.registry
        self.fields = {name: tuple(f for f in e.fields.values() if f.lookup is not None)
                       for name, e in registry.entities.items()}
        self.fields = {name: found for name, found in self.fields.items() if found}
        # every entity: a record whose lines read it gets its computed fields early too
        self.order = {name: derivation_order(e) for name, e in registry.entities.items()}
        # entities whose lines read them (`parent.x`) in a lookup
        self.read_by_lines = frozenset(
            name for name, e in registry.entities.items()
            if any(f.type == "lines" and any(lf.lookup.parent_inputs for lf in
                                             self.fields.get(f.child_entity, ()))
                   for f in e.fields.values()))
        self.deep_references = {name: frozenset().union(*(f.lookup.deep_references
                                                           for f in found))
                                for name, found in self.fields.items()}
        # a match or `on` that is just a field's name is read from the scope, not evaluated
        self._bare = {id(e): e.source.strip() for found in self.fields.values() for f in found
                      for e in (*f.lookup.match.values(), f.lookup.on) if e is not None
                      and e.source.strip().isidentifier() and e.source.strip() in e.names}
        # entities whose lookups read nothing but their own fields by name: a batch's rows
        # serve as their scopes as they are
        self._plain = frozenset(
            name for name, found in self.fields.items()
            if all(id(e) in self._bare and self._bare[id(e)] in registry.entities[name].fields
                   for f in found for e in (*f.lookup.match.values(), f.lookup.on)
                   if e is not None))
        self._where: dict[tuple, Any] = {}

    def has(self, entity_name: str) -> bool:
        return entity_name in self.fields

    # ------------------------------------------------------------------ one record

    def derive(self, conn, entity: Entity, scope: dict, values: dict, merged: dict,
               current: Mapping | None, fail: Callable, *, lookups: bool = True,
               parent: ParentView | None = None, cache: dict | None = None) -> None:
        """Fill the computed fields and (with `lookups`) the empty looked-up ones of one
        record, each after what it reads, into `values`, `merged` and `scope`."""
        if parent is not None and PARENT not in entity.fields:
            scope[PARENT] = parent.scope
        cache = {} if cache is None else cache
        for name in self.order.get(entity.name, ()):
            fld = entity.fields[name]
            if fld.lookup is None:
                try:
                    result = coerce(fld, fld.compute.evaluate(scope))
                except (EvaluationError, Invalid):
                    result = None
            elif lookups and self._due(fld, values, merged, current, parent):
                found = self.resolve(conn, entity, fld, scope, cache)
                try:
                    result = coerce(fld, found) if found is not None else \
                        self._fallback(fld, scope)
                except Invalid as exc:  # the list's value breaks this field's own limits
                    fail(name, exc.message)
                    continue
            else:
                continue
            values[name] = merged[name] = result
            scope[name] = to_cel(result)

    @staticmethod
    def _due(fld: Field, values: Mapping, merged: Mapping, current: Mapping | None,
             parent: ParentView | None) -> bool:
        """Whether a lookup fills its field now: the field is empty and the record is new,
        the field was just emptied, or something the lookup reads changed."""
        if merged.get(fld.name) is not None:
            return False  # an entered value is never replaced
        if current is None or fld.name in values:
            return True
        lookup = fld.lookup
        if any(merged.get(n) != current.get(n) for n in lookup.inputs):
            return True
        return parent is not None and bool(lookup.parent_inputs) and (
            parent.changed is None or bool(lookup.parent_inputs & parent.changed))

    @staticmethod
    def _fallback(fld: Field, scope: Mapping):
        """The field's `default` when no candidate matches (a literal, else an expression)."""
        if fld.default is not None:
            return fld.default
        if fld.default_expr is not None:
            try:
                return coerce(fld, fld.default_expr.evaluate(scope))
            except (EvaluationError, Invalid):
                return None
        return None

    def resolve(self, conn, entity: Entity, fld: Field, scope: Mapping, cache: dict):
        """The value the best candidate gives `fld` for the record `scope` describes, or
        None; answers are kept in `cache` by key."""
        key = self.key(fld.lookup, scope)
        cache_key = (entity.name, fld.name, key)
        found = cache.get(cache_key, _NOTHING)
        if found is _NOTHING:
            prefetched = cache.get((_POOL, entity.name, fld.name))
            if prefetched is not None and (key[0][0] is None or key[0][0] in prefetched[0]):
                found = prefetched[1].best(key)
            else:
                found = self.resolve_keys(conn, fld.lookup, [key])[key]
            cache[cache_key] = found
        return found

    def prefetch(self, conn, entity: Entity, rows: list[Mapping], cache: dict) -> None:
        """Before a batch's rows are prepared one by one: for each lookup whose first match
        is a field of the record by name (`product: product`), read at once the candidates
        for every value the rows give it, so that a row's lookup is answered without a
        query (a row whose value is not among them, from a default say, still asks)."""
        for fld in self.fields.get(entity.name, ()):
            lookup = fld.lookup
            first, expression = next(iter(lookup.match.items()))
            name = self._bare.get(id(expression))
            if name not in entity.fields:
                continue
            target = self.service.registry.entities[lookup.source].fields[first]
            wanted = set()
            for row in rows:
                try:
                    value = coerce(target, row.get(name))
                except Invalid:
                    continue
                if value is not None:
                    wanted.add(value)
            table = self.service.schema.entities[lookup.source]
            column = table.c[first]
            candidates = self._select(conn, lookup, [column.is_(None)])
            ordered = list(wanted)
            for start in range(0, len(ordered), CHUNK):
                candidates += self._select(conn, lookup,
                                           [column.in_(ordered[start:start + CHUNK])])
            cache[(_POOL, entity.name, fld.name)] = (frozenset(wanted),
                                                     _Pool(lookup, candidates))

    def key(self, lookup: FieldLookup, scope: Mapping) -> tuple:
        """(match values as the candidate fields store them, the date tested): what the
        choice of a candidate depends on. A value that fails to evaluate or that no
        candidate field could hold is empty: only a wildcard matches it."""
        source = self.service.registry.entities[lookup.source]
        values = []
        bare = self._bare
        for cname, expression in lookup.match.items():
            try:
                name = bare.get(id(expression))
                raw = scope.get(name) if name is not None else expression.evaluate(scope)
                value = coerce(source.fields[cname], raw) if raw is not None else None
            except (EvaluationError, Invalid):
                value = None
            values.append(value)
        on = None
        if lookup.valid is not None:
            if lookup.on is not None:
                name = bare.get(id(lookup.on))
                try:
                    on = scope.get(name) if name is not None else lookup.on.evaluate(scope)
                except EvaluationError:
                    on = None
            on = _moment(on) if on is not None else _today()
        return tuple(values), on

    # ------------------------------------------------------------------ many records

    def resolve_keys(self, conn, lookup: FieldLookup, keys: Iterable[tuple]) -> dict:
        """{key: the take value of its best candidate, or None} for distinct `keys`."""
        keys = list(dict.fromkeys(keys))
        answers: dict = {}
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start:start + CHUNK]
            pool = _Pool(lookup, self._candidates(conn, lookup, chunk))
            for key in chunk:
                answers[key] = pool.best(key)
        return answers

    def _candidates(self, conn, lookup: FieldLookup, keys: list[tuple]) -> list[dict]:
        """The live candidates any of `keys` may choose: each match field empty or one of the
        keys' values, valid on some key's date, `where` true; read without sharing rules."""
        source = self.service.registry.entities[lookup.source]
        table = self.service.schema.entities[source.name]
        conditions = []
        for i, cname in enumerate(lookup.match):
            column = table.c[cname]
            wanted = {key[0][i] for key in keys} - {None}
            conditions.append(sa.or_(column.is_(None), column.in_(wanted)) if wanted
                              else column.is_(None))
        if lookup.valid is not None:
            first, last = min(k[1] for k in keys), max(k[1] for k in keys)
            low, high = (table.c[n] for n in lookup.valid)
            conditions.append(sa.or_(low.is_(None), low <= _bound(source.fields[lookup.valid[0]],
                                                                  last)))
            conditions.append(sa.or_(high.is_(None),
                                     high >= _bound(source.fields[lookup.valid[1]], first)))
        return self._select(conn, lookup, conditions)

    def _select(self, conn, lookup: FieldLookup, conditions: list) -> list[dict]:
        """The live candidates for which `conditions` and `where` hold, as compared here."""
        registry, schema = self.service.registry, self.service.schema
        source = registry.entities[lookup.source]
        table = schema.entities[source.name]
        names = ["id", lookup.take, *lookup.match, *(lookup.valid or ()),
                 *(n for n, _ in lookup.order)]
        names = list(dict.fromkeys(names))
        conditions = [table.c.deleted_at.is_(None), *conditions]
        if lookup.where is not None:
            conditions.append(self._where_sql(lookup, source))
        rows = conn.execute(sa.select(*(table.c[n] for n in names)).where(*conditions))
        fields = [source.fields.get(n) for n in names]
        return [{n: (v if f is None or v is None else _comparable(from_storage(f, v)))
                 for n, f, v in zip(names, fields, row)} for row in rows]

    def _where_sql(self, lookup: FieldLookup, source: Entity):
        """`where` in SQL, translated once unless it reads the clock."""
        found = self._where.get(id(lookup))
        if found is None:
            found = to_sql(lookup.where.source, source, self.service.registry,
                           self.service.schema)
            if "now(" not in lookup.where.source and "today(" not in lookup.where.source:
                self._where[id(lookup)] = found
        return found

    def fill_rows(self, conn, caller, entity: Entity, rows: list[dict],
                  cache: dict) -> list[bool]:
        """Fill the empty looked-up fields of new records' `rows` (values as `_prepare` would
        store them, defaults given) from candidates read once for the batch (`prefetch`);
        return, per row, whether it is complete (no required field left empty)."""
        service = self.service
        order = self.order[entity.name]
        scopes = [dict(row) for row in rows] if entity.name in self._plain else \
            [service._scope(conn, caller, entity, row) for row in rows]
        complete = [True] * len(rows)
        self.prefetch(conn, entity, rows, cache)
        for name in order:
            fld = entity.fields[name]
            if fld.lookup is None:  # pragma: no cover - the fast path takes no computed fields
                raise ValueError(f"{entity.name}.{name}: computed fields take the full path")
            for i in (i for i, row in enumerate(rows) if row.get(name) is None):
                found = self.resolve(conn, entity, fld, scopes[i], cache)
                try:
                    value = coerce(fld, found) if found is not None else \
                        self._fallback(fld, scopes[i])
                except Invalid:
                    value = None
                    complete[i] = False  # the full path words the refusal
                rows[i][name] = value
                scopes[i][name] = to_cel(value)
                if value is None and fld.required:
                    complete[i] = False
        return complete

    # ------------------------------------------------------------------ forms

    def preview(self, caller, entity_name: str, data: Mapping[str, Any],
                record_id=None) -> dict[str, Any]:
        """{"field": value, "lines[i].field": value}: what saving `data` (over record
        `record_id`) would fill in the looked-up fields left empty, the record's own and its
        lines' (`data` as `create`/`update` take it; refused values are left out). A form
        shows these as the values to expect."""
        from engine.records.access import SYSTEM
        service = self.service
        entity = service.entity(entity_name)
        ignore = lambda *_: None  # noqa: E731 - saving the form reports what is refused
        with service.engine.connect() as conn:
            current = None
            if record_id is not None:
                current = service.get(SYSTEM, entity.name, record_id, conn=conn)
                service._check_row_access(caller, entity, current, "update", conn)
            access = service.access(caller, entity)
            values, lines = service._convert(caller, entity, access, data, current, False,
                                             False, ignore)
            merged = service._merge(conn, caller, entity, values, current, False)
            empty = {f.name for f in self.fields.get(entity.name, ())
                     if merged.get(f.name) is None}
            scope = service._scope(conn, caller, entity, merged)
            cache: dict = {}
            self.derive(conn, entity, scope, values, merged, current, ignore, cache=cache)
            found = {name: merged[name] for name in empty if merged.get(name) is not None}
            changed = None if current is None else frozenset(
                n for n in entity.fields if merged.get(n) != current.get(n))
            parent = ParentView(scope, changed)
            for name, items in lines.items():
                child = service.registry.entities[entity.fields[name].child_entity]
                if child.name not in self.fields:
                    continue
                child_access = service.access(caller, child)
                existing = {line["id"]: line for line in (current or {}).get(name, [])}
                for i, item in enumerate(items):
                    item = dict(item)
                    before = existing.get(_as_int(item.pop("id", None)))
                    item.pop("version", None)
                    line_values, _ = service._convert(caller, child, child_access, item, before,
                                                      False, False, ignore)
                    line = service._merge(conn, caller, child, line_values, before, False)
                    empty = [f.name for f in self.fields[child.name] if line.get(f.name) is None]
                    line_scope = service._scope(conn, caller, child, line)
                    self.derive(conn, child, line_scope, line_values, line, before, ignore,
                                parent=parent, cache=cache)
                    found.update({f"{name}[{i}].{n}": line[n] for n in empty
                                  if line.get(n) is not None})
        return found


class _Pool:
    """Candidates of one query, indexed by their first match field, ranked per key."""

    def __init__(self, lookup: FieldLookup, candidates: list[dict]):
        self.lookup = lookup
        self.match = list(lookup.match)
        self.first = self.match[0]
        self.by_first: dict = {}
        for candidate in candidates:
            self.by_first.setdefault(candidate[self.first], []).append(candidate)
        self.low, self.high = lookup.valid or (None, None)

    def best(self, key: tuple):
        values, on = key
        pool = self.by_first.get(None, [])
        if values[0] is not None:
            pool = self.by_first.get(_comparable(values[0]), []) + pool
        wanted = list(zip(self.match, map(_comparable, values)))
        day = on.date() if on is not None else None
        fitting = []
        for candidate in pool:
            if any(candidate[n] is not None and candidate[n] != v for n, v in wanted) or \
                    any(v is None and candidate[n] is not None for n, v in wanted):
                continue
            if on is not None and not (_on_or_after(on, day, candidate[self.low]) and
                                       _on_or_before(on, day, candidate[self.high])):
                continue
            fitting.append(candidate)
        if not fitting:
            return None
        return self._rank(fitting)[0][self.lookup.take]

    def _rank(self, fitting: list[dict]) -> list[dict]:
        """Most specific first, then by `order` (empty values last), then highest id."""
        fitting.sort(key=lambda c: c["id"], reverse=True)
        for name, descending in reversed(self.lookup.order):
            filled = [c for c in fitting if c[name] is not None]
            filled.sort(key=lambda c: c[name], reverse=descending)  # stable, also reversed
            fitting = filled + [c for c in fitting if c[name] is None]
        fitting.sort(key=lambda c: sum(c[n] is not None for n in self.match), reverse=True)
        return fitting


def _comparable(value):
    """A value as compared here: datetimes in UTC (SQLite may give them without a zone)."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _on_or_after(on: dt.datetime, day: dt.date, start) -> bool:
    if start is None:
        return True
    return start <= on if isinstance(start, dt.datetime) else start <= day


def _on_or_before(on: dt.datetime, day: dt.date, end) -> bool:
    if end is None:
        return True
    return end >= on if isinstance(end, dt.datetime) else end >= day


def _bound(fld: Field, moment: dt.datetime):
    """`moment` as a value of a validity field: its day for a date field."""
    return moment.date() if fld.type == "date" else moment


def _moment(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    return _today()  # the checker lets only dates through; a null on a record is today


def _today() -> dt.datetime:
    day = dt.datetime.now(UTC).date()
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
