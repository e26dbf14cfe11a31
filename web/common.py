"""What every page of the UI builds on, with no blueprint of its own: the site, the entity a
URL names, and stored values as text for a person."""

from __future__ import annotations

import datetime as dt
import json

from flask import current_app, g

from engine.errors import NotFound
from engine.records.currency import currency_of
from engine.records.listing import Lister, system_field
from engine.records.values import to_json
from engine.registry.labels import words
from engine.registry.model import SYSTEM_FIELDS, Entity, Field
from web.i18n import t


def site():
    """The Site serving this request, read once per request: the admin console swaps it after
    a migration (web/admin_site.py), and a request must not mix two configurations."""
    found = g.get("crm_site")
    if found is None:
        found = g.crm_site = current_app.extensions["crm"]
    return found


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


def field_of(entity: Entity, name: str) -> Field:
    return entity.fields[name] if name in entity.fields else system_field(name)


def field_label(entity: Entity, name: str, locale: str) -> str:
    if name in entity.fields:
        return entity.fields[name].label.get(locale)
    return t(name, locale) if name in SYSTEM_FIELDS else words(name)


def display(entity: Entity, name: str, value, titles: dict, locale: str,
            record: dict | None = None) -> str:
    """A stored value as text for a person (autoescaped by the templates); an amount with its
    currency code, read from `record` when the currency is chosen per record."""
    if value is None or value == "" or value == []:
        return ""
    fld = field_of(entity, name)
    if fld.currency is not None:  # money and rollups (engine/records/currency.py)
        code = currency_of(site().registry, entity, fld, record)
        return f"{to_json(fld, value)} {code}" if code else str(to_json(fld, value))
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
    if fld.type == "file":  # its metadata: the name is what a person knows it by
        return str(value.get("name") or "") if isinstance(value, dict) else ""
    if fld.type == "rollup" and fld.rollup_agg == "count":  # stored as numeric: 2, not 2.00
        return str(int(value))
    if isinstance(value, dt.datetime):  # to the minute: seconds are noise to a person
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return str(to_json(fld, value))


def titles_for(caller, entity: Entity, records: list[dict], columns) -> dict:
    with site().engine.connect() as conn:
        return Lister(site().service).titles(conn, caller, entity, records, list(columns))


def record_title(entity: Entity, record: dict, titles: dict, locale: str) -> str:
    """A record as a link names it: its title field shown as text, else #id."""
    if entity.title != "id" and entity.title in record:
        text = display(entity, entity.title, record.get(entity.title), titles, locale)
        if text:
            return text
    return f"#{record['id']}"
