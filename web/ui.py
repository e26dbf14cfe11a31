"""The server-rendered UI: lists, record pages and forms generated from the registry.

Like the JSON API it holds no business rule: every read and write goes through the record
service, and a refusal (RecordError) is shown to the user next to the field it names.
"""

from __future__ import annotations

import json

from flask import Blueprint, Flask, g, redirect, render_template, request, url_for

from engine.errors import BadRequest, NotFound, RecordError
from engine.records.listing import parse_query
from engine.records.attachments import AUDIT_KEY
from engine.registry.labels import words
from engine.registry.model import Entity, Field
from web.common import (display, entity_for, entity_plural, field_label, field_of, readable,
                        site, titles_for)
from web.formbuild import build_form, general_errors
from web.formfields import form_changes, form_value, input_fields, submitted
from web.i18n import t
from web.lines_editor import lines_input
from web.related import related_lists
from web.session import current_caller, setup as setup_session, ui_locale

ui = Blueprint("ui", __name__)
STATUS_TEXT = {400: "error_400", 403: "error_403", 404: "error_404", 405: "error_405",
               409: "error_409", 413: "error_413", 500: "error_500"}


def register_ui(app: Flask) -> None:
    """Install sessions, the UI blueprint and its template helpers on the app."""
    setup_session(app)
    app.jinja_env.globals["t"] = t
    # imported here, not at the top: they build on this module, and their routes must join
    # the blueprint before it is registered
    from web import kanban, listing_ui, own_tokens, printing, record_actions  # noqa: F401
    kanban.setup(app)
    record_actions.setup(app)
    from web import files
    files.setup(app)
    from web import mail  # mail on record pages, sending, search (docs/mail.md)
    mail.setup(app)
    from web import documents
    documents.setup(app)
    app.register_blueprint(ui)
    from web.forms import forms  # JSON helpers of the forms, with their own JSON errors
    app.register_blueprint(forms)


# ---------------------------------------------------------------- errors

def html_error(status: int, message: str | None = None):
    """A small HTML error page (the JSON API keeps its own error shape)."""
    caller = getattr(g, "caller", None)
    locale = caller.locale if caller is not None else _safe_locale()
    text = message or t(STATUS_TEXT.get(status, "error_400"), locale)
    try:
        return render_template("error.html", locale=locale, status=status, message=text,
                               nav=navigation(caller) if caller is not None else None,
                               user=caller), status
    except Exception:  # never let the error page itself fail (no stack trace is shown)
        return text, status, {"Content-Type": "text/plain; charset=utf-8"}


def _safe_locale() -> str:
    try:
        return ui_locale()
    except Exception:  # no session available (e.g. while handling a 500)
        return "en"


@ui.errorhandler(RecordError)
def record_error(exc: RecordError):
    return html_error(exc.status, exc.message)


# ---------------------------------------------------------------- sign-in check and helpers

@ui.before_request
def require_sign_in():
    caller = current_caller()
    if caller is None:
        target = request.full_path if request.query_string else request.path
        return redirect(url_for("session.login", next=target))
    g.caller = caller
    return None


def navigation(caller) -> list[dict]:
    """Readable top-level entities grouped by module, in module order."""
    registry = site().registry
    loc = caller.locale
    groups: dict[str, list] = {}
    for entity in registry.entities.values():
        if readable(caller, entity):
            groups.setdefault(entity.module, []).append(
                {"name": entity.name, "label": entity_plural(entity, loc)})
    result = []
    for name, items in groups.items():
        module = registry.modules.get(name)
        result.append({"name": name, "order": module.order if module else 1000,
                       "label": module.label.get(loc) if module else words(name),
                       "entities": items})
    result.sort(key=lambda m: (m["order"], m["name"]))
    return result


def page(template: str, status: int = 200, **context):
    caller = g.caller
    unread, _ = site().service.notifications(caller, limit=99, unread_only=True)
    return render_template(template, locale=caller.locale, nav=navigation(caller),
                           user=caller, unread=len(unread), **context), status


@ui.get("/notifications")
def notifications():
    """The bell: the caller's notifications, newest first, with links to their records."""
    items, _ = site().service.notifications(g.caller, limit=100)
    registry = site().registry
    for item in items:
        entity = registry.entities.get(item["entity"] or "")
        item["link"] = url_for("ui.record_view", entity=entity.name, record_id=item["record_id"]) \
            if entity is not None and item["record_id"] and readable(g.caller, entity) else None
    return page("notifications.html", items=items)


