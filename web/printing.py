"""The printable document of a record (`/<entity>/<id>/print`), for every entity.

A clean page of its own, not the app's chrome: the site's name, the entity and the record's
title and numbers, the fields in the order of the entity's form sections, each `lines` field
as a table with the parent's rollups over it below, and `static/print.css` for A4 paper. The
browser prints it or saves it as PDF. It reads the record through the record service like the
record page, so the same permissions hold: hidden fields are left out, an unreadable record is
404.
"""

from __future__ import annotations

import datetime as dt

from flask import g, render_template

from engine.registry.model import Entity, Field
from web.common import display, entity_for, field_label, site, titles_for
from web.i18n import t
from web.ui import ui

NUMERIC = ("integer", "decimal", "money", "percent", "rollup")


@ui.get("/<entity>/<int:record_id>/print")
def print_record(entity, record_id):
    ent = entity_for(entity)
    caller, loc = g.caller, g.caller.locale
    service, registry = site().service, site().registry
    record = service.get(caller, ent.name, record_id)
    workflow = registry.workflow_by_entity.get(ent.name)
    titles = titles_for(caller, ent, [record],
                        [n for n, f in ent.fields.items() if f.type == "reference"] + ["owner"])

    def shown(name: str) -> str:
        return display(ent, name, record.get(name), titles, loc, record)

    numbers = [{"label": f.label.get(loc), "value": shown(n)} for n, f in ent.fields.items()
               if f.type == "autonumber" and n in record and shown(n)]
    # a rollup over a lines field is that table's total, shown under it, not among the fields
    totals = {n: f.rollup_of for n, f in ent.fields.items()
              if f.type == "rollup" and f.rollup_of in ent.fields and n in record}
    # the title, numbers and state stand in the document's head
    skip = {n for n, f in ent.fields.items() if f.type == "autonumber"} | set(totals)
    skip.add(ent.title)
    if workflow is not None:
        skip.add(workflow.field)

    groups = [(s.label.get(loc), list(s.fields)) for s in ent.form_sections]
    placed = {n for _, names in groups for n in names}
    rest = [n for n in ent.fields if n not in placed]
    if rest:
        groups.append((None if groups else t("details", loc), rest))
    sections, tables, done = [], [], set()
    for label, names in groups:
        rows = []
        for name in names:
            if name in done or name not in record or name in skip:
                continue
            done.add(name)
            fld = ent.fields[name]
            if fld.type == "lines":
                tables.append(_lines(caller, ent, fld, record, totals, shown))
            elif shown(name):
                rows.append({"label": fld.label.get(loc), "value": shown(name),
                             "long": fld.type in ("text", "json")})
        if rows:
            sections.append({"label": label, "fields": rows})

    app = registry.app
    heading = shown(ent.title) if ent.title in record else ""
    return render_template(
        "print.html", locale=loc, entity=ent, record=record,
        app_name=app.label.get(loc) if app is not None else t("app", loc),
        entity_label=ent.label.get(loc), heading=heading or f"#{record['id']}",
        numbers=numbers, sections=sections, tables=tables,
        owner={"label": field_label(ent, "owner", loc), "value": shown("owner")},
        state=shown(workflow.field) if workflow is not None else None,
        printed=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def _lines(caller, ent: Entity, fld: Field, record: dict, totals: dict, shown) -> dict:
    """A lines field as a table: the child fields the caller may read, then the parent's
    rollups over it."""
    loc = caller.locale
    child = site().registry.entities[fld.child_entity]
    hidden = site().service.access(caller, child).hidden
    columns = [n for n, f in child.fields.items() if n not in hidden and f.type != "lines"]
    lines = record.get(fld.name) or []
    titles = titles_for(caller, child, lines,
                        [n for n in columns if child.fields[n].type == "reference"])
    numeric = [child.fields[n].type in NUMERIC for n in columns]
    return {"label": fld.label.get(loc),
            "headers": [{"label": child.fields[n].label.get(loc), "numeric": num}
                        for n, num in zip(columns, numeric)],
            "rows": [[{"value": display(child, n, line.get(n), titles, loc, line),
                       "numeric": num}
                      for n, num in zip(columns, numeric)] for line in lines],
            "totals": [{"label": ent.fields[n].label.get(loc), "value": shown(n)}
                       for n, of in totals.items() if of == fld.name]}
