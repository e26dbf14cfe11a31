"""The server-rendered UI: lists, record pages and forms generated from the registry.

Like the JSON API it holds no business rule: every read and write goes through the record
service, and a refusal (RecordError) is shown to the user next to the field it names.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from flask import (Blueprint, Flask, current_app, g, redirect, render_template, request,
                   url_for)

from engine.errors import BadRequest, NotFound, RecordError
from engine.records.listing import Lister, parse_query, system_field
from engine.records.values import to_json
from engine.registry.labels import words
from engine.registry.model import SYSTEM_FIELDS, Entity, Field
from web.i18n import t
from web.session import current_caller, setup as setup_session, ui_locale

ui = Blueprint("ui", __name__)
SKIPPED_INPUT = ("lines", "rollup", "autonumber")
# a reference whose target has more readable records than this gets the searchable picker
# (web/forms.py) instead of a select: a longer select is unusable on a phone
REFERENCE_CHOICES = 50
STATUS_TEXT = {400: "error_400", 403: "error_403", 404: "error_404", 405: "error_405",
               409: "error_409", 413: "error_413", 500: "error_500"}


def site():
    return current_app.extensions["crm"]


def register_ui(app: Flask) -> None:
    """Install sessions, the UI blueprint and its template helpers on the app."""
    setup_session(app)
    app.jinja_env.globals["t"] = t
    # imported here, not at the top: they build on this module, and their routes must join
    # the blueprint before it is registered
    from web import kanban, record_actions
    kanban.setup(app)
    record_actions.setup(app)
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


def entity_for(name: str) -> Entity:
    entity = site().registry.entities.get(name)
    if entity is None or entity.parent:
        raise NotFound(t("error_404", g.caller.locale))
    return entity


def readable(caller, entity: Entity) -> bool:
    return not entity.parent and site().service.access(caller, entity).read is not None


def entity_plural(entity: Entity, locale: str) -> str:
    if locale in entity.plural.texts:
        return entity.plural.get(locale)
    if locale in entity.label.texts:
        return entity.label.get(locale)
    return entity.plural.get(locale)


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


def field_of(entity: Entity, name: str) -> Field:
    return entity.fields[name] if name in entity.fields else system_field(name)


def field_label(entity: Entity, name: str, locale: str) -> str:
    if name in entity.fields:
        return entity.fields[name].label.get(locale)
    return t(name, locale) if name in SYSTEM_FIELDS else words(name)


def display(entity: Entity, name: str, value, titles: dict, locale: str) -> str:
    """A stored value as text for a person (autoescaped by the templates)."""
    if value is None or value == "" or value == []:
        return ""
    fld = field_of(entity, name)
    workflow = site().registry.workflow_by_entity.get(entity.name)
    if workflow is not None and name == workflow.field and value in workflow.states:
        return workflow.states[value].label.get(locale)
    if fld.type == "reference":
        return titles.get(name, {}).get(value) or f"#{value}"
    if fld.type in ("enum", "multi_enum"):
        labels = {o.value: o.label.get(locale) for o in fld.options}
        values = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(v, str(v)) for v in values)
    if fld.type == "boolean":
        return t("yes" if value else "no", locale)
    if fld.type == "json":
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dt.datetime):  # to the minute: seconds are noise to a person
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return str(to_json(fld, value))


def titles_for(caller, entity: Entity, records: list[dict], columns) -> dict:
    with site().engine.connect() as conn:
        return Lister(site().service).titles(conn, caller, entity, records, list(columns))


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
    ent = entity_for(entity)
    caller, loc = g.caller, g.caller.locale
    access = site().service.access(caller, ent)
    q = request.args.get("q", "").strip()
    sort = request.args.get("sort", "").strip()
    cursor = request.args.get("cursor", "").strip()
    # filters as the API writes them (stage=won, amount__gte=100), e.g. from a dashboard's
    # chart; they stay on every sort and page link
    filters = {k: v for k, v in request.args.items()
               if k not in ("q", "sort", "cursor", "limit", "fields", "count")}
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
        return html_error(400, exc.message)
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
    rows = [{"id": r["id"], "cells": [display(ent, c, r.get(c), result.titles, loc)
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
                filters=shown_filters,
                clear_url=url_for("ui.list_view", entity=ent.name) if filters else None)


_OPERATOR_SIGNS = {"ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "in": "∈",
                   "contains": "∋", "isnull": "= ∅"}


def _filter_label(entity: Entity, key: str, locale: str) -> str:
    name, _, op = key.partition("__")
    label = field_label(entity, name, locale) if name in entity.fields else name
    return f"{label} {_OPERATOR_SIGNS.get(op, '=')}"


# ---------------------------------------------------------------- forms

def input_fields(caller, entity: Entity) -> list[Field]:
    """The fields a person may type into on this entity's form."""
    access = site().service.access(caller, entity)
    workflow = site().registry.workflow_by_entity.get(entity.name)
    result = []
    for fld in entity.fields.values():
        if fld.type in SKIPPED_INPUT or not fld.writable or fld.name in access.hidden:
            continue
        if fld.name in access.read_only or (workflow and fld.name == workflow.field):
            continue
        result.append(fld)
    return result


