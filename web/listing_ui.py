"""What a list page offers besides its table: the filter panel, the explanation of a filter
that cannot be applied, and the list's CSV and XLSX export (`/<entity>/export.csv|.xlsx`).

The panel only writes API-style parameters (`tier__in=a,b`, `amount__gte=100`,
`name__contains=acme`) into the page's URL; the list view and the export hand them to the
record service like the JSON API does, so a filter means the same thing everywhere, and a
field the person may not read is neither offered nor accepted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import itertools

from flask import Response, g, jsonify, redirect, request, url_for

from engine.errors import BadRequest
from engine.records.exportjobs import INLINE_ROWS, ExportJobs
from engine.records.listing import OPERATORS, RESERVED, TEXTUAL, parse_query, system_field
from engine.records.transfer import export_rows, labelled_header, write_csv, write_xlsx
from engine.records.values import Invalid, coerce
from engine.registry.model import SYSTEM_FIELDS, Entity, Field
from web.common import entity_for, field_label, site
from web.formfields import choices, reference_label
from web.i18n import t
from web.ui import page, ui

NUMBERS = ("integer", "decimal", "money", "percent", "rollup")
TEXTS = tuple(k for k in TEXTUAL if k != "enum")
# the system fields a panel offers (id and version are no one's filter)
PANEL_SYSTEM = ("owner", "created_at", "updated_at")
_FILTERABLE_SYSTEM = tuple(n for n in SYSTEM_FIELDS if n != "deleted_at")
_SIGNS = {"eq": "=", "ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "in": "∈",
          "contains": "∋", "isnull": "= ∅"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# ---------------------------------------------------------------- the list's parameters

def list_parameters(args) -> tuple[str, str, str, dict[str, str]]:
    """(q, sort, cursor, filters) of a list URL. Empty values are "any" (a panel's untouched
    controls); the repeated values of an `__in` key (a multi-select) join with commas."""
    q = args.get("q", "").strip()
    sort = args.get("sort", "").strip()
    cursor = args.get("cursor", "").strip()
    filters: dict[str, str] = {}
    for key in args:
        if key in RESERVED:
            continue
        values = [v for v in args.getlist(key) if v.strip()]
        if values:
            filters[key] = ",".join(values) if key.endswith("__in") else values[0]
    return q, sort, cursor, filters


def has_empty_values(args) -> bool:
    """Whether the URL carries empty parameters (a submitted panel does), which the list
    drops by redirecting to the shorter URL that means the same."""
    return any(not value.strip() for _, value in args.items(multi=True))


# ---------------------------------------------------------------- the filter panel

def filterable_fields(caller, entity: Entity) -> list[tuple[str, Field]]:
    """The fields the panel offers: the list columns, the workflow state, the other stored
    fields the caller may read, then owner and the created/updated times."""
    hidden = site().service.access(caller, entity).hidden
    workflow = site().registry.workflow_by_entity.get(entity.name)
    names = list(entity.list_columns)
    if workflow is not None:
        names.append(workflow.field)
    names += [n for n in entity.fields] + list(PANEL_SYSTEM)
    result = []
    for name in dict.fromkeys(names):
        if name in entity.fields:
            fld = entity.fields[name]
            if name in hidden or not fld.kind.stored or fld.type in ("multi_enum", "json"):
                continue
        elif name in PANEL_SYSTEM:
            fld = system_field(name)
        else:
            continue
        result.append((name, fld))
    return result


def filter_panel(caller, entity: Entity, filters: dict[str, str]) -> dict:
    """The panel's controls with the values of the active filters, and the active filters no
    control shows (kept as hidden inputs, so applying the panel does not drop them)."""
    loc = caller.locale
    workflow = site().registry.workflow_by_entity.get(entity.name)
    controls, used = [], set()
    for name, fld in filterable_fields(caller, entity):
        label = field_label(entity, name, loc)
        control = {"name": name, "label": label, "id": f"filter-{name}"}
        if (workflow is not None and name == workflow.field) or fld.type == "enum":
            options = [(v, s.label.get(loc)) for v, s in workflow.states.items()] \
                if workflow is not None and name == workflow.field else \
                [(o.value, o.label.get(loc)) for o in fld.options]
            chosen = filters.get(f"{name}__in") or filters.get(name) or ""
            used.update({f"{name}__in", name})
            control.update(kind="choices", param=f"{name}__in", options=options,
                           selected=set(chosen.split(",")))
        elif fld.type == "boolean":
            used.add(name)
            control.update(kind="boolean", param=name, value=filters.get(name, ""))
        elif fld.type == "reference":
            used.add(name)
            value = filters.get(name, "")
            options = choices(caller, fld, value)
            control.update(kind="reference", param=name, value=value, options=options)
            if options is None:
                control.update(kind="picker", label_of_value=reference_label(caller, fld, value),
                               url=url_for("ui.filter_choices", entity=entity.name, field=name),
                               list_url=url_for("ui.list_view", entity=fld.to))
        elif fld.type in ("date", "datetime") or fld.type in NUMBERS:
            low, high = f"{name}__gte", f"{name}__lte"
            used.update({low, high})
            kind = "number" if fld.type in NUMBERS else \
                ("date" if fld.type == "date" else "datetime-local")
            control.update(kind="range", input_type=kind, low=low, high=high,
                           low_value=filters.get(low, ""), high_value=filters.get(high, ""),
                           dates=fld.type in ("date", "datetime"))
        elif fld.type in TEXTS:
            used.add(f"{name}__contains")
            control.update(kind="text", param=f"{name}__contains",
                           value=filters.get(f"{name}__contains", ""))
        else:
            continue
        controls.append(control)
    kept = [(k, v) for k, v in filters.items() if k not in used]
    return {"controls": controls, "kept": kept, "open": bool(filters)}


@ui.get("/<entity>/filter-choices/<field>")
def filter_choices(entity, field):
    """The reference picker of a filter: readable records of the target (as forms.js asks)."""
    from web.forms import QUERY_MAX, reference_matches
    ent = entity_for(entity)
    fld = dict(filterable_fields(g.caller, ent)).get(field)
    if fld is None or fld.type != "reference" or fld.to == "user":
        return jsonify({"data": []}), 404
    text = request.args.get("q", "").strip()[:QUERY_MAX]
    return jsonify({"data": reference_matches(g.caller, fld, text)})


# ---------------------------------------------------------------- explaining a refusal

def filter_problem(caller, entity: Entity, filters: dict[str, str]) -> str | None:
    """Why a filter cannot be applied, in the caller's language (None when all can): the
    record service's own rules for list filters (API.md "Listing"), said for a person."""
    loc = caller.locale
    hidden = site().service.access(caller, entity).hidden
    for key, raw in filters.items():
        name, _, op = key.partition("__")
        op = op or "eq"
        known = name in entity.fields or name in _FILTERABLE_SYSTEM
        shown = f"{field_label(entity, name, loc) if known else name} {_SIGNS.get(op, op)}"

        def refused(reason: str, **params) -> str:
            return t("filter_refused", loc, filter=shown, reason=t(reason, loc, **params))

        if op not in OPERATORS:
            return refused("filter_unknown_operator", op=op)
        if name in _FILTERABLE_SYSTEM:
            fld = system_field(name)
        else:
            fld = entity.fields.get(name)
            if fld is None or name in hidden or not fld.kind.stored:
                return refused("filter_unknown_field", name=name)
        if op == "isnull":
            if raw.lower() not in ("true", "false"):
                return refused("filter_true_false")
            continue
        if op == "contains":
            if fld.type not in TEXTUAL:
                return refused("filter_text_only")
            continue
        if fld.type in ("multi_enum", "json"):
            return refused("filter_isnull_only")
        if fld.type == "boolean" and op not in ("eq", "ne", "in"):
            return refused("filter_yes_no")
        loose = dataclasses.replace(fld, min=None, max=None, max_length=None, pattern=None)
        for part in raw.split(",") if op == "in" else [raw]:
            try:
                value = coerce(loose, part)
            except Invalid as exc:
                return t("filter_refused", loc, filter=shown,
                         reason=f"“{part}” {exc.message.render(loc)}")
            if value is None:
                return refused("filter_needs_value")
    return None


