"""Listing records (API.md "Listing"): filters, text search, sort, keyset cursor, totals.

A page costs a fixed number of statements whatever its size: the page itself, the capped
count, one per lines field and one per referenced entity for titles.
"""

from __future__ import annotations

import base64
import datetime as dt
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import sqlalchemy as sa

from engine.errors import BadRequest, NotFound
from engine.records.access import Caller
from engine.records.values import Invalid, coerce, to_json
from engine.registry.fieldtypes import FIELD_KINDS
from engine.registry.labels import Label
from engine.registry.model import Entity, Field
from engine.storage.search import fts_table, fts_table_name, search_document
from engine.storage.tables import UTCDateTime

DEFAULT_LIMIT, MAX_LIMIT, COUNT_CAP = 50, 500, 10_000
OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "isnull")
RESERVED = ("q", "sort", "limit", "cursor", "fields", "count")
_SYSTEM_KINDS = {"id": "integer", "version": "integer", "created_at": "datetime",
                 "updated_at": "datetime", "owner": "reference", "created_by": "reference",
                 "updated_by": "reference"}
TEXTUAL = ("string", "text", "email", "phone", "url", "enum", "autonumber")


def system_field(name: str) -> Field:
    return Field(name=name, kind=FIELD_KINDS[_SYSTEM_KINDS[name]], label=Label.of(None, name),
                 to="user" if _SYSTEM_KINDS[name] == "reference" else None)


@dataclass
class ListQuery:
    filters: list[tuple[str, str, str, str]] = field(default_factory=list)  # param, f, op, raw
    q: str | None = None
    sort: str | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    fields: list[str] | None = None
    exact_count: bool = False


@dataclass
class Page:
    data: list[dict]
    next_cursor: str | None
    total: int
    total_capped: bool
    titles: dict[str, dict[int, str]]


def bad(param: str, detail: str) -> BadRequest:
    return BadRequest(f"{param}: {detail}", {param: [detail]})


def parse_query(params: Mapping[str, Any]) -> ListQuery:
    """Read API query parameters (a dict of str, or of lists from a multi-dict)."""
    query = ListQuery()
    for key, value in params.items():
        if isinstance(value, list):
            value = value[-1] if value else ""
        value = str(value)
        if "\x00" in value or "\x00" in key:  # SQLite would cut the text there, PostgreSQL refuse it
            raise bad(key.replace("\x00", ""), "must not contain a NUL character")
        if key == "q":
            query.q = value.strip() or None
        elif key == "sort":
            query.sort = value or None
        elif key == "limit":
            try:
                query.limit = int(value)
            except ValueError:
                raise bad("limit", "must be a whole number") from None
            if not 1 <= query.limit <= MAX_LIMIT:
                raise bad("limit", f"must be between 1 and {MAX_LIMIT}")
        elif key == "cursor":
            query.cursor = value or None
        elif key == "fields":
            query.fields = [f.strip() for f in value.split(",") if f.strip()]
        elif key == "count":
            if value != "exact":
                raise bad("count", "the only value is 'exact'")
            query.exact_count = True
        else:
            name, _, op = key.partition("__")
            op = op or "eq"
            if op not in OPERATORS:
                raise bad(key, f"unknown operator '{op}' (use one of {', '.join(OPERATORS)})")
            query.filters.append((key, name, op, value))
    return query