@ui.post("/notifications/read")
def notifications_read():
    site().service.mark_read(g.caller)
    return redirect(url_for("ui.notifications"))


# ---------------------------------------------------------------- home and lists

@ui.get("/")
def home():
    nav = navigation(g.caller)
    for module in nav:
        if module["entities"]:
            return redirect(url_for("ui.list_view", entity=module["entities"][0]["name"]))
    return page("home.html")


@ui.get("/<entity>")
def list_view(entity):
    from web.listing_ui import (export_urls, filter_panel, filter_problem, has_empty_values,
                                list_parameters, refusal_page, service_refusal)
    ent = entity_for(entity)
    caller, loc = g.caller, g.caller.locale
    access = site().service.access(caller, ent)
    # filters as the API writes them (stage=won, amount__gte=100), from the filter panel or
    # a dashboard's chart; they stay on every sort and page link
    q, sort, cursor, filters = list_parameters(request.args)
    if has_empty_values(request.args):  # a submitted panel's untouched controls: "any"
        return redirect(url_for("ui.list_view", entity=ent.name, q=q or None,
                                sort=sort or None, cursor=cursor or None, **filters))
    problem = filter_problem(caller, ent, filters)
    if problem is not None:
        return refusal_page(ent, problem)
    params = {**filters, "limit": "50"}
    if q:
        params["q"] = q
    if sort:
        params["sort"] = sort
    if cursor:
        params["cursor"] = cursor
    try:
        result = site().service.list(caller, ent.name, parse_query(params))
    except BadRequest as exc:
        return refusal_page(ent, service_refusal(ent, exc))
    columns = [c for c in ent.list_columns if c not in access.hidden] or [ent.title]
    headers = []
    for name in columns:
        fld = field_of(ent, name)
        sortable = fld.kind.stored and fld.kind.orderable
        target = f"-{name}" if sort == name else name
        headers.append({"name": name, "label": field_label(ent, name, loc),
                        "sort_url": url_for("ui.list_view", entity=ent.name, q=q or None,
                                            sort=target, **filters) if sortable else None,
                        "sorted": "asc" if sort == name else ("desc" if sort == f"-{name}"
                                                             else None)})
    rows = [{"id": r["id"], "cells": [display(ent, c, r.get(c), result.titles, loc, r)
                                      for c in columns]} for r in result.data]
    next_url = url_for("ui.list_view", entity=ent.name, q=q or None, sort=sort or None,
                       cursor=result.next_cursor, **filters) if result.next_cursor else None
    first_url = url_for("ui.list_view", entity=ent.name, q=q or None, sort=sort or None,
                        **filters) if cursor else None
    shown_filters = [{"key": key, "label": _filter_label(ent, key, loc), "value": value}
                     for key, value in filters.items()]
    return page("list.html", entity=ent, title=entity_plural(ent, loc), headers=headers,
                rows=rows, q=q, sort=sort, total=result.total, next_url=next_url,
                first_url=first_url, can_create=access.create is not None,
                filters=shown_filters, panel=filter_panel(caller, ent, filters),
                exports=export_urls(ent, q, sort, filters),
                clear_url=url_for("ui.list_view", entity=ent.name, q=q or None,
                                  sort=sort or None) if filters else None)


_OPERATOR_SIGNS = {"ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "in": "∈",
                   "contains": "∋", "isnull": "= ∅"}


def _filter_label(entity: Entity, key: str, locale: str) -> str:
    name, _, op = key.partition("__")
    label = field_label(entity, name, locale) if name in entity.fields else name
    return f"{label} {_OPERATOR_SIGNS.get(op, '=')}"


# ---------------------------------------------------------------- new record

