"""Dashboards (DSL §5c): which a caller sees, and the data of each widget.

A report widget is the report as `run_report` gives it to this caller; a metric widget is one
aggregate over an entity, in the database, after row permissions, like a report's measure. A
widget the caller may not see (its entity or a field is not readable) does not break the
dashboard: it is returned with its error, so the page shows the others.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.errors import Forbidden, NotFound, RecordError
from engine.records.access import Caller
from engine.records.currency import CONVERTED_AGGS, converted_metric, varies
from engine.records.reports import run_report
from engine.records.values import from_storage, to_json
from engine.registry.model import Dashboard, Registry, Widget
from engine.storage.sqlexpr import to_sql

_SQL_AGG = {"sum": sa.func.sum, "avg": sa.func.avg, "min": sa.func.min, "max": sa.func.max,
            "count": sa.func.count}


def visible_dashboards(registry: Registry, caller: Caller) -> list[Dashboard]:
    """The dashboards the caller's roles may see (an admin sees every one), in order."""
    found = [d for d in registry.dashboards.values()
             if caller.is_admin or any(role in caller.roles for role in d.roles)]
    return sorted(found, key=lambda d: (d.order, d.name))


def dashboard_for(registry: Registry, caller: Caller, name: str) -> Dashboard:
    dashboard = registry.dashboards.get(name)
    if dashboard is None or dashboard not in visible_dashboards(registry, caller):
        raise NotFound(f"no dashboard '{name}'")
    return dashboard


def dashboard_data(service, caller: Caller, name: str) -> dict:
    """A dashboard with every widget's data: {"name", "label", "widgets": [...]}."""
    dashboard = dashboard_for(service.registry, caller, name)
    loc = caller.locale
    widgets = []
    for position, widget in enumerate(dashboard.widgets):
        item: dict[str, Any] = {"position": position, "width": widget.width}
        try:
            if widget.report is not None:
                report = service.registry.reports[widget.report]
                item.update(kind="report", report=report.name, chart=report.chart,
                            entity=report.entity,
                            label=(widget.label or report.label).get(loc),
                            group_by=[{"field": g.field, "bucket": g.bucket}
                                      for g in report.group_by],
                            **run_report(service, caller, report.name))
            else:
                item.update(kind="metric", format=widget.format, entity=widget.metric_entity,
                            label=widget.label.get(loc) if widget.label else widget.metric_agg,
                            value=run_metric(service, caller, widget))
        except RecordError as exc:  # not readable by this caller: shown as such, not fatal
            item.update(kind="unavailable", status=exc.status, message=exc.message,
                        label=(widget.label.get(loc) if widget.label else
                               widget.report or widget.metric_entity))
        widgets.append(item)
    return {"name": dashboard.name, "label": dashboard.label.get(loc), "widgets": widgets}


def run_metric(service, caller: Caller, widget: Widget):
    """One aggregate of a metric widget over the records the caller may read."""
    registry = service.registry
    entity = registry.entities[widget.metric_entity]
    access = service.access(caller, entity)
    if access.read is None:
        raise NotFound(f"no entity '{entity.name}'")
    if widget.metric_field and widget.metric_field in access.hidden:
        raise Forbidden(f"the metric uses a field you may not read: {widget.metric_field}")
    table = service.schema.entities[entity.name]
    where = [service.read_condition(caller, entity)]
    if widget.metric_where is not None:
        where.append(to_sql(widget.metric_where.source, entity, registry, service.schema,
                            user=caller.scope()))
    if (widget.metric_agg or "count") in CONVERTED_AGGS and varies(entity, widget.metric_field):
        return converted_metric(service, entity, widget.metric_field, widget.metric_agg, table,
                                where)  # amounts in several currencies, in the base one
    target = table.c[widget.metric_field] if widget.metric_field else sa.literal(1)
    aggregate = _SQL_AGG[widget.metric_agg or "count"](target)
    with service.engine.connect() as conn:
        value = conn.execute(sa.select(aggregate).select_from(table).where(*where)).scalar()
    agg = widget.metric_agg or "count"
    if value is None:
        return 0 if agg in ("count", "sum") else None
    fld = entity.fields.get(widget.metric_field) if widget.metric_field else None
    if agg == "count" or (fld is not None and fld.type == "integer" and agg != "avg"):
        return int(value)
    if agg == "avg":
        return round(float(value), 6)
    # sum, min, max of a field: as the field's own values read (decimals as strings)
    return to_json(fld, from_storage(fld, value)) if fld is not None else value