class Lister:
    """Runs list queries for a RecordService."""

    def __init__(self, service):
        self.service = service
        self.registry = service.registry
        self.schema = service.schema

    def readable_field(self, caller: Caller, entity: Entity, name: str, param: str) -> Field:
        access = self.service.access(caller, entity)
        if name in _SYSTEM_KINDS:
            return system_field(name)
        fld = entity.fields.get(name)
        if fld is None or name in access.hidden or not (fld.kind.stored or fld.type == "lines"):
            raise bad(param, f"'{name}' is not a field you can use here")
        return fld

    def list(self, caller: Caller, entity_name: str, query: ListQuery) -> Page:
        entity = self.service.entity(entity_name)
        access = self.service.access(caller, entity)
        if entity.parent or access.read is None:  # what a user may not read does not exist
            raise NotFound(f"no entity '{entity_name}'")
        table = self.schema.entities[entity.name]
        source, ids, walked = self._source(caller, entity, table)
        where = [table.c.deleted_at.is_(None)] if walked else \
            [self.service.read_condition(caller, entity)]
        for param, name, op, raw in query.filters:
            fld = self.readable_field(caller, entity, name, param)
            if fld.type == "lines":
                raise bad(param, f"'{name}' cannot be filtered")
            where.append(self._filter(table.c[name], fld, op, raw, param))
        if query.q:
            where.append(self._search(table, entity, query.q, access.hidden))
        keys = self._sort_keys(caller, entity, query.sort)
        parts = self._parts(table, keys, query.cursor, query.sort, ids)

        columns = self._projection(caller, entity, query.fields)
        with self.service.engine.connect() as conn:
            rows = []
            for part, order in parts:  # at most two: non-empty first sort values, then empty
                condition = [*walked, *where] if part is None else [*walked, *where, part]
                rows += conn.execute(sa.select(table).select_from(source).where(*condition)
                                     .order_by(*order).limit(query.limit + 1 - len(rows))
                                     ).mappings().all()
                if len(rows) > query.limit:
                    break
            more = len(rows) > query.limit
            rows = rows[:query.limit]
            records = [self.service._row(entity, row) for row in rows]
            if any(entity.fields[c].type == "lines" for c in columns if c in entity.fields):
                self.service._attach_lines(conn, caller, entity, records)
            if walked and len(where) == 1:  # no filter: the share rows are the live records
                total, capped = self._count(conn, self.service.shares.table, walked,
                                            query.exact_count)
            else:
                total, capped = self._count(conn, source, [*walked, *where], query.exact_count)
            titles = self.titles(conn, caller, entity, records, columns)
        data = [{k: r.get(k) for k in columns} for r in records]
        cursor = self._cursor(keys, records[-1], query.sort) if more and records else None
        return Page(data, cursor, total, capped, titles)

    def _source(self, caller, entity: Entity, table):
        """Return what a page is read from, its id column and the conditions on it.

        Under a sharing rule kept as share rows (engine/storage/sharing.py), the page is
        read from the caller's share rows joined to the records: walked in record order, the
        index (rule, user, record) yields the page and stops after it, and the total counts
        index entries, as a page under `all` does over the records' own indexes.
        """
        kept = self.service.share_walk(caller, entity)
        if kept is None:
            return table, table.c.id, []
        shares = self.service.shares.table
        return (shares.join(table, table.c.id == shares.c.record_id), shares.c.record_id,
                [shares.c.rule == kept.key, shares.c.user_id == caller.user_id])

    def _projection(self, caller, entity: Entity, wanted: list[str] | None) -> list[str]:
        access = self.service.access(caller, entity)
        if wanted is None:
            return ["id", "version", "created_at", "updated_at", "created_by", "updated_by",
                    "owner"] + [n for n in entity.fields if n not in access.hidden]
        for name in wanted:
            self.readable_field(caller, entity, name, "fields")
        return ["id", "version"] + [n for n in wanted if n not in ("id", "version")]

    def _filter(self, column, fld: Field, op: str, raw: str, param: str):
        if op == "isnull":
            if raw.lower() not in ("true", "false"):
                raise bad(param, "must be true or false")
            return column.is_(None) if raw.lower() == "true" else column.is_not(None)
        if op == "contains":
            if fld.type not in TEXTUAL:
                raise bad(param, "contains works on text fields only")
            return sa.func.lower(column).like(f"%{_escape(raw)}%", escape="\\")
        loose = dataclasses.replace(fld, min=None, max=None, max_length=None, pattern=None)
        if fld.type in ("multi_enum", "json"):
            raise bad(param, f"'{fld.name}' can only be filtered with isnull")

        def parse(text: str):
            try:
                value = coerce(loose, text)
            except Invalid as exc:
                raise bad(param, f"'{text}' {exc.message.render()}") from None
            if value is None:
                raise bad(param, "needs a value (use __isnull to find empty ones)")
            return value

        if op == "in":
            return column.in_([parse(part) for part in raw.split(",")])
        value = parse(raw)
        if fld.type == "boolean" and op not in ("eq", "ne"):
            raise bad(param, f"'{fld.name}' is yes/no: filter it with =, __ne, __in or __isnull")
        # only the asked comparison is built (SQLAlchemy refuses `< True` when it is built)
        comparisons = {"eq": lambda: column == value,
                       "ne": lambda: sa.or_(column != value, column.is_(None)),
                       "lt": lambda: column < value, "lte": lambda: column <= value,
                       "gt": lambda: column > value, "gte": lambda: column >= value}
        return comparisons[op]()

    def _search(self, table, entity: Entity, text: str, hidden=frozenset()):
        fields = tuple(f for f in entity.search_fields if f not in hidden)
        if not fields:
            raise bad("q", f"{entity.name} has no search fields")
        conditions = []
        # the search index covers every search field; a caller who may not read one of them
        # is served by LIKE over the others, so a hidden value can never be probed
        sqlite = self.service.engine.dialect.name == "sqlite" and fields == entity.search_fields
        if self.service.engine.dialect.name == "sqlite" and not sqlite:
            return sa.and_(*[sa.or_(*[
                sa.func.lower(table.c[f]).like(f"%{_escape(term)}%", escape="\\")
                for f in fields]) for term in text.split()[:10]])
        for term in text.split()[:10]:
            escaped = _escape(term)
            if sqlite and len(term) >= 3:
                fts = fts_table(entity)
                phrase = '"' + term.replace('"', '""') + '"'
                conditions.append(table.c.id.in_(
                    sa.select(fts.c.rowid).where(sa.text(
                        f'"{fts_table_name(entity.name)}" MATCH :p').bindparams(p=phrase))))
            elif sqlite:
                conditions.append(sa.or_(*[
                    sa.func.lower(table.c[f]).like(f"%{escaped}%", escape="\\")
                    for f in entity.search_fields]))
            else:
                document = search_document(table, fields)
                conditions.append(document.like(f"%{escaped}%", escape="\\"))
        return sa.and_(*conditions)

    def _sort_keys(self, caller, entity: Entity, sort: str | None):
        if not sort:  # the configured order, without fields hidden from this caller
            hidden = self.service.access(caller, entity).hidden
            return [key for key in entity.list_sort if key[0] not in hidden]
        keys = []
        for part in sort.split(","):
            part = part.strip()
            if not part:
                continue
            name = part.lstrip("-+")
            fld = self.readable_field(caller, entity, name, "sort")
            if not fld.kind.orderable or not fld.kind.stored:
                raise bad("sort", f"'{name}' cannot be sorted")
            if name != "id":
                keys.append((name, part.startswith("-")))
            elif part.startswith("-"):
                raise bad("sort", "records are sorted by ascending id last; sort by created_at "
                                  "for newest first")
        return keys

    @staticmethod
    def _signature(sort: str | None) -> str:
        return hashlib.sha1((sort or "").encode()).hexdigest()[:8]

    def _cursor(self, keys, record: dict, sort: str | None) -> str:
        values = [to_json(None, record.get(name)) for name, _ in keys]
        payload = {"s": self._signature(sort), "v": values, "id": record["id"]}
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    def _parts(self, table, keys, cursor: str | None, sort: str | None, ids=None):
        """Return the (condition, order) parts a page is read from, in order; `ids` is the
        column the last sort key, the id, is read from (the record's, or its share row's).

        Empty values sort last in both directions (API.md). Reading the rows whose first sort
        key has a value separately from those where it is empty lets both databases walk an
        index in either direction, instead of sorting every matching row for NULLS LAST.
        """
        def order(sort_keys):
            result = []
            for name, descending in sort_keys:
                column = table.c[name]
                result.append((column.desc() if descending else column.asc()).nulls_last())
            return result + [ids.asc()]

        ids = table.c.id if ids is None else ids
        if not keys:
            return [(None if cursor is None else self._after(table, keys, cursor, sort, ids)[0],
                     order([]))]
        first, descending = table.c[keys[0][0]], keys[0][1]
        plain = [first.desc() if descending else first.asc()] + order(keys[1:])
        if cursor is None:
            return [(first.is_not(None), plain), (first.is_(None), order(keys[1:]))]
        conditions = self._after(table, keys, cursor, sort, ids)
        if len(conditions) == 1:  # the cursor is inside the empty values already
            return [(conditions[0], order(keys[1:]))]
        return [(conditions[0], plain), (conditions[1], order(keys[1:]))]

    def _after(self, table, keys, cursor: str, sort: str | None, ids):
        try:  # a cursor comes back from the client: anything in it may have been forged
            padded = cursor + "=" * (-len(cursor) % 4)
            payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
            if not isinstance(payload, dict) or payload.get("s") != self._signature(sort):
                raise ValueError
            values, last_id = payload["v"], _cursor_int(payload["id"])
            if not isinstance(values, list) or len(values) != len(keys):
                raise ValueError
            parsed = [None if raw is None else _parse_cursor_value(table.c[name], raw)
                      for (name, _), raw in zip(keys, values)]
        except (ValueError, KeyError, TypeError, ArithmeticError, RecursionError):
            raise bad("cursor", "is not a cursor of this listing (send the same filters and "
                                "sort)") from None
        rest = self._chain(table, keys[1:], parsed[1:], last_id, ids)
        if not keys:
            return [ids > last_id]
        first, descending = table.c[keys[0][0]], keys[0][1]
        value = parsed[0]
        if value is None:  # inside the trailing group of empty values
            return [sa.and_(first.is_(None), rest)]
        # a plain range on the first key lets the database seek in an index; the empty values,
        # which sort after every value, are a second, separate part
        bound = first <= value if descending else first >= value
        strict = first < value if descending else first > value
        return [sa.and_(bound, sa.or_(strict, sa.and_(first == value, rest))), first.is_(None)]

    @staticmethod
    def _chain(table, keys, values, last_id, ids):
        """Rows after the cursor among rows equal on the keys before these."""
        options, equal = [], []
        for (name, descending), value in zip(keys, values):
            column = table.c[name]
            if value is None:
                after = sa.false()
            else:
                after = sa.or_(column < value if descending else column > value,
                               column.is_(None))
            options.append(sa.and_(*equal, after))
            equal.append(column.is_(None) if value is None else column == value)
        options.append(sa.and_(*equal, ids > last_id))
        return sa.or_(*options)

    def _count(self, conn, source, where, exact: bool) -> tuple[int, bool]:
        if exact:
            return int(conn.execute(sa.select(sa.func.count()).select_from(source)
                                    .where(*where)).scalar()), False
        inner = sa.select(sa.literal(1)).select_from(source).where(*where).limit(COUNT_CAP + 1) \
            .subquery()
        count = int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar())
        return (COUNT_CAP, True) if count > COUNT_CAP else (count, False)

    def titles(self, conn, caller: Caller, entity: Entity, records: list[dict],
               columns: list[str]) -> dict[str, dict[int, str]]:
        """Return the titles of referenced records the caller may read, one query per target."""
        wanted: dict[str, set[int]] = {}
        targets: dict[str, list[str]] = {}
        for name in columns:
            if name in ("created_by", "updated_by", "owner"):
                target = "user"
            else:
                fld = entity.fields.get(name)
                if fld is None or fld.type != "reference":
                    continue
                target = fld.to
            targets.setdefault(target, []).append(name)
            wanted.setdefault(target, set()).update(
                r[name] for r in records if r.get(name) is not None)
        titles: dict[str, dict[int, str]] = {}
        for target, ids in wanted.items():
            found: dict[int, str] = {}
            if ids:
                if target == "user":
                    users = self.schema.engine["user"]
                    rows = conn.execute(sa.select(users.c.id, users.c.display_name)
                                        .where(users.c.id.in_(ids)))
                else:
                    other = self.registry.entities[target]
                    ttable = self.schema.entities[target]
                    hidden = self.service.access(caller, other).hidden
                    title = ttable.c[other.title] if other.title in ttable.c and \
                        other.title not in hidden else ttable.c.id
                    rows = conn.execute(sa.select(ttable.c.id, title).where(
                        ttable.c.id.in_(ids), self.service.read_condition(caller, other)))
                found = {int(i): str(t) if t is not None else f"#{i}" for i, t in rows}
            for name in targets[target]:
                titles[name] = {i: found[i] for r in records
                                if (i := r.get(name)) is not None and i in found}
        return titles


