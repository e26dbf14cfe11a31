"""Reports and dashboards: group-by fields, measures, sorting and widgets."""

from __future__ import annotations

from types import MappingProxyType

from engine.check.context import CheckRun, Spot
from engine.check.entities import SYSTEM_COLUMNS
from engine.check.expressions import compile_expression, record_scope
from engine.check.sqlsubset import check_sql_subset
from engine.config.layers import Document
from engine.errors import did_you_mean
from engine.registry.labels import Label
from engine.registry.model import Dashboard, Entity, GroupBy, Measure, Report, Role, Widget

BUCKETS = ("day", "week", "month", "quarter", "year")
_DATE_SYSTEM = ("created_at", "updated_at")


def compile_reports(run: CheckRun, docs: dict[str, Document],
                    entities: dict[str, Entity]) -> dict[str, Report]:
    result = {}
    for name, doc in docs.items():
        report = _compile_report(run, name, doc, entities)
        if report is not None:
            result[name] = report
    return result


def selection(run: CheckRun, spot: Spot, source, entity: Entity, entities, what: str):
    """Compile an expression that selects records in the database (DSL §4's SQL subset)."""
    expr, _ = compile_expression(run, spot, source, record_scope(entity, entities), what=what,
                                 want_bool=True)
    if expr is not None and not check_sql_subset(run, spot, source, what):
        return None
    return expr


def _compile_report(run, name, doc, entities) -> Report | None:
    data, spot = doc.data, Spot(doc)
    entity = entities.get(data["entity"])
    if entity is None:
        run.error(spot / "entity", "unknown-entity", f"report '{name}': unknown entity "
                  f"'{data['entity']}'{did_you_mean(data['entity'], entities)}")
        return None
    good = True
    where = None
    if "where" in data:
        where = selection(run, spot / "where", data["where"], entity, entities,
                          f"report '{name}' where")
        good &= where is not None
    groups = []
    for i, item in enumerate(data.get("group_by") or []):
        fname, _, bucket = item.partition(":")
        gspot = spot / "group_by" / i
        fld = entity.fields.get(fname)
        if fld is None and fname not in SYSTEM_COLUMNS:
            run.error(gspot, "unknown-field", f"report '{name}' group_by: '{entity.name}' has no "
                      f"field '{fname}'{did_you_mean(fname, entity.fields)}")
            good = False
            continue
        if fld is not None and not fld.kind.stored:
            run.error(gspot, "not-stored", f"report '{name}' group_by: '{fname}' cannot be "
                      "grouped by")
            good = False
            continue
        if bucket:
            is_date = fname in _DATE_SYSTEM or (fld is not None and
                                                fld.type in ("date", "datetime"))
            if not is_date or bucket not in BUCKETS:
                run.error(gspot, "bad-bucket", f"report '{name}' group_by: '{item}': only date "
                          f"fields take a bucket, one of {', '.join(BUCKETS)}")
                good = False
                continue
        groups.append(GroupBy(fname, bucket or None))
    measures, scope = {}, {}
    for mname, spec in data["measures"].items():
        mspot = spot / "measures" / mname
        measure = _measure(run, name, mname, spec, mspot, entity, entities, scope)
        if measure is None:
            good = False
        else:
            measures[mname] = measure
    sort = []
    if data.get("sort"):
        names = {g.field for g in groups} | set(measures)
        for part in str(data["sort"]).split(","):
            key = part.strip().lstrip("-+")
            if key not in names:
                run.error(spot / "sort", "unknown-field", f"report '{name}' sort: '{key}' is "
                          f"neither a group_by field nor a measure{did_you_mean(key, names)}")
                good = False
            sort.append((key, part.strip().startswith("-")))
    if not good:
        return None
    return Report(name=name, label=Label.of(data.get("label"), name), entity=entity.name,
                  where=where, group_by=tuple(groups), measures=MappingProxyType(measures),
                  sort=tuple(sort), chart=data.get("chart", "table"), limit=data.get("limit"),
                  description=Label.of(data["description"]) if data.get("description") else None)


