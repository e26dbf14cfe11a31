"""A record's form as the templates draw it: sections of widgets with their states and
messages, and the lines editors; and the messages of a refusal that no field shows."""

from __future__ import annotations

from flask import url_for

from engine.errors import RecordError
from engine.records.currency import currency_field
from engine.registry.model import Entity, Field
from web.common import field_label, site
from web.formfields import (choices, form_changes, form_value, input_fields, input_step,
                            reference_label, widget)
from web.i18n import t
from web.lines_editor import lines_editor, lines_fields


class FormSections(list):
    """A form's sections, and where the form's rules are evaluated again while the person
    edits it (None when no field or section of the entity has a rule)."""

    def __init__(self, sections: list[dict], state_url: str | None,
                 lines: list[dict] | None = None):
        super().__init__(sections)
        self.state_url = state_url
        self.lines = lines or []  # one editor per lines field the person may write
        self.lines_lookups = False  # rows' changes are sent too: a lookup fills their fields
        # a form with a file input is sent as multipart/form-data
        self.multipart = any(f["widget"] == "file" for s in sections for f in s["fields"])


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
               for f in entity.fields.values()) or any(s.visible_if for s in entity.form_sections) \
        or has_lookups(entity)


def has_lookups(entity: Entity) -> bool:
    """Whether a field of the entity, or of its lines, is filled by a lookup when left empty."""
    return any(f.lookup is not None for f in entity.fields.values()) or lines_lookups(entity)


def lines_lookups(entity: Entity) -> bool:
    """Whether a field of the entity's lines is filled by a lookup (the form then asks again
    when a row changes)."""
    entities = site().registry.entities
    return any(f.lookup is not None for lines in entity.fields.values() if lines.type == "lines"
               for f in entities[lines.child_entity].fields.values())


def build_form(caller, entity: Entity, values: dict, errors: dict,
               record: dict | None = None,
               line_rows: dict[str, list[dict]] | None = None) -> FormSections:
    """Sections of widgets, each with its value, its state (visible, required, read-only,
    as the record service judges them for these values) and the messages for its field;
    then an editor for each lines field the caller may write, showing `line_rows` (the rows
    a form sent, see `lines_input`) or else the record's stored lines."""
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
        for item in section["fields"]:
            if item["widget"] == "file":  # the file it has, whatever the form sent
                item["current"] = form_value(fields[item["name"]],
                                             record.get(item["name"]) if record else None)
                item["accept"] = ",".join(fields[item["name"]].accept)
    state_url = None
    if has_rules(entity):
        state_url = url_for("forms.form_state", entity=entity.name) if record is None else \
            url_for("forms.form_state", entity=entity.name, record_id=record["id"])
    editors = [lines_editor(caller, entity, fld, record, (line_rows or {}).get(fld.name),
                            errors)
               for fld in lines_fields(caller, entity)]
    form = FormSections(sections, state_url, editors)
    form.lines_lookups = lines_lookups(entity)
    return form


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
    return {"name": fld.name, "input_name": fld.name, "control_id": f"f-{fld.name}",
            "label": fld.label.get(loc), "widget": kind, "type": fld.type, "value": value, "required": state["required"], "read_only": state["read_only"],
            # a field with a message stays in view, so that no refusal is hidden
            "visible": state["visible"] or bool(messages),
            "help": fld.help.get(loc) if with_help and fld.help else None,
            "step": input_step(fld), "choices": options, "picker": picker, "errors": messages,
            "unit": _currency_unit(entity, fld, loc)}


def _currency_unit(entity: Entity, fld: Field, locale: str) -> str | None:
    """What an amount's input says about its currency: the code, or where it is chosen."""
    if fld.currency is None:
        return None
    holder = currency_field(entity, fld)
    if holder is None:
        return fld.currency
    return t("currency_from", locale, field=entity.fields[holder].label.get(locale))


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
