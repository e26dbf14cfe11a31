"""Running reports (DSL §5c): one GROUP BY in the database, after row permissions.

Filters, the report's `where`, each measure's `where` and date buckets are all SQL; only
expression measures (`win_rate: deals == 0 ? 0.0 : ...`) are evaluated in Python, once per
result row, over the aggregated values. A measure over related records (`of: payment.campaign`)
is a subquery grouped by the reference, after the related entity's row permissions, joined to
the report's records (at most one row each, so the other measures count as before). Reports
with an analytic `kind` run in `engine.records.analytics`.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Mapping

import sqlalchemy as sa

from engine.errors import Forbidden, NotFound
from engine.expr import EvaluationError
from engine.records.access import Caller
from engine.records.currency import ReportCurrencies
from engine.records.listing import Lister, parse_query, system_field
from engine.records.values import to_json
from engine.registry.model import Entity, Measure, Report
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
    if report.analysis is not None:
        from engine.records.analytics import run_analysis
        return run_analysis(service, caller, report, params)
    used = {g.field for g in report.group_by} | {m.field for m in report.measures.values()
                                                 if m.field and m.of_entity is None}
    refuse_hidden(report, used, access)
    for measure in report.measures.values():
        if measure.of_entity is not None:
            related = registry.entities[measure.of_entity]
            refuse_hidden(report, {measure.of_field, measure.field} - {None},
                          service.access(caller, related), related)
    table = service.schema.entities[entity.name]
    dialect = service.engine.dialect.name
    where = record_conditions(service, caller, report, table, params)
    user = caller.scope()
    currencies = ReportCurrencies(service, report, entity)  # money in several currencies

    groups, columns, conditions = [], [], {}
    loc = caller.locale
    for group in report.group_by:
        column = table.c[group.field]
        fld = entity.fields.get(group.field) or system_field(group.field)
        expression = bucket(column, group.bucket, dialect) if group.bucket else column
        groups.append(expression.label(f"g_{len(groups)}"))
        columns.append({"name": group.field + (f":{group.bucket}" if group.bucket else ""),
                        "label": fld.label.get(loc), "type": "text" if group.bucket
                        else fld.type})
    aggregates, source = [], table
    for measure in report.measures.values():
        columns.append({"name": measure.name, "label": measure.label.get(loc),
                        "type": measure.format})
        if currencies.column_currency(measure):
            columns[-1]["currency"] = currencies.column_currency(measure)
        if measure.expr is not None:
            continue
        if measure.of_entity is not None:
            aggregate, related = _related_aggregate(service, caller, measure, table, currencies)
            source = source.outerjoin(related, related.c.key == table.c.id)
            aggregates.append(aggregate.label(f"m_{measure.name}"))
            if currencies.converts(measure):  # related amounts no rate converts, per group
                aggregates.append(sa.func.sum(related.c.missing).label(f"u_{measure.name}"))
            continue
        condition = to_sql(measure.where.source, entity, registry, service.schema, user=user) \
            if measure.where is not None else None
        conditions[measure.name] = condition
        if measure.agg == "count":
            target = table.c[measure.field] if measure.field else sa.literal(1)
            value = target if condition is None else sa.case((condition, target))
            aggregates.append(sa.func.count(value).label(f"m_{measure.name}"))
        else:
            target = currencies.target(measure, table)
            value = target if condition is None else sa.case((condition, target))
            aggregates.append(_SQL_AGG[measure.agg](value).label(f"m_{measure.name}"))

    statement = sa.select(*groups, *aggregates).select_from(source).where(*where)
    if groups:
        statement = statement.group_by(*groups)
    with service.engine.connect() as conn:
        fetched = conn.execute(statement).mappings().all()
        for measure in report.measures.values():
            if measure.of_entity is None and currencies.converts(measure):
                currencies.explain(conn, measure, table, groups, where,
                                   conditions[measure.name])

    rows = []
    for raw in fetched:
        values: dict[str, Any] = {}
        group_values = [raw[f"g_{i}"] for i in range(len(groups))]
        for measure in report.measures.values():
            if measure.expr is None:
                source_entity = registry.entities[measure.of_entity or entity.name]
                fld = source_entity.fields.get(measure.field) if measure.field else None
                whole = measure.agg == "count" or (fld is not None and fld.type == "integer"
                                                   and measure.agg != "avg")
                values[measure.name] = _number(raw[f"m_{measure.name}"], measure.agg, whole)
                if currencies.converts(measure) and measure.agg != "avg" and \
                        values[measure.name] is not None:  # money in the base currency: cents
                    values[measure.name] = round(values[measure.name], 2)
                if raw.get(f"u_{measure.name}"):
                    currencies.block(measure.name, group_values)
                if currencies.blocked(measure.name, group_values):
                    values[measure.name] = None  # part of it has no rate: no total, not 0
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
        out.append([json_value(v) for v in group_values] +
                   [json_value(values[m]) for m in report.measures])
    result = {"columns": columns, "rows": out}
    summary = currencies.summary(json_value)
    if summary["measures"]:
        result["currency"] = summary
    return result


def refuse_hidden(report: Report, used: set[str], access, entity=None) -> None:
    """Refuse a report that uses fields the caller may not read (of its entity, or `entity`)."""
    hidden = sorted(used & access.hidden)
    if hidden:
        prefix = f"{entity.name}." if entity is not None else ""
        raise Forbidden(f"report '{report.name}' uses fields you may not read: "
                        f"{', '.join(prefix + h for h in hidden)}")


def readable_rows(service, caller: Caller, entity: Entity, table):
    """The SQL condition for rows of `entity` (in `table`) the caller may read; a child
    entity's rows follow their parent's row permission (`own` included)."""
    condition = service.read_condition(caller, entity, table)
    if entity.parent:
        parent_entity = service.registry.entities[entity.parent]
        parent = service.schema.entities[parent_entity.name].alias()
        condition = sa.and_(condition, sa.exists().where(
            parent.c.id == table.c.parent_id,
            readable_rows(service, caller, parent_entity, parent)))
    return condition


def record_conditions(service, caller: Caller, report: Report, table,
                      params: Mapping[str, Any] | None) -> list:
    """The conditions on the report's own records: readable by the caller, the report's
    `where`, and the request's list filters (API.md: filters as for listing)."""
    registry = service.registry
    entity = registry.entities[report.entity]
    where = [readable_rows(service, caller, entity, table)]
    if report.where is not None:
        where.append(to_sql(report.where.source, entity, registry, service.schema, table=table,
                            user=caller.scope()))
    query = parse_query(dict(params or {}))
    lister = Lister(service)
    for param, field_name, op, raw in query.filters:
        fld = lister.readable_field(caller, entity, field_name, param)
        where.append(lister._filter(table.c[field_name], fld, op, raw, param))
    return where