@ui.route("/<entity>/new", methods=["GET", "POST"])
def new_record(entity):
    ent = entity_for(entity)
    caller, loc = g.caller, g.caller.locale
    if site().service.access(caller, ent).create is None:
        return html_error(403)
    fields = input_fields(caller, ent)
    # the defaults, shown (a form sends every field, so an unshown default would be lost),
    # then initial values from the query string (`/deal/new?account=7`, the "new" link of a
    # related list): only fields the person may write, and checked like any input on save
    defaults = site().service.new_values(caller, ent.name)
    values = {f.name: form_value(f, defaults[f.name]) for f in fields
              if defaults.get(f.name) is not None}
    values.update({f.name: submitted(f, request.args) for f in fields if f.name in request.args})
    errors, top = {}, []
    line_rows = None
    status = 200
    if request.method == "POST":
        values = {f.name: submitted(f, request.form) for f in fields}
        data = form_changes(fields, values, None, errors, loc)
        lines = lines_input(caller, ent, request.form, None)
        data.update(lines.data)
        errors.update(lines.errors)
        line_rows = lines.rows
        if not errors:
            try:
                record = site().service.create(caller, ent.name, data)
            except RecordError as exc:
                errors, shown = lines.form_errors(exc.fields)
                top = general_errors(ent, exc, {f.name for f in fields} | shown, loc)
                status = exc.status
            else:
                return redirect(url_for("ui.record_view", entity=ent.name,
                                        record_id=record["id"]))
        else:
            status = 422
        if errors and not top:
            top = [t("fix_errors", loc)]
    return page("form.html", status, entity=ent, title=f"{t('new', loc)}: {ent.label.get(loc)}",
                sections=build_form(caller, ent, values, errors, line_rows=line_rows),
                top_errors=top, action=url_for("ui.new_record", entity=ent.name))


# ---------------------------------------------------------------- record page

def record_page(ent: Entity, record_id: int, *, status: int = 200, values=None, errors=None,
                top_errors=None, line_rows=None):
    caller, loc = g.caller, g.caller.locale
    service = site().service
    record = service.get(caller, ent.name, record_id)
    access = service.access(caller, ent)
    workflow = site().registry.workflow_by_entity.get(ent.name)
    titles = titles_for(caller, ent, [record],
                        [n for n, f in ent.fields.items() if f.type == "reference"] +
                        ["owner", "created_by", "updated_by"])

    names = [n for s in ent.form_sections for n in s.fields] or list(ent.fields)
    names += [n for n in ent.fields if n not in names]
    shown, tables = [], []
    for name in dict.fromkeys(names):
        if name not in record or name in access.hidden:
            continue
        fld = ent.fields[name]
        if fld.type == "lines":
            tables.append(lines_table(caller, fld, record.get(name) or []))
        elif workflow is None or name != workflow.field:
            shown.append({"name": name, "label": fld.label.get(loc),
                          "value": display(ent, name, record.get(name), titles, loc, record)})
    meta = [{"label": field_label(ent, n, loc), "value": display(ent, n, record.get(n), titles,
                                                                 loc)}
            for n in ("owner", "created_at", "updated_at") if n in record]

    state = None
    transitions = []
    if workflow is not None:
        state = display(ent, workflow.field, record.get(workflow.field), titles, loc)
        transitions = service.transitions(caller, ent.name, record["id"])

    entries, _ = service.history(caller, ent.name, record["id"], limit=50)
    users = {u["id"]: u["display_name"] or u["username"] for u in site().active_users()}
    def change_text(name, change, side):
        """A change as a person reads it: option and state labels, yes/no."""
        value = change[side] if isinstance(change, list) and len(change) > side else None
        fld = ent.fields.get(name)
        if fld is not None and value is not None and (
                fld.type in ("enum", "multi_enum", "boolean", "file") or
                (workflow is not None and name == workflow.field)):
            return display(ent, name, value, {}, loc)
        if name == AUDIT_KEY:  # an attachment added or deleted: its name
            return str(value.get("name") or "") if isinstance(value, dict) else ""
        return _change_text(change, side)

    def action_text(action: str) -> str:
        if action.startswith("transition:") and workflow is not None:
            step = workflow.transitions.get(action.split(":", 1)[1])
            if step is not None:
                return step.label.get(loc)
        if action.startswith("print:"):  # a document printed (web/documents.py)
            doc = site().registry.documents.get(action.split(":", 1)[1])
            return t("action_print", loc, name=doc.label.get(loc) if doc else action[6:])
        return t(f"action_{action}", loc) if f"action_{action}" in _ACTIONS else action

    history = [{"at": (e["at"] or "")[:16].replace("T", " ") + " UTC",
                "user": users.get(e["user"], f"#{e['user']}" if e["user"] else "-"),
                "action": action_text(e["action"]),
                "changes": [{"label": t("attachments", loc) if k == AUDIT_KEY
                             else field_label(ent, k, loc),
                             "old": change_text(k, v, 0), "new": change_text(k, v, 1)}
                            for k, v in (e["changes"] or {}).items()]}
               for e in entries]

    can_update = service.allows(caller, ent, record, "update")
    sections = None
    if can_update:
        current = {f.name: form_value(f, record.get(f.name)) for f in input_fields(caller, ent)}
        current.update(values or {})
        sections = build_form(caller, ent, current, errors or {}, record, line_rows)
    title_value = record.get(ent.title)
    heading = display(ent, ent.title, title_value, titles, loc) if ent.title in record \
        else f"#{record['id']}"
    return page("record.html", status, entity=ent, record=record,
                entity_label=ent.label.get(loc), plural=entity_plural(ent, loc),
                heading=heading or f"#{record['id']}", fields=shown, meta=meta, tables=tables,
                related=related_lists(caller, ent, record["id"]),
                state=state, transitions=transitions, history=history, sections=sections,
                top_errors=top_errors or [], version=record["version"])