def widget(fld: Field) -> str:
    if fld.type == "text" or fld.type == "json":
        return "textarea"
    if fld.type in ("integer", "decimal", "money", "percent"):
        return "number"
    if fld.type in ("enum", "reference"):
        return "select"
    if fld.type == "multi_enum":
        return "multiselect"
    if fld.type == "boolean":
        return "checkbox"
    if fld.type == "date":
        return "date"
    if fld.type == "datetime":
        return "datetime"
    return {"email": "email", "url": "url", "phone": "tel"}.get(fld.type, "text")


def form_value(fld: Field, value):
    """A stored value in the form's own terms: text, a bool, or a list of texts."""
    if fld.type == "boolean":
        return bool(value)
    if fld.type == "multi_enum":
        return list(value or [])
    if value is None:
        return ""
    if fld.type == "json":
        return json.dumps(value, ensure_ascii=False)
    if fld.type == "datetime" and isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, (Decimal, dt.date)):
        return str(to_json(fld, value))
    return str(value)


def submitted(fld: Field, form):
    if fld.type == "boolean":
        return form.get(fld.name) in ("true", "on", "1")
    if fld.type == "multi_enum":
        return [v for v in form.getlist(fld.name) if v]
    return form.get(fld.name, "")


def to_input(fld: Field, value, errors: dict, locale: str):
    """A form value as record service input (None for empty)."""
    if fld.type == "boolean":
        return bool(value)
    if fld.type == "multi_enum":
        return value or None
    if isinstance(value, str) and not value.strip():
        return None
    if fld.type == "json":
        try:
            return json.loads(value)
        except ValueError:
            errors.setdefault(fld.name, []).append(t("not_json", locale))
            return None
    return value


def choices(caller, fld: Field, current) -> list[tuple[str, str]] | None:
    """(value, label) options of a select: enum options, active users or the readable
    referenced records; None when the target has more records than a select should list."""
    loc = caller.locale
    if fld.type == "enum":
        return [(o.value, o.label.get(loc)) for o in fld.options]
    if fld.type == "multi_enum":
        return [(o.value, o.label.get(loc)) for o in fld.options]
    if fld.to == "user":
        found = [(str(u["id"]), u["display_name"] or u["username"])
                 for u in site().active_users()]
    else:
        target = site().registry.entities[fld.to]
        try:
            page = site().service.list(
                caller, target.name, parse_query({"limit": str(REFERENCE_CHOICES)}))
        except RecordError:
            page = None
        if page is not None and page.next_cursor:
            return None
        found = [(str(r["id"]), choice_label(target, r)) for r in (page.data if page else [])]
    if current not in ("", None) and str(current) not in {v for v, _ in found}:
        found.append((str(current), f"#{current}"))
    return found


def choice_label(entity: Entity, record: dict) -> str:
    """A referenced record as a select or the picker names it: its title, else #id."""
    value = record.get(entity.title)
    return str(value) if value is not None else f"#{record['id']}"


def reference_label(caller, fld: Field, value) -> str:
    """The label of the record a reference's form value names, as far as the caller may
    read it ("" for a value that is no id)."""
    try:
        record_id = int(value)
    except (TypeError, ValueError):
        return ""
    target = site().registry.entities[fld.to]
    try:
        found = site().service.list(caller, target.name,
                                    parse_query({"id": str(record_id), "limit": "1"})).data
    except RecordError:
        found = []
    return choice_label(target, found[0]) if found else f"#{record_id}"