def refusal_page(entity: Entity, message: str):
    """The list's 400 page: what was refused and why, with the way back to the plain list."""
    loc = g.caller.locale
    return page("list_error.html", 400, entity=entity, message=message,
                title=t("filter_refused_title", loc),
                back_url=url_for("ui.list_view", entity=entity.name))


def service_refusal(entity: Entity, exc: BadRequest) -> str:
    """A refusal the panel did not foresee (a bad sort or cursor), naming its parameter."""
    loc = g.caller.locale
    for param, details in exc.fields.items():
        return t("list_param_refused", loc, param=param, reason="; ".join(details))
    return exc.message


# ---------------------------------------------------------------- export

@ui.get("/<entity>/export.csv")
def export_csv(entity):
    return _export(entity, "csv")


@ui.get("/<entity>/export.xlsx")
def export_xlsx(entity):
    return _export(entity, "xlsx")


def _export(entity: str, kind: str):
    """The records the list shows with these filters, search and sort, every page of them,
    as the caller may read them: hidden fields left out, formulas neutralised."""
    ent = entity_for(entity)
    caller = g.caller
    q, sort, _, filters = list_parameters(request.args)
    problem = filter_problem(caller, ent, filters)
    if problem is not None:
        return refusal_page(ent, problem)
    params = dict(filters)
    if q:
        params["q"] = q
    if sort:
        params["sort"] = sort
    try:
        query = parse_query(params)
        rows = list(itertools.islice(export_rows(site().service, caller, ent.name, query),
                                     INLINE_ROWS + 2))  # the header, and one row too many
    except BadRequest as exc:
        return refusal_page(ent, service_refusal(ent, exc))
    if len(rows) > INLINE_ROWS + 1:  # too long to write while the browser waits
        export_id = ExportJobs(site().service).create(caller, ent.name, params, kind)
        return redirect(url_for("ui.export_job", export_id=export_id))
    rows[0] = export_headers(ent, rows[0], caller.locale)
    name = f"{ent.name}-{dt.date.today().isoformat()}.{kind}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if kind == "csv":
        out = io.StringIO()
        write_csv(iter(rows), out)
        return Response(out.getvalue().encode("utf-8"), headers=disposition,
                        content_type="text/csv; charset=utf-8")
    out = io.BytesIO()
    write_xlsx(iter(rows), out, ent.name)
    return Response(out.getvalue(), mimetype=XLSX, headers=disposition)