def _measure(run, report, mname, spec, mspot, entity: Entity, entities, scope,
             what: str | None = None) -> Measure | None:
    label = Label.of(spec.get("label"), mname)
    fmt = spec.get("format", "number")
    agg, expr_source = spec.get("agg"), spec.get("expr")
    what = what or f"report '{report}' measure '{mname}'"
    if (agg is None) == (expr_source is None):
        run.error(mspot, "measure-kind", f"{what}: give either 'agg' (with 'field') or 'expr'",
                  key=True)
        return None
    if expr_source is not None:
        expr, result = compile_expression(run, mspot / "expr", expr_source, scope, what=what)
        if expr is None:
            return None
        scope[mname] = result if isinstance(result, (int, float)) else 1.0
        return Measure(mname, label, expr=expr, format=fmt)
    fname = spec.get("field")
    fld = entity.fields.get(fname) if fname else None
    if fname is not None and fld is None and fname not in SYSTEM_COLUMNS:
        run.error(mspot / "field", "unknown-field", f"{what}: '{entity.name}' has no field "
                  f"'{fname}'{did_you_mean(fname, entity.fields)}")
        return None
    if agg != "count" and fname is None:
        run.error(mspot, "missing-key", f"{what}: agg {agg} needs a 'field'", key=True)
        return None
    if agg in ("sum", "avg") and (fld is None or not fld.kind.numeric):
        run.error(mspot / "field", "bad-measure", f"{what}: cannot {agg} '{fname}', which is not "
                  "a number")
        return None
    where = None
    if "where" in spec:
        where = selection(run, mspot / "where", spec["where"], entity, entities, what + " where")
        if where is None:
            return None
    integer = agg == "count" or (fld is not None and fld.type == "integer" and agg != "avg")
    scope[mname] = 1 if integer else 1.0
    if agg == "count" and "format" not in spec:
        fmt = "integer"
    return Measure(mname, label, agg=agg, field=fname, where=where, format=fmt)


def compile_dashboards(run: CheckRun, docs: dict[str, Document], entities: dict[str, Entity],
                       reports: dict[str, Report], roles: dict[str, Role],
                       report_names: set[str]) -> dict[str, Dashboard]:
    result = {}
    for name, doc in docs.items():
        data, spot = doc.data, Spot(doc)
        good = True
        for i, role in enumerate(data.get("roles") or []):
            if role not in roles:
                run.error(spot / "roles" / i, "unknown-role", f"dashboard '{name}': unknown role "
                          f"'{role}'{did_you_mean(role, roles)}")
                good = False
        widgets = []
        for i, item in enumerate(data["widgets"]):
            wspot = spot / "widgets" / i
            label = Label.of(item["label"]) if item.get("label") else None
            width = item.get("width", "half")
            if "report" in item:
                if item["report"] not in report_names:
                    run.error(wspot / "report", "unknown-report", f"dashboard '{name}': unknown "
                              f"report '{item['report']}'{did_you_mean(item['report'], report_names)}")
                    good = False
                widgets.append(Widget(report=item["report"], label=label, width=width))
                continue
            metric, mspot = item["metric"], wspot / "metric"
            entity = entities.get(metric["entity"])
            if entity is None:
                run.error(mspot / "entity", "unknown-entity", f"dashboard '{name}': unknown "
                          f"entity '{metric['entity']}'{did_you_mean(metric['entity'], entities)}")
                good = False
                continue
            measure = _measure(run, name, f"widget {i + 1}", metric, mspot, entity, entities, {},
                               what=f"dashboard '{name}' widget {i + 1}")
            if measure is None:
                good = False
                continue
            widgets.append(Widget(label=label, metric_entity=entity.name, metric_agg=measure.agg,
                                  metric_field=measure.field, metric_where=measure.where,
                                  format=item.get("format", measure.format), width=width))
        if good:
            result[name] = Dashboard(name, Label.of(data.get("label"), name),
                                     tuple(data.get("roles") or ()), tuple(widgets),
                                     data.get("order", 0))
    return result