class FormSections(list):
    """A form's sections, and where the form's rules are evaluated again while the person
    edits it (None when no field or section of the entity has a rule)."""

    def __init__(self, sections: list[dict], state_url: str | None):
        super().__init__(sections)
        self.state_url = state_url


def form_changes(fields: list[Field], values: dict, record: dict | None, errors: dict,
                 locale: str) -> dict:
    """The record service input a form's values stand for: every field of a new record; of
    an existing `record` only the changed ones, so unchanged values are not rewritten."""
    data = {}
    for fld in fields:
        value = values[fld.name]
        if record is None or value != form_value(fld, record.get(fld.name)):
            data[fld.name] = to_input(fld, value, errors, locale)
    return data


def form_states(caller, entity: Entity, fields: list[Field], values: dict,
                record: dict | None = None) -> dict:
    """The record service's field states for a form holding `values` (`record`: the stored
    record being edited): the answers its checks give when the form is saved."""
    data = form_changes(fields, values, record, {}, caller.locale)
    return site().service.field_states(caller, entity.name, data,
                                       record["id"] if record is not None else None)


def has_rules(entity: Entity) -> bool:
    """Whether anything on the entity's form depends on a rule (visible_if and the like)."""
    return any(f.visible_if or f.required_if or f.read_only_if
               for f in entity.fields.values()) or any(s.visible_if for s in entity.form_sections)


def build_form(caller, entity: Entity, values: dict, errors: dict,
               record: dict | None = None) -> FormSections:
    """Sections of widgets, each with its value, its state (visible, required, read-only,
    as the record service judges them for these values) and the messages for its field."""
    loc = caller.locale
    fields = {f.name: f for f in input_fields(caller, entity)}
    values = {name: values.get(name, form_value(fld, record.get(name) if record else None))
              for name, fld in fields.items()}
    states = form_states(caller, entity, list(fields.values()), values, record)
    sections, placed = [], set()
    layout = [(s.label.get(loc), s.fields) for s in entity.form_sections] or \
        [(t("details", loc), tuple(entity.fields))]
    for label, names in layout:
        items = []
        for name in names:
            fld = fields.get(name)
            if fld is None or name in placed:
                continue
            placed.add(name)
            items.append(_form_item(caller, entity, fld, values[name], errors, states, True))
        if items:
            sections.append({"label": label, "fields": items})
    rest = [f for n, f in fields.items() if n not in placed]
    if rest:
        sections.append({"label": t("details", loc), "fields": [
            _form_item(caller, entity, fld, values[fld.name], errors, states, False)
            for fld in rest]})
    for section in sections:
        section["visible"] = any(f["visible"] for f in section["fields"])
    state_url = None
    if has_rules(entity):
        state_url = url_for("forms.form_state", entity=entity.name) if record is None else \
            url_for("forms.form_state", entity=entity.name, record_id=record["id"])
    return FormSections(sections, state_url)


def _form_item(caller, entity: Entity, fld: Field, value, errors: dict, states: dict,
               with_help: bool) -> dict:
    loc = caller.locale
    state = states[fld.name]
    kind = widget(fld)
    options = choices(caller, fld, value) \
        if fld.type in ("enum", "multi_enum", "reference") else None
    picker = None
    if fld.type == "reference" and options is None:
        kind = "picker"
        picker = {"url": url_for("forms.reference_choices", entity=entity.name,
                                 field=fld.name),
                  "label": reference_label(caller, fld, value),
                  "list_url": url_for("ui.list_view", entity=fld.to)}
    messages = errors.get(fld.name, [])
    return {"name": fld.name, "label": fld.label.get(loc), "widget": kind, "type": fld.type,
            "value": value, "required": state["required"], "read_only": state["read_only"],
            # a field with a message stays in view, so that no refusal is hidden
            "visible": state["visible"] or bool(messages),
            "help": fld.help.get(loc) if with_help and fld.help else None,
            "step": _step(fld), "choices": options, "picker": picker, "errors": messages}


def _step(fld: Field) -> str | None:
    if fld.type == "integer":
        return "1"
    if fld.type in ("decimal", "money", "percent"):
        scale = fld.scale if fld.scale is not None else 2
        return "1" if scale == 0 else "0." + "0" * (scale - 1) + "1"
    return None


