"""JSON answers a form asks for while a person edits it: field states and reference search.

`POST /<entity>/form-state` (a new record) and `POST /<entity>/<id>/form-state` (an edited
one) take the form's current values, exactly as the form would submit them, and answer which
fields are visible, required and read-only: `RecordService.field_states`, the same evaluation
the service's checks use on save, so static/forms.js never evaluates a rule itself.
`GET /<entity>/choices/<field>?q=` (`<field>` may be `lines.product`: a field of a lines
editor's rows) answers the reference picker with up to PICKER_MATCHES
records of the field's target, found by the record service's list with the caller's
permissions, so a record the caller may not read never appears.

Both need the signed-in session; the POST also carries the form's CSRF token (checked for
every UI POST by web.session). Neither changes anything.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from engine.errors import NotFound, RecordError
from engine.records.listing import TEXTUAL, parse_query
from engine.registry.model import Field
from web.api import error
from web.common import entity_for, site
from web.formbuild import form_states, has_lookups
from web.formfields import choice_label, form_changes, form_value, input_fields, submitted
from web.i18n import t
from web.lines_editor import line_input_fields, lines_fields, lines_input
from web.session import current_caller, ui_locale

forms = Blueprint("forms", __name__)
PICKER_MATCHES = 20
QUERY_MAX = 200  # characters of a picker query that are searched for


@forms.before_request
def require_sign_in():
    caller = current_caller()
    if caller is None:  # a script asks: answer in JSON, not with the sign-in page
        return error(401, "unauthorized", t("session_ended", ui_locale()))
    g.caller = caller
    return None


@forms.errorhandler(RecordError)
def record_error(exc: RecordError):
    return error(exc.status, exc.code, exc.message, exc.fields or None, **exc.extra)


@forms.post("/<entity>/form-state")
@forms.post("/<entity>/<int:record_id>/form-state")
def form_state(entity, record_id=None):
    """{"fields": {field: {"visible", "required", "read_only"}}} for the form's fields."""
    ent = entity_for(entity)
    caller = g.caller
    fields = input_fields(caller, ent)
    record = site().service.get(caller, ent.name, record_id) if record_id is not None else None
    values = {f.name: submitted(f, request.form) for f in fields}
    states = form_states(caller, ent, fields, values, record)
    answer = {"fields": {f.name: states[f.name] for f in fields}}
    if has_lookups(ent):
        answer["lookups"] = lookup_values(caller, ent, fields, values, record)
    return jsonify(answer)


def lookup_values(caller, entity, fields: list[Field], values: dict,
                  record: dict | None) -> dict[str, str]:
    """{input name: value as the input would show it} for the inputs left empty that saving
    the form would fill from a lookup (a price list's price): the form shows them as
    placeholders. Lines rows are named as the form names them (`lines[4].unit_price`)."""
    data = form_changes(fields, values, record, {}, caller.locale)
    lines = lines_input(caller, entity, request.form, record)
    data.update(lines.data)
    found = site().service.lookups.preview(caller, entity.name, data,
                                           record["id"] if record is not None else None)
    by_input, _ = lines.form_errors({key: [value] for key, value in found.items()})
    registry = site().registry
    result = {}
    for key, (value,) in by_input.items():
        lines_name, _, child_field = key.partition("].")
        if child_field:
            child = registry.entities[entity.fields[lines_name.split("[")[0]].child_entity]
            fld = child.fields[child_field]
        else:
            fld = entity.fields[key]
        result[key] = form_value(fld, value)
    return result


@forms.get("/<entity>/choices/<field>")
def reference_choices(entity, field):
    """{"data": [{"id", "title"}...]}: readable records of a reference field's target.
    `field` is a field of the entity's form, or `<lines field>.<field>` for a field of
    the rows of its lines editor."""
    ent = entity_for(entity)
    lines_name, _, child_name = field.rpartition(".")
    if lines_name:
        lines = {f.name: f for f in lines_fields(g.caller, ent)}.get(lines_name)
        offered = line_input_fields(g.caller, lines) if lines is not None else []
    else:
        offered = input_fields(g.caller, ent)
    fld = {f.name: f for f in offered}.get(child_name)
    if fld is None or fld.type != "reference" or fld.to == "user":
        raise NotFound(t("error_404", g.caller.locale))
    text = request.args.get("q", "").strip()[:QUERY_MAX]
    return jsonify({"data": reference_matches(g.caller, fld, text)})


def reference_matches(caller, fld: Field, text: str) -> list[dict]:
    """Up to PICKER_MATCHES readable records of the field's target that match `text`: by the
    target's search fields, else by its title, else (a number) by id; all when `text` is
    empty, in the target's list order."""
    target = site().registry.entities[fld.to]
    hidden = site().service.access(caller, target).hidden
    params = {"limit": str(PICKER_MATCHES)}
    if text:
        title = target.fields.get(target.title)
        if any(name not in hidden for name in target.search_fields):
            params["q"] = text
        elif title is not None and title.type in TEXTUAL and title.name not in hidden:
            params[f"{title.name}__contains"] = text
        elif text.lstrip("#").isdigit():
            params["id"] = text.lstrip("#")
        else:
            return []
    page = site().service.list(caller, target.name, parse_query(params))
    return [{"id": r["id"], "title": choice_label(target, r)} for r in page.data]
