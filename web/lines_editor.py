"""The lines editors of a form: the child records of a lines field edited as a table inside
the parent's form, and the record service input the rows a form sent stand for."""

from __future__ import annotations

import re

from flask import url_for

from engine.registry.model import Entity, Field
from web.common import display, site, titles_for
from web.formfields import (choices, form_changes, form_value, input_fields, input_step,
                            reference_label, submitted, widget)

# A lines field is edited as a table of its child records inside the parent's form. Each row's
# inputs are named `<field>[<row>].<child field>`, plus `<field>[<row>].id` (the line's id, empty
# for a new line) and `<field>[<row>].remove`. Rows are numbered by the form, not by the
# record service: the service names a line by its position in the list it was sent
# (`lines[1].quantity`), and `LinesInput` turns that position back into the row it came from.

# empty rows a lines editor offers for new lines, so that it works without JavaScript
BLANK_LINE_ROWS = 3
# the hidden input naming the lines editors a form holds: a form without it leaves lines alone
# (not an identifier, so no field can take the name)
LINES_MARKER = "_lines"
_LINE_INPUT = re.compile(r"(?P<field>[a-z][a-z0-9_]*)\[(?P<row>[0-9]{1,6})\]\.(?P<name>[a-z_]+)")
_LINE_ERROR = re.compile(r"(?P<field>[a-z][a-z0-9_]*)\[(?P<position>[0-9]+)\](?P<rest>\..+)?")


def lines_fields(caller, entity: Entity) -> list[Field]:
    """The lines fields a person may edit on this entity's form: writable for them, with a
    child entity that has fields they may write."""
    access = site().service.access(caller, entity)
    return [fld for fld in entity.fields.values()
            if fld.type == "lines" and fld.writable and fld.name not in access.hidden
            and fld.name not in access.read_only and line_input_fields(caller, fld)]


def line_input_fields(caller, lines: Field) -> list[Field]:
    """The fields of a lines field's child entity a person may type into."""
    return input_fields(caller, site().registry.entities[lines.child_entity])


def blank_line(fields: list[Field]) -> dict:
    """The form values of a row for a new line: empty, or the field's literal default."""
    return {f.name: form_value(f, f.default) for f in fields}


def is_blank_line(values: dict, blank: dict) -> bool:
    """Whether a new row holds nothing but what an empty row shows (or less)."""
    def empty(value) -> bool:
        return value in (False, None, []) or (isinstance(value, str) and not value.strip())
    return all(empty(value) or value == blank.get(name) for name, value in values.items())


class _RowForm:
    """One row of a lines editor seen as a form of its own, so `submitted` reads its inputs
    by the child fields' names."""

    def __init__(self, form, prefix: str):
        self.form, self.prefix = form, prefix

    def get(self, name: str, default=None):
        return self.form.get(self.prefix + name, default)

    def getlist(self, name: str) -> list:
        return self.form.getlist(self.prefix + name)


class LinesInput:
    """What a form's lines editors sent: the rows of each, as typed (to show them again), and
    the record service input they stand for (`data`: the whole set of lines of each field
    that changed, as API.md's Writing says)."""

    def __init__(self):
        self.rows: dict[str, list[dict]] = {}
        self.data: dict[str, list[dict]] = {}
        self.errors: dict[str, list[str]] = {}  # input that is not a value, by form name
        self._sent: dict[str, list[str]] = {}  # the form row of each line sent, in order

    def form_errors(self, errors: dict[str, list[str]]) -> tuple[dict, set]:
        """The record service's `errors` with each line named by its form row
        (`lines[1].quantity` -> `lines[4].quantity`), and the keys that a lines editor shows:
        those of its lines and of the lines field itself."""
        result, shown = {}, set()
        for key, messages in errors.items():
            if key in self.rows:
                shown.add(key)
            match = _LINE_ERROR.fullmatch(key)
            sent = self._sent.get(match["field"], []) if match else []
            if match and int(match["position"]) < len(sent):
                shown.add(key)
                key = f"{match['field']}[{sent[int(match['position'])]}]{match['rest'] or ''}"
            result.setdefault(key, []).extend(messages)
        return result, shown


def lines_input(caller, entity: Entity, form, record: dict | None) -> LinesInput:
    """Read the lines editors a form holds into record service input. Of a new record
    (`record` None) every line is sent; of a stored one, a field's lines only when something
    changed: a line removed, added or edited. An existing line keeps its `id` and sends its
    changed values; a new one sends what was typed, so that defaults fill the rest; a row
    marked removed is left out, and a new row left empty is ignored."""
    result = LinesInput()
    present = set(form.getlist(LINES_MARKER))
    editable = [f for f in lines_fields(caller, entity) if f.name in present]
    loc = caller.locale
    for lines in editable:
        fields = line_input_fields(caller, lines)
        blank = blank_line(fields)
        stored = {line["id"]: line for line in (record or {}).get(lines.name) or []}
        keys = sorted({int(m["row"]) for name in form
                       if (m := _LINE_INPUT.fullmatch(name)) and m["field"] == lines.name})
        rows, items, sent = [], [], []
        changed = record is None
        for key in keys:
            prefix = f"{lines.name}[{key}]."
            row_form = _RowForm(form, prefix)
            raw_id = (form.get(prefix + "id") or "").strip()
            row = {"key": str(key), "id": raw_id,
                   "removed": form.get(prefix + "remove") in ("true", "on", "1"),
                   "values": {f.name: submitted(f, row_form) for f in fields}}
            if not raw_id and (row["removed"] or is_blank_line(row["values"], blank)):
                continue  # nothing to send, nor to show again
            rows.append(row)
            if row["removed"]:
                continue
            row_errors: dict[str, list[str]] = {}
            if raw_id:
                before = stored.get(_line_id(raw_id))
                # an id that is no line of this record goes as sent: the service names it
                item = {"id": raw_id,
                        **form_changes(fields, row["values"], before, row_errors, loc)}
                changed = changed or before is None or len(item) > 1
            else:
                item = {name: value for name, value in
                        form_changes(fields, row["values"], None, row_errors, loc).items()
                        if value is not None}
                changed = True
            for name, messages in row_errors.items():
                result.errors[prefix + name] = messages
            items.append(item)
            sent.append(str(key))
        kept = {_line_id(item["id"]) for item in items if "id" in item}
        changed = changed or any(line_id not in kept for line_id in stored)
        result.rows[lines.name] = rows
        if changed:
            result.data[lines.name] = items
            result._sent[lines.name] = sent
    return result


