"""One field on a form: its widget, its options, and its value as the form shows it and as
the record service takes it."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from flask import request

from engine.errors import RecordError
from engine.records.listing import parse_query
from engine.records.uploads import Upload
from engine.records.values import to_json
from engine.registry.model import Entity, Field
from web.common import site
from web.i18n import t

SKIPPED_INPUT = ("lines", "rollup", "autonumber")
# a reference whose target has more readable records than this gets the searchable picker
# (web/forms.py) instead of a select: a longer select is unusable on a phone
REFERENCE_CHOICES = 50


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
    return {"email": "email", "url": "url", "phone": "tel", "file": "file"}.get(fld.type, "text")


def form_value(fld: Field, value):
    """A stored value in the form's own terms: text, a bool, or a list of texts."""
    if fld.type == "boolean":
        return bool(value)
    if fld.type == "multi_enum":
        return list(value or [])
    if value is None:
        return ""
    if fld.type == "file":  # the stored file's name; a form sends a file only to change it
        return str(value.get("name") or "") if isinstance(value, dict) else ""
    if fld.type == "json":
        return json.dumps(value, ensure_ascii=False)
    if fld.type == "datetime" and isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, (Decimal, dt.date)):
        return str(to_json(fld, value))
    return str(value)


REMOVE_FILE = "\x00remove"  # a file field's "remove" box was ticked (no text input sends NUL)


def submitted(fld: Field, form):
    if fld.type == "file":
        return _file_submitted(fld, form)
    if fld.type == "boolean":
        return form.get(fld.name) in ("true", "on", "1")
    if fld.type == "multi_enum":
        return [v for v in form.getlist(fld.name) if v]
    return form.get(fld.name, "")


def _file_submitted(fld: Field, form):
    """A file field's input: an Upload, REMOVE_FILE, or "" (keep the file it has). Only a
    posted form carries files: initial values from a query string never set one."""
    if form is not request.form:
        return ""
    part = request.files.get(fld.name)
    if part is not None and part.filename:
        return Upload(part.filename, part.read())
    if form.get(f"{fld.name}__remove") in ("true", "on", "1"):
        return REMOVE_FILE
    return ""


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
        except (ValueError, RecursionError):
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


def form_changes(fields: list[Field], values: dict, record: dict | None, errors: dict,
                 locale: str) -> dict:
    """The record service input a form's values stand for: every field of a new record; of
    an existing `record` only the changed ones, so unchanged values are not rewritten."""
    data = {}
    for fld in fields:
        value = values[fld.name]
        if fld.type == "file":  # a new file, or "remove"; nothing chosen keeps the file
            if isinstance(value, Upload):
                data[fld.name] = value
            elif value == REMOVE_FILE:
                data[fld.name] = None
            continue
        if record is None or value != form_value(fld, record.get(fld.name)):
            data[fld.name] = to_input(fld, value, errors, locale)
    return data


def input_step(fld: Field) -> str | None:
    if fld.type == "integer":
        return "1"
    if fld.type in ("decimal", "money", "percent"):
        scale = fld.scale if fld.scale is not None else 2
        return "1" if scale == 0 else "0." + "0" * (scale - 1) + "1"
    return None
