"""Running reports (DSL §5c): one GROUP BY in the database, after row permissions.

Filters, the report's `where`, each measure's `where` and date buckets are all SQL; only
expression measures (`win_rate: deals == 0 ? 0.0 : ...`) are evaluated in Python, once per
result row, over the aggregated values.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Mapping

import sqlalchemy as sa

from engine.errors import Forbidden, NotFound
from engine.expr import EvaluationError
from engine.records.access import Caller
from engine.records.listing import Lister, parse_query, system_field
from engine.records.values import to_json
from engine.registry.model import Report
from engine.storage.sqlexpr import to_sql
from engine.storage.tables import UTCDateTime

_SQL_AGG = {"sum": sa.func.sum, "avg": sa.func.avg, "min": sa.func.min, "max": sa.func.max}


def bucket(column, name: str, dialect: str):
    """The text label of a date bucket, the same on both databases."""
    if dialect == "sqlite":
        if name == "day":
            return sa.func.strftime("%Y-%m-%d", column)
        if name == "week":  # the Monday that starts the week
            return sa.func.date(column, "weekday 0", "-6 days")
        if name == "month":
            return sa.func.strftime("%Y-%m", column)
        if name == "quarter":
            return sa.func.strftime("%Y", column).op("||")("-Q").op("||")(
                sa.cast((sa.cast(sa.func.strftime("%m", column), sa.Integer) + 2) / 3,
                        sa.Text))
        return sa.func.strftime("%Y", column)
    utc = sa.func.timezone("UTC", column) if isinstance(column.type, UTCDateTime) else column
    if name == "day":
        return sa.func.to_char(utc, "YYYY-MM-DD")
    if name == "week":
        return sa.func.to_char(sa.func.date_trunc("week", utc), "YYYY-MM-DD")
    if name == "month":
        return sa.func.to_char(utc, "YYYY-MM")
    if name == "quarter":
        return sa.func.to_char(utc, 'YYYY-"Q"Q')
    return sa.func.to_char(utc, "YYYY")


def run_report(service, caller: Caller, name: str,
               params: Mapping[str, Any] | None = None) -> dict:
    """Return {"columns": [...], "rows": [[...]]} of a report, for this caller."""
    registry = service.registry
    report: Report | None = registry.reports.get(name)
    if report is None:
        raise NotFound(f"no report '{name}'")
    entity = registry.entities[report.entity]
    access = service.access(caller, entity)
    if access.read is None:
        raise NotFound(f"no report '{name}'")
    used = {g.field for g in report.group_by} | {m.field for m in report.measures.values()
                                                 if m.field}
    hidden = sorted(used & access.hidden)
    if hidden:
        raise Forbidden(f"report '{name}' uses fields you may not read: {', '.join(hidden)}")
    table = service.schema.entities[entity.name]
    dialect = service.engine.dialect.name
    where = [service.read_condition(caller, entity)]
    user = caller.scope()
    if report.where is not None:
        where.append(to_sql(report.where.source, entity, registry, service.schema, user=user))
    query = parse_query(dict(params or {}))
    lister = Lister(service)
    for param, field_name, op, raw in query.filters:
        fld = lister.readable_field(caller, entity, field_name, param)
        where.append(lister._filter(table.c[field_name], fld, op, raw, param))

    groups, columns = [], []
    loc = caller.locale
    for group in report.group_by:
        column = table.c[group.field]
        fld = entity.fields.get(group.field) or system_field(group.field)
        expression = bucket(column, group.bucket, dialect) if group.bucket else column
        groups.append(expression.label(f"g_{len(groups)}"))
        columns.append({"name": group.field + (f":{group.bucket}" if group.bucket else ""),
                        "label": fld.label.get(loc), "type": "text" if group.bucket
                        else fld.type})
    aggregates = []
    for measure in report.measures.values():
        columns.append({"name": measure.name, "label": measure.label.get(loc),
                        "type": measure.format})
        if measure.expr is not None:
            continue
        condition = to_sql(measure.where.source, entity, registry, service.schema, user=user) \
            if measure.where is not None else None
        if measure.agg == "count":
            target = table.c[measure.field] if measure.field else sa.literal(1)
            value = target if condition is None else sa.case((condition, target))
            aggregates.append(sa.func.count(value).label(f"m_{measure.name}"))
        else:
            target = table.c[measure.field]
            value = target if condition is None else sa.case((condition, target))
            aggregates.append(_SQL_AGG[measure.agg](value).label(f"m_{measure.name}"))

    statement = sa.select(*groups, *aggregates).select_from(table).where(*where)
    if groups:
        statement = statement.group_by(*groups)
    with service.engine.connect() as conn:
        fetched = conn.execute(statement).mappings().all()

    rows = []
    for raw in fetched:
        values: dict[str, Any] = {}
        for measure in report.measures.values():
            if measure.expr is None:
                fld = entity.fields.get(measure.field) if measure.field else None
                whole = measure.agg == "count" or (fld is not None and fld.type == "integer"
                                                   and measure.agg != "avg")
                values[measure.name] = _number(raw[f"m_{measure.name}"], measure.agg, whole)
            else:
                scope = {k: (float(v) if isinstance(v, Decimal) else v)
                         for k, v in values.items()}
                try:
                    result = measure.expr.evaluate(scope)
                except EvaluationError:
                    result = None  # division by zero, a null operand: no value, not an error
                if isinstance(result, float) and not math.isfinite(result):
                    result = None  # x / 0.0 is infinity in CEL: no value (and no JSON for it)
                values[measure.name] = result
        group_values = [raw[f"g_{i}"] for i in range(len(groups))]
        rows.append((group_values, values))
    for key, descending in reversed(report.sort):
        position = next((i for i, g in enumerate(report.group_by) if g.field == key), None)
        rows.sort(key=lambda r, p=position, k=key: _sort_key(
            r[0][p] if p is not None else r[1].get(k)), reverse=descending)
        rows.sort(key=lambda r, p=position, k=key: (r[0][p] if p is not None
                                                    else r[1].get(k)) is None)
    if report.limit:
        rows = rows[:report.limit]
    out = []
    for group_values, values in rows:
        out.append([_json(v) for v in group_values] +
                   [_json(values[m]) for m in report.measures])
    return {"columns": columns, "rows": out}


def _number(value, agg: str | None, whole: bool):
    """An aggregate as the expression measures see it: whole numbers stay ints (count, and
    sums of integer fields), everything else is a double, as the checker assumed."""
    if value is None:
        if agg not in ("count", "sum"):
            return None
        value = 0
    return int(value) if whole else float(value)


def _sort_key(value):
    return (0, value) if value is not None else (1, 0)


def _json(value):
    if isinstance(value, float):
        return round(value, 6)
    return to_json(None, value)
