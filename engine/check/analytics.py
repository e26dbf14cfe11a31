"""Reports and dashboards: group-by fields, measures (also over related records), analytic
kinds, sorting and widgets."""

from __future__ import annotations

from types import MappingProxyType

from engine.check.context import CheckRun, Spot
from engine.check.entities import SYSTEM_COLUMNS
from engine.check.expressions import compile_expression, record_scope
from engine.check.report_kinds import check_kind_keys, compile_analysis
from engine.check.sqlsubset import check_sql_subset
from engine.config.layers import Document
from engine.errors import did_you_mean
from engine.registry.analyses import ANALYSES
from engine.registry.labels import Label
from engine.registry.model import (Dashboard, Entity, GroupBy, Measure, Report, Role, Widget,
                                   Workflow)

BUCKETS = ("day", "week", "month", "quarter", "year")
_DATE_SYSTEM = ("created_at", "updated_at")


def compile_reports(run: CheckRun, docs: dict[str, Document], entities: dict[str, Entity],
                    workflows: dict[str, Workflow]) -> dict[str, Report]:
    result = {}
    for name, doc in docs.items():
        report = _compile_report(run, name, doc, entities, workflows)
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


def _compile_report(run, name, doc, entities, workflows) -> Report | None:
    data, spot = doc.data, Spot(doc)
    entity = entities.get(data["entity"])
    if entity is None:
        run.error(spot / "entity", "unknown-entity", f"report '{name}': unknown entity "
                  f"'{data['entity']}'{did_you_mean(data['entity'], entities)}")
        return None
    good = check_kind_keys(run, name, data, spot)
    where = None
    if "where" in data:
        where = selection(run, spot / "where", data["where"], entity, entities,
                          f"report '{name}' where")
        good &= where is not None
    groups, measures, analysis = [], {}, None
    if "kind" in data:
        analysis = compile_analysis(run, name, data, spot, entity, entities, workflows)
        good &= analysis is not None
        kind_columns = ANALYSES[data["kind"]].columns
        columns = set(kind_columns)
        unknown_column = (f"is not a column of a report of kind {data['kind']} (columns: "
                          f"{', '.join(kind_columns)})")
    else:
        good &= _groups_and_measures(run, name, data, spot, entity, entities, groups, measures)
        columns = {g.field for g in groups} | set(measures)
        unknown_column = "is neither a group_by field nor a measure"
    sort = []
    if data.get("sort"):
        for part in str(data["sort"]).split(","):
            key = part.strip().lstrip("-+")
            if key not in columns:
                run.error(spot / "sort", "unknown-field", f"report '{name}' sort: '{key}' "
                          f"{unknown_column}{did_you_mean(key, columns)}")
                good = False
            sort.append((key, part.strip().startswith("-")))
    if not good:
        return None
    return Report(name=name, label=Label.of(data.get("label"), name), entity=entity.name,
                  where=where, group_by=tuple(groups), measures=MappingProxyType(measures),
                  sort=tuple(sort), chart=data.get("chart", "table"), limit=data.get("limit"),
                  description=Label.of(data["description"]) if data.get("description") else None,
                  analysis=analysis)


def _groups_and_measures(run, name, data, spot, entity: Entity, entities, groups: list,
                         measures: dict) -> bool:
    """Compile `group_by` and `measures` into `groups` and `measures`; return whether all did."""
    good = True
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
    scope = {}
    for mname, spec in data["measures"].items():
        mspot = spot / "measures" / mname
        measure = _measure(run, name, mname, spec, mspot, entity, entities, scope)
        if measure is None:
            good = False
        else:
            measures[mname] = measure
    return good


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
        if "of" in spec:
            run.error(mspot / "of", "measure-kind", f"{what}: 'of' goes with 'agg', not with "
                      "'expr' (an expr measure combines the measures before it)", key=True)
            return None
        expr, result = compile_expression(run, mspot / "expr", expr_source, scope, what=what)
        if expr is None:
            return None
        scope[mname] = result if isinstance(result, (int, float)) else 1.0
        return Measure(mname, label, expr=expr, format=fmt)
    source, of_field = entity, None
    if "of" in spec:
        source, of_field = _related(run, what, spec["of"], mspot / "of", entity, entities)
        if source is None:
            return None
    fname = spec.get("field")
    fld = source.fields.get(fname) if fname else None
    if fname is not None and fld is None and fname not in SYSTEM_COLUMNS:
        run.error(mspot / "field", "unknown-field", f"{what}: '{source.name}' has no field "
                  f"'{fname}'{did_you_mean(fname, source.fields)}")
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
        where = selection(run, mspot / "where", spec["where"], source, entities, what + " where")
        if where is None:
            return None
    integer = agg == "count" or (fld is not None and fld.type == "integer" and agg != "avg")
    scope[mname] = 1 if integer else 1.0
    if agg == "count" and "format" not in spec:
        fmt = "integer"
    return Measure(mname, label, agg=agg, field=fname, where=where, format=fmt,
                   of_entity=source.name if of_field else None, of_field=of_field)


def _related(run, what: str, of: str, spot: Spot, entity: Entity,
             entities) -> tuple[Entity | None, str | None]:
    """Check `of: entity.reference_field` (records that reference the report's records)."""
    source_name, _, link = of.partition(".")
    source = entities.get(source_name)
    if source is None:
        run.error(spot, "unknown-entity", f"{what} of: unknown entity "
                  f"'{source_name}'{did_you_mean(source_name, entities)}")
        return None, None
    fld = source.fields.get(link)
    if fld is None or fld.type != "reference" or fld.to != entity.name:
        pointing = [n for n, f in source.fields.items()
                    if f.type == "reference" and f.to == entity.name]
        if fld is None:
            message = f"'{source_name}' has no field '{link}'"
        elif fld.type == "reference":
            message = f"'{of}' refers to '{fld.to}', not to '{entity.name}'"
        else:
            message = f"'{of}' is a {fld.type} field, not a reference to '{entity.name}'"
        hint = f" (the fields of {source_name} that refer to {entity.name}: " \
            f"{', '.join(pointing)})" if pointing else \
            f" ({source_name} has no reference to {entity.name})"
        run.error(spot, "bad-of", f"{what} of: {message}; 'of' names a reference field to "
                  f"the report's entity '{entity.name}'{hint}")
        return None, None
    return source, link


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