_ACTIONS = {"action_create", "action_update", "action_delete", "action_transition",
            "action_attach", "action_detach"}


def _change_text(pair, index: int) -> str:
    if isinstance(pair, (list, tuple)) and len(pair) == 2:
        value = pair[index]
    else:
        value = pair if index == 1 else None
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def lines_table(caller, fld: Field, lines: list[dict]) -> dict:
    loc = caller.locale
    child = site().registry.entities[fld.child_entity]
    hidden = site().service.access(caller, child).hidden
    columns = [n for n, f in child.fields.items() if n not in hidden and f.type != "lines"]
    titles = titles_for(caller, child, lines,
                        [n for n in columns if child.fields[n].type == "reference"])
    return {"label": fld.label.get(loc),
            "headers": [child.fields[n].label.get(loc) for n in columns],
            "rows": [[display(child, n, line.get(n), titles, loc, line) for n in columns]
                     for line in lines]}


@ui.get("/<entity>/<int:record_id>")
def record_view(entity, record_id):
    return record_page(entity_for(entity), record_id)


@ui.post("/<entity>/<int:record_id>")
def update_record(entity, record_id):
    ent = entity_for(entity)
    caller, loc = g.caller, g.caller.locale
    service = site().service
    current = service.get(caller, ent.name, record_id)
    fields = input_fields(caller, ent)
    values = {f.name: submitted(f, request.form) for f in fields}
    errors: dict = {}
    data = form_changes(fields, values, current, errors, loc)
    lines = lines_input(caller, ent, request.form, current)
    data.update(lines.data)
    errors.update(lines.errors)
    if errors:
        return record_page(ent, record_id, status=422, values=values, errors=errors,
                           top_errors=[t("fix_errors", loc)], line_rows=lines.rows)
    try:
        service.update(caller, ent.name, record_id, data, request.form.get("version"))
    except RecordError as exc:
        if exc.status == 404:
            raise
        errors, shown = lines.form_errors(exc.fields)
        top = general_errors(ent, exc, {f.name for f in fields} | shown, loc)
        if exc.fields and top == [exc.message]:
            top = [t("fix_errors", loc)]
        return record_page(ent, record_id, status=exc.status, values=values,
                           errors=errors, top_errors=top, line_rows=lines.rows)
    return redirect(url_for("ui.record_view", entity=ent.name, record_id=record_id))


@ui.post("/<entity>/<int:record_id>/transitions/<name>")
def fire_transition(entity, record_id, name):
    ent = entity_for(entity)
    caller, loc = g.caller, g.caller.locale
    try:
        site().service.transition(caller, ent.name, record_id, name, {},
                                  request.form.get("version"))
    except RecordError as exc:
        if exc.status == 404 and not site().registry.workflow_by_entity.get(ent.name):
            raise
        try:
            return record_page(ent, record_id, status=exc.status,
                               top_errors=general_errors(ent, exc, set(), loc))
        except NotFound:
            raise exc from None
    return redirect(url_for("ui.record_view", entity=ent.name, record_id=record_id))