def _related_aggregate(service, caller: Caller, measure: Measure, table, currencies):
    """A measure over related records: (the outer aggregate, the grouped subquery it joins).

    The subquery aggregates the related records the caller may read per referenced record;
    the outer query combines those per group (a sum of sums, a sum of counts...), so a group
    of several records gets the related records of all of them.
    """
    registry = service.registry
    related_entity = registry.entities[measure.of_entity]
    related = service.schema.entities[related_entity.name].alias()
    key = related.c[measure.of_field]
    conditions = [readable_rows(service, caller, related_entity, related), key.is_not(None)]
    if measure.where is not None:
        conditions.append(to_sql(measure.where.source, related_entity, registry, service.schema,
                                 table=related, user=caller.scope()))
    target = currencies.target(measure, related) if measure.field else None
    parts = [key.label("key")]
    if currencies.converts(measure):
        parts.append(currencies.missing(measure, related).label("missing"))
    if measure.agg == "count":
        parts.append(sa.func.count(target if target is not None else sa.literal(1)).label("n"))
    elif measure.agg == "avg":
        parts += [sa.func.sum(target).label("total"), sa.func.count(target).label("n")]
    else:
        parts.append(_SQL_AGG[measure.agg](target).label("value"))
    grouped = sa.select(*parts).where(*conditions).group_by(key).subquery()
    if measure.agg == "count":
        outer = sa.func.coalesce(sa.func.sum(grouped.c.n), 0)
    elif measure.agg == "avg":
        outer = sa.cast(sa.func.sum(grouped.c.total), sa.Float) / \
            sa.func.nullif(sa.func.sum(grouped.c.n), 0)
    else:  # a sum of sums, the min of minimums, the max of maximums
        outer = _SQL_AGG[measure.agg](grouped.c.value)
    return outer, grouped


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


def json_value(value):
    """A report cell as JSON: doubles rounded to 6 places, dates ISO, decimals as text."""
    if isinstance(value, float):
        return round(value, 6)
    return to_json(None, value)
