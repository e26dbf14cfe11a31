"""Expressions in the database: an SQL-subset CEL expression as SQLAlchemy SQL (DSL §4).

`to_sql` translates what `engine.check.sqlsubset` allows (fields, `ref.field`, literals,
`== != < <= > >=`, `&& || !`, `in [...]`, `+ - * /`, unary `-`, `size`, `contains`,
`startsWith`, `endsWith`, `lower`, `upper`, `coalesce`, `today()`, `now()`, `days_between`,
`user.id`, `user.roles`) into one expression that runs on SQLite and on PostgreSQL.

Null: a filter matches where CEL gives exactly `true` and where SQL gives TRUE. SQL NULL stands
for a CEL null and for a CEL error alike, which gives the same answer wherever CEL fails on
null: `amount > 1000.0` with a null amount fails in CEL and is NULL in SQL (no match either
way); `!(amount > 1.0)` still fails, as NOT NULL is still NULL; `error && false` is false and
`error || true` true, as NULL AND FALSE and NULL OR TRUE. Where CEL accepts null the answer is
kept: `==`, `!=` and `in` are true or false (`stage != 'lost'` matches a null stage, `x == null`
is IS NULL), turning NULL only when an operand fails (a field behind a null reference, a
comparison with null); `coalesce` fails when any argument fails, as CEL evaluates them all.
Dates are timestamps at midnight UTC as in CEL; doubles are IEEE doubles on both databases.

Known differences, on edge values: `size` counts characters, as CEL's specification says
(common-expression-language 0.10 counts UTF-8 bytes); `lower`/`upper` fold only ASCII on SQLite
(PostgreSQL per the database's LC_CTYPE; Python all of Unicode, 'ß' -> 'SS'); a double divided
by zero is infinity in CEL but NULL here, and an integer overflow, a CEL error, is a REAL on
SQLite and fails the query on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from engine.check.sqlsubset import unsupported
from engine.expr.tree import Binary, Call, ListLit, Literal, Member, Name, Node, Unary, parse_tree
from engine.registry.model import Entity, Registry
from engine.storage.tables import Schema, UTCDateTime

UTC = dt.timezone.utc
_NONE = object()  # "no value known in Python"
USER_COLUMNS = ("id", "username", "display_name", "email")
RECORD_COLUMNS = ("id", "version", "created_at", "updated_at")
USER_REFERENCES = ("owner", "created_by", "updated_by")
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


# -- SQL that differs between the databases: one construct, rendered for the dialect ---------

class _Template(FunctionElement):
    """SQL text per dialect: `templates` is (PostgreSQL and others, SQLite), {0}... the args."""
    inherit_cache = True


@compiles(_Template)
def _render(element, compiler, **kw):
    args = [compiler.process(clause, **kw) for clause in element.clauses.clauses]
    return element.templates[compiler.dialect.name == "sqlite"].format(*args)


def _template(name: str, type_, postgresql: str, sqlite: str) -> type:
    return type(name, (_Template,), {"type": type_, "templates": (postgresql, sqlite),
                                     "inherit_cache": True})


# whole days between two dates (julianday gives x.5 at midnight, the difference is whole)
_days_between = _template("_days_between", sa.Integer(), "({1} - {0})",
                          "CAST(julianday({1}) - julianday({0}) AS INTEGER)")
# the UTC date of a datetime: PostgreSQL would take the session's time zone
_utc_date = _template("_utc_date", sa.Date(), "CAST(({0}) AT TIME ZONE 'UTC' AS DATE)",
                      "date({0})")
# a date as the timestamp of its midnight UTC (UTCDateTime is 'YYYY-MM-DD HH:MM:SS.ffffff' text
# on SQLite), to compare a date with a datetime as CEL does
_midnight_utc = _template("_midnight_utc", UTCDateTime(),
                          "(CAST({0} AS TIMESTAMP) AT TIME ZONE 'UTC')",
                          "({0} || ' 00:00:00.000000')")
# text ordered by code points as in CEL; SQLite's BINARY already is, PostgreSQL's collation not
_codepoints = _template("_codepoints", sa.String(), '({0}) COLLATE "C"', "{0}")
# (text, part, LIKE pattern of part): case-sensitive on both; SQLite's LIKE ignores ASCII case
_contains = _template("_contains", sa.Boolean(), "({0} LIKE ({2}) ESCAPE '\\')",
                      "(instr({0}, {1}) > 0)")
_starts_with = _template("_starts_with", sa.Boolean(), "({0} LIKE ({2}) ESCAPE '\\')",
                         "(substr({0}, 1, length({1})) = {1})")
_ends_with = _template("_ends_with", sa.Boolean(), "({0} LIKE ({2}) ESCAPE '\\')",
                       "(substr({0}, max(length({0}) - length({1}) + 1, 1)) = {1})")


# -- values ------------------------------------------------------------------------------------

_FAMILIES = {sa.Boolean: "bool", sa.Integer: "number", sa.Numeric: "number", sa.Float: "number",
             sa.String: "string", sa.Date: "time", sa.DateTime: "time"}
_PY_FAMILIES = {bool: "bool", int: "number", float: "number", str: "string",
                dt.datetime: "time", list: "list"}


def _family(type_) -> str | None:
    """The CEL type family of an SQL type: bool, number, string, time (None: unknown)."""
    type_ = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
    return next((name for cls, name in _FAMILIES.items() if isinstance(type_, cls)), None)


def _py_family(value) -> str | None:
    return _PY_FAMILIES.get(type(value))


def _cel_equal(a, b) -> bool:
    return _py_family(a) == _py_family(b) and a == b  # CEL: true != 1, 1 == 1.0


@dataclass(frozen=True)
class _Value:
    """One translated operand, with what SQL NULL means for it."""

    sql: Any
    family: str | None
    const: Any = _NONE  # the value when Python knows it (literals, today(), user.id)
    err: Any = None  # condition under which CEL fails on this operand
    strict: bool = False  # NULL here only ever means a CEL error, never a null value

    @property
    def failed(self) -> bool:
        """Whether CEL fails here on every record (null + 1, size(null)...)."""
        return self.strict and isinstance(self.sql, sa.sql.elements.Null)

    def error(self):
        """The SQL condition under which CEL fails on this operand, or None if it never does."""
        return self.sql.is_(None) if self.strict else self.err

    @property
    def may_be_null(self) -> bool:
        """Whether SQL NULL here can be a CEL null (a field, a reference's field)."""
        return not self.strict and self.const is _NONE


def _failed() -> _Value:
    """An operand CEL fails on for every record (a type error, a missing user)."""
    return _Value(sa.null(), None, strict=True)


def _bind(value, like: _Value | None = None):
    """A bound parameter, typed like the operand it meets so the database compares alike."""
    like_type = like.sql.type if like is not None and like.const is _NONE else None
    if value is None:
        return sa.null()
    if type(value) in (int, float) and isinstance(like_type, sa.Numeric) and \
            not isinstance(like_type, sa.Float):  # (a Numeric in SQLAlchemy 2.0)
        # an exact decimal keeps `amount > 1000.5` usable by an index; plain NUMERIC, as
        # NUMERIC(18, 2) would round the literal
        return sa.literal(Decimal(repr(value)), sa.Numeric())
    if isinstance(value, dt.datetime):
        value = value.astimezone(UTC)
        if isinstance(like_type, sa.Date) and value.time() == dt.time(0):
            return sa.literal(value.date(), sa.Date())
        return sa.literal(value, UTCDateTime())
    types = {bool: sa.Boolean, int: sa.BigInteger, float: sa.Float, str: sa.String}
    if type(value) not in types:
        raise ValueError(f"a literal of type {type(value).__name__} cannot run in the database")
    return sa.literal(value, types[type(value)]())


def _sql(value: _Value, like: _Value | None = None):
    """The operand as SQL: its expression, or its Python value bound like `like`."""
    return _bind(value.const, like) if value.const is not _NONE else value.sql


def _guard(value, errors: list, type_=None):
    """`value`, or NULL where an operand failed (CEL's error, not an answer)."""
    errors = [e for e in errors if e is not None]
    if not errors:
        return value
    return sa.type_coerce(sa.case((sa.or_(*errors), sa.null()), else_=value),
                          type_ or sa.Boolean())


def _bool(condition) -> _Value:
    return _Value(condition, "bool", strict=True)


# -- the translation ---------------------------------------------------------------------------

def to_sql(source: str, entity: Entity, registry: Registry, schema: Schema, *,
           table: sa.FromClause | None = None, user: Mapping | None = None,
           now: dt.datetime | None = None) -> sa.ColumnElement:
    """Translate `source` about records of `entity` (rows of `table`) into SQL; raise ValueError
    naming the construct when it is outside the SQL subset."""
    tree = parse_tree(source)
    found = unsupported(tree)
    if found is not None:
        raise ValueError(f"{found[0]} cannot run in the database")
    now = (now or dt.datetime.now(UTC))
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    translator = _Translator(entity, registry, schema,
                             schema.entities[entity.name] if table is None else table, user, now)
    return _sql(translator.value(tree))


class _Translator:
    """Tree -> _Value, node by node, for records of one entity (rows of `table`)."""

    def __init__(self, entity, registry, schema, table, user, now):
        self.entity, self.registry, self.schema, self.table = entity, registry, schema, table
        self.user, self.now = user, now

    def value(self, node: Node) -> _Value:
        if isinstance(node, Literal):
            _bind(node.value)  # rejects bytes
            return _Value(None, _py_family(node.value), const=node.value)
        if isinstance(node, Name):
            return self.name(node.name)
        if isinstance(node, Member):
            return self.member(node)
        if isinstance(node, Unary):
            operand = self.value(node.operand)
            if node.op == "!":
                return _bool(sa.not_(_sql(operand)))
            if operand.family != "number":
                return _failed()
            if operand.const is not _NONE:
                return _Value(None, "number", const=-operand.const)
            return _Value(-operand.sql, "number", strict=True)
        if isinstance(node, Binary):
            if node.op == "in":
                return self.member_of(node.left, node.right)
            left, right = self.value(node.left), self.value(node.right)
            if node.op in ("&&", "||"):
                join = sa.and_ if node.op == "&&" else sa.or_
                return _bool(join(_sql(left), _sql(right)))
            if left.failed or right.failed:
                # a failure stays one (and SQLAlchemy would make `x == NULL` an IS NULL)
                return _failed()
            if node.op in ("==", "!="):
                equal = self.equal(left, right)
                return _bool(equal if node.op == "==" else sa.not_(equal))
            if node.op in _ORDER:
                return self.order(node.op, left, right)
            return self.arithmetic(node.op, left, right)
        if isinstance(node, Call):
            return self.call(node)
        raise ValueError(f"{type(node).__name__} cannot run in the database")

    def column(self, table, name: str, entity: Entity | None) -> _Value:
        """The column of field `name` in `table` (of `entity`, or of users when None); a bare
        reference is its id column, of CEL's map family."""
        field = entity.fields.get(name) if entity is not None else None
        system = USER_COLUMNS if entity is None else RECORD_COLUMNS + USER_REFERENCES
        if name not in system and field is None:
            raise ValueError(f"unknown field '{name}'" + (f" of {entity.name}" if entity else ""))
        if name in USER_REFERENCES or field is not None and field.type == "reference":
            return _Value(table.c[name], "map")
        family = _family(table.c[name].type) if name in table.c else None
        if family is None:
            raise ValueError(f"a {field.type} field ('{name}') cannot run in the database")
        return _Value(table.c[name], family)

    def name(self, name: str) -> _Value:
        if name == "user":
            raise ValueError("'user' alone cannot run in the database; use user.id")
        return self.column(self.table, name, self.entity)

    def member(self, node: Member) -> _Value:
        if not isinstance(node.target, Name):
            raise ValueError("a field of a reference's reference cannot run in the database")
        ref_name, name = node.target.name, node.name
        if ref_name == "user":
            value = (self.user or {}).get(name, _NONE)
            if value is _NONE:
                return _failed()  # as in CEL: no such key
            return _Value(None, _py_family(value), const=list(value) if name == "roles"
                          else value)
        ref = self.name(ref_name)
        if ref.family != "map":
            raise ValueError(f"'{ref_name}' is not a reference")
        if name == "id":
            return _Value(ref.sql, "number", strict=True)  # null reference: CEL fails
        field = self.entity.fields.get(ref_name)
        target = field.to if field is not None else "user"  # owner, created_by, updated_by
        other = (self.schema.engine["user"] if target == "user"
                 else self.schema.entities[target]).alias()
        value = self.column(other, name, self.registry.entities.get(target))
        if value.family == "map":
            raise ValueError(f"{ref_name}.{name}: a reference's reference cannot run in the "
                             "database")
        # a correlated subquery: no row (null reference) gives NULL, and CEL fails there
        found = sa.select(value.sql).where(other.c.id == ref.sql).scalar_subquery()
        return _Value(found, value.family, err=ref.sql.is_(None))

    def pair(self, a: _Value, b: _Value):
        """Both operands as SQL, literals typed like the other side, dates vs datetimes
        as timestamps at midnight UTC (what CEL sees)."""
        sql_a, sql_b = _sql(a, b), _sql(b, a)
        if a.family == b.family == "time":
            date_a, date_b = isinstance(sql_a.type, sa.Date), isinstance(sql_b.type, sa.Date)
            if date_a != date_b:
                sql_a = _midnight_utc(sql_a) if date_a else sql_a
                sql_b = _midnight_utc(sql_b) if date_b else sql_b
        return sql_a, sql_b

    def equal(self, a: _Value, b: _Value):
        """CEL's ==: true or false, never an error of its own (null == 1 is false)."""
        if a.const is not _NONE and b.const is not _NONE:
            return sa.true() if _cel_equal(a.const, b.const) else sa.false()
        if a.const is None or b.const is None:
            x = b if a.const is None else a
            return _guard(x.sql.is_(None), [x.error()])
        if a.family and b.family and a.family != b.family:
            return _guard(sa.false(), [a.error(), b.error()])
        sql_a, sql_b = self.pair(a, b)
        if a.const is _NONE and b.const is _NONE:
            return _guard(sql_a.is_not_distinct_from(sql_b), [a.error(), b.error()])
        # `column = literal` stays usable by an index; a null column gives false, not NULL
        x = a if b.const is not _NONE else b
        value = sql_a == sql_b
        if x.may_be_null:
            value = sa.and_(value, x.sql.is_not(None))
        return _guard(value, [x.err])

    def order(self, op: str, a: _Value, b: _Value) -> _Value:
        if a.family != b.family or a.family not in ("number", "string", "time", "bool"):
            return _failed()  # null or mixed types: no overload in CEL
        sql_a, sql_b = self.pair(a, b)
        if a.family == "string":
            sql_a, sql_b = _codepoints(sql_a), _codepoints(sql_b)
        return _bool(_ORDER[op](sql_a, sql_b))

    def member_of(self, left_node: Node, right_node: Node) -> _Value:
        left = self.value(left_node)
        if left.failed:
            return left
        if isinstance(right_node, ListLit):
            items = [self.value(item).const for item in right_node.items]
        elif isinstance(right_node, Member) and right_node.name == "roles" and \
                isinstance(right_node.target, Name) and right_node.target.name == "user":
            items = self.value(right_node).const
            if items is _NONE:
                return _failed()
        else:
            raise ValueError("'in' with something other than a list cannot run in the database")
        if left.const is not _NONE:
            return _bool(sa.true() if any(_cel_equal(left.const, i) for i in items)
                         else sa.false())
        kept = [i for i in items if i is not None and _py_family(i) == left.family]
        value = left.sql.in_([_bind(i, left) for i in kept]) if kept else sa.false()
        if kept and left.may_be_null:
            value = sa.and_(value, left.sql.is_not(None))
        has_null = any(i is None for i in items)
        if has_null:
            value = sa.or_(value, left.sql.is_(None))
        natural = kept and not has_null and left.strict  # `x IN (...)` is NULL where x fails
        return _bool(value if natural else _guard(value, [left.error()]))

    def arithmetic(self, op: str, a: _Value, b: _Value) -> _Value:
        if "time" in (a.family, b.family):
            raise ValueError(f"operator '{op}' on dates cannot run in the database; "
                             "use days_between")
        sql_a, sql_b = _sql(a), _sql(b)
        if op == "+" and a.family == b.family == "string":
            return _Value(sql_a.concat(sql_b), "string", strict=True)
        if a.family != "number" or b.family != "number":
            return _failed()
        double = (sa.Numeric, sa.Float)
        if isinstance(sql_a.type, double) or isinstance(sql_b.type, double):
            # CEL doubles: IEEE arithmetic on both databases (SQLite may hold 1000.00 as an
            # integer, PostgreSQL's numeric would be exact)
            sql_a, sql_b = (x if isinstance(x.type, sa.Float) else sa.cast(x, sa.Float)
                            for x in (sql_a, sql_b))
        if op == "/":
            # dividing by zero is NULL, not an aborted query; ints truncate toward zero in
            # CEL, SQLite and PostgreSQL alike
            # (a custom operator does not parenthesise `a + b` on its left by itself)
            value = sa.sql.expression.Grouping(sql_a).op("/", return_type=sql_a.type)(
                sa.func.nullif(sql_b, 0))
        else:
            value = {"+": operator.add, "-": operator.sub, "*": operator.mul}[op](sql_a, sql_b)
        return _Value(value, "number", strict=True)

    def call(self, node: Call) -> _Value:
        args = [self.value(arg) for arg in ((node.target,) if node.target else ()) + node.args]
        name = node.function
        if any(a.failed for a in args):
            return _failed()  # CEL evaluates every argument
        if name in ("today", "now"):
            moment = self.now if name == "now" else self.now.replace(
                hour=0, minute=0, second=0, microsecond=0)
            return _Value(None, "time", const=moment)
        if name == "coalesce":
            first = next((a for a in args if a.const is _NONE), None)
            sql = [_sql(a, first) for a in args]
            errors = [a.error() for a in args]
            type_ = first.sql.type if first is not None else sql[0].type
            value = _guard(sa.func.coalesce(*sql, type_=type_), errors, type_)
            family = next((a.family for a in args if a.family), None)
            failed = [e for e in errors if e is not None]
            return _Value(value, family, err=sa.or_(*failed) if failed else None)
        if name == "days_between":
            if len(args) != 2 or any(a.family != "time" for a in args):
                return _failed()
            dates = [sa.literal(a.const.astimezone(UTC).date(), sa.Date()) if a.const is not _NONE
                     else a.sql if isinstance(a.sql.type, sa.Date) else _utc_date(a.sql)
                     for a in args]
            return _Value(_days_between(*dates), "number", strict=True)
        if name == "size" and args and args[0].family == "list":
            return _Value(None, "number", const=len(args[0].const))
        if any(a.family != "string" for a in args):
            return _failed()  # text functions of null or of a non-text: CEL fails
        if name in ("size", "lower", "upper"):
            func = {"size": sa.func.length, "lower": sa.func.lower, "upper": sa.func.upper}[name]
            return _Value(func(_sql(args[0])), "number" if name == "size" else "string",
                          strict=True)
        text, part = args
        pattern = _like_pattern(name, part)
        kind = {"contains": _contains, "startsWith": _starts_with, "endsWith": _ends_with}[name]
        return _bool(kind(_sql(text), _sql(part), pattern))


def _like_pattern(function: str, part: _Value):
    """The LIKE pattern matching `part` literally at the place `function` says."""
    before = "%" if function in ("contains", "endsWith") else ""
    after = "%" if function in ("contains", "startsWith") else ""
    if part.const is not _NONE:
        escaped = part.const.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return sa.literal(before + escaped + after, sa.String())
    escaped = sa.func.replace(sa.func.replace(sa.func.replace(
        part.sql, "\\", "\\\\"), "%", "\\%"), "_", "\\_")
    return sa.literal(before, sa.String()).concat(escaped).concat(sa.literal(after, sa.String()))


# -- the same dialect-specific pieces, for report SQL written outside expressions --------------

def dialect_function(name: str, type_, postgresql: str, sqlite: str) -> type:
    """A SQL construct written once per dialect ({0}, {1}... are its arguments)."""
    return _template(name, type_, postgresql, sqlite)


def days_between_dates(a, b):
    """Whole days from date `a` to date `b`, as CEL's days_between."""
    return _days_between(a, b)


def as_utc_date(column):
    """The UTC date of a date or datetime column."""
    return column if isinstance(column.type, sa.Date) else _utc_date(column)
