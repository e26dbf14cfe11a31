"""What a template sees of a record: read-only views of the record, its lines, the records it
references and the users it names, each holding only what the printing user may read.

Field values are reached as attributes (`record.customer.country`), never through dict
methods, so a field may be called `items` or `keys`. A name the view lacks (a field hidden from
the user) is undefined in the template, not an error.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from engine.documents.formatting import empty, format_date, grouped
from engine.records.access import Caller
from engine.records.listing import Lister
from engine.registry.model import Entity, Registry

USER_FIELDS = ("owner", "created_by", "updated_by")
YES_NO = {"en": ("Yes", "No"), "zh": ("是", "否")}


class View:
    """A read-only bag of named values that prints as its title."""

    __slots__ = ("_entity", "_values", "_title")

    def __init__(self, entity: Entity | None, values: dict[str, Any], title: str):
        object.__setattr__(self, "_entity", entity)
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_title", title)

    def __getattr__(self, name: str):
        if name.startswith("_"):  # __html__, __iter__...: this is not a mapping or markup
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str):
        return self._values[name]

    def __contains__(self, name) -> bool:
        return name in self._values

    def __setattr__(self, name, value):
        raise AttributeError("a document view cannot be changed")

    def __str__(self) -> str:
        return self._title

    def __repr__(self) -> str:
        return f"<{self._entity.name if self._entity else 'view'} {self._title}>"


def entity_of(view) -> Entity | None:
    return view._entity if isinstance(view, View) else None


def value_of(view: View, name: str):
    return view._values.get(name)


class RecordViews:
    """Builds the views of one record for one caller, with a fixed number of queries: one per
    referenced entity, one for the titles of their own references, one for users."""

    def __init__(self, registry: Registry, service, caller: Caller, locale: str):
        self.registry, self.service, self.caller, self.locale = registry, service, caller, locale

    def build(self, entity: Entity, record: dict) -> View:
        lines = {name: record[name] for name, fld in entity.fields.items()
                 if fld.type == "lines" and isinstance(record.get(name), list)}
        with self.service.engine.connect() as conn:
            wanted: dict[str, set[int]] = {}
            users: set[int] = set()
            self._collect(entity, [record], wanted, users)
            for name, rows in lines.items():
                self._collect(self.registry.entities[entity.fields[name].child_entity], rows,
                              wanted, users)
            targets = {target: self.service.get_many(self.caller, target, ids, conn=conn)
                       for target, ids in wanted.items()}
            nested = {target: self._titles(conn, self.registry.entities[target],
                                           list(found.values()))
                      for target, found in targets.items()}
            people = self._users(conn, users)
        refs = {target: {i: self._view(self.registry.entities[target], r, nested[target], {},
                                       people)
                         for i, r in found.items()}
                for target, found in targets.items()}
        values_lines = {name: [self._view(self.registry.entities[entity.fields[name]
                                                                 .child_entity],
                                          line, {}, refs, people) for line in rows]
                        for name, rows in lines.items()}
        view = self._view(entity, record, {}, refs, people)
        view._values.update(values_lines)
        return view

    def _collect(self, entity: Entity, records: list[dict], wanted: dict, users: set) -> None:
        for name, fld in entity.fields.items():
            if fld.type != "reference":
                continue
            ids = {r[name] for r in records if r.get(name) is not None}
            if fld.to == "user":
                users.update(ids)
            elif ids:
                wanted.setdefault(fld.to, set()).update(ids)
        for name in USER_FIELDS:
            users.update(r[name] for r in records if r.get(name) is not None)

    def _titles(self, conn, entity: Entity, records: list[dict]) -> dict:
        columns = [n for n, f in entity.fields.items() if f.type == "reference" and f.to != "user"]
        if not columns or not records:
            return {}
        return Lister(self.service).titles(conn, self.caller, entity, records, columns)

    def _users(self, conn, ids: set[int]) -> dict[int, View]:
        if not ids:
            return {}
        table = self.service.schema.engine["user"]
        rows = conn.execute(sa.select(table.c.id, table.c.username, table.c.display_name,
                                      table.c.email).where(table.c.id.in_(sorted(ids))))
        return {r.id: View(None, {"id": r.id, "username": r.username,
                                  "name": r.display_name or r.username, "email": r.email},
                           r.display_name or r.username) for r in rows}

    def _view(self, entity: Entity, record: dict, titles: dict, refs: dict,
              people: dict) -> View:
        """A view of `record`: its references become the views in `refs` (or, one level
        down, a title from `titles`), its user fields the views in `people`."""
        values: dict[str, Any] = {}
        for name, value in record.items():
            fld = entity.fields.get(name)
            if value is not None and (name in USER_FIELDS or (fld is not None and fld.to == "user"
                                                              and fld.type == "reference")):
                value = people.get(value) or _unknown(value)
            elif value is not None and fld is not None and fld.type == "reference":
                found = refs.get(fld.to, {}).get(value)
                if found is None:
                    title = titles.get(name, {}).get(value)
                    found = View(self.registry.entities.get(fld.to),
                                 {"id": value, "title": title or f"#{value}"},
                                 title or f"#{value}")
                value = found
            values[name] = value
        view = View(entity, values, "")
        title = show(self.registry, view, entity.title, self.locale) \
            if entity.title in values and entity.title != "id" else ""
        title = title or f"#{record.get('id')}"
        if "title" not in entity.fields:
            values["title"] = title
        object.__setattr__(view, "_title", title)
        return view


def _unknown(user_id) -> View:
    return View(None, {"id": user_id, "name": f"#{user_id}"}, f"#{user_id}")


def show(registry: Registry, view, name: str, locale: str) -> str:
    """A value of a view as the record page shows it, in `locale`."""
    if not isinstance(view, View) or not isinstance(name, str):
        return ""
    entity, value = view._entity, view._values.get(name)
    if empty(value):
        return ""
    if entity is None:  # the user, the company, the document
        return _plain(value, locale)
    if isinstance(value, View):
        return str(value)
    fld = entity.fields.get(name)
    workflow = registry.workflow_by_entity.get(entity.name)
    if workflow is not None and name == workflow.field and value in workflow.states:
        return workflow.states[value].label.get(locale)
    if fld is None:  # a system field: id, version, created_at...
        return _plain(value, locale)
    if fld.type in ("enum", "multi_enum"):
        labels = {o.value: o.label.get(locale) for o in fld.options}
        items = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(v, str(v)) for v in items)
    if fld.type == "boolean":
        return YES_NO.get(locale, YES_NO["en"])[0 if value else 1]
    if fld.type == "json":
        return json.dumps(value, ensure_ascii=False)
    if fld.type == "file":
        return str(value.get("name") or "") if isinstance(value, dict) else ""
    if fld.type == "money" or (fld.type == "rollup" and fld.currency):
        text = grouped(value, fld.scale if fld.scale is not None else 2, "money")
        code = _currency(entity, fld, view._values)
        return f"{code} {text}" if code else text
    if fld.type == "percent":
        return grouped(value, fld.scale) + "%"
    if fld.type == "integer":
        return grouped(value, 0)
    return _plain(value, locale)


def _currency(entity: Entity, fld, values: dict) -> str:
    code = fld.currency
    if not code:
        return ""
    if code in entity.fields:  # the field holding each record's currency
        held = values.get(code)
        return str(held) if not empty(held) else ""
    return code


def _plain(value, locale: str) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return f"{format_date(value.date(), locale)} {value:%H:%M} UTC"
    if isinstance(value, dt.date):
        return format_date(value, locale)
    if isinstance(value, bool):
        return YES_NO.get(locale, YES_NO["en"])[0 if value else 1]
    if isinstance(value, Decimal):
        return grouped(value, None)
    return str(value)