def general_errors(entity: Entity, exc: RecordError, shown: set, locale: str) -> list[str]:
    """The messages not shown next to a field: rules (__all__), unknown keys, the summary."""
    messages = list(exc.fields.get("__all__", []))
    for key, items in exc.fields.items():
        if key == "__all__" or key in shown:
            continue
        label = field_label(entity, key, locale) if key in entity.fields else key
        messages += [f"{label}: {m}" for m in items]
    if not messages:
        messages.append(exc.message)
    return messages


@ui.route("/<entity>/new", methods=["GET", "POST"])
def new_record(entity):
    ent = entity_for(entity)
    caller, loc = g.caller, g.caller.locale
    if site().service.access(caller, ent).create is None:
        return html_error(403)
    fields = input_fields(caller, ent)
    values, errors, top = {}, {}, []
    status = 200
    if request.method == "POST":
        values = {f.name: submitted(f, request.form) for f in fields}
        data = form_changes(fields, values, None, errors, loc)
        if not errors:
            try:
                record = site().service.create(caller, ent.name, data)
            except RecordError as exc:
                errors = exc.fields
                top = general_errors(ent, exc, {f.name for f in fields}, loc)
                status = exc.status
            else:
                return redirect(url_for("ui.record_view", entity=ent.name,
                                        record_id=record["id"]))
        else:
            status = 422
        if errors and not top:
            top = [t("fix_errors", loc)]
    return page("form.html", status, entity=ent, title=f"{t('new', loc)}: {ent.label.get(loc)}",
                sections=build_form(caller, ent, values, errors), top_errors=top,
                action=url_for("ui.new_record", entity=ent.name))


# ---------------------------------------------------------------- record page

def record_page(ent: Entity, record_id: int, *, status: int = 200, values=None, errors=None,
                top_errors=None):
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
            shown.append({"label": fld.label.get(loc),
                          "value": display(ent, name, record.get(name), titles, loc)})
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
                fld.type in ("enum", "multi_enum", "boolean") or
                (workflow is not None and name == workflow.field)):
            return display(ent, name, value, {}, loc)
        return _change_text(change, side)

    def action_text(action: str) -> str:
        if action.startswith("transition:") and workflow is not None:
            step = workflow.transitions.get(action.split(":", 1)[1])
            if step is not None:
                return step.label.get(loc)
        return t(f"action_{action}", loc) if f"action_{action}" in _ACTIONS else action

    history = [{"at": (e["at"] or "")[:16].replace("T", " ") + " UTC",
                "user": users.get(e["user"], f"#{e['user']}" if e["user"] else "-"),
                "action": action_text(e["action"]),
                "changes": [{"label": field_label(ent, k, loc),
                             "old": change_text(k, v, 0), "new": change_text(k, v, 1)}
                            for k, v in (e["changes"] or {}).items()]}
               for e in entries]

    can_update = access.update == "all" or (access.update == "own" and
                                            record.get("owner") == caller.user_id)
    sections = None
    if can_update:
        current = {f.name: form_value(f, record.get(f.name)) for f in input_fields(caller, ent)}
        current.update(values or {})
        sections = build_form(caller, ent, current, errors or {}, record)
    title_value = record.get(ent.title)
    heading = display(ent, ent.title, title_value, titles, loc) if ent.title in record \
        else f"#{record['id']}"
    return page("record.html", status, entity=ent, record=record,
                entity_label=ent.label.get(loc), plural=entity_plural(ent, loc),
                heading=heading or f"#{record['id']}", fields=shown, meta=meta, tables=tables,
                state=state, transitions=transitions, history=history, sections=sections,
                top_errors=top_errors or [], version=record["version"])


_ACTIONS = {"action_create", "action_update", "action_delete", "action_transition"}


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
            "rows": [[display(child, n, line.get(n), titles, loc) for n in columns]
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
    if errors:
        return record_page(ent, record_id, status=422, values=values, errors=errors,
                           top_errors=[t("fix_errors", loc)])
    try:
        service.update(caller, ent.name, record_id, data, request.form.get("version"))
    except RecordError as exc:
        if exc.status == 404:
            raise
        top = general_errors(ent, exc, {f.name for f in fields}, loc)
        if exc.fields and top == [exc.message]:
            top = [t("fix_errors", loc)]
        return record_page(ent, record_id, status=exc.status, values=values,
                           errors=exc.fields, top_errors=top)
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