def _line_id(text: str) -> int | None:
    """The line id a row's hidden input holds, None when it holds none (a new line)."""
    try:
        return int(text)
    except ValueError:
        return None


def lines_editor(caller, entity: Entity, lines: Field, record: dict | None,
                 rows: list[dict] | None, errors: dict) -> dict:
    """A lines field's editor: a row per line (`rows` as a form sent them, else the record's
    stored lines), BLANK_LINE_ROWS empty rows for new lines, and the template row that
    static/forms.js copies for "add line". Each row has a widget per child field the person
    may write and the stored values of the other readable ones (computed, rollup...)."""
    loc = caller.locale
    child = site().registry.entities[lines.child_entity]
    fields = line_input_fields(caller, lines)
    writable = {f.name for f in fields}
    hidden = site().service.access(caller, child).hidden
    columns = [f for f in child.fields.values()
               if f.name not in hidden and f.type != "lines"]
    stored_lines = (record or {}).get(lines.name) or []
    stored = {line["id"]: line for line in stored_lines}
    titles = titles_for(caller, child, stored_lines,
                        [f.name for f in columns
                         if f.type == "reference" and f.name not in writable])
    if rows is None:
        rows = [{"key": str(i), "id": str(line["id"]), "removed": False,
                 "values": {f.name: form_value(f, line.get(f.name)) for f in fields}}
                for i, line in enumerate(stored_lines)]
    blank = blank_line(fields)
    next_key = max((int(r["key"]) for r in rows), default=-1) + 1
    rows = rows + [{"key": str(next_key + i), "id": "", "removed": False, "values": blank,
                    "pristine": True} for i in range(BLANK_LINE_ROWS)]
    # options of a select are the same for every row: asked for once per field
    options = {f.name: choices(caller, f, None)
               for f in fields if f.type in ("enum", "multi_enum", "reference")}

    def cell(fld: Field, key: str, value) -> dict:
        control_id = f"f-{lines.name}-{key}-{fld.name}"
        kind = widget(fld)
        found = options.get(fld.name)
        picker = None
        if found is not None and fld.type == "reference" and value not in ("", None) and \
                str(value) not in {v for v, _ in found}:
            found = [*found, (str(value), f"#{value}")]
        if fld.type == "reference" and found is None:
            kind = "picker"
            picker = {"url": url_for("forms.reference_choices", entity=entity.name,
                                     field=f"{lines.name}.{fld.name}"),
                      "label": reference_label(caller, fld, value),
                      "list_url": url_for("ui.list_view", entity=fld.to)}
        return {"name": fld.name, "input_name": f"{lines.name}[{key}].{fld.name}",
                "control_id": control_id, "label": fld.label.get(loc), "widget": kind,
                # a looked-up field may be left empty: saving fills it (engine/records/lookups)
                "type": fld.type, "value": value,
                "required": fld.required and fld.lookup is None,
                "read_only": False, "step": input_step(fld), "choices": found, "picker": picker,
                "errors": errors.get(f"{lines.name}[{key}].{fld.name}", [])}

    def row_view(row: dict) -> dict:
        key = row["key"]
        line = stored.get(_line_id(row["id"]))
        cells = []
        for fld in columns:
            if fld.name in writable:
                cells.append(cell(fld, key, row["values"][fld.name]))
            else:
                shown = display(child, fld.name, line.get(fld.name), titles, loc, line) \
                    if line is not None else ""
                cells.append({"name": fld.name, "label": fld.label.get(loc), "widget": None,
                              "value": shown})
        # messages about the line as a whole (a rule, an unknown id), or about a field it
        # has no widget for, are shown with the row
        messages = list(errors.get(f"{lines.name}[{key}]", []))
        prefix = f"{lines.name}[{key}]."
        for error_key, items in errors.items():
            name = error_key[len(prefix):] if error_key.startswith(prefix) else None
            if name is None or name in writable:
                continue
            if name in child.fields:
                items = [f"{child.fields[name].label.get(loc)}: {m}" for m in items]
            messages += items
        return {"key": key, "id": row["id"], "removed": row["removed"],
                "pristine": row.get("pristine", False), "cells": cells, "errors": messages}

    views = [row_view(row) for row in rows]
    template = row_view({"key": "__row__", "id": "", "removed": False, "values": blank,
                         "pristine": False})
    return {"name": lines.name, "label": lines.label.get(loc), "marker": LINES_MARKER,
            "headers": [{"label": f.label.get(loc),
                         "required": f.name in writable and f.required and f.lookup is None,
                         "numeric": f.type in ("integer", "decimal", "money", "percent",
                                               "rollup")} for f in columns],
            "rows": views, "template": template, "next_row": next_key + BLANK_LINE_ROWS,
            "errors": errors.get(lines.name, [])}