def _escape(term: str) -> str:
    return term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _parse_cursor_value(column, raw):
    """A sort key's value read back from a cursor, as the column's type; ValueError (or
    TypeError, ArithmeticError) for anything a cursor of this listing cannot hold."""
    from decimal import Decimal
    if not isinstance(raw, (str, int, float)):  # bool is an int
        raise TypeError("not a scalar")
    python_type = None
    if isinstance(column.type, UTCDateTime):
        python_type = dt.datetime
    else:
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            pass
    if python_type is dt.datetime:
        return dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    if python_type is dt.date:
        return dt.date.fromisoformat(str(raw))
    if python_type is Decimal:
        value = Decimal(str(raw))
        if not value.is_finite() or abs(value.adjusted()) > 30:
            raise ValueError("not a stored number")
        return value
    if python_type is int:
        return _cursor_int(raw)
    if python_type is float:
        value = float(raw)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not a stored number")
        return value
    if python_type is bool:
        if not isinstance(raw, bool):
            raise TypeError("not a boolean")
        return raw
    if not isinstance(raw, str):
        raise TypeError("not a text")
    return raw


def _cursor_int(raw) -> int:
    """A whole number from a cursor, within the 64-bit range both databases store."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not -2 ** 63 <= raw < 2 ** 63:
        raise ValueError("not a stored whole number")
    return raw