export_headers = labelled_header  # the list's export and the background one label alike


@ui.get("/exports/<int:export_id>")
def export_job(export_id):
    """A background export's page: its progress while it runs, then its download."""
    job = ExportJobs(site().service).get(g.caller, export_id)
    entity = site().registry.entities.get(job["entity"])
    return page("export_job.html", title=t("export_title", g.caller.locale,
                                              name=job["file_name"]),
                job=job, progress=_export_progress(job),
                entity_label=entity.label.get(g.caller.locale) if entity else job["entity"])


@ui.get("/exports/<int:export_id>/progress")
def export_progress(export_id):
    return jsonify(_export_progress(ExportJobs(site().service).get(g.caller, export_id)))


@ui.get("/exports/<int:export_id>/download")
def export_download(export_id):
    name, content_type, data = ExportJobs(site().service).download(g.caller, export_id)
    return Response(data, content_type=content_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _export_progress(job: dict) -> dict:
    total = job["total_rows"]
    return {"state": job["state"], "done": job["done_rows"], "total": total,
            "percent": int(100 * job["done_rows"] / total) if total else None}


def export_urls(entity: Entity, q: str, sort: str, filters: dict[str, str]) -> dict:
    args = {**filters, "q": q or None, "sort": sort or None}
    return {"csv": url_for("ui.export_csv", entity=entity.name, **args),
            "xlsx": url_for("ui.export_xlsx", entity=entity.name, **args)}
